"""Scoring a benchmark's images once each with the registered model, and their features.

An image is scored for its prompt by :meth:`t2ieval.scoring.CompositeScorer.score_images` (every
branch and the fused score, in batches): the same code as the served model, the CLI and Spark.
The same picture given for the same prompt twice (say by two generators that drew the same
faithful image) is scored once, so equal pictures get exactly equal scores, a tie; each distinct
picture is decoded once per batch and also goes through the feature extractor, once.

:func:`score_with_spark` is the hook to Spark's batch path
(:func:`t2ieval.scaling.spark.score_manifest`): the distinct (prompt, image) pairs become rows of
a pair manifest, two images of one prompt per row, and the scores come back from its Parquet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from t2ieval.images import DEFAULT_MAX_PIXELS, load_image

if TYPE_CHECKING:  # pragma: no cover
    from t2ieval.benchmark.features import FeatureExtractor
    from t2ieval.scoring import CompositeScorer

log = logging.getLogger(__name__)

#: the model's scores of an image, as the served model names them
SCORE_COLUMNS = ("score", "clip_score", "ce_score", "d_score")


@dataclass
class Scored:
    """Per input row: the model's scores (``scores``, the input table plus
    :data:`SCORE_COLUMNS`), and the features and class logits of its picture (or None)."""

    scores: pd.DataFrame
    features: torch.Tensor | None
    logits: torch.Tensor | None
    distinct_pictures: int
    scored_pairs: int


def _jobs(images: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct (prompt_id, picture) pairs to score, and each input row's pair."""
    keys = images["prompt_id"].astype(str) + "\x00" + images["digest"].astype(str)
    codes, uniques = pd.factorize(keys)
    first = pd.Series(np.arange(len(images))).groupby(codes).first().to_numpy()
    jobs = images.iloc[first][["prompt_id", "prompt", "image", "digest"]].reset_index(drop=True)
    return jobs, codes


def _picture_batches(
    paths: Sequence[str], batch_size: int, max_pixels: int
) -> Iterator[tuple[int, list]]:
    for start in range(0, len(paths), batch_size):
        yield start, [load_image(p, max_pixels) for p in paths[start : start + batch_size]]


def score_images(
    images: pd.DataFrame,
    scorer: CompositeScorer | None,
    extractor: FeatureExtractor | None = None,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Scored:
    """Score every row of ``images`` (:data:`t2ieval.benchmark.inputs.COLUMNS`) for its prompt,
    and extract each picture's features.

    ``scorer`` None skips scoring (the scores come from elsewhere, e.g. Spark: the score columns
    are then absent); ``extractor`` None skips the features. Pictures are decoded ``batch_size``
    at a time, so memory stays bounded whatever the suite's size.
    """
    jobs, job_of_row = _jobs(images)
    if scorer is None and extractor is None:
        return Scored(
            images.reset_index(drop=True).copy(),
            None,
            None,
            int(jobs["digest"].nunique()),
            len(jobs),
        )
    pictures = jobs.drop_duplicates("digest")["image"].tolist()
    digests = jobs.drop_duplicates("digest")["digest"].tolist()
    picture_index = {d: i for i, d in enumerate(digests)}
    job_picture = jobs["digest"].map(picture_index).to_numpy()
    results = {c: np.full(len(jobs), np.nan) for c in SCORE_COLUMNS}
    feats: list[torch.Tensor] = []
    logits: list[torch.Tensor] = []
    for start, batch in _picture_batches(pictures, batch_size, max_pixels):
        stop = start + len(batch)
        if scorer is not None:
            todo = np.nonzero((job_picture >= start) & (job_picture < stop))[0]
            s = scorer.score_images(
                jobs["prompt"].iloc[todo].tolist(), [batch[job_picture[j] - start] for j in todo]
            )
            for col, values in zip(SCORE_COLUMNS, (s.score, s.clip, s.ce, s.d)):
                results[col][todo] = values
        if extractor is not None:
            f, lg = extractor.extract(batch)
            feats.append(f)
            if lg is not None:
                logits.append(lg)
        log.info("scored %d of %d distinct pictures", stop, len(pictures))
    out = images.reset_index(drop=True).copy()
    if scorer is not None:
        for col in SCORE_COLUMNS:
            out[col] = results[col][job_of_row]
    row_picture = job_picture[job_of_row]
    features = torch.cat(feats)[torch.from_numpy(row_picture)] if feats else None
    class_logits = torch.cat(logits)[torch.from_numpy(row_picture)] if logits else None
    return Scored(out, features, class_logits, len(pictures), len(jobs))


def extract_features(
    paths: Sequence[str],
    extractor: FeatureExtractor,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> torch.Tensor:
    """Features of image files (e.g. the reference set), ``batch_size`` decoded at a time."""
    feats = [
        extractor.extract(batch)[0]
        for _, batch in _picture_batches(list(paths), batch_size, max_pixels)
    ]
    return torch.cat(feats) if feats else torch.zeros(0, extractor.space.dim, dtype=torch.float64)


def score_with_spark(
    images: pd.DataFrame,
    model_uri: str,
    work_dir: str | Path,
    master: str = "local[*]",
    tracking_uri: str | None = None,
    batch_size: int = 64,
    partitions: int | None = None,
) -> pd.DataFrame:
    """Score ``images`` on Spark with the registered model; returns ``images`` plus
    :data:`SCORE_COLUMNS`.

    The distinct (prompt, picture) pairs are paired up within each prompt into a pair manifest
    (``work_dir/pairs.csv``; a prompt's odd one out is paired with itself) and scored by
    :func:`t2ieval.scaling.spark.score_manifest` into ``work_dir/scores.parquet``.
    """
    from t2ieval.scaling.spark import score_manifest

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    jobs, job_of_row = _jobs(images)
    rows, slots = [], []
    for _, group in jobs.groupby("prompt_id", sort=True):
        idx = group.index.tolist()
        for k in range(0, len(idx), 2):
            a = idx[k]
            b = idx[k + 1] if k + 1 < len(idx) else a
            rows.append(
                {
                    "pair_id": f"job{len(rows):07d}",
                    "prompt": jobs.at[a, "prompt"],
                    "image_1": jobs.at[a, "image"],
                    "image_2": jobs.at[b, "image"],
                }
            )
            slots.append((a, b))
    manifest = work / "pairs.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    summary = score_manifest(
        manifest,
        model_uri,
        work / "scores.parquet",
        master=master,
        batch_size=batch_size,
        partitions=partitions,
        overwrite=True,
        tracking_uri=tracking_uri,
    )
    log.info("Spark scored %d rows in %.1f s", summary["rows"], summary["scoring_s"])
    result = pd.read_parquet(work / "scores.parquet").sort_values("row").reset_index(drop=True)
    results = {c: np.full(len(jobs), np.nan) for c in SCORE_COLUMNS}
    for (a, b), rec in zip(slots, result.to_dict("records")):
        for col in SCORE_COLUMNS:
            results[col][a] = rec[f"{col}_1"]
            results[col][b] = rec[f"{col}_2"] if b != a else rec[f"{col}_1"]
    out = images.reset_index(drop=True).copy()
    for col in SCORE_COLUMNS:
        out[col] = results[col][job_of_row]
    return out
