"""The complexity-entropy plane: the images as points (H, C), preferred vs other.

As in Sigaki et al. (2018), the figure also draws the lower and upper bounds of C as a function of
H for ``n = (dx*dy)!`` patterns (Martin, Plastino & Rosso 2006): every image lies between them.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from t2ieval.entropy.features import FeatureSpec, entropy_complexity_from_counts

log = logging.getLogger(__name__)


def plane_rows(features: pd.DataFrame, preferred: np.ndarray, spec: FeatureSpec) -> pd.DataFrame:
    """Plot table ``H, C, label`` (``preferred`` / ``other``) of one feature's columns."""
    h_col, c_col = spec.columns
    missing = [c for c in (h_col, c_col) if c not in features.columns]
    if missing:
        raise ValueError(f"feature table lacks column(s) {missing} for the plane plot")
    pref = np.asarray(preferred)
    if len(pref) != len(features):
        raise ValueError(f"{len(pref)} labels for {len(features)} feature rows")
    return pd.DataFrame(
        {
            "H": features[h_col].to_numpy(dtype=np.float64),
            "C": features[c_col].to_numpy(dtype=np.float64),
            "label": np.where(pref == 1, "preferred", "other"),
        }
    )


def complexity_bounds(n_states: int, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound curves of C(H) for ``n_states`` patterns, each as an ``(k, 2)`` array
    of ``(H, C)`` points sorted by H.

    Lower: one probability ``p`` in ``[1/n, 1]``, the rest equal. Upper: ``j`` patterns absent, one
    with ``p`` in ``[0, 1/(n-j)]``, the rest equal, for ``j = 0 .. n-2``.
    """
    if n_states < 2:
        raise ValueError("need at least two patterns")
    n = n_states
    lower = []
    for p in np.linspace(1.0 / n, 1.0, points):
        probs = np.full(n, (1.0 - p) / (n - 1))
        probs[0] = p
        lower.append(entropy_complexity_from_counts(probs, n))
    upper = []
    per_segment = max(4, points // min(n - 1, 50))
    for j in range(n - 1):
        k = n - j  # patterns present
        for p in np.linspace(0.0, 1.0 / k, per_segment):
            probs = np.full(k, (1.0 - p) / (k - 1))
            probs[0] = p
            if probs.sum() <= 0:
                continue
            upper.append(entropy_complexity_from_counts(probs, n))
    lo = np.array(sorted(lower))
    hi = np.array(sorted(upper))
    return lo, hi


def plot_plane(
    rows: pd.DataFrame | None,
    path: str | Path,
    spec: FeatureSpec | None,
    title: str = "Complexity-entropy plane of the training images",
) -> Path:
    """Scatter of ``rows`` (from :func:`plane_rows`) with the C(H) bounds, saved as a PNG.

    Without a ``spec`` (no entropy feature was computed) the PNG says so, so that the file a
    pipeline declares always exists.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec is None or rows is None:
        fig, ax = plt.subplots(figsize=(6.0, 1.5), dpi=120)
        ax.axis("off")
        ax.text(0.5, 0.5, "no entropy-complexity feature in this model", ha="center", va="center")
        fig.savefig(path)
        plt.close(fig)
        return path
    n_states = math.factorial(spec.dx * spec.dy)
    lo, hi = complexity_bounds(n_states)
    fig, ax = plt.subplots(figsize=(6.0, 4.5), dpi=120)
    try:
        ax.plot(lo[:, 0], lo[:, 1], color="0.6", lw=1, label="C bounds")
        ax.plot(hi[:, 0], hi[:, 1], color="0.6", lw=1)
        for label, colour in (("other", "tab:red"), ("preferred", "tab:blue")):
            sub = rows[rows["label"] == label]
            ax.scatter(
                sub["H"],
                sub["C"],
                s=6,
                alpha=0.5,
                color=colour,
                label=f"{label} (n={len(sub)})",
                edgecolors="none",
            )
            if len(sub):
                ax.scatter(
                    [sub["H"].mean()],
                    [sub["C"].mean()],
                    s=80,
                    marker="X",
                    color=colour,
                    edgecolors="black",
                    linewidths=0.8,
                )
        if len(rows):
            h_min = max(0.0, float(rows["H"].min()) - 0.05)
            c_max = float(max(rows["C"].max(), 0.0))
            ax.set_xlim(h_min, 1.0)
            ax.set_ylim(0.0, min(0.5, c_max * 1.3 + 0.01))
        ax.set_xlabel("permutation entropy H")
        ax.set_ylabel("statistical complexity C")
        ax.set_title(
            f"{title}\n(dx={spec.dx}, dy={spec.dy}, taux={spec.taux}, "
            f"tauy={spec.tauy}, scale={spec.scale}; X = class mean)",
            fontsize=9,
        )
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    log.info("wrote %s", path)
    return path
