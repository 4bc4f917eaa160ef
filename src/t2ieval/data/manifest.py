"""The manifest format: reading and writing it, checking its rows, importing it for the pipeline.

A manifest has columns ``prompt``, ``image_1``, ``image_2``, ``preferred`` (1 or 2; ``0`` or
``tie`` for a pair the raters found equal) and optionally ``category`` and ``pair_id``. Image
paths are relative to the manifest's folder (or to another image root) or absolute.

:func:`check_rows` is the one check of a manifest's rows, used by ``prepare``
(:func:`import_manifest`) and by ``t2ieval score-batch`` on the Spark driver: a prompt, two image
paths, a ``preferred`` of 1, 2 or 0/tie, and a ``pair_id`` that no earlier row used (an id
belongs to the first row that names it). Each problem names the row (1-based data row, as a
spreadsheet shows it after the header), the field and what was wrong. :func:`import_manifest`
also decodes every image and converts the valid ones once to RGB PNG; tied pairs are checked like
any other, then left out of the pairs and counted (``ImportResult.ties``): a pairwise accuracy has
nothing to score on them, as in the public datasets' own protocols. :func:`write_manifest` writes
the format (``t2ieval import``), naming images as :func:`check_rows` resolves them back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from tqdm import tqdm

from t2ieval.images import ImageError, load_image
from t2ieval.io import write_table

log = logging.getLogger(__name__)

REQUIRED = ("prompt", "image_1", "image_2", "preferred")
#: what :func:`write_manifest` writes, in this order
COLUMNS = ("pair_id", "prompt", "image_1", "image_2", "preferred", "category")
WRITE_SUFFIXES = (".csv", ".jsonl")


class ManifestError(ValueError):
    """The manifest cannot be used; ``problems`` lists every bad row."""

    def __init__(self, manifest: str | Path, problems: list["RowProblem"], advice: str = ""):
        self.manifest = manifest
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        advice = f"; {advice}" if advice else ""
        super().__init__(f"{manifest}: {len(problems)} problem(s) in the manifest{advice}\n"
                         f"{shown}{more}")


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
        return reason_counts(self.problems)


def reason_counts(problems: list[RowProblem]) -> dict[str, int]:
    """How many rows were set aside for each reason (a row with several problems counts once
    per reason), sorted by reason."""
    rows_by_reason: dict[str, set[int]] = {}
    for p in problems:
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


def check_manifest_path(out: str | Path) -> Path:
    """``out`` as a Path if :func:`write_manifest` can write it (``.csv`` or ``.jsonl``), else
    ``ValueError``."""
    out = Path(out)
    if out.suffix.lower() not in WRITE_SUFFIXES:
        raise ValueError(f"{out}: the manifest must end in {' or '.join(WRITE_SUFFIXES)}")
    return out


def manifest_path(image: str | Path, manifest_dir: str | Path) -> str:
    """How a manifest in ``manifest_dir`` names ``image``: relative to that folder when inside it,
    else absolute (POSIX form, symlinks resolved): what :func:`check_rows` resolves back."""
    absolute = Path(image).resolve()
    try:
        return absolute.relative_to(Path(manifest_dir).resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()


def write_manifest(rows: Sequence[Mapping[str, Any]], out: str | Path) -> Path:
    """Write ``rows`` (:data:`COLUMNS`; images as paths) as a CSV or JSONL manifest, by suffix.

    Image paths are written by :func:`manifest_path`. The file appears atomically (written
    beside it, then renamed), so a failed write never leaves half a manifest.
    """
    out = check_manifest_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = [{c: (manifest_path(row[c], out.parent) if c in ("image_1", "image_2") else row[c])
                for c in COLUMNS} for row in rows]
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix.lower() == ".csv":
        pd.DataFrame(records, columns=list(COLUMNS)).to_csv(tmp, index=False)
    else:
        with tmp.open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    return out


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
    """An absent cell: ``None`` or NaN (pandas' empty cell in a non-text column)."""
    return value is None or (isinstance(value, float) and pd.isna(value))


def is_blank(value: object) -> bool:
    """A missing cell (:func:`is_missing`) or a string of whitespace only."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


@dataclass(frozen=True)
class ManifestRow:
    """One data row as :func:`check_rows` read it; a field that failed its check is ``None``."""

    row: int                        # 1-based data row
    pair_id: str                    # the manifest's, else ``row000001`` style
    prompt: str | None              # stripped
    image_1: str | None             # absolute and normalised
    image_2: str | None
    preferred: int | None           # 1, 2 or 0 (tie); None when absent, empty or bad
    extra: dict[str, object]        # every other column, as read
    problems: tuple[RowProblem, ...]


CHECKED = ("pair_id", "prompt", "image_1", "image_2", "preferred")


def check_rows(path: str | Path, frame: pd.DataFrame, image_root: str | Path | None = None,
               *, require_preferred: bool = True) -> list[ManifestRow]:
    """Check every row of a manifest read by :func:`read_manifest`; no file is opened.

    Relative image paths are joined to ``image_root`` (default: the manifest's folder). With
    ``require_preferred=False`` a ``preferred`` column is optional and an empty cell is allowed
    (``preferred`` None). Returns every row, each with its problems.
    """
    base = os.path.abspath(Path(path).parent if image_root is None else image_root)
    seen: dict[str, int] = {}
    rows = []
    for idx, rec in enumerate(frame.to_dict("records"), start=1):
        problems: list[RowProblem] = []
        prompt = rec.get("prompt")
        if is_blank(prompt) or not isinstance(prompt, str):
            problems.append(RowProblem(idx, "prompt", "empty_prompt", "prompt is empty"))
            prompt = None
        raw = rec.get("preferred")
        preferred = None
        if require_preferred or not is_blank(raw):
            preferred = parse_preferred(raw, allow_tie=True)
            if preferred is None:
                allowed = "1, 2 or 0/tie" + ("" if require_preferred else " (or empty)")
                problems.append(RowProblem(idx, "preferred", "bad_preferred",
                                           f"must be {allowed}, got {raw!r}"))
        pair_id = rec.get("pair_id")
        pair_id = f"row{idx:06d}" if is_blank(pair_id) else str(pair_id).strip()
        if pair_id in seen:
            problems.append(RowProblem(idx, "pair_id", "duplicate_pair_id",
                                       f"{pair_id!r} already used by row {seen[pair_id]}"))
        seen.setdefault(pair_id, idx)
        images: dict[str, str | None] = {}
        for fld in ("image_1", "image_2"):
            value = rec.get(fld)
            if is_blank(value) or not isinstance(value, str):
                problems.append(RowProblem(idx, fld, "missing_path", "image path is empty"))
                images[fld] = None
            else:
                images[fld] = os.path.normpath(os.path.join(base, value.strip()))
        rows.append(ManifestRow(
            row=idx, pair_id=pair_id, prompt=prompt if prompt is None else prompt.strip(),
            image_1=images["image_1"], image_2=images["image_2"], preferred=preferred,
            extra={k: v for k, v in rec.items() if k not in CHECKED}, problems=tuple(problems)))
    return rows


def image_problem(row: int, fld: str, exc: ImageError) -> RowProblem:
    """The :class:`RowProblem` of an image that failed to load, its reason classified as
    ``missing_file``, ``too_large`` or ``bad_image``."""
    msg = str(exc)
    reason = ("missing_file" if "no such file" in msg or "not a file" in msg
              else "too_large" if "over the limit" in msg or "too large" in msg
              else "bad_image")
    return RowProblem(row, fld, reason, msg)


def import_manifest(path: str | Path, out_dir: str | Path, max_pixels: int,
                    on_error: str = "fail", image_root: str | Path | None = None) -> ImportResult:
    """Validate ``path`` and write its valid pairs to ``out_dir`` (``pairs.csv`` + ``images/``).

    Every row is checked (:func:`check_rows`) and its images fully decoded. With
    ``on_error="fail"`` any problem raises :class:`ManifestError` listing all of them; with
    ``"skip"`` bad rows are dropped, each reason is logged and returned in the result.
    Images are stored once per distinct content as ``images/<sha1>.png``; ``pairs.csv`` names
    them as ``<image_root>/images/<sha1>.png`` (``image_root`` defaults to ``out_dir``).
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"data.on_error must be 'fail' or 'skip', got {on_error!r}")
    path = Path(path)
    frame = read_manifest(path)
    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    prefix = Path(image_root) if image_root is not None else out_dir

    problems: list[RowProblem] = []
    rows = []
    converted: dict[str, str] = {}
    ties = 0
    for checked in tqdm(check_rows(path, frame), desc="validating manifest", unit="row",
                        mininterval=1.0):
        row_problems = list(checked.problems)
        images = []
        for fld, src in (("image_1", checked.image_1), ("image_2", checked.image_2)):
            if src is None:
                continue
            if src not in converted:
                try:
                    img = load_image(src, max_pixels=max_pixels)
                except ImageError as exc:
                    row_problems.append(image_problem(checked.row, fld, exc))
                    continue
                digest = hashlib.sha1(img.tobytes() + repr(img.size).encode()).hexdigest()[:20]
                name = f"{digest}.png"
                if not (image_dir / name).exists():
                    img.save(image_dir / name, format="PNG")
                converted[src] = (prefix / "images" / name).as_posix()
            images.append(converted[src])
        if row_problems:
            problems.extend(row_problems)
            continue
        if checked.preferred == 0:
            ties += 1
            continue
        category = checked.extra.get("category")
        rows.append({"pair_id": checked.pair_id, "prompt": checked.prompt, "image_1": images[0],
                     "image_2": images[1], "preferred": checked.preferred,
                     "category": "unknown" if is_blank(category) else str(category).strip()})

    if problems and on_error == "fail":
        raise ManifestError(path, problems, advice="fix them or set data.on_error: skip")
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
