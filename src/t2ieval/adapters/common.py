"""Shared machinery of the dataset adapters: groups to pairs, ties, caps, images and the manifest.

Every adapter turns its source into :class:`Group` objects: one prompt, the images generated for
it, and one or more rankings of those images (one per annotator; lower is better). This module
turns groups into the pairs of our manifest format:

* every unordered pair of images of a group is a candidate; the annotators vote (each one who
  ranks one image strictly better than the other gives it one vote) and the majority decides;
  a pair with no majority is a tie, dropped and counted (``ties_dropped``);
* ``max_pairs_per_prompt`` keeps at most N pairs per prompt, chosen with a seeded RNG;
* which image goes into slot 1 is decided per pair by a seeded RNG, so ``preferred`` is 1 or 2;
* images stored as bytes in the source are written to ``<manifest stem>_images/`` beside the
  manifest; all paths are written relative to the manifest's folder when they are inside it,
  absolute otherwise.

The manifest is CSV or JSONL (chosen by the output suffix) with ``pair_id, prompt, image_1,
image_2, preferred, category``: what :mod:`t2ieval.data.manifest` imports.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

import pandas as pd
from PIL import Image
from tqdm import tqdm

from t2ieval.adapters.errors import AdapterError, RowError
from t2ieval.adapters.tables import RowTable
from t2ieval.images import DEFAULT_MAX_PIXELS, ImageError, decode_image_bytes, to_rgb

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("pair_id", "prompt", "image_1", "image_2", "preferred", "category")
MANIFEST_SUFFIXES = (".csv", ".jsonl")
ON_ERROR = ("fail", "skip")
KNOWN_SPLITS = ("train", "validation", "validation_unique", "valid", "val", "dev", "test",
                "test_unique")
# Counters reported by every import, in this order (all present, zero when nothing happened).
SUMMARY_COUNTERS = (
    "rows", "groups", "images", "candidate_pairs", "ties_dropped", "unlabelled_dropped",
    "identical_dropped", "rows_skipped", "missing_images", "bad_images", "pairs_missing_image",
    "pairs_capped", "duplicate_pair_ids", "pairs_written", "preferred_1", "preferred_2",
    "images_written",
)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_FORMAT_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif",
               "TIFF": ".tif"}


@dataclass(frozen=True)
class ImageRef:
    """Where one image comes from: an existing file (``path``) or a cell of the table to write.

    A deferred image lives in row ``row``, column ``column`` (item ``item`` of a list-valued
    column) and is written as ``<stem>.<ext>`` into the images folder when a kept pair needs it.
    """

    path: Path | None = None
    row: int | None = None
    column: str | None = None
    item: int | None = None
    stem: str = ""

    @property
    def deferred(self) -> bool:
        return self.path is None


@dataclass
class Group:
    """A prompt with several images and their rankings (one list per annotator, lower = better).

    ``images[k]`` is ``None`` when that image is missing and was skipped (``--on-error skip``);
    a ranking value of ``None``/NaN means that annotator did not rank that image.
    """

    group_id: str
    prompt: str
    category: str
    images: list[ImageRef | None]
    rankings: list[list[float | None]]
    where: str


@dataclass(frozen=True)
class Candidate:
    """A non-tied pair: ``better`` was preferred over ``worse`` by the majority."""

    pair_id: str
    prompt: str
    category: str
    better: ImageRef
    worse: ImageRef
    where: str


class Adapter(Protocol):
    """A source adapter: a table of rows and the groups read from it."""

    source: str
    table: RowTable

    def groups(self, report: "Report") -> Iterator[Group]:
        """Yield the source's groups, counting rows and reporting bad ones to ``report``."""


class Report:
    """Counters of an import and the ``--on-error`` policy for bad rows and missing images."""

    MAX_WARNINGS = 20

    def __init__(self, on_error: str = "fail") -> None:
        if on_error not in ON_ERROR:
            raise AdapterError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self.counts: Counter[str] = Counter()
        self._warned = 0

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def problem(self, exc: RowError, counter: str) -> None:
        """Raise ``exc`` (``fail``) or log it and count it under ``counter`` (``skip``)."""
        if self.on_error == "fail":
            raise exc
        self.counts[counter] += 1
        self._warned += 1
        if self._warned <= self.MAX_WARNINGS:
            log.warning("skipped: %s", exc)
        elif self._warned == self.MAX_WARNINGS + 1:
            log.warning("more problems skipped; see the summary counters")
        else:
            log.debug("skipped: %s", exc)

    def summary(self) -> dict[str, int]:
        return {key: int(self.counts.get(key, 0)) for key in SUMMARY_COUNTERS}


# --------------------------------------------------------------------------- small helpers

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


def split_of(path: Path, root: Path | None = None) -> str | None:
    """The split a data file belongs to, from its folders or name (``train-0001.parquet``)."""
    rel = path.relative_to(root) if root is not None else path
    for part in rel.parts[:-1]:
        if part in KNOWN_SPLITS:
            return part
    for token in re.split(r"[-.]", path.name):
        if token in KNOWN_SPLITS:
            return token
    return None


def select_split(files: Sequence[Path], split: str | None, root: Path, what: str) -> list[Path]:
    """Keep the files of ``split``; without a split, refuse a folder that mixes several splits."""
    files = sorted(files)
    if not files:
        raise AdapterError(f"{root}: no {what} found")
    found = {f: split_of(f, root) for f in files}
    splits = sorted({s for s in found.values() if s is not None})
    if split is not None:
        chosen = [f for f in files if found[f] == split]
        if not chosen:
            raise AdapterError(f"{root}: no {what} of split {split!r}; splits found: {splits or 'none'}")
        return chosen
    if len(splits) > 1:
        raise AdapterError(f"{root}: {what} of several splits {splits}; choose one with --split")
    return files


def resolve_image(value: Any, roots: Sequence[Path], where: str, field: str,
                  fallback_dirs: Sequence[Path] = ()) -> Path:
    """Find the file an image path of the metadata points to, or raise a ``RowError``.

    A relative path is tried under each of ``roots`` in turn, then its file name alone in each of
    ``fallback_dirs`` (a per-folder JSON beside its images).
    """
    if not isinstance(value, str) or not value.strip():
        raise RowError(where, field, f"image path is empty or not text ({value!r})")
    rel = Path(value.strip())
    tried: list[Path] = []
    if rel.is_absolute():
        tried.append(rel)
    else:
        tried.extend(root / rel for root in roots)
        tried.extend(folder / rel.name for folder in fallback_dirs)
    for candidate in tried:
        if candidate.is_file():
            return candidate
    shown = ", ".join(str(p) for p in dict.fromkeys(tried))
    raise RowError(where, field, f"image file not found: {value!r} (looked for {shown})")


# --------------------------------------------------------------------------- groups -> pairs

def verdict(rankings: Sequence[Sequence[float | None]], i: int, j: int) -> int:
    """+1 if the majority of annotators ranks image ``i`` better than ``j``, -1 if worse, 0 if tied.

    An annotator who gives both the same rank, or leaves one unranked, does not vote.
    """
    votes = 0
    for ranking in rankings:
        a, b = ranking[i], ranking[j]
        if a is None or b is None or math.isnan(a) or math.isnan(b):
            continue
        if a < b:
            votes += 1
        elif b < a:
            votes -= 1
    return (votes > 0) - (votes < 0)


def group_candidates(group: Group, source: str, report: Report) -> Iterator[Candidate]:
    """All non-tied pairs of ``group``; ties and pairs with a missing image are counted."""
    n = len(group.images)
    for ranking in group.rankings:
        if len(ranking) != n:
            raise AdapterError(f"{group.where}: a ranking has {len(ranking)} entries for {n} images")
    for i in range(n):
        for j in range(i + 1, n):
            report.count("candidate_pairs")
            v = verdict(group.rankings, i, j)
            if v == 0:
                report.count("ties_dropped")
                continue
            if group.images[i] is None or group.images[j] is None:
                report.count("pairs_missing_image")
                continue
            better, worse = (i, j) if v > 0 else (j, i)
            yield Candidate(
                pair_id=f"{source}-{group.group_id}-{i}-{j}", prompt=group.prompt,
                category=group.category, better=group.images[better],  # type: ignore[arg-type]
                worse=group.images[worse], where=group.where,  # type: ignore[arg-type]
            )


def cap_per_prompt(candidates: list[Candidate], max_pairs: int | None, seed: int,
                   report: Report) -> list[Candidate]:
    """Keep at most ``max_pairs`` pairs per prompt (a seeded choice), in their original order."""
    if max_pairs is None:
        return candidates
    if max_pairs < 1:
        raise AdapterError(f"max_pairs_per_prompt must be at least 1, got {max_pairs}")
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for k, cand in enumerate(candidates):
        by_prompt[cand.prompt].append(k)
    keep: set[int] = set()
    for prompt, members in by_prompt.items():
        if len(members) <= max_pairs:
            keep.update(members)
        else:
            rng = random.Random(f"{seed}:cap:{prompt}")
            keep.update(rng.sample(members, max_pairs))
    report.count("pairs_capped", len(candidates) - len(keep))
    return [c for k, c in enumerate(candidates) if k in keep]


def orient(cand: Candidate, seed: int) -> tuple[ImageRef, ImageRef, int]:
    """``(image_1, image_2, preferred)``: a seeded coin per pair id puts the better one in slot 1 or 2."""
    if random.Random(f"{seed}:slot:{cand.pair_id}").random() < 0.5:
        return cand.better, cand.worse, 1
    return cand.worse, cand.better, 2


# --------------------------------------------------------------------------- images

def _payload_bytes(payload: Any, where: str, field: str) -> tuple[bytes | None, Path | None,
                                                                  Image.Image | None]:
    """Split an image cell into raw bytes, a file path or a decoded PIL image."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload), None, None
    if isinstance(payload, Image.Image):
        return None, None, payload
    if isinstance(payload, dict):  # datasets' Image(decode=False): {"bytes": ..., "path": ...}
        if payload.get("bytes"):
            return bytes(payload["bytes"]), None, None
        if payload.get("path"):
            return None, Path(payload["path"]), None
    raise RowError(where, field, f"no image data (got {type(payload).__name__})")


class ImageWriter:
    """Writes images held as bytes (or decoded) in the source into one folder, once per stem."""

    def __init__(self, folder: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.folder = Path(folder)
        self.max_pixels = max_pixels
        self.written = 0
        self._done: dict[str, Path] = {}

    def write(self, payload: Any, stem: str, where: str, field: str) -> Path:
        """Validate and store one image; returns its path. Raises ``RowError`` for bad data."""
        if stem in self._done:
            return self._done[stem]
        data, path, img = _payload_bytes(payload, where, field)
        if path is not None:
            if not path.is_file():
                raise RowError(where, field, f"image file not found: {path}")
            self._done[stem] = path
            return path
        self.folder.mkdir(parents=True, exist_ok=True)
        if img is not None:
            target = self.folder / f"{stem}.png"
            to_rgb(img).save(target, format="PNG")
        else:
            assert data is not None
            try:  # full decode: truncated or non-image bytes fail here, naming the row
                decoded = decode_image_bytes(data, what="image data", max_pixels=self.max_pixels)
            except ImageError as exc:
                raise RowError(where, field, str(exc)) from exc
            fmt = Image.open(io.BytesIO(data)).format or ""
            if fmt in _FORMAT_EXT:  # keep the source's bytes as they are
                target = self.folder / f"{stem}{_FORMAT_EXT[fmt]}"
                target.write_bytes(data)
            else:  # an unusual format: store a PNG that every loader reads
                target = self.folder / f"{stem}.png"
                decoded.save(target, format="PNG")
        self.written += 1
        self._done[stem] = target
        return target


def materialise(candidates: Sequence[Candidate], table: RowTable, writer: ImageWriter,
                report: Report) -> dict[ImageRef, Path | None]:
    """Paths of every image the kept pairs use; deferred images are fetched and written now.

    Images that cannot be decoded are reported (``bad_images``) and map to ``None``.
    """
    refs = list(dict.fromkeys(r for c in candidates for r in (c.better, c.worse)))
    out: dict[ImageRef, Path | None] = {r: r.path for r in refs if not r.deferred}
    deferred: dict[int, list[ImageRef]] = defaultdict(list)
    for ref in refs:
        if ref.deferred:
            deferred[ref.row].append(ref)  # type: ignore[index]
    if not deferred:
        return out
    columns = sorted({r.column for rs in deferred.values() for r in rs})  # type: ignore[misc]
    rows = tqdm(table.rows_at(deferred, columns), total=len(deferred), desc="writing images",
                unit="row", mininterval=1.0, leave=False)
    for index, record in rows:
        where = table.where(index)
        for ref in deferred.pop(index):
            try:
                payload = record.get(ref.column)  # type: ignore[arg-type]
                if ref.item is not None:
                    items = as_list(payload, where, ref.column)  # type: ignore[arg-type]
                    if ref.item >= len(items):
                        raise RowError(where, ref.column, f"has no item {ref.item}")  # type: ignore[arg-type]
                    payload = items[ref.item]
                out[ref] = writer.write(payload, ref.stem, where, ref.column)  # type: ignore[arg-type]
            except RowError as exc:
                report.problem(exc, "bad_images")
                out[ref] = None
    if deferred:  # pragma: no cover - a table that lost rows between the two passes
        raise AdapterError(f"{table.label}: rows {sorted(deferred)[:5]} vanished while reading images")
    return out


# --------------------------------------------------------------------------- manifest

def check_manifest_path(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in MANIFEST_SUFFIXES:
        raise AdapterError(f"{out}: the manifest must end in {' or '.join(MANIFEST_SUFFIXES)}")
    return out


def manifest_path_of(image: Path, manifest_dir: Path) -> str:
    """``image`` relative to the manifest's folder when inside it, else absolute (POSIX form)."""
    absolute = image.resolve()
    try:
        return absolute.relative_to(manifest_dir.resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()


def write_manifest(rows: Sequence[dict[str, Any]], out: Path) -> Path:
    """Write the manifest atomically as CSV or JSONL (by suffix)."""
    out = check_manifest_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix.lower() == ".csv":
        pd.DataFrame(list(rows), columns=list(MANIFEST_COLUMNS)).to_csv(tmp, index=False)
    else:
        with tmp.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps({c: row[c] for c in MANIFEST_COLUMNS}, ensure_ascii=False))
                fh.write("\n")
    os.replace(tmp, out)
    return out


def run_import(adapter: Adapter, out: str | Path, *, max_pairs_per_prompt: int | None = None,
               seed: int = 0, on_error: str = "fail",
               max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    """Convert ``adapter``'s source into a manifest at ``out``; returns the summary counters."""
    out = check_manifest_path(out)
    report = Report(on_error)
    candidates: list[Candidate] = []
    seen: dict[str, int] = {}
    for group in adapter.groups(report):
        report.count("groups")
        report.count("images", len(group.images))
        for cand in group_candidates(group, adapter.source, report):
            if cand.pair_id in seen:  # the source repeats a group id: keep both, distinct ids
                seen[cand.pair_id] += 1
                report.count("duplicate_pair_ids")
                cand = Candidate(f"{cand.pair_id}-dup{seen[cand.pair_id]}", cand.prompt,
                                 cand.category, cand.better, cand.worse, cand.where)
            else:
                seen[cand.pair_id] = 1
            candidates.append(cand)
    candidates = cap_per_prompt(candidates, max_pairs_per_prompt, seed, report)

    images_dir = out.parent / f"{out.stem}_images"
    writer = ImageWriter(images_dir, max_pixels=max_pixels)
    paths = materialise(candidates, adapter.table, writer, report)
    manifest_dir = out.parent
    rows = []
    for cand in candidates:
        first, second, preferred = orient(cand, seed)
        p1, p2 = paths[first], paths[second]
        if p1 is None or p2 is None:
            report.count("pairs_missing_image")
            continue
        rows.append({"pair_id": cand.pair_id, "prompt": cand.prompt,
                     "image_1": manifest_path_of(p1, manifest_dir),
                     "image_2": manifest_path_of(p2, manifest_dir),
                     "preferred": preferred, "category": cand.category})
        report.count(f"preferred_{preferred}")
    report.count("pairs_written", len(rows))
    report.count("images_written", writer.written)
    counters = report.summary()
    if not rows:
        raise AdapterError(f"{adapter.table.label}: no pairs left to write; counters: {counters}")
    write_manifest(rows, out)
    summary: dict[str, Any] = {"source": adapter.source, "input": adapter.table.label,
                               "manifest": str(out)}
    if writer.written:
        summary["images_dir"] = str(images_dir)
    summary.update(counters)
    log.info("%s: %d pairs from %d groups (%d ties, %d unlabelled dropped) -> %s",
             adapter.source, counters["pairs_written"], counters["groups"],
             counters["ties_dropped"], counters["unlabelled_dropped"], out)
    return summary


def iter_progress(rows: Iterable[Any], desc: str) -> Iterator[Any]:
    """A quiet-unless-slow progress bar over the rows of a source."""
    yield from tqdm(rows, desc=desc, unit="row", mininterval=1.0, leave=False)
