"""Branch 2 of t2ieval: aesthetics through ordinal-pattern entropy and complexity (CE-score).

``features``: permutation entropy H and statistical complexity C of images (matches ``ordpy``),
per-image feature vectors. ``svm``: the calibrated SVM on those features whose probability of
"preferred" is the CE-score, and :class:`CeScorer` to load and apply it. ``plane``: the
complexity-entropy plane figure.
"""

from __future__ import annotations

from t2ieval.entropy.features import (
    FeatureSpec,
    complexity_entropy,
    feature_columns,
    feature_specs,
    image_features,
    luminance_features,
    pattern_counts,
)
from t2ieval.entropy.svm import CeScorer, build_pipeline, fit_ce_svm

__all__ = [
    "CeScorer",
    "FeatureSpec",
    "build_pipeline",
    "complexity_entropy",
    "feature_columns",
    "feature_specs",
    "fit_ce_svm",
    "image_features",
    "luminance_features",
    "pattern_counts",
]
