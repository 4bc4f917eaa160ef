"""The ``evaluate`` stage's numbers: accuracies with intervals, ``result.csv`` and plot series.

Every accuracy comes with a 95 % percentile-bootstrap interval over prompt groups
(:mod:`t2ieval.uncertainty`): ``<metric>_ci_low`` and ``<metric>_ci_high``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from t2ieval.data.split import prompt_key
from t2ieval.fusion import BRANCHES
from t2ieval.metrics import pair_credit
from t2ieval.uncertainty import bootstrap_accuracy_interval

RESULT_COLUMNS = ["pair_id", "prompt", "image_1", "image_2", "category",
                  "clip_score_1", "clip_score_2", "ce_score_1", "ce_score_2",
                  "d_score_1", "d_score_2", "fused_fixed_1", "fused_fixed_2",
                  "fused_learned_1", "fused_learned_2", "score_1", "score_2",
                  "verdict", "preferred", "correct"]


@dataclass
class Evaluation:
    metrics: dict
    result: pd.DataFrame          # the test split, one row per pair
    confusion: pd.DataFrame       # actual, predicted (one row per test pair)
    roc: pd.DataFrame             # fpr, tpr, threshold of the fused score difference (test)
    per_category: pd.DataFrame    # split, category, accuracy, ci_low, ci_high, pairs


def _accuracy(metrics: dict, name: str, part: pd.DataFrame, s1: str, s2: str,
              seed: int) -> float:
    """Put ``name`` and its interval into ``metrics``; returns the accuracy."""
    if part.empty:
        metrics[name] = metrics[f"{name}_ci_low"] = metrics[f"{name}_ci_high"] = None
        return float("nan")
    credit = pair_credit(part[s1], part[s2], part["preferred"])
    low, high = bootstrap_accuracy_interval(credit, part["prompt"].map(prompt_key), seed=seed)
    metrics[name] = float(credit.mean())
    metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = low, high
    return metrics[name]


def evaluate(fused: pd.DataFrame, fuse_metrics: dict, seed: int = 0) -> Evaluation:
    """Metrics of the fused table written by the ``fuse`` stage (all splits).

    ``val_accuracy`` is the honest validation accuracy of the chosen fusion: out-of-fold for
    learned weights (``fused_learned_oof_*``), since they were fitted on the validation split.
    """
    metrics: dict = {}
    parts = {s: fused[fused["split"] == s] for s in ("train", "val", "test")}
    for split, part in parts.items():
        metrics[f"pairs_{split}"] = int(len(part))
    val, test = parts["val"], parts["test"]
    mode = fuse_metrics["mode"]
    branches = [b for b in BRANCHES if f"{b}_score_1" in fused.columns
                and fused[f"{b}_score_1"].notna().any()]
    metrics["mode"] = mode
    metrics["branches"] = ",".join(branches)
    _accuracy(metrics, "val_accuracy_fixed_weights", val, "fused_fixed_1", "fused_fixed_2", seed)
    _accuracy(metrics, "val_accuracy_learned_weights", val, "fused_learned_oof_1",
              "fused_learned_oof_2", seed)
    metrics["val_accuracy_learned_weights_in_sample"] = \
        fuse_metrics["val_accuracy_learned_weights_in_sample"]
    for split, part in (("test", test),):
        for name in ("fixed", "learned"):
            _accuracy(metrics, f"{split}_accuracy_{name}_weights", part, f"fused_{name}_1",
                      f"fused_{name}_2", seed)
    chosen = "fixed" if mode == "fixed" else "learned"
    for suffix in ("", "_ci_low", "_ci_high"):
        metrics[f"val_accuracy{suffix}"] = metrics[f"val_accuracy_{chosen}_weights{suffix}"]
    _accuracy(metrics, "test_accuracy", test, "score_1", "score_2", seed)
    for b in branches:
        for split, part in (("val", val), ("test", test)):
            _accuracy(metrics, f"{split}_accuracy_{b}", part, f"{b}_score_1", f"{b}_score_2",
                      seed)
    best_branch = max(metrics[f"val_accuracy_{b}"] for b in branches)
    metrics["val_gain_over_best_branch"] = metrics["val_accuracy"] - best_branch

    rows = []
    for split, part in (("val", val), ("test", test)):
        for cat, group in part.groupby("category", sort=True):
            acc = _accuracy(metrics, f"{split}_accuracy_category.{cat}", group, "score_1",
                            "score_2", seed)
            metrics[f"{split}_pairs_category.{cat}"] = int(len(group))
            rows.append({"split": split, "category": str(cat), "accuracy": acc,
                         "ci_low": metrics[f"{split}_accuracy_category.{cat}_ci_low"],
                         "ci_high": metrics[f"{split}_accuracy_category.{cat}_ci_high"],
                         "pairs": int(len(group))})
    per_category = pd.DataFrame(rows, columns=["split", "category", "accuracy", "ci_low",
                                               "ci_high", "pairs"])

    result = test.copy()
    result["correct"] = pair_credit(result["score_1"], result["score_2"], result["preferred"])
    result = result[[c for c in RESULT_COLUMNS if c in result.columns]]

    confusion = pd.DataFrame({"actual": test["preferred"].astype(int).map(lambda v: f"image {v}"),
                              "predicted": test["verdict"].astype(int).map(
                                  lambda v: f"image {v}" if v else "tie")})
    diff = (test["score_1"] - test["score_2"]).to_numpy(float)
    truth = (test["preferred"].astype(int) == 1).to_numpy(int)
    if len(np.unique(truth)) == 2:
        fpr, tpr, thr = roc_curve(truth, diff)
        metrics["test_roc_auc"] = float(roc_auc_score(truth, diff))
    else:
        fpr, tpr, thr = np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([np.inf, -np.inf])
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.clip(thr, -1e9, 1e9)})
    return Evaluation(metrics, result, confusion, roc, per_category)
