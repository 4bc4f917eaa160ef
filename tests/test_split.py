"""Splitting by prompt group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from t2ieval.data.split import assign_splits, image_table, prompt_key, split_summary


def _pairs(n_prompts=200, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_prompts):
        for k in range(int(rng.integers(1, 5))):
            prompt = (
                f"prompt {i}" if k % 2 == 0 else f"  Prompt   {i} "
            )  # same group, other spelling
            rows.append(
                {
                    "pair_id": f"{i}-{k}",
                    "prompt": prompt,
                    "image_1": f"{i}-{k}-a.png",
                    "image_2": f"{i}-{k}-b.png",
                    "preferred": 1 + (k % 2),
                    "category": "cat" + str(i % 3),
                }
            )
    return pd.DataFrame(rows)


def test_no_prompt_in_two_splits_and_ratios_hold():
    pairs = _pairs()
    out = assign_splits(pairs, 0.7, 0.15, 0.15, seed=0)
    per_prompt = out.groupby(out["prompt"].map(prompt_key))["split"].nunique()
    assert (per_prompt == 1).all()
    shares = out["split"].value_counts(normalize=True)
    assert abs(shares["train"] - 0.7) < 0.05
    assert abs(shares["val"] - 0.15) < 0.05 and abs(shares["test"] - 0.15) < 0.05


def test_deterministic_by_seed():
    pairs = _pairs()
    a = assign_splits(pairs, 0.8, 0.2, 0.0, seed=0)
    b = assign_splits(pairs, 0.8, 0.2, 0.0, seed=0)
    c = assign_splits(pairs, 0.8, 0.2, 0.0, seed=1)
    assert a["split"].tolist() == b["split"].tolist()
    assert a["split"].tolist() != c["split"].tolist()
    assert set(a["split"]) == {"train", "val"}


def test_bad_ratios_and_too_few_groups():
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits(_pairs(), 0.7, 0.2, 0.2)
    with pytest.raises(ValueError, match="split 'test' is empty"):
        assign_splits(_pairs(2), 0.7, 0.2, 0.1)


def test_image_table_and_summary():
    out = assign_splits(_pairs(50), 0.6, 0.2, 0.2, seed=0)
    images = image_table(out)
    assert len(images) == 2 * len(out)
    assert (images.groupby("pair_id")["preferred"].sum() == 1).all()
    first = out.iloc[0]
    row = images[(images.pair_id == first.pair_id) & (images.slot == first.preferred)]
    assert row["preferred"].item() == 1
    summary = split_summary(out)
    assert summary["pairs_train"] + summary["pairs_val"] + summary["pairs_test"] == len(out)
