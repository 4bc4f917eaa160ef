"""One cell of a source row as the value an adapter needs, or a :class:`RowError` naming it."""

from __future__ import annotations

import math
import re
from typing import Any

from t2ieval.adapters.errors import RowError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(value: object, limit: int = 100) -> str:
    """``value`` as a file-name- and id-safe token (letters, digits, ``._-``)."""
    text = _SAFE.sub("_", str(value)).strip("._") or "x"
    return text[:limit]


def as_float(value: Any, where: str, field: str) -> float:
    """A finite number, or :class:`RowError` naming the row and field."""
    if isinstance(value, bool) or value is None:
        raise RowError(where, field, f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(where, field, f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise RowError(where, field, f"expected a finite number, got {value!r}")
    return number


def as_prompt(value: Any, where: str, field: str = "prompt") -> str:
    """A non-empty prompt, stripped, or :class:`RowError`."""
    if not isinstance(value, str) or not value.strip():
        raise RowError(where, field, f"prompt is empty or not text ({value!r})")
    return value.strip()


def as_list(value: Any, where: str, field: str) -> list:
    """A list-valued cell (JSON list, numpy array from parquet, tuple) as a Python list."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise RowError(where, field, f"expected a list, got {type(value).__name__}")
    return list(value)
