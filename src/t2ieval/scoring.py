"""The one scoring path: CLIP-score, CE-score and D-score of images, fused into one score.

The served MLflow model, the ``t2ieval`` CLI, the Python :class:`~t2ieval.evaluator.Evaluator`
and Spark batch scoring all call :class:`CompositeScorer`; the models load once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from t2ieval import paths
from t2ieval.fusion import FusionWeights

log = logging.getLogger(__name__)

#: the columns of :meth:`CompositeScorer.score_pairs`, in order: the served model's output, the
#: CLI's and Spark's
PAIR_COLUMNS = (
    "score_1",
    "score_2",
    "preferred",
    "p_1_over_2",
    "clip_score_1",
    "clip_score_2",
    "ce_score_1",
    "ce_score_2",
    "d_score_1",
    "d_score_2",
    "branches",
)

#: artifact keys of a packaged model and their places in a pipeline root (``paths`` owns them)
ARTIFACT_DIRS: dict[str, str] = {
    "clip": paths.CLIP_MODEL_DIR.as_posix(),
    "quality": paths.QUALITY_MODEL_DIR.as_posix(),
    "vqa": paths.VQA_MODEL_DIR.as_posix(),
    "fusion": paths.FUSION_WEIGHTS.as_posix(),
}


@dataclass(frozen=True)
class ImageScores:
    """Scores of images (each for its own prompt), with the VQA answers behind the D-score."""

    clip: np.ndarray
    ce: np.ndarray
    d: np.ndarray
    score: np.ndarray
    answers: list[list[dict]]  # per image: [{"question", "kind", "p_yes"}, ...]


def answers_per_image(answers, n_images: int) -> list[list[dict]]:
    """The VQA answers of each of ``n_images`` images as ``[{"question", "kind", "p_yes"}, ...]``.

    ``answers`` is :meth:`t2ieval.vqa.score.VqaScorer.score`'s table (one row per image and
    question, ``image`` the image's position) or already a list of per-image lists.
    """
    out: list[list[dict]] = [[] for _ in range(n_images)]
    if isinstance(answers, pd.DataFrame):
        for rec in answers.to_dict("records"):
            out[int(rec["image"])].append(
                {
                    "question": str(rec["question"]),
                    "kind": str(rec.get("kind", "")),
                    "p_yes": float(rec["p_yes"]),
                }
            )
        return out
    for k, per in enumerate(answers):
        out[k] = [dict(a) for a in per]
    return out


class CompositeScorer:
    """The branch scorers and the fusion weights of one trained pipeline.

    ``vqa`` is None when the pipeline ran with the D-branch off (``vqa.enabled: false``): every
    ``d_score`` is then NaN, the fusion has no ``d`` weight, and :attr:`branches` says so.
    """

    def __init__(self, clip, ce, vqa, fusion: FusionWeights) -> None:
        self.clip = clip
        self.ce = ce
        self.vqa = vqa
        self.fusion = fusion
        if vqa is None and "d" in fusion.weights:
            raise ValueError("the fusion weights use the D-branch but no VQA model is given")

    @property
    def branches(self) -> str:
        """The branches whose scores the fused score uses, e.g. ``clip,ce,d`` or ``clip,ce``."""
        return ",".join(b for b in ("clip", "ce", "d") if b != "d" or self.vqa is not None)

    @classmethod
    def load(
        cls, artifacts: Mapping[str, str | Path] | str | Path = ".", device: str = "auto"
    ) -> CompositeScorer:
        """Load from artifact paths (keys ``clip, quality, vqa, fusion``) or a pipeline root."""
        from t2ieval.clip.score import ClipScorer
        from t2ieval.quality.model import QualityModel
        from t2ieval.vqa.score import VqaScorer, scorer_enabled

        if not isinstance(artifacts, Mapping):
            root = Path(artifacts)
            artifacts = {k: root / v for k, v in ARTIFACT_DIRS.items()}
        missing = [k for k in ARTIFACT_DIRS if k not in artifacts]
        if missing:
            raise ValueError(f"model artifacts {missing} missing; expected {list(ARTIFACT_DIRS)}")
        for key, path in artifacts.items():
            if not Path(path).exists():
                raise FileNotFoundError(
                    f"{path}: the {key!r} part of the model is missing "
                    "(run `dvc repro` or `dvc pull` first)"
                )
        log.info("loading t2ieval models from %s", dict(artifacts))
        vqa = (
            VqaScorer.load(artifacts["vqa"], device=device)
            if scorer_enabled(artifacts["vqa"])
            else None
        )
        if vqa is None:
            log.info("the D-branch is off in this model: scores fuse clip and ce only")
        return cls(
            clip=ClipScorer.load(artifacts["clip"], device=device),
            ce=QualityModel.load(artifacts["quality"]),
            vqa=vqa,
            fusion=FusionWeights.load(artifacts["fusion"]),
        )

    def score_images(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> ImageScores:
        """Every branch score and the fused score of ``images[i]`` for ``prompts[i]``."""
        if len(prompts) != len(images):
            raise ValueError(f"{len(prompts)} prompts for {len(images)} images")
        n = len(images)
        if n == 0:
            empty = np.zeros(0)
            return ImageScores(empty, empty, empty, empty, [])
        clip = np.asarray(self.clip.score(list(prompts), list(images)), dtype=float)
        ce = np.asarray(self.ce.score(list(images)), dtype=float)
        d = np.full(n, np.nan)
        answers: list[list[dict]] = [[] for _ in range(n)]
        if self.vqa is not None:  # every question of every prompt in one batched pass
            d, table = self.vqa.score_images(list(prompts), list(images))
            answers = answers_per_image(table, n)
        # a prompt that yields no VQA question has no D-score (NaN, reported as such); it then
        # adds nothing to the fused score: the branch's mean, i.e. 0 after standardisation
        d_fused = np.where(np.isnan(d), self.fusion.mean.get("d", 0.0), d)
        branch_scores = {"clip": clip, "ce": ce, "d": d_fused}
        fused = self.fusion.fuse({b: branch_scores[b] for b in self.fusion.weights})
        return ImageScores(clip, ce, d, fused, answers)

    def score_pairs(
        self,
        prompts: Sequence[str],
        images_1: Sequence[Image.Image],
        images_2: Sequence[Image.Image | None],
    ) -> pd.DataFrame:
        """One row per pair: fused and branch scores of both images, the verdict and
        ``p_1_over_2``, the calibrated probability that image 1 is preferred (swapping the images
        gives ``1 - p`` and the opposite verdict, unless the scores tie exactly).

        ``images_2[i]`` may be ``None``: that row scores ``images_1[i]`` alone (its ``*_2``
        columns and ``p_1_over_2`` are NaN and ``preferred`` is 0).
        """
        flat_prompts, flat_images, where = [], [], []
        for i, (p, a, b) in enumerate(zip(prompts, images_1, images_2)):
            flat_prompts.append(p)
            flat_images.append(a)
            where.append((i, 1))
            if b is not None:
                flat_prompts.append(p)
                flat_images.append(b)
                where.append((i, 2))
        s = self.score_images(flat_prompts, flat_images)
        n = len(prompts)
        cols = {
            f"{k}_{slot}": np.full(n, np.nan)
            for k in ("score", "clip_score", "ce_score", "d_score")
            for slot in (1, 2)
        }
        for j, (i, slot) in enumerate(where):
            cols[f"score_{slot}"][i] = s.score[j]
            cols[f"clip_score_{slot}"][i] = s.clip[j]
            cols[f"ce_score_{slot}"][i] = s.ce[j]
            cols[f"d_score_{slot}"][i] = s.d[j]
        out = pd.DataFrame(cols)
        s1, s2 = out["score_1"].to_numpy(), out["score_2"].to_numpy()
        out["preferred"] = np.where(np.isnan(s2), 0, np.where(s2 > s1, 2, 1)).astype(int)
        out["p_1_over_2"] = self.fusion.probability(s1, s2)
        out["branches"] = self.branches
        return out[list(PAIR_COLUMNS)]
