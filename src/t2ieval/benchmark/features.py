"""Image features for FID, KID and the Inception Score: a pluggable extractor, always labelled.

Two extractors:

* ``inception``: the Inception-v3 network of FID (torch-fidelity's port of the TensorFlow
  weights, as torchmetrics uses it): 2048-d pool features for FID/KID and the 1008 ImageNet
  logits for the Inception Score. Numbers comparable to published FID/KID/IS, *if* the weights
  are the reference ones (their sha256 starts with ``6726825d``) and the reference set is the
  same. The weights are never downloaded behind the user's back in ``auto`` mode; asked for
  explicitly while offline (``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1`` or
  ``T2IEVAL_OFFLINE=1``) without a local copy, it fails at once, saying where to put the file.
* ``clip``: the registered model's own CLIP image tower (the fine-tuned backbone's normalised
  embedding, before the CLIP-score head). It has no class logits, so no Inception Score. A
  Fréchet distance in this space is *not* comparable to published FID, and every output says so.

``auto`` takes Inception where the weights are on disk (``--inception-weights`` or torch's hub
cache, where torchmetrics would have put them), else the CLIP tower.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)

INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[1]
#: torch hub's convention: the file name ends in the first hex digits of its sha256
INCEPTION_SHA256_PREFIX = "6726825d"
KINDS = ("auto", "inception", "clip")
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "T2IEVAL_OFFLINE")


class ExtractorUnavailable(RuntimeError):
    """The requested feature extractor cannot be built here; the message says what to do."""


@dataclass(frozen=True)
class FeatureSpace:
    """What a set of features is, for the label every output carries.

    ``key`` is ``inception`` or ``clip`` (it names the metrics: ``fid_inception``,
    ``fid_clip``, ...); ``comparable`` says whether numbers in this space can be set beside
    published FID/KID/IS; ``note`` is the sentence printed next to them.
    """

    key: str
    description: str
    dim: int
    comparable: bool
    has_class_logits: bool
    note: str

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "description": self.description,
            "dim": self.dim,
            "comparable_to_published": self.comparable,
            "has_class_logits": self.has_class_logits,
            "note": self.note,
        }


class FeatureExtractor(Protocol):
    """Maps images to features (and, for an ImageNet classifier, class logits)."""

    space: FeatureSpace

    def extract(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(features [N, dim] float64, class logits [N, C] float64 or None)``."""
        ...


def offline() -> bool:
    """Whether the user asked for no downloads (any of :data:`OFFLINE_VARS` set truthy)."""
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS
    )


def hub_cache_path() -> Path:
    """Where torch hub (and so torchmetrics) keeps the Inception weights once downloaded."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def find_inception_weights(explicit: str | Path | None = None) -> Path | None:
    """The Inception weights on disk: ``explicit`` (which must exist), else torch hub's cache."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ExtractorUnavailable(f"{path}: no such Inception weights file")
        return path
    cached = hub_cache_path()
    return cached if cached.is_file() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class InceptionExtractor:
    """FID's Inception-v3 (torchmetrics' ``NoTrainInceptionV3``): pool3 features and logits."""

    def __init__(self, weights: Path | None, device: str | torch.device = "cpu") -> None:
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.device = torch.device(device)
        try:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=None if weights is None else str(weights),
            )
        except (OSError, RuntimeError) as exc:  # a failed download, a bad file
            raise ExtractorUnavailable(
                f"cannot load the Inception-v3 weights ({exc}); download {INCEPTION_URL} to "
                f"{hub_cache_path()} or pass --inception-weights FILE, or use --features clip"
            ) from exc
        self.net = self.net.to(self.device)
        path = weights if weights is not None else hub_cache_path()
        reference = path.is_file() and _sha256(path).startswith(INCEPTION_SHA256_PREFIX)
        origin = f"weights {path.name}"
        if reference:
            note = (
                "Inception-v3 pool3 features with FID's reference weights: comparable to "
                "published FID/KID/IS computed against the same reference set"
            )
        else:
            note = (
                f"Inception-v3 architecture with weights from {path} whose sha256 does not "
                f"start with {INCEPTION_SHA256_PREFIX}: not FID's reference weights, so "
                "these numbers are not comparable to published FID/KID/IS"
            )
        self.space = FeatureSpace(
            key="inception",
            description=f"Inception-v3 pool3 (2048-d), {origin}",
            dim=2048,
            comparable=reference,
            has_class_logits=True,
            note=note,
        )

    def extract(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor | None]:
        arrays = [np.asarray(img.convert("RGB"), dtype=np.uint8) for img in images]
        feats = torch.zeros(len(arrays), 2048, dtype=torch.float64)
        logits = torch.zeros(len(arrays), 1008, dtype=torch.float64)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, arr in enumerate(arrays):  # one batch per image size; the net resizes to 299
            by_size.setdefault(arr.shape, []).append(i)
        with torch.inference_mode():
            for idx in by_size.values():
                x = torch.from_numpy(np.stack([arrays[i] for i in idx])).permute(0, 3, 1, 2)
                # torchmetrics' own forward returns the first feature only; this is the same
                # pass returning both (pool3 and the unbiased logits, as its IS uses them)
                pool, logit = self.net._torch_fidelity_forward(x.to(self.device))
                feats[idx] = pool.reshape(len(idx), -1).double().cpu()
                logits[idx] = logit.reshape(len(idx), -1).double().cpu()
        return feats, logits


class ClipTowerExtractor:
    """The registered model's CLIP image tower: normalised backbone embeddings (no head)."""

    def __init__(self, clip_scorer) -> None:
        self.scorer = clip_scorer
        bundle = clip_scorer.bundle
        dim = int(clip_scorer.model.embed_dim)
        self.space = FeatureSpace(
            key="clip",
            description=f"t2ieval CLIP image tower ({bundle.architecture}, "
            f"pretrained={bundle.pretrained or 'none'}, fine-tuned; {dim}-d "
            "normalised backbone embedding)",
            dim=dim,
            comparable=False,
            has_class_logits=False,
            note="computed in the registered model's own CLIP space, not Inception-v3: an FD/KD "
            "in our CLIP space is not comparable to published FID/KID, and there is no "
            "Inception Score (no class logits)",
        )

    def extract(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = []
        model, device = self.scorer.model, self.scorer.device
        with torch.inference_mode():
            for start in range(0, len(images), self.scorer.batch_size):
                batch = torch.stack(
                    [
                        self.scorer.bundle.preprocess(img.convert("RGB"))
                        for img in images[start : start + self.scorer.batch_size]
                    ]
                )
                out.append(model.backbone_image(batch.to(device)).double().cpu())
        feats = torch.cat(out) if out else torch.zeros(0, self.space.dim, dtype=torch.float64)
        return feats, None


def make_extractor(
    kind: str,
    clip_scorer=None,
    inception_weights: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> FeatureExtractor:
    """The extractor ``kind`` (``auto``, ``inception``, ``clip``) asks for.

    Raises :class:`ExtractorUnavailable` for ``inception`` without local weights while offline
    (before any network call), or ``clip`` without a CLIP scorer.
    """
    if kind not in KINDS:
        raise ValueError(f"features must be one of {KINDS}, got {kind!r}")
    weights = find_inception_weights(inception_weights)
    if kind == "auto":
        if weights is not None:
            kind = "inception"
        else:
            log.info(
                "no Inception weights at %s (nor --inception-weights): FID/KID in the "
                "model's CLIP space instead, labelled as such",
                hub_cache_path(),
            )
            kind = "clip"
    if kind == "inception":
        if weights is None and offline():
            set_vars = [v for v in OFFLINE_VARS if os.environ.get(v)]
            raise ExtractorUnavailable(
                f"--features inception needs the Inception-v3 weights, which are not on disk "
                f"({hub_cache_path()} is missing) and cannot be downloaded while offline "
                f"({', '.join(f'{v}={os.environ[v]}' for v in set_vars)}). Download "
                f"{INCEPTION_URL} on a connected machine and copy it there (or pass "
                "--inception-weights FILE), or use --features clip"
            )
        return InceptionExtractor(weights, device=device)
    if clip_scorer is None:
        raise ExtractorUnavailable(
            "--features clip needs the model's CLIP branch, which was not loaded"
        )
    return ClipTowerExtractor(clip_scorer)
