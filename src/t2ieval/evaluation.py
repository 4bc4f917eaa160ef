"""The ``evaluate`` stage's numbers: accuracies, the test ``result.csv`` and the plot series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from t2ieval.fusion import BRANCHES
from t2ieval.metrics import accuracy_by, pairwise_accuracy

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
    per_category: pd.DataFrame    # split, category, accuracy, pairs


def evaluate(fused: pd.DataFrame, fuse_metrics: dict) -> Evaluation:
    """Metrics of the fused table written by the ``fuse`` stage (all splits)."""
    metrics: dict = {}
    parts = {s: fused[fused["split"] == s] for s in ("train", "val", "test")}
    for split, part in parts.items():
        metrics[f"pairs_{split}"] = int(len(part))
    val, test = parts["val"], parts["test"]
    metrics["val_accuracy"] = float(fuse_metrics["val_accuracy"])
    metrics["test_accuracy"] = pairwise_accuracy(test["score_1"], test["score_2"], test["preferred"])
    for key in ("val_accuracy_fixed_weights", "val_accuracy_learned_weights",
                "test_accuracy_fixed_weights", "test_accuracy_learned_weights"):
        metrics[key] = float(fuse_metrics[key])
    for b in BRANCHES:
        for split, part in (("val", val), ("test", test)):
            metrics[f"{split}_accuracy_{b}"] = pairwise_accuracy(
                part[f"{b}_score_1"], part[f"{b}_score_2"], part["preferred"])
    best_branch = max(metrics[f"val_accuracy_{b}"] for b in BRANCHES)
    metrics["val_gain_over_best_branch"] = metrics["val_accuracy"] - best_branch

    rows = []
    for split, part in (("val", val), ("test", test)):
        if part.empty:
            continue
        acc = accuracy_by(part, "category")
        counts = part["category"].value_counts()
        for cat, a in acc.items():
            metrics[f"{split}_accuracy_category.{cat}"] = a
            metrics[f"{split}_pairs_category.{cat}"] = int(counts[cat])
            rows.append({"split": split, "category": cat, "accuracy": a, "pairs": int(counts[cat])})
    per_category = pd.DataFrame(rows, columns=["split", "category", "accuracy", "pairs"])

    result = test.copy()
    result["correct"] = (result["verdict"] == result["preferred"]).astype(int)
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
