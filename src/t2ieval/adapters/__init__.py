"""Adapters from public human-preference datasets to t2ieval's manifest format.

``import_dataset("pickapic" | "imagereward" | "hpd", location, out)`` reads Pick-a-Pic parquet
shards, ImageRewardDB metadata or HPD v2 annotation files (or a Hugging Face ``datasets`` copy
already on this machine) and writes a CSV/JSONL manifest that ``data.source: manifest`` imports.
See ``docs/adapters.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from t2ieval.adapters import hf, hpd, imagereward, pickapic
from t2ieval.adapters.common import ON_ERROR, Adapter, check_manifest_path, run_import
from t2ieval.adapters.errors import AdapterError, RowError

SOURCES = ("pickapic", "imagereward", "hpd")
_ALIASES = {"pick-a-pic": "pickapic", "pickapic_v1": "pickapic", "pickapic_v2": "pickapic",
            "imagerewarddb": "imagereward", "hpdv2": "hpd", "hpd_v2": "hpd"}

__all__ = ["SOURCES", "AdapterError", "RowError", "open_adapter", "import_dataset"]


def normalise_source(source: str) -> str:
    name = source.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in SOURCES:
        raise AdapterError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    return name


def open_adapter(source: str, location: str | Path, split: str | None = None,
                 images_root: str | Path | None = None) -> Adapter:
    """The adapter for ``source`` reading ``location`` (files, a folder, or a HF dataset)."""
    source = normalise_source(source)
    root = Path(images_root) if images_root is not None else None
    if root is not None and not root.is_dir():
        raise AdapterError(f"{root}: --images-root is not a folder")
    if hf.is_hf_location(location):
        table = hf.open_hf_table(location, split)
        roots = [root] if root is not None else [Path.cwd()]
        if source == "pickapic":
            return pickapic.PickAPicAdapter(table)
        if source == "imagereward":
            return imagereward.ImageRewardAdapter(table, roots=roots)
        return hpd.HPDAdapter(table, tag=split or "hf", roots=roots)
    location = Path(location)
    if source == "pickapic":
        return pickapic.PickAPicAdapter(pickapic.open_files(location, split))
    if source == "imagereward":
        return imagereward.open_files(location, split, root)
    return hpd.open_files(location, split, root)


def import_dataset(source: str, location: str | Path, out: str | Path, *,
                   max_pairs_per_prompt: int | None = None, seed: int = 0,
                   split: str | None = None, on_error: str = "fail",
                   images_root: str | Path | None = None) -> dict[str, Any]:
    """Convert a public preference dataset into a manifest; returns the summary counters.

    Args:
        source: ``pickapic``, ``imagereward`` or ``hpd``.
        location: a file, a folder of files, ``hf:NAME[:CONFIG]`` (a dataset in the local HF
            cache) or a ``save_to_disk`` folder.
        out: the manifest to write (``.csv`` or ``.jsonl``); images held as bytes in the source
            are written to ``<out stem>_images/`` beside it.
        max_pairs_per_prompt: keep at most this many pairs per prompt (seeded choice).
        seed: seeds the cap and the choice of slot (1 or 2) of the preferred image.
        split: which split to read from a folder or a dataset with several.
        on_error: ``fail`` (default) stops at the first bad row or missing image and names it;
            ``skip`` drops it and counts it in the summary.
        images_root: folder that relative image paths of the metadata are relative to.
    """
    check_manifest_path(out)
    if on_error not in ON_ERROR:
        raise AdapterError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    adapter = open_adapter(source, location, split=split, images_root=images_root)
    return run_import(adapter, out, max_pairs_per_prompt=max_pairs_per_prompt, seed=seed,
                      on_error=on_error)
