"""DVC stage ``evaluate``: final metrics with intervals, result.csv, plots; then the MLflow run
and the registered model.

DVC outputs hold no run id or timestamp: what MLflow assigned (run id, model version, whether the
alias moved) goes to ``reports/registry.json``, which DVC does not track.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow

from t2ieval.evaluation import evaluate
from t2ieval.io import read_json, read_table, write_json, write_metrics, write_plot, write_table
from t2ieval.paths import FUSED_DIR, REGISTRY_FILE, RESULT_FILE
from t2ieval.pipeline import start_stage
from t2ieval.scoring import ARTIFACT_DIRS
from t2ieval.serving.package import input_example, log_composite_model
from t2ieval.tracking import log_pipeline_execution, register_model

log = logging.getLogger("stages.evaluate")


def main() -> None:
    params = start_stage()
    p = params.evaluate
    fused = read_table(FUSED_DIR / "pairs.csv", ["pair_id", "split", "score_1", "score_2",
                                                 "preferred", "verdict", "category"])
    fused["pair_id"] = fused["pair_id"].astype(str)
    result = evaluate(fused, read_json("metrics/fuse.json"), seed=params.base.seed)
    write_table(RESULT_FILE, result.result)
    write_plot("evaluate", "confusion", result.confusion)
    write_plot("evaluate", "roc", result.roc)
    write_plot("evaluate", "category", result.per_category)
    write_metrics("evaluate", result.metrics)

    run = log_pipeline_execution(".", params.to_flat_dict(),
                                 [RESULT_FILE, Path("params.yaml"), Path("dvc.yaml")])
    try:
        first = result.result.iloc[0]
        info = log_composite_model(ARTIFACT_DIRS, input_example(first["prompt"], first["image_1"],
                                                                first["image_2"]))
        version, promoted = register_model(run.run_id, info.model_uri, p.model_name, p.alias,
                                           result.metrics["val_accuracy"])
    finally:
        mlflow.end_run()
    write_json(REGISTRY_FILE,
               {"run_id": run.run_id, "model_name": p.model_name, "version": version,
                "alias": p.alias, "promoted": promoted,
                "model_uri": f"models:/{p.model_name}/{version}"})


if __name__ == "__main__":
    main()
