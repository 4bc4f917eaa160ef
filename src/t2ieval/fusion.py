"""Fusing the branch scores into one: the published weights, or a fusion learned on validation.

A fused score is ``sum_b w_b * (s_b - mean_b) / std_b`` over the active branches: ``clip``, ``ce``
and ``d``, or the first two when the D-branch is off (``vqa.enabled: false``). The published
weights (0.95, 0.04, 0.01) apply to raw scores (mean 0, std 1), as in the report.

**Learned fusion, and why it cannot be dragged below its best branch.** On user data a branch can
sit at chance (a CLIP trained from scratch on a few hundred real pairs does), and a weighted sum
fitted on a small validation split can then do worse than the best branch alone. So the learned
fusion is a *choice*, made by prompt-grouped cross-validation on the validation pairs, among

* each branch alone (its standardised score), and
* a logistic regression without intercept on the per-pair differences of standardised scores
  (mirrored pairs, so it is symmetric in the slots), at each inverse penalty of
  :data:`FUSION_C_GRID` (strong penalties shrink the weights towards equal ones);

the candidate with the best out-of-fold accuracy wins (ties: a single branch before a fit, a
stronger penalty before a weaker one) and is refitted on all validation pairs. Its validation
accuracy is estimated by **nested** cross-validation (the choice made again inside every outer
training fold), so that the reported number pays for the choice. Choosing among candidates that
include every branch alone means the fusion falls below the best branch only by the noise of
that choice on held-out prompts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from t2ieval.branches import BRANCHES, PUBLISHED_WEIGHTS
from t2ieval.data.split import prompt_key
from t2ieval.io import read_json, write_json
from t2ieval.metrics import pair_credit, pairwise_accuracy
from t2ieval.probability import symmetric_sigmoid

log = logging.getLogger(__name__)

#: a branch whose scores vary less than this is treated as constant: dividing by a tinier spread
#: would turn float noise (1e-7) into verdicts
MIN_STD = 1e-3
#: inverse penalties of the logistic fusion among which grouped CV chooses
FUSION_C_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)


@dataclass(frozen=True)
class FusionWeights:
    """Weights and standardisation of each branch; :meth:`fuse` turns branch scores into one."""

    mode: str
    weights: dict[str, float]
    mean: dict[str, float] = field(default_factory=lambda: {b: 0.0 for b in BRANCHES})
    std: dict[str, float] = field(default_factory=lambda: {b: 1.0 for b in BRANCHES})
    choice: str = ""  # learned: which candidate won, e.g. "logistic_c1" or "branch_ce"
    scale: float = 0.0  # p_1_over_2 = sigmoid(scale * (s_1 - s_2)), fitted on validation pairs

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

    def probability(self, score_1, score_2) -> np.ndarray:
        """``p_1_over_2``: the probability that image 1 is preferred, from the fused scores;
        swapping the images gives exactly ``1 - p`` (NaN where a score is missing)."""
        return symmetric_sigmoid(
            self.scale * (np.asarray(score_1, dtype=float) - np.asarray(score_2, dtype=float))
        )

    def save(self, path: str | Path) -> Path:
        return write_json(path, asdict(self))

    @staticmethod
    def load(path: str | Path) -> FusionWeights:
        raw = read_json(path)
        unknown = set(raw["weights"]) - set(BRANCHES)
        if unknown:
            raise ValueError(f"{path}: unknown branch(es) {sorted(unknown)}")
        return FusionWeights(**raw)


def fixed_weights(
    weights: Mapping[str, float] = PUBLISHED_WEIGHTS, branches: tuple[str, ...] = BRANCHES
) -> FusionWeights:
    """The published weights on raw scores, for the active ``branches``."""
    unknown = set(weights) - set(BRANCHES)
    if unknown:
        raise ValueError(
            f"fuse.fixed_weights: unknown branch(es) {sorted(unknown)}; known: {list(BRANCHES)}"
        )
    return FusionWeights(
        mode="fixed",
        weights={b: float(weights.get(b, 0.0)) for b in branches},
        mean={b: 0.0 for b in branches},
        std={b: 1.0 for b in branches},
    )


def _standardisation(
    table: pd.DataFrame, branches: tuple[str, ...]
) -> tuple[dict[str, float], dict[str, float]]:
    mean, std = {}, {}
    for b in branches:
        values = np.concatenate([table[f"{b}_score_1"], table[f"{b}_score_2"]]).astype(float)
        mean[b] = float(values.mean())
        std[b] = max(float(values.std()), MIN_STD)
    return mean, std


def _differences(table: pd.DataFrame, std: dict) -> np.ndarray:
    cols = [
        (table[f"{b}_score_1"].to_numpy(float) - table[f"{b}_score_2"].to_numpy(float)) / std[b]
        for b in std
    ]
    return np.stack(cols, axis=1)


def learn_weights(
    table: pd.DataFrame, seed: int = 0, branches: tuple[str, ...] = BRANCHES, C: float = 1.0
) -> FusionWeights:
    """Logistic-regression weights on ``table`` (pairs with each of ``branches``' scores and
    ``preferred``), inverse penalty ``C``; normalised so that ``sum |w| = 1`` (the verdicts do
    not change)."""
    from sklearn.linear_model import LogisticRegression

    if len(table) < 4:
        raise ValueError(
            f"need at least 4 validation pairs to learn fusion weights, got {len(table)}"
        )
    mean, std = _standardisation(table, branches)
    x = _differences(table, std)
    y = (table["preferred"].astype(int) == 1).astype(int).to_numpy()
    # mirror every pair so both classes are present and the fit is symmetric in the slots
    x2, y2 = np.concatenate([x, -x]), np.concatenate([y, 1 - y])
    model = LogisticRegression(fit_intercept=False, C=C, random_state=seed, max_iter=1000)
    model.fit(x2, y2)
    w = model.coef_[0]
    norm = float(np.abs(w).sum()) or 1.0
    weights = {b: float(v / norm) for b, v in zip(branches, w)}
    return FusionWeights(
        mode="learned", weights=weights, mean=mean, std=std, choice=f"logistic_c{C:g}"
    )


def single_branch(
    table: pd.DataFrame, branch: str, branches: tuple[str, ...] = BRANCHES
) -> FusionWeights:
    """The fusion that is one branch alone (standardised on ``table``, the others weigh 0)."""
    mean, std = _standardisation(table, branches)
    return FusionWeights(
        mode="learned",
        weights={b: float(b == branch) for b in branches},
        mean=mean,
        std=std,
        choice=f"branch_{branch}",
    )


def _candidates(branches: tuple[str, ...]) -> list[tuple[str, object]]:
    """Candidates in tie-break order: each branch alone, then the logistic fit, penalty falling."""
    return [("branch", b) for b in branches] + [("logistic", c) for c in FUSION_C_GRID]


def _name(candidate: tuple[str, object]) -> str:
    kind, value = candidate
    return f"branch_{value}" if kind == "branch" else f"logistic_c{float(value):g}"


def _fit(
    table: pd.DataFrame, candidate: tuple[str, object], seed: int, branches: tuple[str, ...]
) -> FusionWeights:
    kind, value = candidate
    if kind == "branch":
        return single_branch(table, str(value), branches)
    return learn_weights(table, seed, branches, float(value))


def _group_folds(table: pd.DataFrame, folds: int):
    from sklearn.model_selection import GroupKFold

    groups = table["prompt"].map(prompt_key).to_numpy()
    n_groups = len(set(groups))
    folds = min(folds, n_groups)
    if folds < 2:
        raise ValueError(f"cross-validation needs >= 2 prompt groups, got {n_groups}")
    return list(GroupKFold(n_splits=folds).split(table, groups=groups))


def choose_fusion(
    table: pd.DataFrame, folds: int, seed: int = 0, branches: tuple[str, ...] = BRANCHES
) -> tuple[FusionWeights, dict[str, float]]:
    """The learned fusion (see the module doc): the candidate with the best prompt-grouped
    out-of-fold accuracy on ``table``, refitted on all of it; and every candidate's accuracy."""
    splits = _group_folds(table, folds)
    scores: dict[str, float] = {}
    best: tuple[str, object] | None = None
    for candidate in _candidates(branches):
        credit = np.zeros(len(table))
        for train_idx, test_idx in splits:
            fusion = _fit(table.iloc[train_idx], candidate, seed, branches)
            held = table.iloc[test_idx]
            s1, s2 = fused_pair_scores(held, fusion)
            credit[test_idx] = pair_credit(s1, s2, held["preferred"])
        scores[_name(candidate)] = float(credit.mean())
        if best is None or scores[_name(candidate)] > scores[_name(best)]:
            best = candidate
    chosen = _fit(table, best, seed, branches)
    log.info(
        "learned fusion: %s (grouped-CV accuracy %s)",
        chosen.choice,
        {k: round(v, 4) for k, v in scores.items()},
    )
    return chosen, scores


def fused_pair_scores(table: pd.DataFrame, fusion: FusionWeights) -> tuple[np.ndarray, np.ndarray]:
    """Fused score of image 1 and image 2 of every pair of ``table``."""
    s1 = fusion.fuse({b: table[f"{b}_score_1"].to_numpy(float) for b in fusion.weights})
    s2 = fusion.fuse({b: table[f"{b}_score_2"].to_numpy(float) for b in fusion.weights})
    return s1, s2


def out_of_fold_scores(
    table: pd.DataFrame, folds: int, seed: int = 0, branches: tuple[str, ...] = BRANCHES
) -> tuple[np.ndarray, np.ndarray]:
    """Fused scores of every pair of ``table`` by a fusion chosen and fitted without its prompt
    group (nested: :func:`choose_fusion` runs inside each outer training fold): an honest score
    for the validation pairs the learned fusion is chosen on."""
    s1, s2 = np.full(len(table), np.nan), np.full(len(table), np.nan)
    for train_idx, test_idx in _group_folds(table, folds):
        fusion, _ = choose_fusion(table.iloc[train_idx], folds, seed, branches)
        s1[test_idx], s2[test_idx] = fused_pair_scores(table.iloc[test_idx], fusion)
    return s1, s2


def cross_validated_accuracy(
    table: pd.DataFrame, folds: int, seed: int = 0, branches: tuple[str, ...] = BRANCHES
) -> float:
    """Accuracy of learned weights on held-out prompt groups of ``table``."""
    s1, s2 = out_of_fold_scores(table, folds, seed, branches)
    return pairwise_accuracy(s1, s2, table["preferred"])
