"""Pairwise accuracy and its relatives, the one definition every stage uses."""

from __future__ import annotations

import numpy as np
import pandas as pd


def verdicts(score_1: np.ndarray, score_2: np.ndarray) -> np.ndarray:
    """1 where image 1 scores higher, 2 where image 2 does, 0 for an exact tie."""
    s1 = np.asarray(score_1, dtype=float)
    s2 = np.asarray(score_2, dtype=float)
    return np.where(s1 > s2, 1, np.where(s2 > s1, 2, 0))


def pairwise_accuracy(score_1, score_2, preferred) -> float:
    """Share of pairs whose preferred image scores higher; an exact tie counts as half right."""
    v = verdicts(score_1, score_2)
    truth = np.asarray(preferred, dtype=int)
    if len(truth) == 0:
        return float("nan")
    return float(np.mean(np.where(v == 0, 0.5, (v == truth).astype(float))))


def accuracy_by(frame: pd.DataFrame, by: str, s1: str = "score_1", s2: str = "score_2",
                truth: str = "preferred") -> dict[str, float]:
    """Pairwise accuracy per value of column ``by`` (e.g. per category)."""
    return {str(k): pairwise_accuracy(g[s1], g[s2], g[truth])
            for k, g in frame.groupby(by, sort=True)}
