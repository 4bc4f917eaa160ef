"""Linear models on the quality features, with the regularisation chosen by prompt-grouped CV.

Two kinds, chosen by a string:

``pairwise`` (the default)
    Features are standardised (``z(x) = (x - mean) / sd`` over the image slots of the training
    pairs); a logistic regression **without intercept** is fitted on the differences
    ``z(x_1) - z(x_2)`` labelled 1 when image 1 is preferred, together with the swapped
    differences ``z(x_2) - z(x_1)`` and the opposite labels. An image's score is the linear score
    ``s(x) = w . z(x)``; the probability that image 1 is preferred is
    ``sigmoid(s(x_1) - s(x_2))``.
``image``
    Standardised features and a logistic regression with intercept on single images (every image
    slot of the training pairs, labelled 1 if it is the pair's preferred image, as
    ``data.split.image_table`` lays them out). An image's score is ``P(good)``; a pair's
    probability is ``sigmoid(logit P_1 - logit P_2)``.
``svm``
    The method's CE-score model: standardised features and an SVC on single images, calibrated
    (``CalibratedClassifierCV(SVC(...), method="sigmoid", ensemble=False)``, scikit-learn 1.9's
    replacement of ``SVC(probability=True)``). An image's score is the calibrated ``P(good)``;
    its decision value is ``logit P(good)``. ``C`` is the SVC's.

For both kinds a pair's probability is computed from ``t = d_1 - d_2`` (``d`` the linear
decision value) symmetrically, so swapping the two images gives exactly ``1 - p``.

The inverse regularisation ``C`` is chosen from a fixed grid by **prompt-grouped inner
cross-validation on the training pairs only** (``GroupKFold`` over
``data.split.prompt_key(prompt)``, shuffled with the seed): for each ``C`` the scaler and the
regression are refitted on the inner training folds and scored on the held-out folds, by default
by the pooled pairwise accuracy (tie = 0.5; ``selection="log_loss"`` uses the mean pairwise log
loss instead, ``inner_repeats > 1`` averages over reshuffled fold assignments); the best ``C``
wins, a tie going to the smaller ``C`` (stronger regularisation). The final model is then fitted
on all training pairs with that ``C``. Everything is deterministic given the seed (``lbfgs`` has
no randomness). With few prompts the accuracy-chosen ``C`` depends visibly on the fold
assignment: ``benchmarks/quality_real.py`` shows how much.

A saved model is a folder with ``model.skops`` (a fitted ``StandardScaler -> LogisticRegression``
pipeline, loaded with ``skops.io`` and an explicit trusted-type list, never pickle) and
``quality_config.json`` (kind, families, entropy feature list, column order, chosen ``C``, the
inner-CV scores).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from t2ieval.data.split import prompt_key
from t2ieval.entropy.spec import DEFAULT_ENTROPY_SPECS, FeatureSpec
from t2ieval.io import read_skops, write_skops
from t2ieval.metrics import pair_credit
from t2ieval.probability import symmetric_sigmoid
from t2ieval.quality.config import DEFAULT_C_GRID, KINDS
from t2ieval.quality.families import (
    check_families,
    feature_names,
    image_feature_vector,
)

log = logging.getLogger(__name__)

DEFAULT_INNER_FOLDS = 5
SELECTIONS: tuple[str, ...] = ("accuracy", "log_loss")
MAX_ITER = 5000

MODEL_FILE = "model.skops"
CONFIG_FILE = "quality_config.json"
FORMAT_VERSION = 1

TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)
"""Types beyond skops' defaults a quality model may contain (the ``svm`` kind's calibration);
anything else is refused on load."""
#: clip of P(good) before its logit: the ``svm`` kind's decision value stays finite
_P_CLIP = 1e-12


# ---- helpers -----------------------------------------------------------------------------------
def pair_matrices(
    features: pd.DataFrame, pairs: pd.DataFrame, columns: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrices ``X1, X2`` of the pairs' two images, looked up by the ``image`` column.

    ``features`` has ``image`` plus ``columns``; ``pairs`` has ``image_1, image_2``. A missing
    column or image is an error naming it.
    """
    missing = [c for c in ["image", *columns] if c not in features.columns]
    if missing:
        raise ValueError(f"feature table lacks column(s) {missing}")
    for col in ("image_1", "image_2"):
        if col not in pairs.columns:
            raise ValueError(f"pairs table lacks column {col!r}")
    if features["image"].duplicated().any():
        dup = features.loc[features["image"].duplicated(), "image"].iloc[0]
        raise ValueError(f"feature table lists image {dup!r} twice")
    table = features.set_index("image")[list(columns)]
    out = []
    for col in ("image_1", "image_2"):
        absent = ~pairs[col].isin(table.index)
        if absent.any():
            row = pairs.loc[absent].iloc[0]
            raise ValueError(
                f"{int(absent.sum())} pair(s) have no features for {col}, e.g. "
                f"{row[col]!r}"
                + (f" (pair {row['pair_id']})" if "pair_id" in pairs.columns else "")
            )
        out.append(table.loc[pairs[col]].to_numpy(dtype=np.float64))
    return out[0], out[1]


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown quality model kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return kind


def _check_training(
    X1: np.ndarray, X2: np.ndarray, preferred: np.ndarray, prompts: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X1 = np.asarray(X1, dtype=np.float64)
    X2 = np.asarray(X2, dtype=np.float64)
    pref = np.asarray(preferred)
    groups = np.asarray([prompt_key(str(p)) for p in prompts])
    if X1.ndim != 2 or X1.shape != X2.shape:
        raise ValueError(
            f"X1 and X2 must be (n_pairs, n_features) of one shape, got {X1.shape} and {X2.shape}"
        )
    if not (len(pref) == len(groups) == X1.shape[0]):
        raise ValueError(
            f"{X1.shape[0]} feature rows, {len(pref)} preferred labels and "
            f"{len(groups)} prompts: one each per pair"
        )
    if X1.shape[0] == 0:
        raise ValueError("no training pairs")
    for name, X in (("X1", X1), ("X2", X2)):
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        if bad.size:
            raise ValueError(f"{name} rows {bad[:10].tolist()} hold NaN or infinite values")
    if not np.isin(pref, (1, 2)).all():
        raise ValueError("preferred must be 1 or 2 for every pair")
    return X1, X2, pref.astype(np.int64), groups


# ---- fitting -----------------------------------------------------------------------------------
def _fit_pipeline(
    kind: str, X1: np.ndarray, X2: np.ndarray, pref: np.ndarray, C: float, svm: dict | None = None
) -> Pipeline:
    """Scaler + model of ``kind`` fitted on the given pairs with inverse penalty ``C``
    (``svm``: the SVC's ``kernel``, ``gamma`` and calibration folds ``cv``)."""
    scaler = StandardScaler().fit(np.vstack([X1, X2]))
    if kind == "svm":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        opts = {"kernel": "rbf", "gamma": "scale", "cv": 3, **(svm or {})}
        Z = scaler.transform(np.vstack([X1, X2]))
        y = np.concatenate([(pref == 1), (pref == 2)]).astype(np.int64)
        model = CalibratedClassifierCV(
            SVC(kernel=opts["kernel"], C=C, gamma=opts["gamma"]),
            method="sigmoid",
            cv=int(opts["cv"]),
            ensemble=False,
        )
        return Pipeline([("scale", scaler), ("svm", model.fit(Z, y))])
    if kind == "pairwise":
        diff = scaler.transform(X1) - scaler.transform(X2)
        y = (pref == 1).astype(np.int64)
        reg = LogisticRegression(C=C, fit_intercept=False, max_iter=MAX_ITER)
        reg.fit(np.vstack([diff, -diff]), np.concatenate([y, 1 - y]))
    else:
        Z = scaler.transform(np.vstack([X1, X2]))
        y = np.concatenate([(pref == 1), (pref == 2)]).astype(np.int64)
        reg = LogisticRegression(C=C, fit_intercept=True, max_iter=MAX_ITER)
        reg.fit(Z, y)
    return Pipeline([("scale", scaler), ("logreg", reg)])


def _decision(pipeline: Pipeline, X: np.ndarray) -> np.ndarray:
    if "svm" in pipeline.named_steps:  # logit of the calibrated P(good)
        p = np.clip(pipeline.predict_proba(X)[:, 1], _P_CLIP, 1.0 - _P_CLIP)
        return np.log(p) - np.log1p(-p)
    return np.asarray(pipeline.decision_function(X), dtype=np.float64)


def inner_cv_scores(
    X1: np.ndarray,
    X2: np.ndarray,
    preferred: np.ndarray,
    prompts: Sequence[str],
    kind: str = "pairwise",
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    n_folds: int = DEFAULT_INNER_FOLDS,
    seed: int = 0,
    selection: str = "accuracy",
    repeats: int = 1,
    svm: dict | None = None,
) -> dict[float, float]:
    """Held-out score of every ``C`` under prompt-grouped ``GroupKFold`` (higher is better).

    ``selection="accuracy"``: pairwise accuracy (tie = 0.5) pooled over the held-out pairs;
    ``"log_loss"``: minus the mean held-out pairwise log loss ``-log p(preferred)``. With
    ``repeats > 1`` the folds are reshuffled (seeds ``seed, seed + 1, ...``) and the scores
    averaged, which steadies the choice on few prompts. Uses ``min(n_folds, number of prompts)``
    folds; needs at least two prompts.
    """
    X1, X2, pref, groups = _check_training(X1, X2, preferred, prompts)
    kind = _check_kind(kind)
    if selection not in SELECTIONS:
        raise ValueError(f"unknown C selection {selection!r}; known: {', '.join(SELECTIONS)}")
    if int(repeats) < 1:
        raise ValueError(f"inner CV repeats must be at least 1, got {repeats}")
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"inner cross-validation needs at least 2 prompts, got {n_groups}")
    splits = []
    for r in range(int(repeats)):
        folds = GroupKFold(
            n_splits=min(int(n_folds), n_groups), shuffle=True, random_state=seed + r
        )
        splits += list(folds.split(X1, pref, groups))
    scores: dict[float, float] = {}
    for C in c_grid:
        total = 0.0
        for train, test in splits:
            pipe = _fit_pipeline(kind, X1[train], X2[train], pref[train], float(C), svm)
            d1, d2 = _decision(pipe, X1[test]), _decision(pipe, X2[test])
            if selection == "accuracy":
                total += float(pair_credit(d1, d2, pref[test]).sum())
            else:
                # log p(preferred) = -log(1 + exp(-t)) with t the preferred image's margin
                t = np.where(pref[test] == 1, d1 - d2, d2 - d1)
                total -= float(np.logaddexp(0.0, -t).sum())
        scores[float(C)] = total / (len(pref) * int(repeats))
    return scores


def choose_c(scores: dict[float, float]) -> float:
    """The ``C`` of the highest inner-CV score; ties go to the smaller ``C``."""
    best = max(scores.values())
    return min(c for c, s in scores.items() if s == best)


@dataclass
class QualityModel:
    """A fitted quality model: a ``StandardScaler -> LogisticRegression`` pipeline plus the
    feature layout it was trained on."""

    kind: str
    pipeline: Pipeline
    families: tuple[str, ...]
    entropy_specs: tuple[FeatureSpec, ...]
    columns: list[str]
    C: float
    cv_scores: dict[float, float] = field(default_factory=dict)
    seed: int = 0
    inner_folds: int = DEFAULT_INNER_FOLDS
    selection: str = "accuracy"
    inner_repeats: int = 1
    svm: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        self.families = check_families(self.families)
        specs = tuple(FeatureSpec.from_any(s) for s in self.entropy_specs)
        self.entropy_specs = specs
        expected = feature_names(self.families, specs)
        if list(self.columns) != expected:
            raise ValueError(
                f"columns {list(self.columns)[:5]}... do not match the families "
                f"{self.families}, which give {expected[:5]}... "
                f"({len(expected)} columns)"
            )
        n_in = getattr(self.pipeline, "n_features_in_", len(expected))
        if n_in != len(expected):
            raise ValueError(
                f"the fitted pipeline expects {n_in} features, the families give {len(expected)}"
            )

    # ---- scoring -------------------------------------------------------------------------------
    def _matrix(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.columns):
            raise ValueError(
                f"expected a feature matrix with {len(self.columns)} columns "
                f"({', '.join(self.families)}), got shape {X.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        if bad.size:
            raise ValueError(f"feature rows {bad[:10].tolist()} hold NaN or infinite values")
        return X

    def decision(self, X: np.ndarray) -> np.ndarray:
        """Linear decision value per row: ``w . z(x)`` (pairwise) or the logit of ``P(good)``."""
        X = self._matrix(X)
        if X.shape[0] == 0:
            return np.empty(0)
        return _decision(self.pipeline, X)

    def image_scores(self, X: np.ndarray) -> np.ndarray:
        """Image score per feature row: ``w . z(x)`` (pairwise) or ``P(good)`` (image, svm)."""
        d = self.decision(X)
        return d if self.kind == "pairwise" else symmetric_sigmoid(d)

    def pair_proba(self, X1: np.ndarray, X2: np.ndarray) -> np.ndarray:
        """Probability that image 1 is preferred, ``sigmoid(d_1 - d_2)``; swapping the images
        gives exactly ``1 - p``."""
        d1, d2 = self.decision(X1), self.decision(X2)
        if d1.shape != d2.shape:
            raise ValueError(f"X1 and X2 hold {d1.shape[0]} and {d2.shape[0]} rows")
        return symmetric_sigmoid(d1 - d2)

    def featurize(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Feature matrix (columns :attr:`columns`) of PIL images; errors name the image index."""
        rows = []
        for i, img in enumerate(images):
            try:
                rows.append(image_feature_vector(img, self.families, self.entropy_specs))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"image {i}: {exc}") from exc
        return np.vstack(rows) if rows else np.empty((0, len(self.columns)))

    def score(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Image score of each PIL image (see :meth:`image_scores`)."""
        return self.image_scores(self.featurize(images))

    # ---- persistence ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "families": list(self.families),
            "entropy_features": [s.to_dict() for s in self.entropy_specs],
            "columns": list(self.columns),
            "C": self.C,
            "cv_scores": [[c, s] for c, s in self.cv_scores.items()],
            "seed": self.seed,
            "inner_folds": self.inner_folds,
            "selection": self.selection,
            "inner_repeats": self.inner_repeats,
            "svm": self.svm,
            "score": (
                "w . z(x), the linear score of the pairwise logistic model"
                if self.kind == "pairwise"
                else "P(good) of the image-level model"
            ),
        }

    def save(self, model_dir: str | Path) -> Path:
        """Write ``model.skops`` (canonical bytes) and ``quality_config.json`` to ``model_dir``."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        write_skops(model_dir / MODEL_FILE, self.pipeline)
        with (model_dir / CONFIG_FILE).open("w", encoding="utf-8") as fh:
            json.dump(self.config(), fh, indent=2)
            fh.write("\n")
        log.info(
            "saved %s quality model (%s, C=%g) to %s",
            self.kind,
            ",".join(self.families),
            self.C,
            model_dir,
        )
        return model_dir

    @classmethod
    def load(cls, model_dir: str | Path) -> QualityModel:
        """Load a model written by :meth:`save`, refusing any type outside skops' defaults and
        :data:`TRUSTED_TYPES`."""
        model_dir = Path(model_dir)
        model_path, config_path = model_dir / MODEL_FILE, model_dir / CONFIG_FILE
        for path in (model_path, config_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing; not a saved quality model folder")
        try:
            with config_path.open(encoding="utf-8") as fh:
                config = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{config_path}: not valid JSON ({exc})") from exc
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{config_path}: unsupported quality model config "
                f"(format_version {config.get('format_version')!r}, "
                f"expected {FORMAT_VERSION})"
            )
        missing = [
            k for k in ("kind", "families", "entropy_features", "columns", "C") if k not in config
        ]
        if missing:
            raise ValueError(f"{config_path}: missing key(s) {missing}")
        pipeline = read_skops(model_path, TRUSTED_TYPES)
        return cls(
            kind=config["kind"],
            pipeline=pipeline,
            families=tuple(config["families"]),
            entropy_specs=tuple(FeatureSpec.from_any(s) for s in config["entropy_features"]),
            columns=list(config["columns"]),
            C=float(config["C"]),
            cv_scores={float(c): float(s) for c, s in config.get("cv_scores", [])},
            seed=int(config.get("seed", 0)),
            inner_folds=int(config.get("inner_folds", DEFAULT_INNER_FOLDS)),
            selection=str(config.get("selection", "accuracy")),
            inner_repeats=int(config.get("inner_repeats", 1)),
            svm=dict(config.get("svm", {})),
        )


def fit_quality_model(
    X1: np.ndarray,
    X2: np.ndarray,
    preferred: np.ndarray,
    prompts: Sequence[str],
    *,
    kind: str = "pairwise",
    families: str | Iterable[str] = "all",
    entropy_specs: Iterable[object] | None = None,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    inner_folds: int = DEFAULT_INNER_FOLDS,
    seed: int = 0,
    selection: str = "accuracy",
    inner_repeats: int = 1,
    svm: dict | None = None,
) -> QualityModel:
    """Fit a quality model on training pairs, ``C`` chosen by prompt-grouped inner CV.

    Args:
        X1, X2: features of each pair's image 1 and image 2, columns
            ``feature_names(families, entropy_specs)``.
        preferred: 1 or 2 per pair. prompts: the pair's prompt (grouped by ``prompt_key``).
        kind: ``"pairwise"`` or ``"image"`` (see the module docstring).
        c_grid: candidate inverse penalties; a single value skips the inner CV.
        inner_folds: ``GroupKFold`` folds (at most the number of prompts); seed shuffles them.
        selection: ``"accuracy"`` or ``"log_loss"``, the inner-CV score ``C`` is chosen by.
        inner_repeats: reshuffled repetitions of the inner CV, scores averaged.
        svm: for ``kind="svm"``: the SVC's ``kernel``, ``gamma`` and calibration folds ``cv``.
    """
    kind = _check_kind(kind)
    fams = check_families(families)
    specs = (
        DEFAULT_ENTROPY_SPECS
        if entropy_specs is None
        else tuple(FeatureSpec.from_any(s) for s in entropy_specs)
    )
    columns = feature_names(fams, specs)
    X1, X2, pref, groups = _check_training(X1, X2, preferred, prompts)
    if X1.shape[1] != len(columns):
        raise ValueError(
            f"features have {X1.shape[1]} columns; families {fams} give {len(columns)}"
        )
    grid = [float(c) for c in c_grid]
    if not grid or any(not (c > 0 and math.isfinite(c)) for c in grid):
        raise ValueError(f"c_grid must hold positive finite values, got {list(c_grid)}")
    if len(grid) == 1:
        scores: dict[float, float] = {}
        C = grid[0]
    else:
        scores = inner_cv_scores(
            X1, X2, pref, list(groups), kind, grid, inner_folds, seed, selection, inner_repeats, svm
        )
        C = choose_c(scores)
    log.info(
        "%s quality model (%s): C=%g from inner CV %s",
        kind,
        ",".join(fams),
        C,
        {f"{c:g}": round(s, 4) for c, s in scores.items()},
    )
    pipeline = _fit_pipeline(kind, X1, X2, pref, C, svm)
    return QualityModel(
        kind=kind,
        pipeline=pipeline,
        families=fams,
        entropy_specs=specs,
        columns=columns,
        C=C,
        cv_scores=scores,
        seed=seed,
        inner_folds=inner_folds,
        selection=selection,
        inner_repeats=int(inner_repeats),
        svm=dict(svm or {}) if kind == "svm" else {},
    )
