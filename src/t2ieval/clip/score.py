"""CLIP-score inference: cosine similarity of the projected prompt and image embeddings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from t2ieval.clip.model import ClipBundle, load_clip
from t2ieval.runtime import pick_device

log = logging.getLogger(__name__)


class ClipScorer:
    """Loads a saved CLIP-score model once and scores (prompt, image) pairs in batches.

    >>> scorer = ClipScorer.load("models/clip")          # doctest: +SKIP
    >>> scorer.score(["a red cube"], [pil_image])         # doctest: +SKIP
    array([0.31], dtype=float32)
    """

    def __init__(
        self, bundle: ClipBundle, device: torch.device | str = "cpu", batch_size: int = 64
    ) -> None:
        self.bundle = bundle
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.model = bundle.model.to(self.device).eval()

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto", batch_size: int = 64) -> ClipScorer:
        """Load a folder written by :func:`t2ieval.clip.model.save_clip` (``device`` ``auto``
        picks CUDA when present)."""
        dev = pick_device(device)
        return cls(load_clip(model_dir, device=dev), device=dev, batch_size=batch_size)

    def embed_texts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Projected, normalised prompt embeddings ``[n, d]`` (CPU, float32)."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(prompts), self.batch_size):
                tokens = self.bundle.tokenizer(list(prompts[start : start + self.batch_size]))
                out.append(self.model.encode_text(tokens.to(self.device)).float().cpu())
        return torch.cat(out) if out else torch.empty(0, self.model.embed_dim)

    def embed_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Projected, normalised image embeddings ``[n, d]`` (CPU, float32)."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = torch.stack(
                    [
                        self.bundle.preprocess(img.convert("RGB"))
                        for img in images[start : start + self.batch_size]
                    ]
                )
                out.append(self.model.encode_image(batch.to(self.device)).float().cpu())
        return torch.cat(out) if out else torch.empty(0, self.model.embed_dim)

    def score(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> np.ndarray:
        """CLIP-score of each ``(prompts[i], images[i])``: cosine similarity in ``[-1, 1]``.

        Each distinct prompt is encoded once. Returns a float32 array of length ``len(images)``.
        """
        if len(prompts) != len(images):
            raise ValueError(
                f"score: {len(prompts)} prompts but {len(images)} images; give one prompt per image"
            )
        if not len(images):
            return np.zeros(0, dtype=np.float32)
        for i, p in enumerate(prompts):
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"score: prompt {i} is empty or not a string ({p!r})")
        unique = list(dict.fromkeys(prompts))
        text = self.embed_texts(unique)
        where = {p: i for i, p in enumerate(unique)}
        text = text[[where[p] for p in prompts]]
        image = self.embed_images(images)
        return (text * image).sum(dim=1).numpy().astype(np.float32)
