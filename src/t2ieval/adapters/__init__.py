"""Adapters from public human-preference datasets to t2ieval's manifest format.

``import_dataset("pickapic" | "imagereward" | "hpd", location, out)`` reads Pick-a-Pic parquet
shards, ImageRewardDB metadata or HPD v2 annotation files (or a Hugging Face ``datasets`` copy
already on this machine) and writes a CSV/JSONL manifest that ``data.source: manifest`` imports.
See ``docs/adapters.md``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from t2ieval.adapters import hf, hpd, imagereward, pickapic
from t2ieval.adapters.errors import AdapterError, RowError
from t2ieval.adapters.images import ImageWriter, materialise
from t2ieval.adapters.pairs import (
    ON_ERROR,
    Candidate,
    Group,
    Report,
    cap_per_prompt,
    group_candidates,
    orient,
)
from t2ieval.adapters.tables import RowTable
from t2ieval.data import manifest
from t2ieval.images import DEFAULT_MAX_PIXELS

log = logging.getLogger(__name__)

SOURCES = ("pickapic", "imagereward", "hpd")
_ALIASES = {
    "pick-a-pic": "pickapic",
    "pickapic_v1": "pickapic",
    "pickapic_v2": "pickapic",
    "imagerewarddb": "imagereward",
    "hpdv2": "hpd",
    "hpd_v2": "hpd",
}

__all__ = ["SOURCES", "AdapterError", "RowError", "open_adapter", "import_dataset", "run_import"]


class Adapter(Protocol):
    """A source adapter: a table of rows and the groups read from it."""

    source: str
    table: RowTable

    def groups(self, report: Report) -> Iterator[Group]:
        """Yield the source's groups, counting rows and reporting bad ones to ``report``."""


def _manifest_out(out: str | Path) -> Path:
    try:
        return manifest.check_manifest_path(out)
    except ValueError as exc:
        raise AdapterError(str(exc)) from None


def normalise_source(source: str) -> str:
    name = source.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in SOURCES:
        raise AdapterError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    return name


def open_adapter(
    source: str,
    location: str | Path,
    split: str | None = None,
    images_root: str | Path | None = None,
    hpd_label: str | None = None,
) -> Adapter:
    """The adapter for ``source`` reading ``location`` (files, a folder, or a HF dataset).

    ``hpd_label`` (HPD v2 only): ``rank`` (default) or ``vote``, see :mod:`t2ieval.adapters.hpd`.
    """
    source = normalise_source(source)
    if hpd_label is not None and source != "hpd":
        raise AdapterError(f"the HPD v2 label option ({hpd_label!r}) does not apply to {source}")
    label = hpd_label or "rank"
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
        return hpd.HPDAdapter(table, tag=split or "hf", roots=roots, label=label)
    location = Path(location)
    if source == "pickapic":
        return pickapic.PickAPicAdapter(pickapic.open_files(location, split))
    if source == "imagereward":
        return imagereward.open_files(location, split, root)
    return hpd.open_files(location, split, root, label=label)


def import_dataset(
    source: str,
    location: str | Path,
    out: str | Path,
    *,
    max_pairs_per_prompt: int | None = None,
    seed: int = 0,
    split: str | None = None,
    on_error: str = "fail",
    images_root: str | Path | None = None,
    keep_ties: bool = False,
    hpd_label: str | None = None,
) -> dict[str, Any]:
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
        keep_ties: write the pairs the raters found equal, with ``preferred`` ``tie``, instead
            of dropping them (for ``t2ieval eval --ties half``; ``prepare`` leaves them out).
        hpd_label: HPD v2 only: what decides a pair of ``test.json``, ``rank`` (default: the
            averaged rank, the owners' protocol) or ``vote`` (majority of ``raw_annotations``).
    """
    _manifest_out(out)
    if on_error not in ON_ERROR:
        raise AdapterError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    adapter = open_adapter(
        source, location, split=split, images_root=images_root, hpd_label=hpd_label
    )
    return run_import(
        adapter,
        out,
        max_pairs_per_prompt=max_pairs_per_prompt,
        seed=seed,
        on_error=on_error,
        keep_ties=keep_ties,
    )


def run_import(
    adapter: Adapter,
    out: str | Path,
    *,
    max_pairs_per_prompt: int | None = None,
    seed: int = 0,
    on_error: str = "fail",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    keep_ties: bool = False,
) -> dict[str, Any]:
    """Convert ``adapter``'s source into a manifest at ``out``; returns the summary counters
    (see :func:`import_dataset` for the options)."""
    out = _manifest_out(out)
    report = Report(on_error)
    candidates: list[Candidate] = []
    seen: dict[str, int] = {}
    for group in adapter.groups(report):
        report.count("groups")
        report.count("images", len(group.images))
        for cand in group_candidates(group, adapter.source, report, keep_ties=keep_ties):
            if cand.pair_id in seen:  # the source repeats a group id: keep both, distinct ids
                seen[cand.pair_id] += 1
                report.count("duplicate_pair_ids")
                cand = dataclasses.replace(cand, pair_id=f"{cand.pair_id}-dup{seen[cand.pair_id]}")
            else:
                seen[cand.pair_id] = 1
            candidates.append(cand)
    candidates = cap_per_prompt(candidates, max_pairs_per_prompt, seed, report)

    images_dir = out.parent / f"{out.stem}_images"
    writer = ImageWriter(images_dir, max_pixels=max_pixels)
    paths = materialise(candidates, adapter.table, writer, report)
    rows = []
    for cand in candidates:
        first, second, preferred = orient(cand, seed)
        p1, p2 = paths[first], paths[second]
        if p1 is None or p2 is None:
            report.count("pairs_missing_image")
            continue
        rows.append(
            {
                "pair_id": cand.pair_id,
                "prompt": cand.prompt,
                "image_1": p1,
                "image_2": p2,
                "preferred": preferred or "tie",
                "category": cand.category,
            }
        )
        report.count(f"preferred_{preferred}" if preferred else "ties_written")
    report.count("pairs_written", len(rows))
    report.count("images_written", writer.written)
    counters = report.summary()
    if not rows:
        raise AdapterError(f"{adapter.table.label}: no pairs left to write; counters: {counters}")
    manifest.write_manifest(rows, out)
    summary: dict[str, Any] = {
        "source": adapter.source,
        "input": adapter.table.label,
        "manifest": str(out),
    }
    if isinstance(adapter, hpd.HPDAdapter):
        summary["hpd_label"] = adapter.label
    if writer.written:
        summary["images_dir"] = str(images_dir)
    summary.update(counters)
    log.info(
        "%s: %d pairs from %d groups (%d ties, %d unlabelled dropped) -> %s",
        adapter.source,
        counters["pairs_written"],
        counters["groups"],
        counters["ties_dropped"],
        counters["unlabelled_dropped"],
        out,
    )
    return summary
