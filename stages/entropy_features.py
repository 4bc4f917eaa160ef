"""DVC stage ``entropy_features``: (H, C) features of every image, once.

Writes ``data/features/entropy.csv`` (``image`` + one ``H_*``/``C_*`` column per configured
feature) and ``metrics/entropy_features.json``.
"""

from __future__ import annotations

from t2ieval import paths
from t2ieval.io import write_metrics, write_table
from t2ieval.pipeline import start_stage
from t2ieval.pipeline.entropy import features_stage


def main() -> None:
    features, summary = features_stage(start_stage())
    write_table(paths.ENTROPY_FEATURES, features)
    write_metrics("entropy_features", summary)


if __name__ == "__main__":
    main()
