"""Splitting pairs into train / validation / test by prompt group, so no prompt is in two splits."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def prompt_key(prompt: str) -> str:
    """The grouping key of a prompt: case and whitespace do not make a new prompt."""
    return re.sub(r"\s+", " ", prompt.strip().lower())


def assign_splits(pairs: pd.DataFrame, train: float, val: float, test: float,
                  seed: int = 0) -> pd.DataFrame:
    """Return ``pairs`` with a ``split`` column; all pairs of one prompt share a split.

    Prompt groups are shuffled with ``seed`` and cut so that each split's share of *pairs* is as
    close as possible to its ratio. Ratios must be non-negative and sum to 1.
    """
    ratios = np.array([train, val, test], dtype=float)
    if (ratios < 0).any() or not np.isclose(ratios.sum(), 1.0, atol=1e-6):
        raise ValueError(f"split ratios must be >= 0 and sum to 1; got train={train}, "
                         f"val={val}, test={test}")
    if "prompt" not in pairs.columns:
        raise ValueError("pairs need a 'prompt' column to be split by prompt")
    keys = pairs["prompt"].map(prompt_key)
    sizes = keys.value_counts().sort_index()  # deterministic order before shuffling
    groups = sizes.index.to_numpy()
    order = np.random.default_rng(seed).permutation(len(groups))
    groups, counts = groups[order], sizes.to_numpy()[order]
    cum = np.cumsum(counts) / counts.sum()
    edges = np.cumsum(ratios)
    # group g goes to the first split whose cumulative edge its midpoint falls under
    mid = cum - counts / (2 * counts.sum())
    which = np.searchsorted(edges, mid, side="right").clip(0, 2)
    mapping = dict(zip(groups, np.array(SPLITS)[which]))
    out = pairs.copy()
    out["split"] = keys.map(mapping)
    for name, ratio in zip(SPLITS, ratios):
        if ratio > 0 and not (out["split"] == name).any():
            raise ValueError(f"split {name!r} is empty: {len(groups)} prompt groups are too few "
                             f"for ratios {ratios.tolist()}")
    return out


def image_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per image slot: image, pair_id, split, prompt, slot, preferred (0|1), category."""
    parts = []
    for slot in (1, 2):
        part = pairs[["pair_id", "split", "prompt", "category"]].copy()
        part.insert(0, "image", pairs[f"image_{slot}"])
        part["slot"] = slot
        part["preferred"] = (pairs["preferred"].astype(int) == slot).astype(int)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["pair_id", "slot"], kind="stable").reset_index(drop=True)


def split_summary(pairs: pd.DataFrame) -> dict:
    """Counts of pairs and prompts per split and per category, for the split metrics."""
    summary: dict = {}
    for name in SPLITS:
        part = pairs[pairs["split"] == name]
        summary[f"pairs_{name}"] = int(len(part))
        summary[f"prompts_{name}"] = int(part["prompt"].map(prompt_key).nunique())
        for cat, n in part["category"].value_counts().sort_index().items():
            summary[f"pairs_{name}_{cat}"] = int(n)
    return summary
