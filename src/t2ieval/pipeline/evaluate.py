"""The ``evaluate`` stage: final accuracies with intervals, ``result.csv``, plot series; then the
MLflow pipeline run and the registered composite model.

Every accuracy comes with a 95 % percentile-bootstrap interval over prompt groups
(:mod:`t2ieval.uncertainty`): ``<metric>_ci_low`` and ``<metric>_ci_high``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from t2ieval.branches import BRANCHES
from t2ieval.io import read_json, read_table
from t2ieval.metrics import accuracy_report, pair_credit
from t2ieval.params import Params
from t2ieval.paths import FUSED_DIR, RESULT_FILE
from t2ieval.probability import reliability

RESULT_COLUMNS = [
    "pair_id",
    "prompt",
    "image_1",
    "image_2",
    "category",
    "clip_score_1",
    "clip_score_2",
    "ce_score_1",
    "ce_score_2",
    "d_score_1",
    "d_score_2",
    "fused_fixed_1",
    "fused_fixed_2",
    "fused_learned_1",
    "fused_learned_2",
    "score_1",
    "score_2",
    "verdict",
    "p_1_over_2",
    "preferred",
    "correct",
]


@dataclass
class Evaluation:
    metrics: dict
    result: pd.DataFrame  # the test split, one row per pair
    confusion: pd.DataFrame  # actual, predicted (one row per test pair)
    roc: pd.DataFrame  # fpr, tpr, threshold of the fused score difference (test)
    per_category: pd.DataFrame  # split, category, accuracy, ci_low, ci_high, pairs
    calibration: pd.DataFrame  # reliability of p_1_over_2 on test: bin, predicted, observed, pairs


def evaluate(fused: pd.DataFrame, mode: str, seed: int = 0) -> Evaluation:
    """Metrics of the fused table written by the ``fuse`` stage (all splits).

    ``val_accuracy`` is the honest validation accuracy of the chosen fusion: out-of-fold for
    learned weights (``fused_learned_oof_*``), since they were fitted on the validation split.
    """
    table = fused[fused["split"].isin(("val", "test"))].copy()
    val = (table["split"] == "val").to_numpy()
    honest = "fused_learned_oof" if mode == "learned" else "fused_fixed"
    table["eval_1"] = np.where(val, table[f"{honest}_1"], table["score_1"])
    table["eval_2"] = np.where(val, table[f"{honest}_2"], table["score_2"])
    table["oof_1"], table["oof_2"] = table["fused_learned_oof_1"], table["fused_learned_oof_2"]
    branches = [
        b
        for b in BRANCHES
        if f"{b}_score_1" in fused.columns and fused[f"{b}_score_1"].notna().any()
    ]
    metrics: dict = {
        f"pairs_{s}": int((fused["split"] == s).sum()) for s in ("train", "val", "test")
    }
    metrics.update({"mode": mode, "branches": ",".join(branches)})

    def report(name, s1, s2, splits=("val", "test"), categories=()):
        return accuracy_report(
            table,
            name,
            s1,
            s2,
            splits=splits,
            category_splits=categories,
            intervals=True,
            seed=seed,
        )

    metrics.update(report("", "eval_1", "eval_2", categories=("val", "test")))
    metrics.update(report("fixed_weights", "fused_fixed_1", "fused_fixed_2"))
    metrics.update(report("learned_weights", "oof_1", "oof_2", splits=("val",)))
    metrics.update(
        report("learned_weights", "fused_learned_1", "fused_learned_2", splits=("test",))
    )
    for b in branches:
        metrics.update(report(b, f"{b}_score_1", f"{b}_score_2"))
    best_branch = max(metrics[f"val_accuracy_{b}"] for b in branches)
    metrics["val_gain_over_best_branch"] = metrics["val_accuracy"] - best_branch

    per_category = pd.DataFrame(
        [
            {
                "split": split,
                "category": key.split(".", 1)[1],
                "accuracy": value,
                "ci_low": metrics[f"{key}_ci_low"],
                "ci_high": metrics[f"{key}_ci_high"],
                "pairs": metrics[f"{split}_pairs.{key.split('.', 1)[1]}"],
            }
            for split in ("val", "test")
            for key, value in metrics.items()
            if key.startswith(f"{split}_accuracy.") and not key.endswith(("_ci_low", "_ci_high"))
        ],
        columns=["split", "category", "accuracy", "ci_low", "ci_high", "pairs"],
    )

    test = fused[fused["split"] == "test"]
    result = test.copy()
    result["correct"] = pair_credit(result["score_1"], result["score_2"], result["preferred"])
    result = result[[c for c in RESULT_COLUMNS if c in result.columns]]
    confusion = pd.DataFrame(
        {
            "actual": test["preferred"].astype(int).map(lambda v: f"image {v}"),
            "predicted": test["verdict"].astype(int).map(lambda v: f"image {v}" if v else "tie"),
        }
    )
    diff = (test["score_1"] - test["score_2"]).to_numpy(float)
    truth = (test["preferred"].astype(int) == 1).to_numpy(int)
    if len(np.unique(truth)) == 2:
        fpr, tpr, thr = roc_curve(truth, diff)
        metrics["test_roc_auc"] = float(roc_auc_score(truth, diff))
    else:
        fpr, tpr, thr = np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([np.inf, -np.inf])
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.clip(thr, -1e9, 1e9)})
    calibration, metrics["test_ece"] = reliability(test["p_1_over_2"], test["preferred"])
    return Evaluation(metrics, result, confusion, roc, per_category, calibration)


def evaluate_stage(params: Params) -> Evaluation:
    """Read the ``fuse`` stage's table and evaluate it."""
    fused = read_table(
        FUSED_DIR / "pairs.csv",
        ["pair_id", "split", "score_1", "score_2", "preferred", "verdict", "category", "prompt"],
    )
    fused["pair_id"] = fused["pair_id"].astype(str)
    return evaluate(fused, read_json("metrics/fuse.json")["mode"], seed=params.base.seed)


def track_and_register(params: Params, evaluation: Evaluation) -> dict:
    """Log this pipeline execution to MLflow (params, every stage's metrics, plots), log the
    composite model into it and register it; returns what MLflow assigned (run id, version)."""
    import mlflow

    from t2ieval.scoring import ARTIFACT_DIRS
    from t2ieval.serving.package import input_example, log_composite_model
    from t2ieval.tracking import log_pipeline_execution, register_model

    p = params.evaluate
    run = log_pipeline_execution(
        ".", params.to_flat_dict(), [RESULT_FILE, Path("params.yaml"), Path("dvc.yaml")]
    )
    try:
        first = evaluation.result.iloc[0]
        info = log_composite_model(
            ARTIFACT_DIRS, input_example(first["prompt"], first["image_1"], first["image_2"])
        )
        version, promoted = register_model(
            run.run_id, info.model_uri, p.model_name, p.alias, evaluation.metrics["val_accuracy"]
        )
    finally:
        mlflow.end_run()
    return {
        "run_id": run.run_id,
        "model_name": p.model_name,
        "version": version,
        "alias": p.alias,
        "promoted": promoted,
        "model_uri": f"models:/{p.model_name}/{version}",
    }
