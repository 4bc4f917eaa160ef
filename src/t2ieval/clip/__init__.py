"""Branch 1 of the method: the CLIP-score (prompt-image alignment) with learnable linear heads.

Public API: :func:`create_clip`, :func:`save_clip`, :func:`load_clip`, :class:`ClipScorer`,
:func:`finetune`, :class:`FinetuneConfig`, :class:`PairwiseInfoNCE`. Submodules import torch and
open_clip; they load on first use, so ``t2ieval.clip.config`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "PairwiseInfoNCE": "loss",
    "ClipBundle": "model",
    "ClipModelError": "model",
    "ClipWithHeads": "model",
    "PretrainedUnavailableError": "model",
    "create_clip": "model",
    "load_clip": "model",
    "save_clip": "model",
    "ClipScorer": "score",
    "FinetuneResult": "train",
    "finetune": "train",
    "FinetuneConfig": "config",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"t2ieval.clip.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 't2ieval.clip' has no attribute {name!r}")
