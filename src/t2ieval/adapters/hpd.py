"""HPD v2 (Human Preference Dataset v2) -> pairs.

Schema (``ymhao/HPDv2`` dataset card and the HPSv2 training code): a JSON array of records.

* ``train.json``: ``prompt``, ``file_path`` (list of image paths; ``image_path`` is accepted too)
  and ``human_preference`` (list, 1 for the chosen image, 0 otherwise).
* ``test.json``: ``prompt``, ``image_path`` (list), ``rank`` (list: averaged ranking, 1 = best)
  and ``raw_annotations`` (list of ``{"rank": [...], "user_hash": ...}``, one per annotator).

Each record is a group of images; every pair of it is compared. Which field decides a pair of
``test.json`` is the ``label`` option:

* ``rank`` (default): the averaged ``rank`` list, lower is better; equal ranks are a tie. This is
  the owners' protocol: HPSv2's ``evaluation.py`` (``evaluate_rank``) scores a model by
  ``inversion_score`` against ``rank`` over every pair of every record.
* ``vote``: each annotator of ``raw_annotations`` votes for the image they ranked better and the
  majority decides; a pair without a majority is a tie. More pairs are ties than under ``rank``,
  so fewer are kept than the owners count.

A record without the chosen field falls back to the other one. In ``train.json`` the chosen
image (``human_preference``) beats every other one and the unchosen images are tied with one
another. Image paths are relative to ``--images-root`` or, by default, to the JSON's folder or the
folder named after the split beside it (``test.json`` + ``test/``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from t2ieval.adapters.cells import as_float, as_list, as_prompt
from t2ieval.adapters.errors import AdapterError, RowError
from t2ieval.adapters.images import resolve_image
from t2ieval.adapters.pairs import Group, ImageRef, Report
from t2ieval.adapters.tables import (
    RecordsTable,
    RowTable,
    iter_progress,
    read_json_records,
    select_split,
)
from t2ieval.data.manifest import is_blank

SOURCE = "hpd"
COLUMNS = (
    "prompt",
    "image_path",
    "file_path",
    "rank",
    "raw_annotations",
    "human_preference",
    "category",
)
PATH_FIELDS = ("image_path", "file_path")
#: what decides a pair of test.json: the averaged ``rank`` (the owners' protocol) or a majority
#: ``vote`` over ``raw_annotations``
LABELS = ("rank", "vote")


class HPDAdapter:
    """Reads HPD v2 records from a :class:`RowTable` (JSON files or a HF dataset)."""

    source = SOURCE

    def __init__(
        self, table: RowTable, tag: str, roots: Sequence[Path] = (), label: str = "rank"
    ) -> None:
        if label not in LABELS:
            raise AdapterError(f"HPD v2 label must be one of {LABELS}, got {label!r}")
        names = set(table.column_names)
        problems = []
        if "prompt" not in names:
            problems.append("prompt")
        if not names & {*PATH_FIELDS, "image"}:
            problems.append("image_path/file_path")
        if not names & {"rank", "raw_annotations", "human_preference"}:
            problems.append("rank/raw_annotations/human_preference")
        if problems:
            raise AdapterError(
                f"{table.label}: not HPD v2 data: missing {problems}; found {sorted(names)}"
            )
        self.table = table
        self.tag = tag
        self.roots = list(roots)
        self.label = label
        self.image_column = "image" in names

    def groups(self, report: Report) -> Iterator[Group]:
        # an "image" column (HF copies) is not read here: its images are fetched in pass two
        for index, rec in iter_progress(self.table.iter_rows(COLUMNS), "reading HPD v2"):
            report.count("rows")
            where = self.table.where(index)
            try:
                group = self._group(index, rec, where, report)
            except RowError as exc:
                report.problem(exc, "rows_skipped")
                continue
            yield group

    def _group(self, index: int, rec: dict, where: str, report: Report) -> Group:
        prompt = as_prompt(rec.get("prompt"), where)
        group_id = f"{self.tag}-{index:06d}"
        field = next((f for f in PATH_FIELDS if not is_missing_list(rec.get(f))), None)
        images: list[ImageRef | None]
        if self.image_column:  # a HF copy: the images themselves are in the row
            n = self._count_images(rec, where)
            images = [
                ImageRef(row=index, column="image", item=k, stem=f"{group_id}_{k}")
                for k in range(n)
            ]
        elif field is not None:
            paths = as_list(rec.get(field), where, field)
            images = [self._file(p, where, field, report) for p in paths]
        else:
            raise RowError(where, "image_path", "no image paths (image_path or file_path)")
        rankings = self._rankings(rec, where, len(images))
        category = rec.get("category")
        return Group(
            group_id=group_id,
            prompt=prompt,
            category=SOURCE if is_blank(category) else str(category).strip(),
            images=images,
            rankings=rankings,
            where=where,
        )

    @staticmethod
    def _count_images(rec: dict, where: str) -> int:
        for key in ("rank", "human_preference"):
            if not is_missing_list(rec.get(key)):
                return len(as_list(rec[key], where, key))
        raw = rec.get("raw_annotations")
        if not is_missing_list(raw):
            first = as_list(raw, where, "raw_annotations")[0]
            return len(
                as_list(
                    first.get("rank") if isinstance(first, dict) else None, where, "raw_annotations"
                )
            )
        raise RowError(where, "rank", "cannot tell how many images the record has")

    def _rankings(self, rec: dict, where: str, n: int) -> list[list[float | None]]:
        raw = rec.get("raw_annotations")
        has_raw = not is_missing_list(raw)
        has_rank = not is_missing_list(rec.get("rank"))
        if has_raw and (self.label == "vote" or not has_rank):
            rankings = []
            for k, ann in enumerate(as_list(raw, where, "raw_annotations")):
                ranks = ann.get("rank") if isinstance(ann, dict) else None
                field = f"raw_annotations[{k}].rank"
                rankings.append([as_float(v, where, field) for v in as_list(ranks, where, field)])
        elif has_rank:
            rankings = [[as_float(v, where, "rank") for v in as_list(rec["rank"], where, "rank")]]
        elif not is_missing_list(rec.get("human_preference")):
            prefs = [
                as_float(v, where, "human_preference")
                for v in as_list(rec["human_preference"], where, "human_preference")
            ]
            if any(v not in (0.0, 1.0) for v in prefs):
                raise RowError(where, "human_preference", f"expected 0/1 values, got {prefs}")
            rankings = [[0.0 if v == 1.0 else 1.0 for v in prefs]]
        else:
            raise RowError(where, "rank", "no rank, raw_annotations or human_preference")
        for ranking in rankings:
            if len(ranking) != n:
                raise RowError(where, "rank", f"{len(ranking)} ranks for {n} images")
        return rankings

    def _file(self, value: object, where: str, field: str, report: Report) -> ImageRef | None:
        try:
            return ImageRef(
                path=resolve_image(value, self.roots, where, field), column=field, where=where
            )
        except RowError as exc:
            report.problem(exc, "missing_images")
            return None


def is_missing_list(value: object) -> bool:
    """True for an absent cell or an empty list."""
    if value is None:
        return True
    if hasattr(value, "__len__") and not isinstance(value, str):
        return len(value) == 0  # type: ignore[arg-type]
    return is_blank(value)


def open_files(
    location: Path, split: str | None, images_root: Path | None = None, label: str = "rank"
) -> HPDAdapter:
    """An adapter over ``train.json``/``test.json`` (a file, or a folder and ``--split``);
    ``label`` is :class:`HPDAdapter`'s."""
    location = Path(location)
    if location.is_file():
        files = [location]
    elif location.is_dir():
        found = sorted(p for p in location.glob("*.json*") if p.suffix in (".json", ".jsonl"))
        files = select_split(found, split, location, "HPD v2 annotation files (*.json)")
        if len(files) > 1:
            raise AdapterError(
                f"{location}: several annotation files {[f.name for f in files]}; "
                f"point --from at one of them"
            )
    else:
        raise AdapterError(f"{location}: no such file or folder")
    path = files[0]
    table = RecordsTable([(str(path), read_json_records(path))])
    tag = split or path.stem
    if images_root is not None:
        roots = [Path(images_root)]
    else:
        roots = list(
            dict.fromkeys(
                [path.parent, path.parent / path.stem, *([path.parent / split] if split else [])]
            )
        )
    return HPDAdapter(table, tag=tag, roots=roots, label=label)
