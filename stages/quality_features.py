"""DVC stage ``quality_features``: the quality features of every image, once.

Writes ``data/features/quality.csv`` (``image`` + one column per feature of the families in
``quality.families``) and ``metrics/quality_features.json``.
"""

from __future__ import annotations

from t2ieval import paths
from t2ieval.io import write_metrics, write_table
from t2ieval.pipeline import start_stage
from t2ieval.pipeline.quality_features import features_stage


def main() -> None:
    features, summary = features_stage(start_stage(torch=False))
    write_table(paths.QUALITY_FEATURES, features)
    write_metrics("quality_features", summary)


if __name__ == "__main__":
    main()
