"""The CE-score: a calibrated SVM on entropy-complexity features, and its saved form.

The model is a scikit-learn pipeline ``StandardScaler -> CalibratedClassifierCV(SVC(...),
ensemble=False)`` trained on single images labelled preferred (1) or not (0); its calibrated
probability of class 1 is the CE-score. (``SVC(probability=True)`` is deprecated in scikit-learn
1.9; the calibrated wrapper is its replacement.)

A saved model is a folder holding ``svm.skops`` (``skops.io``, loaded with an explicit list of
trusted types, never pickle) and ``feature_config.json`` (the feature list and column order), so
that :class:`CeScorer` featurises an image exactly as the training pipeline did.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from t2ieval.io import read_skops, write_skops
from t2ieval.entropy.features import FeatureSpec, feature_columns, feature_specs, image_features

log = logging.getLogger(__name__)

MODEL_FILE = "svm.skops"
CONFIG_FILE = "feature_config.json"
FORMAT_VERSION = 1

TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)
"""Types beyond skops' defaults that a CE model may contain; anything else is refused on load."""


def build_pipeline(kernel: str = "rbf", C: float = 1.0, gamma: str | float = "scale",
                   cv: int = 3) -> Pipeline:
    """The unfitted CE-score pipeline: standardise, then an SVC calibrated by ``cv``-fold CV."""
    if cv < 2:
        raise ValueError(f"svm.cv must be at least 2 (calibration folds), got {cv}")
    svc = SVC(kernel=kernel, C=C, gamma=gamma)
    return Pipeline([
        ("scale", StandardScaler()),
        ("svm", CalibratedClassifierCV(svc, method="sigmoid", cv=cv, ensemble=False)),
    ])


def _check_xy(X: np.ndarray, y: np.ndarray, cv: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"features must be (n_images, n_features) with one label each; "
                         f"got X {X.shape}, y {y.shape}")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise ValueError(f"feature rows {bad[:10].tolist()} hold NaN or infinite values")
    labels = set(np.unique(y).tolist())
    if not labels <= {0, 1}:
        raise ValueError(f"labels must be 0 (other) or 1 (preferred), got {sorted(labels)}")
    for label in (0, 1):
        n = int((y == label).sum())
        if n < cv:
            raise ValueError(
                f"only {n} training image(s) with label {label}; calibration with svm.cv={cv} "
                f"needs at least {cv} of each label"
            )
    return X, y.astype(np.int64)


def fit_ce_svm(X: np.ndarray, y: np.ndarray, kernel: str = "rbf", C: float = 1.0,
               gamma: str | float = "scale", cv: int = 3) -> Pipeline:
    """Fit the CE-score pipeline on image features ``X`` and labels ``y`` (1 = preferred)."""
    X, y = _check_xy(X, y, cv)
    pipe = build_pipeline(kernel=kernel, C=C, gamma=gamma, cv=cv)
    pipe.fit(X, y)
    log.info("fitted CE SVM on %d images x %d features", X.shape[0], X.shape[1])
    return pipe


class CeScorer:
    """A fitted CE-score model plus the feature list it was trained on.

    ``CeScorer.load(model_dir)`` once, then ``score(images)`` per request: it featurises each PIL
    image with :func:`t2ieval.entropy.features.image_features` and returns the calibrated
    probability of "preferred".
    """

    def __init__(self, pipeline: Pipeline, features: Iterable[object]) -> None:
        self.pipeline = pipeline
        self.features: tuple[FeatureSpec, ...] = feature_specs(features)
        self.columns: list[str] = feature_columns(self.features)
        classes = list(getattr(pipeline, "classes_", []))
        if 1 not in classes:
            raise ValueError(f"the CE model has classes {classes}; expected 0 and 1 (preferred)")
        self._positive = classes.index(1)
        n_in = getattr(pipeline, "n_features_in_", len(self.columns))
        if n_in != len(self.columns):
            raise ValueError(f"the CE model expects {n_in} features but the feature list gives "
                             f"{len(self.columns)} columns {self.columns}")

    # ---- scoring -------------------------------------------------------------------------------
    def score_matrix(self, X: np.ndarray) -> np.ndarray:
        """CE-scores of a feature matrix whose columns are :attr:`columns`, in order."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.columns):
            raise ValueError(f"expected a feature matrix with {len(self.columns)} columns "
                             f"{self.columns}, got shape {X.shape}")
        if X.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        if bad.size:
            raise ValueError(f"feature rows {bad[:10].tolist()} hold NaN or infinite values")
        return self.pipeline.predict_proba(X)[:, self._positive]

    def score_frame(self, frame: pd.DataFrame, what: str = "feature table") -> np.ndarray:
        """CE-scores of the rows of a table holding the model's feature columns (by name)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{what}: missing feature column(s) {missing}; the CE model needs "
                             f"{self.columns}, found {list(frame.columns)}")
        return self.score_matrix(frame[self.columns].to_numpy(dtype=np.float64))

    def featurize(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Feature matrix (one row per image, columns :attr:`columns`) of PIL images."""
        rows = []
        for i, img in enumerate(images):
            if not isinstance(img, Image.Image):
                raise TypeError(f"image {i}: expected a PIL image, got {type(img).__name__}")
            try:
                rows.append(image_features(img, self.features))
            except ValueError as exc:
                raise ValueError(f"image {i}: {exc}") from exc
        return np.vstack(rows) if rows else np.empty((0, len(self.columns)))

    def score(self, images: Sequence[Image.Image]) -> np.ndarray:
        """CE-score (probability of "preferred", in [0, 1]) of each PIL image."""
        return self.score_matrix(self.featurize(images))

    # ---- persistence ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "features": [spec.to_dict() for spec in self.features],
            "columns": self.columns,
            "positive_class": 1,
            "luminance": "PIL mode L (8-bit), t2ieval.images.to_luminance",
            "downsampling": "PIL Image.reduce(scale) (box filter)",
            "tie_rule": "stable: equal values ordered by position in the row-major window",
        }

    def save(self, model_dir: str | Path) -> Path:
        """Write ``svm.skops`` (canonical bytes) and ``feature_config.json`` into ``model_dir``."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        write_skops(model_dir / MODEL_FILE, self.pipeline)
        with (model_dir / CONFIG_FILE).open("w", encoding="utf-8") as fh:
            json.dump(self.config(), fh, indent=2)
            fh.write("\n")
        log.info("saved CE model to %s", model_dir)
        return model_dir

    @classmethod
    def load(cls, model_dir: str | Path) -> "CeScorer":
        """Load a model saved by :meth:`save`, trusting only :data:`TRUSTED_TYPES` beyond skops'
        defaults; a file needing any other type is refused."""
        model_dir = Path(model_dir)
        model_path = model_dir / MODEL_FILE
        config_path = model_dir / CONFIG_FILE
        for path in (model_path, config_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing; not a saved CE model folder "
                                        "(run the fit_svm stage)")
        try:
            with config_path.open(encoding="utf-8") as fh:
                config = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{config_path}: not valid JSON ({exc})") from exc
        if config.get("format_version") != FORMAT_VERSION or "features" not in config:
            raise ValueError(f"{config_path}: unsupported CE model config "
                             f"(format_version {config.get('format_version')!r})")
        pipeline = read_skops(model_path, TRUSTED_TYPES)
        scorer = cls(pipeline, config["features"])
        if config.get("columns", scorer.columns) != scorer.columns:
            raise ValueError(f"{config_path}: columns {config.get('columns')} do not match the "
                             f"feature list ({scorer.columns})")
        return scorer
