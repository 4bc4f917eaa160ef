"""Small file helpers shared by every stage: metrics and plot files, tables, JSON."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

log = logging.getLogger(__name__)

METRICS_DIR = Path("metrics")
PLOTS_DIR = Path("plots")


def _clean(value: Any) -> Any:
    """JSON-safe scalar: numpy numbers become Python numbers, NaN becomes None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as pretty JSON, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=_clean)
        fh.write("\n")
    return path


def read_json(path: str | Path) -> Any:
    with Path(path).open(encoding="utf-8") as fh:
        return json.load(fh)


def write_metrics(stage: str, metrics: Mapping[str, Any], root: str | Path = ".") -> Path:
    """Write a stage's metrics as flat JSON to ``metrics/<stage>.json`` (a DVC metrics file).

    Values must be scalars; nested keys are flattened with ``.`` so that ``dvc metrics show``
    and MLflow display the same names.
    """
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            for sub, v in value.items():
                flat[f"{key}.{sub}"] = _clean(v)
        else:
            flat[key] = _clean(value)
    path = Path(root) / METRICS_DIR / f"{stage}.json"
    write_json(path, flat)
    log.info("metrics of %s: %s", stage, flat)
    return path


def write_plot(stage: str, name: str, rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
               root: str | Path = ".") -> Path:
    """Write plot data to ``plots/<stage>/<name>.csv`` (declared under ``plots:`` in dvc.yaml)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    path = Path(root) / PLOTS_DIR / stage / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def write_table(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write a CSV table, creating parent folders (CSV keeps the pipeline's data diffable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def read_table(path: str | Path, required: Iterable[str] = ()) -> pd.DataFrame:
    """Read a CSV table written by an earlier stage, checking that ``required`` columns exist."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run the stage that writes it first (dvc repro)")
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")
    return frame
