"""The one accuracy definition, its tie rule, the per-split report and the bootstrap interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from t2ieval.batching import pair_image_rows, pair_scores
from t2ieval.metrics import accuracy_report, pair_credit, pairwise_accuracy


def test_a_tie_earns_half_a_pair():
    assert pairwise_accuracy([0.9, 0.2, 0.5], [0.1, 0.8, 0.5], [1, 2, 1]) == pytest.approx(2.5 / 3)
    assert pairwise_accuracy([0.9], [0.1], [2]) == 0.0
    assert np.isnan(pairwise_accuracy([], [], []))
    assert list(pair_credit([1, 0, 2], [0, 1, 2], [1, 1, 2])) == [1.0, 0.0, 0.5]
    with pytest.raises(ValueError, match="preferred must be 1 or 2"):
        pairwise_accuracy([0.1], [0.2], [0])
    with pytest.raises(ValueError, match="differ in length"):
        pairwise_accuracy([0.1, 0.2], [0.2], [1])


def test_a_human_tie_earns_half_whatever_the_verdict_when_kept():
    credit = pair_credit([0.9, 0.1, 0.5, 0.9], [0.1, 0.9, 0.5, 0.1], [0, 0, 0, 1], human_ties=True)
    assert list(credit) == [0.5, 0.5, 0.5, 1.0]
    with pytest.raises(ValueError, match=r"1 or 2 for every pair \(or 0 for a human tie\)"):
        pair_credit([0.1], [0.2], [3], human_ties=True)
    table = _table().assign(preferred=[1, 0, 2, 0, 2])
    report = accuracy_report(table, "", splits=("val",), category_splits=(), human_ties=True)
    assert report["val_accuracy"] == pytest.approx((0.5 + 0.0 + 0.5) / 3)
    with pytest.raises(ValueError, match="preferred must be 1 or 2"):
        accuracy_report(table, "", splits=("val",), category_splits=())


@given(
    st.lists(
        st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.sampled_from([1, 2])),
        min_size=1,
        max_size=30,
    )
)
def test_swapping_the_images_keeps_the_accuracy(rows):
    s1, s2, pref = (np.array(c) for c in zip(*rows))
    assert pairwise_accuracy(s1, s2, pref) == pytest.approx(pairwise_accuracy(s2, s1, 3 - pref))


def _table():
    return pd.DataFrame(
        {
            "split": ["train", "val", "val", "val", "test"],
            "prompt": ["a", "b", "b", "c", "d"],
            "category": ["x", "x", "y", "y", "x"],
            "preferred": [1, 1, 2, 1, 2],
            "score_1": [1.0, 1.0, 1.0, 0.5, 0.2],
            "score_2": [0.0, 0.0, 0.0, 0.5, 0.1],
        }
    )


def test_report_names_every_split_and_validation_category():
    report = accuracy_report(_table(), "clip")
    assert report == {
        "train_accuracy_clip": 1.0,
        "val_accuracy_clip": pytest.approx(1.5 / 3),
        "test_accuracy_clip": 0.0,
        "val_accuracy_clip.x": 1.0,
        "val_pairs_clip.x": 1,
        "val_accuracy_clip.y": 0.25,
        "val_pairs_clip.y": 2,
    }
    empty = accuracy_report(_table()[lambda t: t["split"] != "test"], "", category_splits=())
    assert empty["test_accuracy"] is None and "val_accuracy" in empty


def test_report_intervals_contain_the_accuracy():
    report = accuracy_report(_table(), "d", splits=("val",), category_splits=(), intervals=True)
    assert (
        report["val_accuracy_d_ci_low"]
        <= report["val_accuracy_d"]
        <= report["val_accuracy_d_ci_high"]
    )


def test_pair_scores_come_back_in_pair_order():
    pairs = pd.DataFrame(
        {
            "pair_id": ["p2", "p1"],
            "split": ["val", "test"],
            "prompt": ["a", "b"],
            "image_1": ["x.png", "y.png"],
            "image_2": ["y.png", "z.png"],
        }
    )
    rows = pair_image_rows(pairs)
    assert list(rows["image"]) == ["x.png", "y.png", "y.png", "z.png"]
    out = pair_scores(pairs, rows, np.array([1.0, 2.0, 3.0, 4.0]))
    assert out.to_dict("list") == {
        "pair_id": ["p2", "p1"],
        "split": ["val", "test"],
        "score_1": [1.0, 3.0],
        "score_2": [2.0, 4.0],
    }
