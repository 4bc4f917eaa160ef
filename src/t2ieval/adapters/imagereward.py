"""ImageRewardDB -> pairs.

Two layouts are read:

* **per-image rows** (``THUDM/ImageRewardDB``: ``metadata-{train,validation,test}.parquet`` and the
  per-folder JSON files ``<split>_<k>.json``, which the hub ships inside
  ``images/<split>/<split>_<k>.zip`` with that folder's images): one row per image with
  ``image_path``, ``prompt_id``, ``prompt``, ``classification``, ``image_amount_in_total``,
  ``rank`` (1 = best, equal ranks are ties), ``overall_rating``, ``image_text_alignment_rating``,
  ``fidelity_rating``. Rows are grouped by ``prompt_id``; a Hugging Face copy of the dataset has
  the image in an ``image`` column instead.
* **grouped records** (the ImageReward repository's ``data/test.json``): ``id``, ``prompt``,
  ``generations`` (image paths) and ``ranking`` (1 = best, ties allowed).

Every non-tied pair of a group becomes a pair, the better (lower) rank preferred; when ``rank`` is
missing for a group, ``overall_rating`` (higher is better) decides instead. ``category`` is the
prompt's ``classification`` (e.g. ``People``, ``Outdoor Scenes``), else ``imagereward``.

Images are read where the metadata says (``images/train/train_1/<uuid>.webp`` under the dataset's
root), else by file name beside the JSON file that named them, else straight from the zip archive
the hub ships (``images/train/train_1.zip``, or the archive the JSON came from), matched by file
name as the owners' loader matches it in the extracted folder. Images read from an archive are
written to the manifest's images folder; nothing is extracted beside the dataset.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from t2ieval.adapters.cells import as_float, as_list, as_prompt, safe_name
from t2ieval.adapters.errors import AdapterError, RowError
from t2ieval.adapters.images import ArchiveIndex, locate_image
from t2ieval.adapters.pairs import Group, ImageRef, Report
from t2ieval.adapters.tables import (
    ParquetTable,
    RecordsTable,
    RowTable,
    iter_progress,
    read_json_records,
    select_split,
)
from t2ieval.data.manifest import is_blank

SOURCE = "imagereward"
ROW_COLUMNS = (
    "prompt_id",
    "prompt",
    "classification",
    "image_amount_in_total",
    "rank",
    "overall_rating",
    "image_path",
)
GROUP_COLUMNS = ("id", "prompt", "generations", "ranking", "classification")


class ImageRewardAdapter:
    """Groups ImageRewardDB rows by prompt; images: files under ``roots`` or an ``image`` column."""

    source = SOURCE

    def __init__(
        self,
        table: RowTable,
        roots: Sequence[Path] = (),
        fallback_dirs: Sequence[Path] = (),
        fallback_archives: Sequence[Path] = (),
        archives: ArchiveIndex | None = None,
    ) -> None:
        names = set(table.column_names)
        self.grouped = {"generations", "ranking"} <= names
        if not self.grouped:
            missing = [c for c in ("prompt_id", "prompt") if c not in names]
            if "rank" not in names and "overall_rating" not in names:
                missing.append("rank")
            if "image_path" not in names and "image" not in names:
                missing.append("image_path")
            if missing:
                raise AdapterError(
                    f"{table.label}: not ImageRewardDB data: missing column(s) {missing}; found "
                    f"{sorted(names)} (expected per-image rows with prompt_id, prompt, image_path, "
                    f"rank, or grouped records with prompt, generations, ranking)"
                )
        self.image_column = "image" in names
        self.table = table
        self.roots = list(roots)
        self.fallback_dirs = list(fallback_dirs)
        self.fallback_archives = list(fallback_archives)
        self.archives = archives if archives is not None else ArchiveIndex()

    def groups(self, report: Report) -> Iterator[Group]:
        if self.grouped:
            yield from self._grouped(report)
        else:
            yield from self._per_image(report)

    # ---- grouped records: {"id", "prompt", "generations": [...], "ranking": [...]}
    def _grouped(self, report: Report) -> Iterator[Group]:
        for index, rec in iter_progress(
            self.table.iter_rows(GROUP_COLUMNS), "reading ImageRewardDB"
        ):
            report.count("rows")
            where = self.table.where(index)
            try:
                prompt = as_prompt(rec.get("prompt"), where)
                paths = as_list(rec.get("generations"), where, "generations")
                ranking = [
                    as_float(v, where, "ranking")
                    for v in as_list(rec.get("ranking"), where, "ranking")
                ]
                if len(ranking) != len(paths):
                    raise RowError(
                        where, "ranking", f"{len(ranking)} ranks for {len(paths)} generations"
                    )
            except RowError as exc:
                report.problem(exc, "rows_skipped")
                continue
            gid = rec.get("id")
            group_id = safe_name(gid) if not is_blank(gid) else f"e{index}"
            images = [self._file(p, where, "generations", report) for p in paths]
            category = rec.get("classification")
            yield Group(
                group_id=group_id,
                prompt=prompt,
                category=SOURCE if is_blank(category) else str(category).strip(),
                images=images,
                rankings=[ranking],
                where=where,
            )

    # ---- per-image rows grouped by prompt_id
    def _per_image(self, report: Report) -> Iterator[Group]:
        members: dict[str, list[tuple[int, dict]]] = {}
        for index, rec in iter_progress(self.table.iter_rows(ROW_COLUMNS), "reading ImageRewardDB"):
            report.count("rows")
            pid = rec.get("prompt_id")
            if is_blank(pid):
                report.problem(
                    RowError(self.table.where(index), "prompt_id", "empty prompt_id"),
                    "rows_skipped",
                )
                continue
            members.setdefault(str(pid), []).append((index, rec))
        for pid, rows in members.items():
            group = self._group(pid, rows, report)
            if group is not None:
                yield group

    def _group(self, pid: str, rows: list[tuple[int, dict]], report: Report) -> Group | None:
        rows = sorted(rows, key=lambda r: (str(r[1].get("image_path") or ""), r[0]))
        first_index, first = rows[0]
        where = f"{self.table.where(first_index)} (prompt_id {pid!r})"
        try:
            prompt = as_prompt(first.get("prompt"), where)
            if all(not is_blank(rec.get("rank")) for _, rec in rows):
                ranking = [as_float(rec["rank"], self.table.where(i), "rank") for i, rec in rows]
            elif all(not is_blank(rec.get("overall_rating")) for _, rec in rows):
                ranking = [
                    -as_float(rec["overall_rating"], self.table.where(i), "overall_rating")
                    for i, rec in rows
                ]
            else:
                raise RowError(
                    where,
                    "rank",
                    "some images of this prompt have neither a rank nor an overall_rating",
                )
        except RowError as exc:
            report.problem(exc, "rows_skipped")
            return None
        group_id = safe_name(pid)
        images: list[ImageRef | None] = []
        for k, (index, rec) in enumerate(rows):
            if self.image_column:  # a HF copy: the image itself is in the row
                images.append(ImageRef(row=index, column="image", stem=f"{group_id}_{k}"))
            else:
                images.append(
                    self._file(rec.get("image_path"), self.table.where(index), "image_path", report)
                )
        category = first.get("classification")
        return Group(
            group_id=group_id,
            prompt=prompt,
            category=SOURCE if is_blank(category) else str(category).strip(),
            images=images,
            rankings=[ranking],
            where=where,
        )

    def _file(self, value: object, where: str, field: str, report: Report) -> ImageRef | None:
        try:
            return locate_image(
                value,
                self.roots,
                where,
                field,
                self.fallback_dirs,
                archives=self.archives,
                fallback_archives=self.fallback_archives,
            )
        except RowError as exc:
            report.problem(exc, "missing_images")
            return None


def _json_fallback_dirs(files: Sequence[Path]) -> list[Path]:
    return list(dict.fromkeys(f.parent for f in files if f.suffix.lower() != ".zip"))


def _zip_records(archives: Sequence[Path], index: ArchiveIndex) -> list[tuple[str, list[dict]]]:
    """The per-folder JSON files held inside ImageRewardDB's zip archives, as table chunks."""
    import json
    import zipfile

    chunks = []
    for archive in archives:
        try:
            members = index.json_members(archive)
        except ValueError as exc:
            raise AdapterError(str(exc)) from None
        if not members:
            raise AdapterError(
                f"{archive}: no JSON file inside; ImageRewardDB's archives hold "
                f"<split>_<k>.json beside the images"
            )
        with zipfile.ZipFile(archive) as zf:
            for member in members:
                label = f"{archive}:{member}"
                try:
                    records = json.loads(zf.read(member).decode("utf-8"))
                except (ValueError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
                    raise AdapterError(f"{label}: not valid JSON ({exc})") from exc
                if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                    raise AdapterError(f"{label}: expected a JSON array of objects")
                chunks.append((label, records))
    return chunks


def open_files(
    location: Path, split: str | None, images_root: Path | None = None
) -> ImageRewardAdapter:
    """An adapter over metadata parquet / JSON files, or a folder holding them."""
    location = Path(location)
    if location.is_file():
        files = [location]
        root = location.parent
    elif location.is_dir():
        root = location
        metadata = sorted(location.glob("metadata-*.parquet"))
        if metadata:
            files = select_split(metadata, split, location, "metadata-*.parquet files")
        else:
            found = [p for p in location.rglob("*.json") if not p.name.startswith(".")]
            found += list(location.rglob("*.jsonl"))
            if not found:  # as on the hub: the JSON files are inside images/<split>/*.zip
                found = [p for p in location.rglob("*.zip") if not p.name.startswith(".")]
            files = select_split(
                found,
                split,
                location,
                "ImageRewardDB metadata (metadata-*.parquet, *.json, or "
                "images/<split>/<split>_<k>.zip)",
            )
    else:
        raise AdapterError(f"{location}: no such file or folder")
    archives = ArchiveIndex()
    suffixes = {f.suffix.lower() for f in files}
    if suffixes <= {".parquet"}:
        table: RowTable = ParquetTable(files, batch_size=1024)
    elif suffixes <= {".json", ".jsonl", ".ndjson"}:
        table = RecordsTable([(str(f), read_json_records(f)) for f in files])
    elif suffixes <= {".zip"}:
        table = RecordsTable(_zip_records(files, archives))
    else:
        raise AdapterError(
            f"{location}: expected parquet, JSON or zip metadata, got {sorted(suffixes)}"
        )
    if images_root is not None:
        roots = [Path(images_root)]
    else:  # image_path is relative to the dataset's root folder, where metadata-*.parquet lives
        roots = list(dict.fromkeys([root, *list(root.parents)[:3]]))
    zips = [f for f in files if f.suffix.lower() == ".zip"]
    return ImageRewardAdapter(
        table,
        roots=roots,
        fallback_dirs=_json_fallback_dirs(files),
        fallback_archives=zips,
        archives=archives,
    )
