"""The images of an import: finding the files a source names, writing the ones it holds as bytes.

Images that the source holds as files are referenced where they are (:func:`resolve_image`);
images held as bytes (Pick-a-Pic, Hugging Face copies) are written by :class:`ImageWriter` into
``<manifest stem>_images/`` beside the manifest. Either way, every image of a kept pair is fully
decoded here (:func:`materialise`), so a missing, truncated or undecodable image fails the import
(or is skipped and counted), naming the file, row and field, rather than ``prepare`` later.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from PIL import Image
from tqdm import tqdm

from t2ieval.adapters.cells import as_list
from t2ieval.adapters.errors import AdapterError, RowError
from t2ieval.adapters.pairs import Candidate, ImageRef, Report
from t2ieval.adapters.tables import RowTable
from t2ieval.images import (DEFAULT_MAX_PIXELS, ImageError, decode_image_bytes, load_image,
                            to_rgb)

_FORMAT_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif",
               "TIFF": ".tif"}


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
    """Writes images held as bytes (or decoded) in the source into one folder, once per stem,
    and checks that image files the manifest names where they are decode."""

    def __init__(self, folder: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.folder = Path(folder)
        self.max_pixels = max_pixels
        self.written = 0
        self._done: dict[str, Path] = {}
        self._checked: dict[Path, str | None] = {}  # file -> its problem (None: it decodes)

    def check_file(self, path: Path, where: str, field: str) -> Path:
        """``path`` once its image fully decodes within the pixel limit (each file is decoded
        once); raises ``RowError`` naming the row and field otherwise."""
        if path not in self._checked:
            try:
                load_image(path, self.max_pixels)
                self._checked[path] = None
            except ImageError as exc:
                self._checked[path] = str(exc)
        problem = self._checked[path]
        if problem is not None:
            raise RowError(where, field, problem)
        return path

    def write(self, payload: Any, stem: str, where: str, field: str) -> Path:
        """Validate and store one image; returns its path. Raises ``RowError`` for bad data."""
        if stem in self._done:
            return self._done[stem]
        data, path, img = _payload_bytes(payload, where, field)
        if path is not None:
            if not path.is_file():
                raise RowError(where, field, f"image file not found: {path}")
            self._done[stem] = self.check_file(path, where, field)
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
    """Paths of every image the kept pairs use: files are decoded, deferred images are fetched,
    decoded and written now.

    Images that cannot be decoded are reported (``bad_images``) and map to ``None``.
    """
    refs = list(dict.fromkeys(r for c in candidates for r in (c.better, c.worse)))
    out: dict[ImageRef, Path | None] = {}
    deferred: dict[int, list[ImageRef]] = defaultdict(list)
    for ref in refs:
        if ref.deferred:
            deferred[ref.row].append(ref)  # type: ignore[index]
            continue
        try:
            out[ref] = writer.check_file(ref.path, ref.where,  # type: ignore[arg-type]
                                         ref.column or "image")
        except RowError as exc:
            report.problem(exc, "bad_images")
            out[ref] = None
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
