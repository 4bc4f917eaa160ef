"""The quality model: symmetric pairwise probabilities, inner CV for C, skops round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from t2ieval.quality.config import DEFAULT_C_GRID
from t2ieval.quality.families import feature_names, image_feature_vector
from t2ieval.quality.model import (
    CONFIG_FILE,
    QualityModel,
    choose_c,
    fit_quality_model,
    inner_cv_scores,
)

FAMS = ("handcrafted",)
N_COLS = len(feature_names(FAMS))


def synthetic_pairs(n_prompts: int = 10, per_prompt: int = 6, seed: int = 0):
    """Feature pairs whose preference follows feature 0 (plus noise) with random image order."""
    rng = np.random.default_rng(seed)
    n = n_prompts * per_prompt
    X1 = rng.normal(size=(n, N_COLS)) * rng.uniform(0.1, 10, N_COLS)
    X2 = rng.normal(size=(n, N_COLS)) * rng.uniform(0.1, 10, N_COLS)
    margin = X1[:, 0] - X2[:, 0] + rng.normal(0, 0.3, n)
    preferred = np.where(margin > 0, 1, 2)
    prompts = np.repeat([f"Prompt {i}" for i in range(n_prompts)], per_prompt)
    return X1, X2, preferred, prompts


@pytest.fixture(scope="module")
def fitted():
    X1, X2, pref, prompts = synthetic_pairs()
    return fit_quality_model(X1, X2, pref, prompts, families=FAMS, seed=0), (X1, X2, pref)


@pytest.mark.parametrize("kind", ["pairwise", "image", "svm"])
def test_swapping_the_images_gives_exactly_one_minus_p(kind):
    X1, X2, pref, prompts = synthetic_pairs(seed=1)
    model = fit_quality_model(X1, X2, pref, prompts, kind=kind, families=FAMS, seed=0)
    p = model.pair_proba(X1, X2)
    q = model.pair_proba(X2, X1)
    np.testing.assert_array_equal(q, 1.0 - p)
    np.testing.assert_array_equal(model.pair_proba(X1, X1), np.full(len(X1), 0.5))
    assert ((p > 0.5) == (pref == 1)).mean() > 0.8
    scores = model.image_scores(X1)
    if kind in ("image", "svm"):
        assert ((scores >= 0) & (scores <= 1)).all()


def test_svm_kind_is_the_methods_calibrated_svm_and_round_trips(tmp_path):
    X1, X2, pref, prompts = synthetic_pairs(seed=2)
    model = fit_quality_model(
        X1,
        X2,
        pref,
        prompts,
        kind="svm",
        families=FAMS,
        seed=0,
        c_grid=[0.1, 1.0],
        svm={"kernel": "rbf", "gamma": "scale", "cv": 3},
    )
    calibrated = model.pipeline.named_steps["svm"]
    assert calibrated.method == "sigmoid" and calibrated.ensemble is False
    assert calibrated.estimator.C == model.C and model.C in (0.1, 1.0)
    model.save(tmp_path / "svm")
    first = (tmp_path / "svm" / "model.skops").read_bytes()
    loaded = QualityModel.load(tmp_path / "svm")
    np.testing.assert_array_equal(loaded.image_scores(X1), model.image_scores(X1))
    assert loaded.svm == {"kernel": "rbf", "gamma": "scale", "cv": 3}
    loaded.save(tmp_path / "again")  # canonical skops: the same model gives the same bytes
    assert (tmp_path / "again" / "model.skops").read_bytes() == first


def test_pairwise_image_score_is_the_linear_score(fitted):
    model, (X1, _, _) = fitted
    scaler, reg = model.pipeline.named_steps["scale"], model.pipeline.named_steps["logreg"]
    assert reg.fit_intercept is False
    np.testing.assert_allclose(
        model.image_scores(X1), scaler.transform(X1) @ reg.coef_.ravel(), rtol=1e-12
    )


def test_inner_cv_chooses_c_from_the_grid_deterministically(fitted):
    model, _ = fitted
    X1, X2, pref, prompts = synthetic_pairs()
    again = fit_quality_model(X1, X2, pref, prompts, families=FAMS, seed=0)
    assert model.C in DEFAULT_C_GRID
    assert list(model.cv_scores) == list(DEFAULT_C_GRID)
    assert model.C == choose_c(model.cv_scores) == again.C
    assert model.cv_scores == again.cv_scores
    np.testing.assert_array_equal(
        model.pipeline.named_steps["logreg"].coef_, again.pipeline.named_steps["logreg"].coef_
    )
    assert max(model.cv_scores.values()) > 0.85  # feature 0 decides the pairs
    scores = inner_cv_scores(X1, X2, pref, prompts, c_grid=(0.01, 1.0), n_folds=3, seed=0)
    assert set(scores) == {0.01, 1.0}
    assert all(0.0 <= s <= 1.0 for s in scores.values())


def test_choose_c_breaks_ties_towards_stronger_regularisation():
    assert choose_c({0.001: 0.5, 0.1: 0.7, 1.0: 0.7, 10.0: 0.6}) == 0.1
    assert choose_c({1.0: 0.6, 0.01: 0.6}) == 0.01


def test_inner_cv_groups_by_prompt_key():
    X1, X2, pref, _ = synthetic_pairs(n_prompts=2, per_prompt=6)
    # case and whitespace do not make a new prompt: these twelve pairs are one group
    same = ["A red car"] * 4 + ["a  red car "] * 4 + ["A RED CAR"] * 4
    with pytest.raises(ValueError, match="at least 2 prompts, got 1"):
        fit_quality_model(X1, X2, pref, same, families=FAMS)
    # a single C needs no inner CV
    one = fit_quality_model(X1, X2, pref, same, families=FAMS, c_grid=[0.5])
    assert one.C == 0.5 and one.cv_scores == {}


def test_save_load_round_trip_gives_identical_scores(tmp_path, fitted):
    model, (X1, X2, _) = fitted
    model.save(tmp_path / "q")
    loaded = QualityModel.load(tmp_path / "q")
    np.testing.assert_array_equal(loaded.image_scores(X1), model.image_scores(X1))
    np.testing.assert_array_equal(loaded.pair_proba(X1, X2), model.pair_proba(X1, X2))
    assert (loaded.kind, loaded.families, loaded.columns, loaded.C, loaded.cv_scores) == (
        model.kind,
        model.families,
        model.columns,
        model.C,
        model.cv_scores,
    )
    config = json.loads((tmp_path / "q" / CONFIG_FILE).read_text())
    assert config["families"] == ["handcrafted"] and config["columns"] == feature_names(FAMS)
    images = [
        Image.effect_noise((40, 32), 30).convert("RGB"),
        Image.effect_noise((40, 32), 60).convert("RGB").filter(ImageFilter.BLUR),
    ]
    np.testing.assert_array_equal(loaded.score(images), model.score(images))
    np.testing.assert_array_equal(
        model.score(images),
        model.image_scores(np.vstack([image_feature_vector(im, FAMS) for im in images])),
    )


class Opaque:
    """A type no quality model contains: loading a file that holds one must be refused."""


def test_load_refuses_untrusted_types_and_bad_configs(tmp_path, fitted):
    import skops.io as sio

    model, _ = fitted
    model.save(tmp_path / "q")
    sio.dump({"model": Opaque()}, tmp_path / "q" / "model.skops")
    with pytest.raises(ValueError, match="outside the trusted list"):
        QualityModel.load(tmp_path / "q")

    model.save(tmp_path / "r")
    config = json.loads((tmp_path / "r" / CONFIG_FILE).read_text())
    config["families"] = ["nss"]
    (tmp_path / "r" / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="do not match the families"):
        QualityModel.load(tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="not a saved quality model"):
        QualityModel.load(tmp_path / "nowhere")


def test_errors_name_what_was_wrong():
    X1, X2, pref, prompts = synthetic_pairs()
    with pytest.raises(ValueError, match="unknown quality model kind 'tree'; known kinds"):
        fit_quality_model(X1, X2, pref, prompts, kind="tree", families=FAMS)
    with pytest.raises(ValueError, match="preferred must be 1 or 2"):
        fit_quality_model(X1, X2, np.zeros_like(pref), prompts, families=FAMS)
    bad = X1.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X1 rows \[3\] hold NaN"):
        fit_quality_model(bad, X2, pref, prompts, families=FAMS)
    with pytest.raises(ValueError, match="features have 17 columns; families"):
        fit_quality_model(X1, X2, pref, prompts, families=("nss",))
    with pytest.raises(ValueError, match="c_grid must hold positive"):
        fit_quality_model(X1, X2, pref, prompts, families=FAMS, c_grid=[0.0, 1.0])
    with pytest.raises(ValueError, match="one each per pair"):
        fit_quality_model(X1, X2, pref[:-1], prompts, families=FAMS)


def test_pair_matrices_look_up_images_and_name_the_missing_one():
    import pandas as pd

    from t2ieval.quality.model import pair_matrices

    features = pd.DataFrame(
        {"image": ["a.png", "b.png", "c.png"], "f1": [1.0, 2.0, 3.0], "f2": [4.0, 5.0, 6.0]}
    )
    pairs = pd.DataFrame(
        {"pair_id": ["p1", "p2"], "image_1": ["c.png", "a.png"], "image_2": ["a.png", "b.png"]}
    )
    X1, X2 = pair_matrices(features, pairs, ["f2", "f1"])
    np.testing.assert_array_equal(X1, [[6.0, 3.0], [4.0, 1.0]])
    np.testing.assert_array_equal(X2, [[4.0, 1.0], [5.0, 2.0]])
    pairs.loc[1, "image_2"] = "d.png"
    with pytest.raises(ValueError, match=r"no features for image_2, e.g. 'd.png' \(pair p2\)"):
        pair_matrices(features, pairs, ["f1"])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['f3'\]"):
        pair_matrices(features, pairs, ["f3"])


def test_log_loss_selection_and_repeated_inner_cv():
    X1, X2, pref, prompts = synthetic_pairs(seed=2)
    scores = inner_cv_scores(
        X1, X2, pref, prompts, c_grid=(0.001, 1.0), n_folds=3, seed=0, selection="log_loss"
    )
    assert all(s < 0 for s in scores.values())  # minus a mean log loss
    assert scores[1.0] > scores[0.001]  # the signal is strong: little penalty fits better
    model = fit_quality_model(
        X1, X2, pref, prompts, families=FAMS, selection="log_loss", inner_repeats=2, seed=0
    )
    again = fit_quality_model(
        X1, X2, pref, prompts, families=FAMS, selection="log_loss", inner_repeats=2, seed=0
    )
    assert model.C == again.C and model.cv_scores == again.cv_scores
    assert (model.selection, model.inner_repeats) == ("log_loss", 2)
    with pytest.raises(ValueError, match="unknown C selection 'auc'; known: accuracy, log_loss"):
        fit_quality_model(X1, X2, pref, prompts, families=FAMS, selection="auc")
