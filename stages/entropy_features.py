"""DVC stage ``entropy_features``: (H, C) features of every image, once.

Reads ``data/split/images.csv`` and the images it names; writes ``data/features/entropy.csv``
(``image`` + one ``H_*``/``C_*`` column per configured feature) and
``metrics/entropy_features.json``. Params: ``entropy.features``, ``entropy.n_jobs``.
"""

from __future__ import annotations

import logging

from t2ieval import paths
from t2ieval.entropy.features import feature_table, summarize_features
from t2ieval.io import read_table, write_metrics, write_table
from t2ieval.pipeline import start_stage

log = logging.getLogger("stages.entropy_features")


def main() -> None:
    params = start_stage()
    images = read_table(paths.SPLIT_IMAGES, required=["image", "split", "preferred"])
    unique = list(dict.fromkeys(images["image"].astype(str)))
    log.info("computing %d entropy feature(s) for %d images with n_jobs=%d",
             len(params.entropy.features), len(unique), params.entropy.n_jobs)
    features = feature_table(unique, params.entropy.features, n_jobs=params.entropy.n_jobs,
                             max_pixels=params.data.max_pixels)
    write_table(paths.ENTROPY_FEATURES, features)
    write_metrics("entropy_features", summarize_features(features, images, split="train"))


if __name__ == "__main__":
    main()
