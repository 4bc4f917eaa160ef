"""t2ieval: a pairwise, explainable evaluator for text-to-image models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Evaluator", "Verdict", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from t2ieval.evaluator import Evaluator, Verdict

_LAZY = {"Evaluator": "t2ieval.evaluator", "Verdict": "t2ieval.evaluator"}


def __getattr__(name: str) -> Any:
    """Import the heavy API (torch, MLflow) only when first used: ``import t2ieval`` stays light."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 't2ieval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
