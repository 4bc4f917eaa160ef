"""The ``quality_features`` stage: the chosen feature families of every image, computed once."""

from __future__ import annotations

import pandas as pd

from t2ieval import paths
from t2ieval.io import read_table
from t2ieval.params import Params
from t2ieval.quality.families import feature_table


def features_stage(params: Params) -> tuple[pd.DataFrame, dict]:
    """The features of every image of the split (each image once) and a summary: per column,
    the mean over the train split's preferred and other images."""
    q = params.quality
    images = read_table(paths.SPLIT_IMAGES, required=["image", "split", "preferred"])
    unique = list(dict.fromkeys(images["image"].astype(str)))
    features = feature_table(unique, q.families, q.entropy_features, n_jobs=q.n_jobs)
    train = images.loc[images["split"] == "train", ["image", "preferred"]].merge(
        features, on="image"
    )
    summary: dict = {
        "n_images": len(features),
        "n_features": len(features.columns) - 1,
        "families": ",".join(q.families),
    }
    for col in features.columns[1:]:
        for label, name in ((1, "preferred"), (0, "other")):
            values = train.loc[train["preferred"] == label, col]
            summary[f"train.{col}.{name}_mean"] = float(values.mean()) if len(values) else None
    return features, summary
