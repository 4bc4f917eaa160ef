"""Importing the user's preference data from a CSV or JSONL manifest.

A manifest has columns ``prompt``, ``image_1``, ``image_2``, ``preferred`` (1 or 2; ``0`` or
``tie`` for a pair the raters found equal) and optionally ``category`` and ``pair_id``. Tied pairs
are checked like any other, then left out of the pairs and counted (``ImportResult.ties``): a
pairwise accuracy has nothing to score on them, as in the public datasets' own protocols. Image paths are relative to the manifest's folder or absolute.
Every row is validated; each problem names the row (1-based data row, as a spreadsheet shows it
after the header), the field and what was wrong. Valid images are converted once to RGB PNG.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from t2ieval.images import ImageError, load_image
from t2ieval.io import write_table

log = logging.getLogger(__name__)

REQUIRED = ("prompt", "image_1", "image_2", "preferred")


class ManifestError(ValueError):
    """The manifest cannot be imported; ``problems`` lists every bad row."""

    def __init__(self, manifest: Path, problems: list["RowProblem"]):
        self.manifest = manifest
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(
            f"{manifest}: {len(problems)} problem(s); fix them or set data.on_error: skip\n"
            f"{shown}{more}"
        )


@dataclass(frozen=True)
class RowProblem:
    row: int          # 1-based data row (the header is not counted)
    field: str
    reason: str       # short machine-friendly kind, e.g. "missing_file"
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, field {self.field!r}: {self.message}"


@dataclass
class ImportResult:
    pairs: pd.DataFrame
    problems: list[RowProblem] = field(default_factory=list)
    ties: int = 0  # valid rows with preferred 0/tie, left out of ``pairs``

    @property
    def skip_reasons(self) -> dict[str, int]:
        rows_by_reason: dict[str, set[int]] = {}
        for p in self.problems:
            rows_by_reason.setdefault(p.reason, set()).add(p.row)
        return {k: len(v) for k, v in sorted(rows_by_reason.items())}


def read_manifest(path: str | Path, required: tuple[str, ...] = REQUIRED) -> pd.DataFrame:
    """Read a ``.csv`` or ``.jsonl``/``.json`` manifest as strings, checking ``required`` columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix in (".jsonl", ".ndjson"):
            frame = pd.read_json(path, lines=True, dtype=False)
        elif suffix == ".json":
            with path.open(encoding="utf-8") as fh:
                frame = pd.DataFrame(json.load(fh))
        else:
            raise ValueError(f"{path}: unknown manifest format {suffix!r}; use .csv or .jsonl")
    except (ValueError, pd.errors.ParserError) as exc:
        if "unknown manifest format" in str(exc):
            raise
        raise ValueError(f"{path}: cannot parse the manifest ({exc})") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing required column(s) {missing}; found {list(frame.columns)}")
    return frame


def parse_preferred(value: object, allow_tie: bool = False) -> int | None:
    """1 or 2 (and 0 for ``0``/``tie`` when ``allow_tie``); None for anything else."""
    if isinstance(value, bool):
        return None
    allowed = (0.0, 1.0, 2.0) if allow_tie else (1.0, 2.0)
    if isinstance(value, (int, float)) and float(value) in allowed:
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if allow_tie and text == "tie":
            return 0
        if text in ("1", "2", "1.0", "2.0") or (allow_tie and text in ("0", "0.0")):
            return int(float(text))
    return None


def is_missing(value: object) -> bool:
    """An absent cell: ``None`` or NaN (what pandas reads for an empty cell of a non-text column)."""
    return value is None or (isinstance(value, float) and pd.isna(value))


def is_blank(value: object) -> bool:
    """A missing cell (:func:`is_missing`) or a string of whitespace only."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def import_manifest(path: str | Path, out_dir: str | Path, max_pixels: int,
                    on_error: str = "fail", image_root: str | Path | None = None) -> ImportResult:
    """Validate ``path`` and write its valid pairs to ``out_dir`` (``pairs.csv`` + ``images/``).

    With ``on_error="fail"`` any problem raises :class:`ManifestError` listing all of them; with
    ``"skip"`` bad rows are dropped, each reason is logged and returned in the result.
    Images are stored once per distinct content as ``images/<sha1>.png``.
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"data.on_error must be 'fail' or 'skip', got {on_error!r}")
    path = Path(path)
    frame = read_manifest(path)
    base = path.resolve().parent
    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    prefix = Path(image_root) if image_root is not None else out_dir

    problems: list[RowProblem] = []
    rows = []
    seen_ids: dict[str, int] = {}
    converted: dict[Path, str] = {}
    ties = 0
    for idx, rec in enumerate(tqdm(frame.to_dict("records"), desc="validating manifest",
                                   unit="row", mininterval=1.0), start=1):
        row_problems: list[RowProblem] = []
        prompt = rec.get("prompt")
        if is_blank(prompt) or not isinstance(prompt, str):
            row_problems.append(RowProblem(idx, "prompt", "empty_prompt", "prompt is empty"))
        preferred = parse_preferred(rec.get("preferred"), allow_tie=True)
        if preferred is None:
            row_problems.append(RowProblem(idx, "preferred", "bad_preferred",
                                           f"must be 1, 2 or 0/tie, got {rec.get('preferred')!r}"))
        pair_id = rec.get("pair_id")
        pair_id = f"row{idx:06d}" if is_blank(pair_id) else str(pair_id).strip()
        if pair_id in seen_ids:
            row_problems.append(RowProblem(idx, "pair_id", "duplicate_pair_id",
                                           f"{pair_id!r} already used by row {seen_ids[pair_id]}"))
        images = []
        for fld in ("image_1", "image_2"):
            value = rec.get(fld)
            if is_blank(value) or not isinstance(value, str):
                row_problems.append(RowProblem(idx, fld, "missing_path", "image path is empty"))
                continue
            src = Path(value.strip())
            src = src if src.is_absolute() else base / src
            if src in converted:
                images.append(converted[src])
                continue
            try:
                img = load_image(src, max_pixels=max_pixels)
            except ImageError as exc:
                msg = str(exc)
                reason = ("missing_file" if "no such file" in msg or "not a file" in msg
                          else "too_large" if "over the limit" in msg or "too large" in msg
                          else "bad_image")
                row_problems.append(RowProblem(idx, fld, reason, msg))
                continue
            digest = hashlib.sha1(img.tobytes() + repr(img.size).encode()).hexdigest()[:20]
            name = f"{digest}.png"
            if not (image_dir / name).exists():
                img.save(image_dir / name, format="PNG")
            rel = (prefix / "images" / name).as_posix()
            converted[src] = rel
            images.append(rel)
        if row_problems:
            problems.extend(row_problems)
            continue
        seen_ids[pair_id] = idx
        if preferred == 0:
            ties += 1
            continue
        category = rec.get("category")
        rows.append({"pair_id": pair_id, "prompt": prompt.strip(), "image_1": images[0],
                     "image_2": images[1], "preferred": preferred,
                     "category": "unknown" if is_blank(category) else str(category).strip()})

    if problems and on_error == "fail":
        raise ManifestError(path, problems)
    for p in problems:
        log.warning("%s: skipping %s", path, p)
    if problems:
        bad_rows = len({p.row for p in problems})
        log.warning("%s: skipped %d of %d rows: %s", path, bad_rows, len(frame),
                    dict(Counter(p.reason for p in problems)))
    if ties:
        log.info("%s: %d tied row(s) (preferred 0/tie) left out of the pairs", path, ties)
    pairs = pd.DataFrame(rows, columns=["pair_id", "prompt", "image_1", "image_2", "preferred",
                                        "category"])
    if pairs.empty:
        raise ManifestError(path, problems or [RowProblem(0, "*", "empty", "no rows")])
    write_table(out_dir / "pairs.csv", pairs)
    return ImportResult(pairs=pairs, problems=problems, ties=ties)
