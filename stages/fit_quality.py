"""DVC stage ``fit_quality``: the quality model, its per-pair scores (the CE-score slot) and plots.

Writes ``models/quality/`` (``model.skops`` + ``quality_config.json``), ``data/scores/ce.csv``,
``metrics/fit_quality.json``, ``plots/fit_quality/features.csv`` (each feature's importance) and,
with the entropy family, ``plots/fit_quality/plane.{csv,png}`` (the complexity-entropy plane).
"""

from __future__ import annotations

from t2ieval import paths
from t2ieval.entropy.plane import plot_plane
from t2ieval.io import PLOTS_DIR, write_metrics, write_plot, write_table
from t2ieval.pipeline import start_stage
from t2ieval.pipeline.quality import PLANE_COLUMNS, fit_stage


def main() -> None:
    result = fit_stage(start_stage(torch=False))
    result.model.save(paths.QUALITY_MODEL_DIR)
    write_table(paths.scores_path("ce"), result.scores)
    write_metrics("fit_quality", result.metrics)
    write_plot("fit_quality", "features", result.importance)
    write_plot("fit_quality", "plane", result.plane, columns=PLANE_COLUMNS)
    plot_plane(
        result.plane,
        PLOTS_DIR / "fit_quality" / "plane.png",
        result.model.entropy_specs[0] if result.model.entropy_specs else None,
    )


if __name__ == "__main__":
    main()
