"""DVC stage ``fit_svm``: the CE-score SVM, its per-pair scores and the complexity-entropy plane.

Writes ``models/svm/`` (``svm.skops`` + ``feature_config.json``), ``data/scores/ce.csv``,
``metrics/fit_svm.json`` and ``plots/fit_svm/plane.{csv,png}``.
"""

from __future__ import annotations

from t2ieval import paths
from t2ieval.entropy.plane import plot_plane
from t2ieval.entropy.features import feature_specs
from t2ieval.io import PLOTS_DIR, write_metrics, write_plot, write_table
from t2ieval.pipeline import start_stage
from t2ieval.pipeline.entropy import fit_svm_stage


def main() -> None:
    params = start_stage()
    result = fit_svm_stage(params)
    result.scorer.save(paths.SVM_MODEL_DIR)
    write_table(paths.scores_path("ce"), result.scores)
    write_metrics("fit_svm", result.metrics)
    write_plot("fit_svm", "plane", result.plane)
    plot_plane(result.plane, PLOTS_DIR / "fit_svm" / "plane.png",
               feature_specs(params.entropy.features)[0])


if __name__ == "__main__":
    main()
