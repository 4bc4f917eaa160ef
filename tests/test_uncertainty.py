"""Bootstrap interval over prompt groups: deterministic, brackets the accuracy, groups matter."""

from __future__ import annotations

import numpy as np
import pytest

from t2ieval.uncertainty import bootstrap_accuracy_interval


def test_interval_is_deterministic_and_brackets_the_accuracy():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(20), 10)
    credit = (rng.random(200) < 0.7).astype(float)
    credit[:5] = 0.5
    low, high = bootstrap_accuracy_interval(credit, groups, n=2000, seed=0)
    assert (low, high) == bootstrap_accuracy_interval(credit, groups, n=2000, seed=0)
    assert low < credit.mean() < high


def test_resampling_groups_not_pairs():
    # every group is all right or all wrong: the pairs are not independent, and the interval
    # must be as wide as for 10 coin flips, not 1000
    groups = np.repeat(np.arange(10), 100)
    credit = np.repeat(np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0], dtype=float), 100)
    low, high = bootstrap_accuracy_interval(credit, groups, n=4000, seed=0)
    assert high - low > 0.4
    # a single group: no uncertainty left to resample
    assert bootstrap_accuracy_interval([1, 0, 0.5, 1], ["p"] * 4) == (0.625, 0.625)


def test_unequal_group_sizes_pool_pairs():
    # a resample holding each group once must pool its pairs (9 right + 1 wrong = 0.9), not
    # average the two group accuracies (0.5); such resamples are the middle half of the draws
    groups = np.array(["a"] * 9 + ["b"])
    credit = np.array([1.0] * 9 + [0.0])
    low, high = bootstrap_accuracy_interval(credit, groups, n=2000, seed=0, level=0.2)
    assert low == pytest.approx(0.9) and high == pytest.approx(0.9)


@pytest.mark.parametrize(
    "credit, groups, kwargs, message",
    [
        ([1, 0], ["a"], {}, "differ in length"),
        ([], [], {}, "no pairs"),
        ([1, 2], ["a", "b"], {}, r"\[0, 1\]"),
        ([1, np.nan], ["a", "b"], {}, r"\[0, 1\]"),
        ([1, 0], ["a", "b"], {"n": 0}, "n must be"),
        ([1, 0], ["a", "b"], {"level": 1.0}, "level"),
    ],
)
def test_bad_inputs_are_named(credit, groups, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_accuracy_interval(credit, groups, **kwargs)
