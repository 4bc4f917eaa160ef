"""Image-quality features and the linear model on top of them.

``nss``: the 36 BRISQUE natural-scene statistics (agrees with OpenCV's
``QualityBRISQUE_computeFeatures``). ``handcrafted``: sharpness, edges, colourfulness, HSV and hue
statistics, contrast, clipping, noise, JPEG blockiness. ``families``: the registry of feature
families (``entropy``, ``nss``, ``handcrafted``), one feature vector per image and the batch
feature table. ``model``: the pairwise or image-level logistic model with prompt-grouped inner
CV for its regularisation, saved with skops.
"""

from __future__ import annotations

from t2ieval.quality.families import (
    DEFAULT_ENTROPY_SPECS,
    FAMILIES,
    check_families,
    feature_names,
    feature_table,
    image_feature_vector,
)
from t2ieval.quality.handcrafted import handcrafted_features
from t2ieval.quality.model import (
    DEFAULT_C_GRID,
    KINDS,
    QualityModel,
    fit_quality_model,
    pair_correctness,
    pair_matrices,
)
from t2ieval.quality.nss import brisque_features

__all__ = [
    "DEFAULT_C_GRID",
    "DEFAULT_ENTROPY_SPECS",
    "FAMILIES",
    "KINDS",
    "QualityModel",
    "brisque_features",
    "check_families",
    "feature_names",
    "feature_table",
    "fit_quality_model",
    "handcrafted_features",
    "image_feature_vector",
    "pair_correctness",
    "pair_matrices",
]
