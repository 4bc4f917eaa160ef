"""Reading a source from a Hugging Face ``datasets`` dataset already on this machine.

``--from hf:NAME[:CONFIG]`` loads ``NAME`` from the local ``datasets`` cache with
``load_dataset(NAME, CONFIG, split=...)``; ``--from FOLDER`` where the folder was written by
``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` uses ``load_from_disk``. Both run with
``HF_HUB_OFFLINE=1`` and ``HF_DATASETS_OFFLINE=1``: nothing is downloaded. ``datasets`` is an
optional dependency, imported only here.

Image columns are read undecoded (``{"bytes", "path"}``) and only for the rows that are kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from t2ieval.adapters.errors import AdapterError

HF_PREFIX = "hf:"
INSTALL_HINT = "reading a Hugging Face dataset needs the `datasets` package: pip install datasets"


def is_saved_dataset(path: Path) -> bool:
    """True for a folder written by ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return path.is_dir() and (
        (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()
    )


def is_hf_location(location: str | Path) -> bool:
    """True when ``--from`` names a HF dataset (``hf:NAME``) or a ``save_to_disk`` folder."""
    text = str(location)
    return text.startswith(HF_PREFIX) or is_saved_dataset(Path(text))


def _import_datasets() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        import datasets
    except ImportError as exc:
        raise AdapterError(INSTALL_HINT) from exc
    return datasets


def _undecoded(ds: Any, datasets: Any) -> Any:
    """Cast image features to ``decode=False`` so rows carry bytes, not decoded PIL images."""
    for name, feature in ds.features.items():
        try:
            if isinstance(feature, datasets.Image):
                ds = ds.cast_column(name, datasets.Image(decode=False))
            elif isinstance(getattr(feature, "feature", None), datasets.Image):
                ds = ds.cast_column(name, type(feature)(datasets.Image(decode=False)))
        except (TypeError, ValueError):  # older/newer feature classes: rows keep PIL images
            continue
    return ds


class HFTable:
    """A ``datasets.Dataset`` as a :class:`t2ieval.adapters.tables.RowTable`."""

    def __init__(self, ds: Any, label: str) -> None:
        self.ds = ds
        self.label = label

    @property
    def column_names(self) -> list[str]:
        return list(self.ds.column_names)

    def _present(self, columns: Sequence[str]) -> list[str]:
        return [c for c in columns if c in self.ds.column_names]

    def iter_rows(self, columns: Sequence[str]) -> Iterator[tuple[int, dict]]:
        subset = self.ds.select_columns(self._present(columns))
        for index, record in enumerate(subset):
            yield index, dict(record)

    def rows_at(self, indices: Iterable[int], columns: Sequence[str]) -> Iterator[tuple[int, dict]]:
        wanted = sorted(set(indices))
        subset = self.ds.select(wanted).select_columns(self._present(columns))
        for index, record in zip(wanted, subset):
            yield index, dict(record)

    def where(self, index: int) -> str:
        return f"{self.label} row {index}"


def open_hf_table(location: str | Path, split: str | None) -> HFTable:
    """Load a cached hub dataset (``hf:NAME[:CONFIG]``) or a ``save_to_disk`` folder, offline."""
    datasets = _import_datasets()
    text = str(location)
    try:
        if text.startswith(HF_PREFIX):
            name, _, config = text[len(HF_PREFIX) :].partition(":")
            ds = datasets.load_dataset(name, config or None, split=split)
        else:
            ds = datasets.load_from_disk(text)
    except Exception as exc:  # datasets raises many types; the message is what the user needs
        raise AdapterError(
            f"{text}: cannot load the dataset offline from the local cache "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if isinstance(ds, datasets.DatasetDict):
        splits = sorted(ds)
        if split is None:
            if len(splits) != 1:
                raise AdapterError(f"{text}: splits {splits}; choose one with --split")
            split = splits[0]
        if split not in ds:
            raise AdapterError(f"{text}: no split {split!r}; splits: {splits}")
        ds = ds[split]
    label = f"{text} [{split}]" if split else text
    return HFTable(_undecoded(ds, datasets), label)
