"""Pick-a-Pic (v1 and v2) parquet shards -> pairs.

Schema (``yuvalkirstain/pickapic_v1`` / ``pickapic_v2`` dataset cards): one row per comparison
with ``caption``, ``jpg_0``/``jpg_1`` (JPEG bytes), ``label_0``/``label_1`` (1/0 for a choice,
0.5/0.5 for a tie), ``has_label``, ``are_different``, ``best_image_uid``, ``image_0_uid``,
``image_1_uid``, ``ranking_id``, ``model_0``/``model_1``, ``user_id``, ``created_at``...

One pair per row. Ties (0.5/0.5) are dropped and counted (``ties_dropped``); rows without a label
(``has_label`` false, or no label values) are dropped and counted (``unlabelled_dropped``); rows
whose two images are the same (``are_different`` false) are dropped and counted
(``identical_dropped``). Image bytes are read only for the rows that are kept (two passes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from t2ieval.adapters.cells import as_float, as_prompt, safe_name
from t2ieval.adapters.errors import AdapterError, RowError
from t2ieval.adapters.pairs import Group, ImageRef, Report
from t2ieval.adapters.tables import ParquetTable, RowTable, iter_progress, select_split
from t2ieval.data.manifest import is_blank

SOURCE = "pickapic"
IMAGE_COLUMNS = ("jpg_0", "jpg_1")
META_COLUMNS = (
    "caption",
    "label_0",
    "label_1",
    "has_label",
    "are_different",
    "ranking_id",
    "image_0_uid",
    "image_1_uid",
    "best_image_uid",
)
REQUIRED = ("caption", "label_0", "label_1")


class PickAPicAdapter:
    """Reads Pick-a-Pic rows from any :class:`RowTable` (parquet shards or a HF dataset)."""

    source = SOURCE

    def __init__(self, table: RowTable) -> None:
        names = set(table.column_names)
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise AdapterError(
                f"{table.label}: not Pick-a-Pic data: missing column(s) {missing}; "
                f"found {sorted(names)}"
            )
        if not all(c in names for c in IMAGE_COLUMNS):
            raise AdapterError(
                f"{table.label}: no image columns {list(IMAGE_COLUMNS)}; the *_no_images variants "
                f"hold only URLs: download the shards with images (pickapic_v1 / pickapic_v2)"
            )
        self.table = table

    def groups(self, report: Report) -> Iterator[Group]:
        for index, rec in iter_progress(self.table.iter_rows(META_COLUMNS), "reading Pick-a-Pic"):
            report.count("rows")
            try:
                group = self._group(index, rec, report)
            except RowError as exc:
                report.problem(exc, "rows_skipped")
                continue
            if group is not None:
                yield group

    def _group(self, index: int, rec: dict, report: Report) -> Group | None:
        where = self.table.where(index)
        prompt = as_prompt(rec.get("caption"), where, "caption")
        if (
            rec.get("has_label") is False
            or is_blank(rec.get("label_0"))
            or is_blank(rec.get("label_1"))
        ):
            report.count("unlabelled_dropped")
            return None
        labels = [as_float(rec.get(f"label_{k}"), where, f"label_{k}") for k in (0, 1)]
        for k, value in enumerate(labels):
            if not 0.0 <= value <= 1.0:
                raise RowError(where, f"label_{k}", f"expected 0, 0.5 or 1, got {value}")
        if labels[0] == 0.0 and labels[1] == 0.0:
            report.count("unlabelled_dropped")
            return None
        if rec.get("are_different") is False:
            report.count("identical_dropped")
            return None
        ranking_id = rec.get("ranking_id")
        group_id = safe_name(ranking_id) if not is_blank(ranking_id) else f"row{index}"
        images = []
        for k in (0, 1):
            uid = rec.get(f"image_{k}_uid")
            stem = safe_name(uid) if not is_blank(uid) else f"row{index}_{k}"
            images.append(ImageRef(row=index, column=f"jpg_{k}", stem=stem))
        # a higher label is better; rankings are "lower is better"
        return Group(
            group_id=group_id,
            prompt=prompt,
            category=SOURCE,
            images=images,
            rankings=[[-labels[0], -labels[1]]],
            where=where,
        )


def open_files(location: Path, split: str | None) -> ParquetTable:
    """A parquet file, or a folder of shards (filtered by ``split``), as one table."""
    location = Path(location)
    if location.is_file():
        return ParquetTable([location])
    if not location.is_dir():
        raise AdapterError(f"{location}: no such file or folder")
    files = select_split(list(location.rglob("*.parquet")), split, location, "parquet shards")
    return ParquetTable(files)
