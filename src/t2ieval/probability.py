"""Probabilities from score differences: an exactly symmetric sigmoid, a one-parameter
calibration fitted on held-out pairs, and the reliability of the probabilities it gives.

A verdict's probability is ``p_1_over_2 = sigmoid(a * (s_1 - s_2))``: the probability that image 1
is preferred, from the difference of the two fused scores and one scale ``a`` fitted by logistic
regression (no intercept, every pair also mirrored) on validation pairs. Because the sigmoid here
is exactly symmetric in floating point, swapping the images gives exactly ``1 - p``: the verdict
has no position bias by construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def symmetric_sigmoid(t) -> np.ndarray:
    """``sigmoid(t)`` computed so that ``symmetric_sigmoid(-t) == 1 - symmetric_sigmoid(t)``
    exactly in floating point: ``sigmoid(t)`` for ``t >= 0``, ``1 - sigmoid(-t)`` otherwise (for
    ``e = sigmoid(|t|)`` in ``[0.5, 1]`` both ``1 - e`` and ``1 - (1 - e)`` are exact)."""
    t = np.asarray(t, dtype=np.float64)
    e = 1.0 / (1.0 + np.exp(-np.abs(t)))
    return np.where(t >= 0, e, 1.0 - e)


def fit_scale(diff, preferred, C: float = 1e6) -> float:
    """The scale ``a`` of ``p = sigmoid(a * diff)`` that best predicts ``preferred == 1`` (maximum
    likelihood, mirrored pairs, nearly unpenalised); 0 when there is nothing to fit."""
    from sklearn.linear_model import LogisticRegression

    d = np.asarray(diff, dtype=np.float64)
    y = (np.asarray(preferred).astype(int) == 1).astype(int)
    keep = np.isfinite(d)
    d, y = d[keep], y[keep]
    if d.size == 0 or not np.any(d):
        return 0.0
    x = np.concatenate([d, -d])[:, None]
    model = LogisticRegression(fit_intercept=False, C=C, max_iter=1000)
    model.fit(x, np.concatenate([y, 1 - y]))
    return float(model.coef_[0, 0])


def reliability(p, preferred, bins: int = 10) -> tuple[pd.DataFrame, float]:
    """Reliability table (``bin``, ``predicted`` mean, ``observed`` frequency of image 1 being
    preferred, ``pairs``) over equal-width bins of ``p``, and the expected calibration error
    ``sum_b n_b/N |observed_b - predicted_b|``."""
    p = np.asarray(p, dtype=np.float64)
    y = (np.asarray(preferred).astype(int) == 1).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        in_bin = which == b
        n = int(in_bin.sum())
        if n == 0:
            continue
        predicted, observed = float(p[in_bin].mean()), float(y[in_bin].mean())
        rows.append(
            {
                "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                "predicted": predicted,
                "observed": observed,
                "pairs": n,
            }
        )
        ece += n / len(p) * abs(observed - predicted)
    table = pd.DataFrame(rows, columns=["bin", "predicted", "observed", "pairs"])
    return table, float(ece) if len(p) else float("nan")
