"""The method's three branches and its published fusion weights (the report's 0.95/0.04/0.01)."""

from __future__ import annotations

#: CLIP-score (prompt alignment), CE-score (image quality), D-score (details by VQA)
BRANCHES: tuple[str, ...] = ("clip", "ce", "d")
#: the report's weights, applied to raw scores; ``fuse.fixed_weights`` in params.yaml
PUBLISHED_WEIGHTS: dict[str, float] = {"clip": 0.95, "ce": 0.04, "d": 0.01}
