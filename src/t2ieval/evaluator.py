"""The Python API: load a trained t2ieval model once, then score, compare and rank images.

>>> from t2ieval import Evaluator                                   # doctest: +SKIP
>>> ev = Evaluator.load("models:/t2ieval@champion")                 # doctest: +SKIP
>>> ev.compare("two red circles", "a.png", "b.png").preferred       # doctest: +SKIP
1
>>> ranks, scores = ev.rank("two red circles", ["a.png", "b.png", "c.png"])  # doctest: +SKIP

The shapes follow ImageReward's public API (``score(prompt, images)``,
``inference_rank(prompt, images) -> (ranks, scores)`` with rank 1 the best). Every number comes
from :class:`t2ieval.scoring.CompositeScorer`, the same code the served model runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from t2ieval.images import DEFAULT_MAX_PIXELS, load_image, to_rgb
from t2ieval.scoring import ARTIFACT_DIRS, CompositeScorer, ImageScores

log = logging.getLogger(__name__)

#: the model a user gets by default: the registered champion in the project's tracking store
DEFAULT_MODEL = "models:/t2ieval@champion"

ImageLike = Image.Image | str | Path


@dataclass(frozen=True)
class Answer:
    """One VQA question asked about an image and the model's probability of "yes"."""

    question: str
    kind: str
    p_yes: float


@dataclass(frozen=True)
class ImageScore:
    """The fused score of one image for a prompt, each branch's score, and the VQA answers."""

    score: float
    clip_score: float
    ce_score: float
    d_score: float
    answers: tuple[Answer, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """Which of two images is better for a prompt, and why.

    ``preferred`` is 1 or 2 (a tie goes to image 1, as in the served model); the ``*_1`` and
    ``*_2`` fields are the scores of each image, ``answers_1``/``answers_2`` the VQA questions
    behind the D-scores.
    """

    prompt: str
    preferred: int
    score_1: float
    score_2: float
    clip_score_1: float
    clip_score_2: float
    ce_score_1: float
    ce_score_2: float
    d_score_1: float
    d_score_2: float
    answers_1: tuple[Answer, ...]
    answers_2: tuple[Answer, ...]
    branches: str = "clip,ce,d"  # the branches the fused score uses ("clip,ce": D-branch off)
    p_1_over_2: float = float("nan")  # calibrated probability that image 1 is preferred

    @property
    def margin(self) -> float:
        """How far ahead the preferred image is (fused score difference, >= 0)."""
        return abs(self.score_1 - self.score_2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _answers(raw: Sequence[dict]) -> tuple[Answer, ...]:
    return tuple(
        Answer(question=str(a["question"]), kind=str(a.get("kind", "")), p_yes=float(a["p_yes"]))
        for a in raw
    )


def is_pipeline_root(path: str | Path) -> bool:
    """Whether ``path`` holds a trained pipeline's ``models/`` (clip, quality, vqa, fusion)."""
    root = Path(path)
    return root.is_dir() and all((root / rel).exists() for rel in ARTIFACT_DIRS.values())


def load_scorer(
    model: str | Path = DEFAULT_MODEL, device: str = "auto", tracking_uri: str | None = None
) -> CompositeScorer:
    """The :class:`CompositeScorer` behind ``model``.

    ``model`` is an MLflow model URI (``models:/t2ieval@champion``, ``runs:/...``, a logged model
    folder) or a pipeline root (a folder with ``models/clip`` etc.). Registry URIs are resolved in
    ``tracking_uri``, else in ``MLFLOW_TRACKING_URI`` or the project's ``mlflow.db`` in the
    working directory (:func:`t2ieval.tracking.using_tracking_uri`); MLflow's URIs and the
    process environment are left as they were.
    """
    text = str(model)
    if is_pipeline_root(text):
        log.info("loading the pipeline models under %s", text)
        return CompositeScorer.load(text, device=device)
    import mlflow

    from t2ieval.serving.pyfunc import T2IEvalModel
    from t2ieval.tracking import using_tracking_uri

    if Path(text).is_dir() and not (Path(text) / "MLmodel").is_file():
        raise FileNotFoundError(
            f"{text}: neither a pipeline root (no "
            f"{', '.join(ARTIFACT_DIRS.values())}) nor an MLflow model folder "
            "(no MLmodel)"
        )
    with using_tracking_uri(tracking_uri) as uri:
        log.info("loading MLflow model %s (tracking %s)", text, uri)
        python_model = mlflow.pyfunc.load_model(text).unwrap_python_model()
    if not isinstance(python_model, T2IEvalModel) or python_model.scorer is None:
        raise TypeError(f"{text} is not a t2ieval model (got {type(python_model).__name__})")
    return python_model.scorer


class Evaluator:
    """A loaded t2ieval model: ``score``, ``compare`` and ``rank`` images for a prompt.

    Models load once, in :meth:`load`; every call scores its images in one batch.
    """

    def __init__(self, scorer: CompositeScorer, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.scorer = scorer
        self.max_pixels = max_pixels

    @classmethod
    def load(
        cls,
        model: str | Path = DEFAULT_MODEL,
        device: str = "auto",
        tracking_uri: str | None = None,
    ) -> Evaluator:
        """Load from an MLflow model URI or a pipeline root (see :func:`load_scorer`).

        ``device`` (``auto``, ``cpu``, ``cuda``) applies to a pipeline root; an MLflow model
        loads as the served model does, on ``auto``.
        """
        return cls(load_scorer(model, device=device, tracking_uri=tracking_uri))

    # ---- inputs ------------------------------------------------------------------------------
    def _image(self, image: ImageLike, index: int) -> Image.Image:
        if isinstance(image, Image.Image):  # converted like a file: alpha on white, 16-bit scaled
            return to_rgb(image)
        if isinstance(image, (str, Path)):
            return load_image(image, self.max_pixels)
        raise TypeError(
            f"image {index}: expected a PIL image or a file path, got {type(image).__name__}"
        )

    def _images(self, images: ImageLike | Sequence[ImageLike]) -> list[Image.Image]:
        if isinstance(images, (Image.Image, str, Path)):
            images = [images]
        return [self._image(img, i) for i, img in enumerate(images)]

    @staticmethod
    def _prompt(prompt: str) -> str:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"prompt must be a non-empty string, got {prompt!r}")
        return prompt

    def _score(self, prompt: str, images: ImageLike | Sequence[ImageLike]) -> ImageScores:
        prompt = self._prompt(prompt)
        pil = self._images(images)
        return self.scorer.score_images([prompt] * len(pil), pil)

    # ---- API ---------------------------------------------------------------------------------
    def details(self, prompt: str, images: ImageLike | Sequence[ImageLike]) -> list[ImageScore]:
        """Fused and branch scores of each image for ``prompt``, with the VQA answers."""
        s = self._score(prompt, images)
        return [
            ImageScore(
                float(s.score[i]),
                float(s.clip[i]),
                float(s.ce[i]),
                float(s.d[i]),
                _answers(s.answers[i]),
            )
            for i in range(len(s.score))
        ]

    def score(self, prompt: str, images: ImageLike | Sequence[ImageLike]) -> list[float]:
        """The fused score of each image for ``prompt`` (higher is better)."""
        return [float(x) for x in self._score(prompt, images).score]

    def compare(self, prompt: str, image_1: ImageLike, image_2: ImageLike) -> Verdict:
        """Which of two images is better for ``prompt``, with every component score."""
        a, b = self.details(prompt, [image_1, image_2])
        return Verdict(
            prompt=prompt,
            preferred=2 if b.score > a.score else 1,
            score_1=a.score,
            score_2=b.score,
            clip_score_1=a.clip_score,
            clip_score_2=b.clip_score,
            ce_score_1=a.ce_score,
            ce_score_2=b.ce_score,
            d_score_1=a.d_score,
            d_score_2=b.d_score,
            answers_1=a.answers,
            answers_2=b.answers,
            branches=self.scorer.branches,
            p_1_over_2=float(self.scorer.fusion.probability(a.score, b.score)),
        )

    def score_pairs(
        self, prompts: Sequence[str], images_1: Sequence[ImageLike], images_2: Sequence[ImageLike]
    ) -> pd.DataFrame:
        """Both images of many pairs (``prompts[i]``, ``images_1[i]``, ``images_2[i]``) scored in
        one batch by :meth:`CompositeScorer.score_pairs`: one row per pair, in input order, with
        ``score_1``, ``score_2``, every branch score of both images and the scorer's other
        columns (its ``preferred`` is the served model's, an exact tie going to image 1)."""
        if not len(prompts) == len(images_1) == len(images_2):
            raise ValueError(
                f"{len(prompts)} prompts, {len(images_1)} first images and "
                f"{len(images_2)} second images: one of each per pair"
            )
        checked = [self._prompt(p) for p in prompts]
        first = [self._image(img, i) for i, img in enumerate(images_1)]
        second = [self._image(img, i) for i, img in enumerate(images_2)]
        return self.scorer.score_pairs(checked, first, second)

    def rank(self, prompt: str, images: Sequence[ImageLike]) -> tuple[list[int], list[float]]:
        """``(ranks, scores)`` in input order, as ImageReward's ``inference_rank``: ``ranks[i]``
        is image ``i``'s place (1 = best; ties keep input order)."""
        scores = self.score(prompt, images)
        return ranks_of(scores), scores


def ranks_of(scores: Sequence[float]) -> list[int]:
    """Rank of each score, 1 for the highest; equal scores keep their input order."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    ranks = np.empty(len(order), dtype=int)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks.tolist()
