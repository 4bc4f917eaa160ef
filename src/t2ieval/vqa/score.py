"""D-score: the mean probability of "yes" over an image's questions, batched.

Questions come from the pair's prompt (:mod:`t2ieval.vqa.parse` + :mod:`t2ieval.vqa.questions`),
never from ground truth. Within one call, each distinct ``(image, question)`` is answered once:
images are told apart by a hash of their decoded RGB pixels (and size), so a PNG file and the same
picture sent as base64 are one image. Nothing is cached across calls.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from t2ieval.io import read_json
from t2ieval.vqa.model import Kind, VqaModel, VqaModelError, load_vqa_model
from t2ieval.vqa.parse import Description, parse_prompts
from t2ieval.vqa.questions import Question, d_score, make_questions

log = logging.getLogger(__name__)

SCORER_SETTINGS = "t2ieval_vqa.json"  # written beside a stage's model: how it is to be used
DEFAULT_MAX_QUESTIONS = 12
_UNSET = object()  # "not given", so that an explicit max_questions=12 is honoured


def image_hash(img: Image.Image) -> str:
    """SHA-256 of an image's RGB pixels and size (independent of file format and metadata)."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    h = hashlib.sha256(f"{rgb.size[0]}x{rgb.size[1]}|".encode())
    h.update(rgb.tobytes())
    return h.hexdigest()


def scorer_enabled(model_dir: str | Path) -> bool:
    """False when the ``train_vqa`` stage recorded ``enabled: false`` in ``model_dir``."""
    settings = Path(model_dir) / SCORER_SETTINGS
    return not settings.is_file() or bool(read_json(settings).get("enabled", True))


class VqaScorer:
    """Scores images against prompts with a VQA model and a question cap.

    ``n_forward`` counts the model forward passes this scorer ran and ``n_computed`` the
    distinct (image, question) answers it sent to the model.
    """

    def __init__(
        self,
        vqa: VqaModel,
        batch_size: int = 64,
        max_questions: int | None = DEFAULT_MAX_QUESTIONS,
        progress: bool = False,
    ):
        """Wrap ``vqa``; rows are answered in batches of ``batch_size`` (image, question) rows."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.vqa = vqa
        self.batch_size = batch_size
        self.max_questions = max_questions
        self.progress = progress
        self.n_forward = 0
        self.n_computed = 0
        self._parsed: dict[str, tuple[Description, list[Question]]] = {}

    @classmethod
    def load(
        cls,
        model_dir_or_name: str | Path,
        device: str = "auto",
        kind: Kind = "auto",
        batch_size: int = 64,
        max_questions: int | None | object = _UNSET,
        quantize: str | None = None,
    ) -> VqaScorer:
        """Load a VQA model once (local folder or hub name) and wrap it in a scorer.

        A folder written by the ``train_vqa`` stage also holds :data:`SCORER_SETTINGS`; its
        question cap is used unless ``max_questions`` is given (None: no cap). Default cap: 12.
        Likewise its ``quantize`` (``none`` | ``bf16`` | ``int8``: :meth:`VqaModel.quantize`) unless
        ``quantize`` is given; default ``none``.
        A folder whose settings say the D-branch is off raises :class:`VqaModelError`.
        """
        settings = Path(model_dir_or_name) / SCORER_SETTINGS
        saved = read_json(settings) if settings.is_file() else {}
        if not saved.get("enabled", True):
            raise VqaModelError(
                f"{model_dir_or_name}: the D-branch was off (vqa.enabled: false) "
                "when this folder was written; it holds no VQA model"
            )
        vqa = load_vqa_model(model_dir_or_name, kind=kind, device=device)
        if max_questions is _UNSET:
            max_questions = saved.get("max_questions", DEFAULT_MAX_QUESTIONS)
        vqa.quantize(quantize if quantize is not None else saved.get("quantize", "none"))
        return cls(vqa, batch_size=batch_size, max_questions=max_questions)

    # ---- questions

    def questions_for(self, prompts: Sequence[str]) -> list[tuple[Description, list[Question]]]:
        """Parsed description and capped questions of each prompt (parsed once per text)."""
        todo = sorted({p for p in prompts if p not in self._parsed})
        if todo:
            for prompt, desc in zip(todo, parse_prompts(todo)):
                self._parsed[prompt] = (desc, make_questions(desc, self.max_questions))
        return [self._parsed[p] for p in prompts]

    # ---- answering

    def answer(
        self,
        images: Sequence[Image.Image],
        requests: Sequence[tuple[int, str]],
        hashes: Sequence[str] | None = None,
    ) -> np.ndarray:
        """P(yes) of each ``(image number, question)`` request about ``images``, in batches of
        ``batch_size`` (image, question) rows sorted by image.

        ``hashes`` (one per image) skips hashing when known; each distinct
        ``(image hash, question)`` is answered once.
        """
        if hashes is None:
            hashes = [image_hash(img) for img in images]
        if len(hashes) != len(images):
            raise ValueError(f"{len(images)} images but {len(hashes)} hashes")
        keys = [(hashes[i], q) for i, q in requests]
        out = np.full(len(requests), np.nan, dtype=np.float64)
        missing: dict[tuple[str, str], list[int]] = {}
        for r, key in enumerate(keys):
            missing.setdefault(key, []).append(r)
        if not missing:
            return out
        # one entry per distinct (image, question); sorted by image so batches share images
        first_image = {}
        for i, _ in requests:
            first_image.setdefault(hashes[i], i)
        todo = sorted(missing, key=lambda k: (first_image[k[0]], k[1]))
        batches = [todo[i : i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
        with torch.inference_mode():
            for batch in tqdm(
                batches,
                desc="vqa answers",
                unit="batch",
                disable=not self.progress,
                mininterval=2.0,
            ):
                distinct = list(dict.fromkeys(h for h, _ in batch))
                local = {h: j for j, h in enumerate(distinct)}
                pixels = self.vqa.encode_images([images[first_image[h]] for h in distinct])
                p = self.vqa.yes_probability(
                    pixels, [local[h] for h, _ in batch], [q for _, q in batch]
                )
                self.n_forward += 1
                self.n_computed += len(batch)
                for key, value in zip(batch, p):
                    for r in missing[key]:
                        out[r] = value
        return out

    # ---- scoring

    def score_images(
        self, prompts: Sequence[str], images: Sequence[Image.Image]
    ) -> tuple[np.ndarray, pd.DataFrame]:
        """D-score of ``images[i]`` for ``prompts[i]``: every question of every prompt is
        answered in one batched pass (:meth:`answer`), however many prompts there are.

        Returns ``(d_scores, answers)``: ``d_scores[i]`` is the mean P(yes) of image ``i`` (NaN
        when its prompt yields no question); ``answers`` has one row per (image, question):
        ``image`` (position), ``question``, ``kind``, ``row``, ``column`` (its
        description-matrix cell) and ``p_yes``. The pipeline's ``score_vqa`` stage and the
        served model both score through here.
        """
        if len(prompts) != len(images):
            raise ValueError(f"{len(prompts)} prompts for {len(images)} images")
        rows, requests = [], []
        for i, (_, questions) in enumerate(self.questions_for(list(prompts))):
            for q in questions:
                rows.append((i, q.text, q.kind, q.row, q.column))
                requests.append((i, q.text))
        answers = pd.DataFrame(rows, columns=["image", "question", "kind", "row", "column"])
        answers["p_yes"] = self.answer(list(images), requests) if requests else np.zeros(0)
        d = np.full(len(images), np.nan)
        for i, p_yes in answers.groupby("image", sort=False)["p_yes"]:
            d[int(i)] = d_score(p_yes.to_numpy())
        return d, answers

    def score(self, prompt: str, images: Sequence[Image.Image]) -> tuple[np.ndarray, pd.DataFrame]:
        """D-scores of ``images`` for one ``prompt`` and the per-question answers
        (:meth:`score_images` with the same prompt for every image)."""
        if not images:
            raise ValueError("score: no image given")
        return self.score_images([prompt] * len(images), images)
