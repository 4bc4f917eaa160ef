"""DVC stage ``fit_svm``: the CE-score SVM, its per-pair scores and the complexity-entropy plane.

Reads ``data/split/{images,pairs}.csv`` and ``data/features/entropy.csv``; writes ``models/svm/``
(``svm.skops`` + ``feature_config.json``), ``data/scores/ce.csv``, ``metrics/fit_svm.json`` and
``plots/fit_svm/plane.{csv,png}``. Params: ``base.seed``, ``entropy.features``, ``svm``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from t2ieval import paths
from t2ieval.entropy.features import feature_columns, feature_specs
from t2ieval.entropy.plane import plane_rows, plot_plane
from t2ieval.entropy.svm import (
    CeScorer,
    accuracy_by_category,
    fit_ce_svm,
    pair_scores,
    pairwise_accuracy,
)
from t2ieval.io import PLOTS_DIR, read_table, write_metrics, write_plot, write_table
from t2ieval.pipeline import start_stage

log = logging.getLogger("stages.fit_svm")
STAGE = "fit_svm"


def main() -> None:
    params = start_stage()
    specs = feature_specs(params.entropy.features)
    columns = feature_columns(specs)

    images = read_table(paths.SPLIT_IMAGES, required=["image", "split", "preferred"])
    pairs = read_table(paths.SPLIT_PAIRS,
                       required=["pair_id", "split", "image_1", "image_2", "preferred"])
    features = read_table(paths.ENTROPY_FEATURES, required=["image", *columns])
    features = features.drop_duplicates("image").set_index("image")
    lacking = sorted(set(images["image"]) - set(features.index))
    if lacking:
        raise ValueError(f"{paths.ENTROPY_FEATURES}: no features for {len(lacking)} image(s) of "
                         f"{paths.SPLIT_IMAGES}, e.g. {lacking[0]}; rerun entropy_features")
    X = features.loc[images["image"], columns].to_numpy(dtype=np.float64)
    y = images["preferred"].to_numpy(dtype=np.int64)
    train = (images["split"] == "train").to_numpy()

    svm = params.svm
    pipeline = fit_ce_svm(X[train], y[train], kernel=svm.kernel, C=svm.C, gamma=svm.gamma,
                          cv=svm.cv)
    scorer = CeScorer(pipeline, specs)
    scorer.save(paths.SVM_MODEL_DIR)

    image_scores = pd.Series(scorer.score_frame(features, str(paths.ENTROPY_FEATURES)),
                             index=features.index)
    scores = pair_scores(pairs, image_scores)
    write_table(paths.scores_path("ce"), scores)

    metrics: dict[str, float | int] = {}
    predicted = pipeline.predict(X)
    for split in paths.SPLITS:
        in_split = (pairs["split"] == split).to_numpy()
        metrics[f"{split}_accuracy_ce"] = pairwise_accuracy(
            scores.loc[in_split, "score_1"], scores.loc[in_split, "score_2"],
            pairs.loc[in_split, "preferred"])
        img = (images["split"] == split).to_numpy()
        metrics[f"svm_image_accuracy_{split}"] = (float(np.mean(predicted[img] == y[img]))
                                                  if img.any() else float("nan"))
        metrics[f"n_pairs_{split}"] = int(in_split.sum())
        if split != "train":
            for category, acc in accuracy_by_category(scores, pairs, split).items():
                metrics[f"{split}_accuracy_ce.{category}"] = acc
    write_metrics(STAGE, metrics)

    plane = plane_rows(features.loc[images.loc[train, "image"]].reset_index(), y[train], specs[0])
    write_plot(STAGE, "plane", plane)
    plot_plane(plane, PLOTS_DIR / STAGE / "plane.png", specs[0])


if __name__ == "__main__":
    main()
