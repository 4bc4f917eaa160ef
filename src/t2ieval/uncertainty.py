"""Uncertainty of an accuracy when the pairs come in groups (e.g. all pairs of one prompt).

Pairs of one prompt are not independent, so an interval that resamples pairs is too narrow. The
cluster bootstrap resamples whole groups with replacement and recomputes the pooled accuracy.
"""

from __future__ import annotations

import numpy as np


def bootstrap_accuracy_interval(
    correct: np.ndarray, groups: np.ndarray, n: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the pooled accuracy under a bootstrap over groups.

    Args:
        correct: per-pair credit in ``[0, 1]`` (1 right, 0 wrong, 0.5 a tie).
        groups: per-pair group label (any hashable values; e.g. the prompt key).
        n: number of bootstrap resamples; each draws as many groups as there are, with
            replacement, and pools their pairs (accuracy = credit sum / pair count).
        seed: seed of ``numpy.random.default_rng``: the interval is a function of the inputs and
            the seed.
        level: coverage of the two-sided interval (``0.95``: 2.5th and 97.5th percentiles).

    Returns:
        ``(low, high)``. With a single group both ends equal its accuracy.

    Raises:
        ValueError: for lengths that differ, no pairs, credit outside ``[0, 1]`` or not finite,
            ``n < 1``, or ``level`` outside ``(0, 1)``.
    """
    credit = np.asarray(correct, dtype=np.float64).ravel()
    labels = np.asarray(groups).ravel()
    if credit.shape != labels.shape:
        raise ValueError(f"correct and groups differ in length: {credit.size} vs {labels.size}")
    if credit.size == 0:
        raise ValueError("no pairs: cannot bootstrap an accuracy")
    if not np.isfinite(credit).all() or (credit < 0).any() or (credit > 1).any():
        raise ValueError("correct must hold per-pair credit in [0, 1] (1, 0, or 0.5 for a tie)")
    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    _, inverse = np.unique(labels, return_inverse=True)
    sums = np.bincount(inverse, weights=credit)
    counts = np.bincount(inverse).astype(np.float64)
    n_groups = sums.size
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, n_groups, size=(int(n), n_groups))
    accuracy = sums[draw].sum(axis=1) / counts[draw].sum(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(accuracy, [tail, 1.0 - tail])
    return float(low), float(high)
