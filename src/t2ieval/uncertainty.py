"""Uncertainty of an accuracy: percentile bootstrap over groups (prompts), not over pairs.

Pairs that share a prompt are not independent (the same prompt is easy or hard for every image
drawn for it), so the resampling unit is the prompt group: each resample draws as many groups as
there are, with replacement, and takes the mean credit of all pairs of the drawn groups.
"""

from __future__ import annotations

import numpy as np

N_RESAMPLES = 2000
LEVEL = 0.95


def bootstrap_accuracy_interval(correct, groups, n: int = N_RESAMPLES, seed: int = 0,
                                level: float = LEVEL) -> tuple[float, float]:
    """Percentile ``level`` interval of the mean of ``correct`` (per pair: 1, 0 or 0.5),
    resampling whole ``groups`` (one label per pair); ``(nan, nan)`` for no pairs."""
    correct = np.asarray(correct, dtype=np.float64)
    groups = np.asarray(groups)
    if correct.shape != groups.shape:
        raise ValueError(f"correct and groups differ in shape: {correct.shape}, {groups.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if correct.size == 0:
        return float("nan"), float("nan")
    _, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=correct)
    counts = np.bincount(inverse).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(n, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)
