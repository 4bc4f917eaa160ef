"""Fusing the three branch scores into one: the published weights, or weights learned on validation.

A fused score is ``sum_b w_b * (s_b - mean_b) / std_b`` over the active branches: ``clip``, ``ce``
and ``d``, or the first two when the D-branch is off (``vqa.enabled: false``). The published weights (0.95, 0.04, 0.01) apply to raw scores (mean 0, std 1), as in the
report. Learned weights apply to scores standardised on the validation images, since the branches
live on different scales: a logistic regression without intercept on the per-pair differences of
standardised scores predicts whether image 1 is preferred.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from t2ieval.branches import BRANCHES, PUBLISHED_WEIGHTS
from t2ieval.data.split import prompt_key
from t2ieval.io import read_json, write_json
from t2ieval.metrics import pairwise_accuracy

log = logging.getLogger(__name__)

#: a branch whose scores vary less than this is treated as constant: dividing by a tinier spread
#: would turn float noise (1e-7) into verdicts
MIN_STD = 1e-3


@dataclass(frozen=True)
class FusionWeights:
    """Weights and standardisation of each branch; :meth:`fuse` turns branch scores into one."""

    mode: str
    weights: dict[str, float]
    mean: dict[str, float] = field(default_factory=lambda: {b: 0.0 for b in BRANCHES})
    std: dict[str, float] = field(default_factory=lambda: {b: 1.0 for b in BRANCHES})

    def fuse(self, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        """Fused score of each image from its ``{"clip": ..., "ce": ..., "d": ...}`` scores."""
        missing = [b for b in self.weights if b not in scores]
        if missing:
            raise KeyError(f"branch score(s) {missing} missing for fusion")
        total = None
        for b, w in self.weights.items():
            part = w * (np.asarray(scores[b], dtype=float) - self.mean[b]) / self.std[b]
            total = part if total is None else total + part
        return np.asarray(total)

    def save(self, path: str | Path) -> Path:
        return write_json(path, asdict(self))

    @staticmethod
    def load(path: str | Path) -> "FusionWeights":
        raw = read_json(path)
        unknown = set(raw["weights"]) - set(BRANCHES)
        if unknown:
            raise ValueError(f"{path}: unknown branch(es) {sorted(unknown)}")
        return FusionWeights(**raw)


def fixed_weights(weights: Mapping[str, float] = PUBLISHED_WEIGHTS,
                  branches: tuple[str, ...] = BRANCHES) -> FusionWeights:
    """The published weights on raw scores, for the active ``branches``."""
    unknown = set(weights) - set(BRANCHES)
    if unknown:
        raise ValueError(f"fuse.fixed_weights: unknown branch(es) {sorted(unknown)}; "
                         f"known: {list(BRANCHES)}")
    return FusionWeights(mode="fixed", weights={b: float(weights.get(b, 0.0)) for b in branches},
                         mean={b: 0.0 for b in branches}, std={b: 1.0 for b in branches})


def _standardisation(table: pd.DataFrame, branches: tuple[str, ...]
                     ) -> tuple[dict[str, float], dict[str, float]]:
    mean, std = {}, {}
    for b in branches:
        values = np.concatenate([table[f"{b}_score_1"], table[f"{b}_score_2"]]).astype(float)
        mean[b] = float(values.mean())
        std[b] = max(float(values.std()), MIN_STD)
    return mean, std


def _differences(table: pd.DataFrame, std: dict) -> np.ndarray:
    cols = [(table[f"{b}_score_1"].to_numpy(float) - table[f"{b}_score_2"].to_numpy(float)) / std[b]
            for b in std]
    return np.stack(cols, axis=1)


def learn_weights(table: pd.DataFrame, seed: int = 0,
                  branches: tuple[str, ...] = BRANCHES) -> FusionWeights:
    """Weights learned on ``table`` (pairs with each of ``branches``' scores and ``preferred``).

    The weights are normalised so their absolute values sum to 1 (the verdicts do not change).
    """
    from sklearn.linear_model import LogisticRegression

    if len(table) < 4:
        raise ValueError(f"need at least 4 validation pairs to learn fusion weights, got {len(table)}")
    mean, std = _standardisation(table, branches)
    x = _differences(table, std)
    y = (table["preferred"].astype(int) == 1).astype(int).to_numpy()
    # mirror every pair so both classes are present and the fit is symmetric in the slots
    x2, y2 = np.concatenate([x, -x]), np.concatenate([y, 1 - y])
    model = LogisticRegression(fit_intercept=False, C=1.0, random_state=seed, max_iter=1000)
    model.fit(x2, y2)
    w = model.coef_[0]
    norm = float(np.abs(w).sum()) or 1.0
    weights = {b: float(v / norm) for b, v in zip(branches, w)}
    log.info("learned fusion weights %s", weights)
    return FusionWeights(mode="learned", weights=weights, mean=mean, std=std)


def fused_pair_scores(table: pd.DataFrame, fusion: FusionWeights) -> tuple[np.ndarray, np.ndarray]:
    """Fused score of image 1 and image 2 of every pair of ``table``."""
    s1 = fusion.fuse({b: table[f"{b}_score_1"].to_numpy(float) for b in fusion.weights})
    s2 = fusion.fuse({b: table[f"{b}_score_2"].to_numpy(float) for b in fusion.weights})
    return s1, s2


def out_of_fold_scores(table: pd.DataFrame, folds: int, seed: int = 0,
                       branches: tuple[str, ...] = BRANCHES) -> tuple[np.ndarray, np.ndarray]:
    """Fused scores of every pair of ``table`` by weights learned without its prompt group
    (GroupKFold by prompt): an honest score for in-sample pairs."""
    from sklearn.model_selection import GroupKFold

    groups = table["prompt"].map(prompt_key).to_numpy()
    n_groups = len(set(groups))
    folds = min(folds, n_groups)
    if folds < 2:
        raise ValueError(f"cross-validation needs >= 2 prompt groups, got {n_groups}")
    s1, s2 = np.full(len(table), np.nan), np.full(len(table), np.nan)
    for train_idx, test_idx in GroupKFold(n_splits=folds).split(table, groups=groups):
        fusion = learn_weights(table.iloc[train_idx], seed, branches)
        s1[test_idx], s2[test_idx] = fused_pair_scores(table.iloc[test_idx], fusion)
    return s1, s2


def cross_validated_accuracy(table: pd.DataFrame, folds: int, seed: int = 0,
                             branches: tuple[str, ...] = BRANCHES) -> float:
    """Accuracy of learned weights on held-out prompt groups of ``table``."""
    s1, s2 = out_of_fold_scores(table, folds, seed, branches)
    return pairwise_accuracy(s1, s2, table["preferred"])
