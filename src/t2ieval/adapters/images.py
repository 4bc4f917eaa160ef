"""The images of an import: finding the files a source names, writing the ones it holds as bytes.

Images that the source holds as files are referenced where they are (:func:`resolve_image`);
images held as bytes (Pick-a-Pic, Hugging Face copies) or inside zip archives (ImageRewardDB's
``images/<split>/<split>_<k>.zip``, found by :func:`locate_image` through an
:class:`ArchiveIndex`) are written by :class:`ImageWriter` into ``<manifest stem>_images/``
beside the manifest. Either way, every image of a kept pair is fully decoded here
(:func:`materialise`), so a missing, truncated or undecodable image fails the import (or is
skipped and counted), naming the file, row and field, rather than ``prepare`` later.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image
from tqdm import tqdm

from t2ieval.adapters.cells import as_list, safe_name
from t2ieval.adapters.errors import AdapterError, RowError
from t2ieval.adapters.pairs import Candidate, ImageRef, Report
from t2ieval.adapters.tables import RowTable
from t2ieval.images import DEFAULT_MAX_PIXELS, ImageError, decode_image_bytes, load_image, to_rgb

_FORMAT_EXT = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "GIF": ".gif",
    "TIFF": ".tif",
}


def resolve_image(
    value: Any, roots: Sequence[Path], where: str, field: str, fallback_dirs: Sequence[Path] = ()
) -> Path:
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


class ArchiveIndex:
    """Zip archives of a source, each opened once and indexed by its members' file names.

    ImageRewardDB ships every ``images/<split>/<split>_<k>/`` folder as ``<split>_<k>.zip``; its
    own loader finds an image in the extracted archive by file name alone
    (``os.path.join(data_dir, image_path.split("/")[-1])``), which :meth:`member` does inside
    the archive, whatever folder the archive stores it under.
    """

    def __init__(self) -> None:
        self._members: dict[Path, dict[str, str]] = {}
        self._problems: dict[Path, str] = {}

    def member(self, archive: Path, name: str) -> str | None:
        """The member of ``archive`` whose file name is ``name`` (None if there is none);
        raises ``ValueError`` naming the archive when it is not a readable zip file."""
        archive = Path(archive)
        if archive not in self._members and archive not in self._problems:
            try:
                with zipfile.ZipFile(archive) as zf:
                    index: dict[str, str] = {}
                    for info in zf.infolist():
                        if not info.is_dir():
                            index.setdefault(PurePosixPath(info.filename).name, info.filename)
                self._members[archive] = index
            except (zipfile.BadZipFile, OSError) as exc:
                self._problems[archive] = f"{archive}: not a readable zip archive ({exc})"
        if archive in self._problems:
            raise ValueError(self._problems[archive])
        return self._members[archive].get(name)

    def json_members(self, archive: Path) -> list[str]:
        """The JSON files an archive holds (ImageRewardDB's per-folder ``<split>_<k>.json``)."""
        self.member(archive, "")
        return sorted(
            m
            for m in self._members[Path(archive)].values()
            if m.lower().endswith(".json") and not m.startswith("__MACOSX/")
        )


def locate_image(
    value: Any,
    roots: Sequence[Path],
    where: str,
    field: str,
    fallback_dirs: Sequence[Path] = (),
    archives: ArchiveIndex | None = None,
    fallback_archives: Sequence[Path] = (),
) -> ImageRef:
    """An :class:`ImageRef` for the image a metadata path names: a file (as
    :func:`resolve_image` finds it) or, failing that, a member of a zip archive.

    The archive of ``images/train/train_1/x.webp`` is ``images/train/train_1.zip`` under each of
    ``roots``; then each of ``fallback_archives`` (the archives the metadata came from) is
    searched. Inside an archive the file name alone is matched, as the owners' loader does.
    Raises a ``RowError`` naming every file and archive looked at.
    """
    try:
        return ImageRef(
            path=resolve_image(value, roots, where, field, fallback_dirs), column=field, where=where
        )
    except RowError as exc:
        if archives is None or not isinstance(value, str) or not value.strip():
            raise
        not_found = exc
    rel = PurePosixPath(value.strip().replace("\\", "/"))
    candidates: list[Path] = []
    if str(rel.parent) not in ("", ".") and not rel.is_absolute():
        candidates += [root / Path(*rel.parent.parts).with_suffix(".zip") for root in roots]
    candidates += list(fallback_archives)
    looked: list[str] = []
    for archive in dict.fromkeys(candidates):
        if not archive.is_file():
            looked.append(f"{archive} (no such archive)")
            continue
        try:
            member = archives.member(archive, rel.name)
        except ValueError as problem:
            raise RowError(where, field, str(problem)) from None
        if member is not None:
            return ImageRef(
                archive=archive,
                member=member,
                column=field,
                where=where,
                stem=safe_name(f"{archive.stem}_{PurePosixPath(member).stem}"),
            )
        looked.append(f"{archive} (no member named {rel.name!r})")
    raise RowError(
        where,
        field,
        f"{not_found.message}; nor in a zip archive: {', '.join(looked) or 'none to look in'}",
    )


def _payload_bytes(
    payload: Any, where: str, field: str
) -> tuple[bytes | None, Path | None, Image.Image | None]:
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

    def write(
        self, payload: Any, stem: str, where: str, field: str, what: str = "image data"
    ) -> Path:
        """Validate and store one image; returns its path. Raises ``RowError`` for bad data
        (``what`` names the bytes in the message, e.g. an archive member)."""
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
                decoded = decode_image_bytes(data, what=what, max_pixels=self.max_pixels)
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


def materialise(
    candidates: Sequence[Candidate], table: RowTable, writer: ImageWriter, report: Report
) -> dict[ImageRef, Path | None]:
    """Paths of every image the kept pairs use: files are decoded, archive members and deferred
    images are read, decoded and written now.

    Images that cannot be read or decoded are reported (``bad_images``) and map to ``None``.
    """
    refs = list(dict.fromkeys(r for c in candidates for r in (c.better, c.worse)))
    out: dict[ImageRef, Path | None] = {}
    deferred: dict[int, list[ImageRef]] = defaultdict(list)
    zipped: dict[Path, list[ImageRef]] = defaultdict(list)
    for ref in refs:
        if ref.archive is not None:
            zipped[ref.archive].append(ref)
            continue
        if ref.deferred:
            deferred[ref.row].append(ref)  # type: ignore[index]
            continue
        try:
            out[ref] = writer.check_file(
                ref.path,
                ref.where,  # type: ignore[arg-type]
                ref.column or "image",
            )
        except RowError as exc:
            report.problem(exc, "bad_images")
            out[ref] = None
    for archive, members in zipped.items():
        out.update(_write_members(archive, members, writer, report))
    if not deferred:
        return out
    columns = sorted({r.column for rs in deferred.values() for r in rs})  # type: ignore[misc]
    rows = tqdm(
        table.rows_at(deferred, columns),
        total=len(deferred),
        desc="writing images",
        unit="row",
        mininterval=1.0,
        leave=False,
    )
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
        raise AdapterError(
            f"{table.label}: rows {sorted(deferred)[:5]} vanished while reading images"
        )
    return out


def _write_members(
    archive: Path, refs: Sequence[ImageRef], writer: ImageWriter, report: Report
) -> dict[ImageRef, Path | None]:
    """Read, decode and write the members of one zip archive (opened once)."""
    out: dict[ImageRef, Path | None] = {}
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        for ref in refs:
            report.problem(
                RowError(
                    ref.where,
                    ref.column or "image",
                    f"{archive}: not a readable zip archive ({exc})",
                ),
                "bad_images",
            )
            out[ref] = None
        return out
    with zf:
        for ref in tqdm(
            refs, desc=f"reading {archive.name}", unit="image", mininterval=1.0, leave=False
        ):
            what = f"{archive}:{ref.member}"
            try:
                try:  # a damaged member fails its CRC check or its inflation here
                    data = zf.read(ref.member)  # type: ignore[arg-type]
                except (zipfile.BadZipFile, zlib.error, OSError, KeyError, EOFError) as exc:
                    raise RowError(
                        ref.where,
                        ref.column or "image",
                        f"{what}: cannot be read from the archive ({exc})",
                    ) from exc
                out[ref] = writer.write(data, ref.stem, ref.where, ref.column or "image", what=what)
            except RowError as exc:
                report.problem(exc, "bad_images")
                out[ref] = None
    return out
