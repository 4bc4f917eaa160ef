"""Process-level helpers: logging set-up, seeding and device choice."""

from __future__ import annotations

import logging
import os
import random

import numpy as np

log = logging.getLogger(__name__)


def setup_logging(level: int | str | None = None) -> None:
    """Configure root logging once for a stage script or the CLI (``T2IEVAL_LOG`` overrides)."""
    level = level or os.environ.get("T2IEVAL_LOG", "INFO")
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (if imported) and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def pick_device(requested: str = "auto") -> "torch.device":  # noqa: F821
    """``auto`` gives CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    import torch

    if requested == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"base.device is {requested!r} but CUDA is not available here")
    log.info("using device %s", device)
    return device
