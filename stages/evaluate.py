"""DVC stage ``evaluate``: final metrics with intervals, result.csv, plots; then the MLflow run
and the registered model.

DVC outputs hold no run id or timestamp: what MLflow assigned (run id, model version, whether the
alias moved) goes to ``reports/registry.json``, which DVC does not track.
"""

from __future__ import annotations

from t2ieval.io import write_json, write_metrics, write_plot, write_table
from t2ieval.paths import REGISTRY_FILE, RESULT_FILE
from t2ieval.pipeline import start_stage
from t2ieval.pipeline.evaluate import evaluate_stage, track_and_register


def main() -> None:
    params = start_stage()
    result = evaluate_stage(params)
    write_table(RESULT_FILE, result.result)
    write_plot("evaluate", "confusion", result.confusion)
    write_plot("evaluate", "roc", result.roc)
    write_plot("evaluate", "category", result.per_category)
    write_plot("evaluate", "calibration", result.calibration)
    write_metrics("evaluate", result.metrics)
    write_json(REGISTRY_FILE, track_and_register(params, result))


if __name__ == "__main__":
    main()
