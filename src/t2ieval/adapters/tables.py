"""Row-wise access to a source's metadata, whatever it is stored in.

Adapters read their source through a :class:`RowTable`: parquet shards (:class:`ParquetTable`),
JSON/JSONL records (:class:`RecordsTable`) or a Hugging Face ``datasets`` dataset
(:class:`t2ieval.adapters.hf.HFTable`). Rows have a global index (0-based, across shards) so that
an adapter can read the cheap metadata columns first and fetch the heavy image columns later,
only for the rows it keeps (:meth:`RowTable.rows_at`). :func:`select_split` picks a split's files
from a folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from t2ieval.adapters.errors import AdapterError

Record = dict[str, Any]
KNOWN_SPLITS = (
    "train",
    "validation",
    "validation_unique",
    "valid",
    "val",
    "dev",
    "test",
    "test_unique",
)


class RowTable(Protocol):
    """What an adapter needs from a table of rows."""

    label: str

    @property
    def column_names(self) -> list[str]:
        """Columns present in the table."""

    def iter_rows(self, columns: Sequence[str]) -> Iterator[tuple[int, Record]]:
        """Yield ``(row_index, record)`` with only ``columns`` (those that exist) in each record."""

    def rows_at(
        self, indices: Iterable[int], columns: Sequence[str]
    ) -> Iterator[tuple[int, Record]]:
        """Yield ``(row_index, record)`` for the given rows, in increasing index order."""

    def where(self, index: int) -> str:
        """A human-readable location of row ``index``, for error messages."""


class ParquetTable:
    """One or more parquet files read as a single table, streaming (never whole files in memory)."""

    def __init__(self, files: Sequence[Path], batch_size: int = 64) -> None:
        import pyarrow.parquet as pq

        if not files:
            raise AdapterError("no parquet files to read")
        self.files = [Path(f) for f in files]
        self.batch_size = batch_size
        self.label = (
            str(self.files[0])
            if len(self.files) == 1
            else f"{len(self.files)} parquet files under {self.files[0].parent}"
        )
        self._readers = []
        self._offsets = []
        offset = 0
        for path in self.files:
            try:
                reader = pq.ParquetFile(path)
            except Exception as exc:  # pyarrow raises several types for a bad file
                raise AdapterError(f"{path}: not a readable parquet file ({exc})") from exc
            self._readers.append(reader)
            self._offsets.append(offset)
            offset += reader.metadata.num_rows
        self.num_rows = offset
        names = set(self._readers[0].schema_arrow.names)
        for reader in self._readers[1:]:
            names &= set(reader.schema_arrow.names)
        self._columns = [c for c in self._readers[0].schema_arrow.names if c in names]

    @property
    def column_names(self) -> list[str]:
        return list(self._columns)

    def _present(self, columns: Sequence[str]) -> list[str]:
        return [c for c in columns if c in self._columns]

    def iter_rows(self, columns: Sequence[str]) -> Iterator[tuple[int, Record]]:
        cols = self._present(columns)
        for reader, offset in zip(self._readers, self._offsets):
            index = offset
            for batch in reader.iter_batches(batch_size=self.batch_size, columns=cols):
                for record in batch.to_pylist():
                    yield index, record
                    index += 1

    def rows_at(
        self, indices: Iterable[int], columns: Sequence[str]
    ) -> Iterator[tuple[int, Record]]:
        cols = self._present(columns)
        wanted = sorted(set(indices))
        pos = 0
        for reader, offset in zip(self._readers, self._offsets):
            start = offset
            for rg in range(reader.metadata.num_row_groups):
                n = reader.metadata.row_group(rg).num_rows
                stop = start + n
                local = []
                while pos < len(wanted) and wanted[pos] < stop:
                    if wanted[pos] >= start:
                        local.append(wanted[pos] - start)
                    pos += 1
                if local:
                    table = reader.read_row_group(rg, columns=cols).take(local)
                    for i, record in zip(local, table.to_pylist()):
                        yield start + i, record
                start = stop

    def where(self, index: int) -> str:
        for path, offset in zip(reversed(self.files), reversed(self._offsets)):
            if index >= offset:
                return f"{path} row {index - offset}"
        return f"{self.label} row {index}"  # pragma: no cover - index < 0


class RecordsTable:
    """Records already in memory (from JSON/JSONL files), in chunks that remember their file."""

    def __init__(self, chunks: Sequence[tuple[str, list[Record]]]) -> None:
        self._records: list[Record] = []
        self._where: list[tuple[str, int]] = []
        for source, records in chunks:
            for i, rec in enumerate(records):
                self._records.append(rec)
                self._where.append((source, i))
        self.label = chunks[0][0] if len(chunks) == 1 else f"{len(chunks)} files"
        names: dict[str, None] = {}
        for rec in self._records:
            names.update(dict.fromkeys(rec))
        self._columns = list(names)

    @property
    def column_names(self) -> list[str]:
        return list(self._columns)

    def iter_rows(self, columns: Sequence[str]) -> Iterator[tuple[int, Record]]:
        for index, rec in enumerate(self._records):
            yield index, {c: rec[c] for c in columns if c in rec}

    def rows_at(
        self, indices: Iterable[int], columns: Sequence[str]
    ) -> Iterator[tuple[int, Record]]:
        for index in sorted(set(indices)):
            rec = self._records[index]
            yield index, {c: rec[c] for c in columns if c in rec}

    def where(self, index: int) -> str:
        source, i = self._where[index]
        return f"{source} entry {i}"


def read_json_records(path: Path) -> list[Record]:
    """Read a JSON array of objects (``.json``) or one object per line (``.jsonl``)."""
    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"{path}: no such file")
    try:
        with path.open(encoding="utf-8") as fh:
            if path.suffix.lower() in (".jsonl", ".ndjson"):
                records = [json.loads(line) for line in fh if line.strip()]
            else:
                records = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(records, list):
        raise AdapterError(
            f"{path}: expected a JSON array of objects, got {type(records).__name__}"
        )
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise AdapterError(f"{path} entry {i}: expected an object, got {type(rec).__name__}")
    return records


def iter_progress(rows: Iterable[Any], desc: str) -> Iterator[Any]:
    """A quiet-unless-slow progress bar over the rows of a source."""
    yield from tqdm(rows, desc=desc, unit="row", mininterval=1.0, leave=False)


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
            raise AdapterError(
                f"{root}: no {what} of split {split!r}; splits found: {splits or 'none'}"
            )
        return chosen
    if len(splits) > 1:
        raise AdapterError(f"{root}: {what} of several splits {splits}; choose one with --split")
    return files
