"""t2ieval: a pairwise, explainable evaluator for text-to-image models."""

from __future__ import annotations

__version__ = "0.1.0"
