"""Scoring tables of images or pairs in chunks with a branch's batched scorer.

The stages score their branch through here with the same batched call the served model makes
(``ClipScorer.score``, ``VqaScorer.score_images``), so a pipeline score and a served score come
from one implementation; only the chunking (bounded memory: ``chunk`` images decoded at a time,
each once) is the stage's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from t2ieval.images import load_image

ScoreFn = Callable[[Sequence[str], Sequence[Image.Image]], "np.ndarray | tuple[np.ndarray, Any]"]


def score_image_table(
    images: pd.DataFrame,
    score_fn: ScoreFn,
    chunk: int = 256,
    load: Callable[[str], Image.Image] = load_image,
    desc: str = "scoring images",
) -> tuple[np.ndarray, list]:
    """``score_fn(prompts, images)`` over a table of ``image`` paths and ``prompt``s, loading
    ``chunk`` images at a time (memory stays bounded; each image is decoded once).

    ``score_fn`` is a branch scorer's batched scoring (``ClipScorer.score``,
    ``VqaScorer.score_images``), the same call the served model makes. Returns the score of every
    row, and, when ``score_fn`` returns ``(scores, table)``, the per-chunk tables (whose
    ``image`` column then holds the row number in ``images``).
    """
    for col in ("image", "prompt"):
        if col not in images.columns:
            raise ValueError(f"missing column {col!r}; found {list(images.columns)}")
    out = np.full(len(images), np.nan)
    extras: list = []
    paths_, prompts = list(images["image"]), list(images["prompt"])
    for start in tqdm(
        range(0, len(images), chunk), desc=desc, unit="chunk", leave=False, mininterval=2.0
    ):
        stop = min(start + chunk, len(images))
        result = score_fn(prompts[start:stop], [load(p) for p in paths_[start:stop]])
        if isinstance(result, tuple):
            result, extra = result
            if isinstance(extra, pd.DataFrame) and "image" in extra.columns:
                extra = extra.assign(image=extra["image"] + start)
            extras.append(extra)
        out[start:stop] = np.asarray(result, dtype=float)
    return out, extras


def pair_image_rows(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per image of every pair: ``pair_id, slot, image, prompt`` (both images of a pair
    next to each other, so a chunk sees a prompt once for both)."""
    rows = [
        {"pair_id": r["pair_id"], "slot": slot, "image": r[f"image_{slot}"], "prompt": r["prompt"]}
        for r in pairs.to_dict("records")
        for slot in (1, 2)
    ]
    return pd.DataFrame(rows, columns=["pair_id", "slot", "image", "prompt"])


def pair_scores(
    pairs: pd.DataFrame, image_rows: pd.DataFrame, image_scores: np.ndarray
) -> pd.DataFrame:
    """The branch score table ``pair_id, split, score_1, score_2`` (in ``pairs``' order) from
    the scores of ``image_rows`` (``pair_id, slot``)."""
    scored = image_rows.assign(score=np.asarray(image_scores, dtype=float))
    wide = scored.pivot(index="pair_id", columns="slot", values="score")
    out = (
        pairs[["pair_id", "split"]].copy()
        if "split" in pairs.columns
        else pairs[["pair_id"]].assign(split="")
    )
    for slot in (1, 2):
        out[f"score_{slot}"] = out["pair_id"].map(wide[slot]).to_numpy(dtype=float)
    return out.reset_index(drop=True)


def score_pair_table(
    pairs: pd.DataFrame,
    score_fn: ScoreFn,
    chunk: int = 256,
    load: Callable[[str], Image.Image] = load_image,
    desc: str = "scoring pairs",
) -> pd.DataFrame:
    """Both images of every pair scored by ``score_fn`` (see :func:`score_image_table`):
    ``pair_id, split, score_1, score_2`` in row order."""
    rows = pair_image_rows(pairs)
    scores, _ = score_image_table(rows, score_fn, chunk, load, desc)
    return pair_scores(pairs, rows, scores)
