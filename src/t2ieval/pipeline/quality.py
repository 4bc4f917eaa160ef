"""The ``fit_quality`` stage: the quality (CE) branch's model on the features of
``quality_features`` (:mod:`t2ieval.pipeline.quality_features`), per-pair scores, the plots."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from t2ieval import paths
from t2ieval.batching import pair_image_rows, pair_scores
from t2ieval.entropy.plane import plane_rows
from t2ieval.io import read_table
from t2ieval.metrics import accuracy_report, pairwise_accuracy
from t2ieval.params import Params
from t2ieval.quality.families import feature_names
from t2ieval.quality.model import QualityModel, fit_quality_model, pair_matrices

log = logging.getLogger(__name__)

#: columns of the plane plot (written with just this header when the entropy family is off)
PLANE_COLUMNS = ["H", "C", "label"]


@dataclass
class QualityStageResult:
    model: QualityModel
    scores: pd.DataFrame  # pair_id, split, score_1, score_2
    metrics: dict
    plane: pd.DataFrame | None  # train images on the (H, C) plane of the first entropy feature
    importance: pd.DataFrame  # feature, drop in validation accuracy when permuted


def fit_stage(params: Params) -> QualityStageResult:
    """Fit the quality model on the train pairs (regularisation by prompt-grouped inner CV on
    those pairs alone), score every pair, and measure each feature's importance on validation."""
    q = params.quality
    columns = feature_names(q.families, q.entropy_features)
    pairs = read_table(
        paths.SPLIT_PAIRS,
        required=["pair_id", "split", "prompt", "image_1", "image_2", "preferred", "category"],
    )
    features = read_table(paths.QUALITY_FEATURES, required=["image", *columns])
    X1, X2 = pair_matrices(features, pairs, columns)
    train = (pairs["split"] == "train").to_numpy()
    model = fit_quality_model(
        X1[train],
        X2[train],
        pairs.loc[train, "preferred"],
        list(pairs.loc[train, "prompt"]),
        kind=q.model,
        families=q.families,
        entropy_specs=q.entropy_features,
        c_grid=q.c_grid,
        inner_folds=q.inner_folds,
        seed=params.base.seed,
        selection=q.selection,
        inner_repeats=q.inner_repeats,
        svm={"kernel": q.svm.kernel, "gamma": q.svm.gamma, "cv": q.svm.cv},
    )
    rows = pair_image_rows(pairs)
    by_image = pd.Series(model.image_scores(features[columns].to_numpy()), index=features["image"])
    scores = pair_scores(pairs, rows, rows["image"].map(by_image).to_numpy())
    metrics = accuracy_report(
        scores.merge(pairs.drop(columns="split"), on="pair_id"),
        "ce",
        category_splits=("val", "test"),
    )
    metrics.update(
        {
            "model": q.model,
            "families": ",".join(q.families),
            "C": model.C,
            "n_features": len(columns),
        }
    )
    plane = None
    if "entropy" in model.families:
        images = read_table(paths.SPLIT_IMAGES, required=["image", "split", "preferred"])
        in_train = images[images["split"] == "train"]
        feats = features.set_index("image").loc[in_train["image"]].reset_index()
        plane = plane_rows(feats, in_train["preferred"].to_numpy(), model.entropy_specs[0])
    val = (pairs["split"] == "val").to_numpy()
    importance = permutation_importance(
        model, X1[val], X2[val], pairs.loc[val, "preferred"].to_numpy(), params.base.seed
    )
    return QualityStageResult(model, scores, metrics, plane, importance)


def permutation_importance(
    model: QualityModel, X1: np.ndarray, X2: np.ndarray, preferred: np.ndarray, seed: int = 0
) -> pd.DataFrame:
    """Per feature: how much the pairwise accuracy drops when that feature is shuffled across
    the images (both slots alike), sorted by the drop. Model-agnostic (any kind)."""
    columns = list(model.columns)
    if len(preferred) == 0:
        return pd.DataFrame({"feature": columns, "accuracy_drop": np.nan})
    base = pairwise_accuracy(model.decision(X1), model.decision(X2), preferred)
    rng = np.random.default_rng(seed)
    n = len(preferred)
    drops = []
    for j in range(len(columns)):
        perm = rng.permutation(2 * n)
        both = np.vstack([X1, X2])
        both[:, j] = both[perm, j]
        acc = pairwise_accuracy(model.decision(both[:n]), model.decision(both[n:]), preferred)
        drops.append(base - acc)
    table = pd.DataFrame({"feature": columns, "accuracy_drop": drops})
    return table.sort_values(
        ["accuracy_drop", "feature"], ascending=[False, True], ignore_index=True
    )
