"""Small file helpers shared by every stage: metrics and plot files, tables, JSON."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

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


def write_plot(
    stage: str,
    name: str,
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
    root: str | Path = ".",
    columns: Iterable[str] | None = None,
) -> Path:
    """Write plot data to ``plots/<stage>/<name>.csv`` (declared under ``plots:`` in dvc.yaml).

    ``columns`` fixes the header (absent columns stay empty), so that a stage with nothing to
    plot still writes the file DVC declares.
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if columns is not None:
        frame = frame.reindex(columns=list(columns))
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


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def skops_bytes(obj: Any) -> bytes:
    """``skops.io.dumps(obj)`` made canonical: the same object gives the same bytes in any run.

    skops names each array file and memo entry by ``id()`` of the Python object and stamps the
    zip entries with the current time; both change from process to process. Here the ids are
    renumbered in the order they occur in ``schema.json``, entries are written in name order with
    a fixed timestamp, and nothing else changes (``skops.io.loads`` reads the result as usual).
    """
    import io as _io
    import re
    import zipfile

    import skops.io as sio

    src = zipfile.ZipFile(_io.BytesIO(sio.dumps(obj)))
    schema = src.read("schema.json").decode("utf-8")
    renumber: dict[str, str] = {}
    for match in re.finditer(r'"__id__": (\d+)|"(\d+)\.npy"', schema):
        old = match.group(1) or match.group(2)
        renumber.setdefault(old, str(len(renumber) + 1))

    def sub(match: re.Match) -> str:
        if match.group(1):
            return f'"__id__": {renumber[match.group(1)]}'
        return f'"{renumber[match.group(2)]}.npy"'

    schema = re.sub(r'"__id__": (\d+)|"(\d+)\.npy"', sub, schema)
    entries = {"schema.json": schema.encode("utf-8")}
    for info in src.infolist():
        if info.filename != "schema.json":
            stem = info.filename.removesuffix(".npy")
            if stem not in renumber:
                raise ValueError(f"skops archive: {info.filename} is not named in schema.json")
            entries[f"{renumber[stem]}.npy"] = src.read(info)
    out = _io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, entries[name])
    return out.getvalue()


def write_skops(path: str | Path, obj: Any) -> Path:
    """Save a scikit-learn object with skops in canonical form (:func:`skops_bytes`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(skops_bytes(obj))
    return path


def read_skops(path: str | Path, trusted: Iterable[str]) -> Any:
    """Load a skops file, trusting skops' defaults and ``trusted`` alone; any other type in the
    file is refused with an error naming the file and the types."""
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    trusted = list(trusted)
    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in trusted]
    if untrusted:
        raise ValueError(f"{path}: refuses to load types outside the trusted list: {untrusted}")
    return sio.load(path, trusted=trusted)
