"""Image-quality features and the linear model on top of them.

``nss``: the 36 BRISQUE natural-scene statistics (agrees with OpenCV's
``QualityBRISQUE_computeFeatures``). ``handcrafted``: sharpness, edges, colourfulness, HSV and hue
statistics, contrast, clipping, noise, JPEG blockiness. ``families``: the registry of feature
families (``entropy``, ``nss``, ``handcrafted``), one feature vector per image and the batch
feature table.
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
from t2ieval.quality.nss import brisque_features

__all__ = [
    "DEFAULT_ENTROPY_SPECS",
    "FAMILIES",
    "brisque_features",
    "check_families",
    "feature_names",
    "feature_table",
    "handcrafted_features",
    "image_feature_vector",
]
