"""The CE branch's stages: ``entropy_features`` (features of every image, once) and ``fit_svm``
(the CE-score SVM, its per-pair scores and the complexity-entropy plane)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from t2ieval import paths
from t2ieval.entropy.features import feature_columns, feature_specs, feature_table, summarize_features
from t2ieval.entropy.plane import plane_rows
from t2ieval.entropy.svm import CeScorer, fit_ce_svm
from t2ieval.io import read_table
from t2ieval.metrics import accuracy_report
from t2ieval.params import Params
from t2ieval.batching import pair_image_rows, pair_scores

log = logging.getLogger(__name__)


def features_stage(params: Params) -> tuple[pd.DataFrame, dict]:
    """The (H, C) features of every image of the split (each image once) and their summary."""
    images = read_table(paths.SPLIT_IMAGES, required=["image", "split", "preferred"])
    unique = list(dict.fromkeys(images["image"].astype(str)))
    log.info("computing %d entropy feature(s) for %d images with n_jobs=%d",
             len(params.entropy.features), len(unique), params.entropy.n_jobs)
    features = feature_table(unique, params.entropy.features, n_jobs=params.entropy.n_jobs,
                             max_pixels=params.data.max_pixels)
    return features, summarize_features(features, images, split="train")


@dataclass
class SvmStageResult:
    scorer: CeScorer
    scores: pd.DataFrame   # pair_id, split, score_1, score_2
    metrics: dict
    plane: pd.DataFrame    # the train images on the (H, C) plane of the first feature


def fit_svm_stage(params: Params) -> SvmStageResult:
    """Fit the calibrated SVM on the train split's images (preferred vs not), score every pair."""
    specs = feature_specs(params.entropy.features)
    columns = feature_columns(specs)
    images = read_table(paths.SPLIT_IMAGES, required=["image", "split", "preferred"])
    pairs = read_table(paths.SPLIT_PAIRS, required=["pair_id", "split", "image_1", "image_2",
                                                    "preferred", "category", "prompt"])
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
    scorer = CeScorer(fit_ce_svm(X[train], y[train], kernel=svm.kernel, C=svm.C, gamma=svm.gamma,
                                 cv=svm.cv), specs)
    image_scores = scorer.score_frame(features, str(paths.ENTROPY_FEATURES))
    rows = pair_image_rows(pairs)
    by_image = pd.Series(image_scores, index=features.index)
    scores = pair_scores(pairs, rows, rows["image"].map(by_image).to_numpy())
    predicted = scorer.pipeline.predict(X)
    metrics = accuracy_report(scores.merge(pairs.drop(columns="split"), on="pair_id"), "ce",
                              category_splits=("val", "test"))
    for split in ("train", "val", "test"):
        in_split = (images["split"] == split).to_numpy()
        metrics[f"svm_image_accuracy_{split}"] = (float(np.mean(predicted[in_split] == y[in_split]))
                                                  if in_split.any() else None)
    plane = plane_rows(features.loc[images.loc[train, "image"]].reset_index(), y[train], specs[0])
    return SvmStageResult(scorer, scores, metrics, plane)
