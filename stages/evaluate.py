"""DVC stage ``evaluate``: final metrics, result.csv, plots; MLflow run and registered model."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow

from t2ieval.evaluation import evaluate
from t2ieval.io import read_json, read_table, write_json, write_metrics, write_plot, write_table
from t2ieval.params import load_params
from t2ieval.paths import FUSED_DIR, REPORTS_DIR
from t2ieval.scoring import ARTIFACT_DIRS
from t2ieval.serving.package import input_example, log_composite_model
from t2ieval.tracking import STAGES, log_pipeline_execution, register_model
from t2ieval.runtime import setup_logging

log = logging.getLogger("stages.evaluate")


def main() -> None:
    setup_logging()
    params = load_params()
    p = params.evaluate
    fused = read_table(FUSED_DIR / "pairs.csv", ["pair_id", "split", "score_1", "score_2",
                                                 "preferred", "verdict", "category"])
    fused["pair_id"] = fused["pair_id"].astype(str)
    result = evaluate(fused, read_json("metrics/fuse.json"))
    write_table(REPORTS_DIR / "result.csv", result.result)
    write_plot("evaluate", "confusion", result.confusion)
    write_plot("evaluate", "roc", result.roc)
    write_plot("evaluate", "category", result.per_category)
    write_metrics("evaluate", result.metrics)

    stage_metrics = {s: read_json(f"metrics/{s}.json") for s in STAGES
                     if Path(f"metrics/{s}.json").is_file()}
    run = log_pipeline_execution(".", params.to_flat_dict(), stage_metrics,
                                 [REPORTS_DIR / "result.csv", Path("params.yaml"),
                                  Path("dvc.yaml")])
    try:
        first = result.result.iloc[0]
        info = log_composite_model(ARTIFACT_DIRS, input_example(first["prompt"], first["image_1"],
                                                                first["image_2"]))
        version, promoted = register_model(run.run_id, info.model_uri, p.model_name, p.alias,
                                           result.metrics["val_accuracy"])
    finally:
        mlflow.end_run()
    write_json(REPORTS_DIR / "registry.json",
               {"run_id": run.run_id, "model_name": p.model_name, "version": version,
                "alias": p.alias, "promoted": promoted,
                "model_uri": f"models:/{p.model_name}/{version}"})


if __name__ == "__main__":
    main()
