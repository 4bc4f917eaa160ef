"""The CE-score SVM: fitting, saving/loading, scoring images, and the two stages end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from PIL import Image, ImageDraw, ImageFilter

from t2ieval.entropy import CeScorer, feature_columns, fit_ce_svm
from t2ieval.entropy.features import feature_table
from t2ieval.entropy.plane import plane_rows, plot_plane
from t2ieval.entropy.svm import TRUSTED_TYPES, build_pipeline

ROOT = Path(__file__).resolve().parents[1]
FEATURES = [{"dx": 2, "dy": 2}, {"dx": 3, "dy": 2}]


def _separable(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four features (two (H, C) pairs); preferred images have lower H, as in a tidy image."""
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    X = rng.normal(0, 0.02, (n, 4))
    X[:, 0] += np.where(y == 1, 0.80, 0.95)
    X[:, 1] += np.where(y == 1, 0.20, 0.05)
    X[:, 2] += np.where(y == 1, 0.75, 0.93)
    X[:, 3] += 0.1
    return X, y


class Opaque:
    """A type no CE model contains: loading a file that holds it must be refused."""

    def __init__(self) -> None:
        self.value = 1


@pytest.fixture(scope="module")
def fitted() -> CeScorer:
    X, y = _separable()
    return CeScorer(fit_ce_svm(X, y, cv=3), FEATURES)


def test_pipeline_is_scaler_then_calibrated_svc() -> None:
    pipe = build_pipeline(kernel="rbf", C=2.0, gamma=0.5, cv=4)
    assert [name for name, _ in pipe.steps] == ["scale", "svm"]
    calibrated = pipe.named_steps["svm"]
    assert calibrated.ensemble is False and calibrated.cv == 4
    assert calibrated.estimator.kernel == "rbf" and calibrated.estimator.C == 2.0


def test_fit_separates_and_scores_are_probabilities(fitted: CeScorer) -> None:
    X, y = _separable(seed=1)  # fresh draws
    scores = fitted.score_matrix(X)
    assert scores.shape == (len(y),) and ((scores >= 0) & (scores <= 1)).all()
    assert np.mean((scores > 0.5) == (y == 1)) > 0.95
    assert scores[y == 1].mean() > scores[y == 0].mean() + 0.5


def test_save_load_round_trip_gives_identical_probabilities(fitted: CeScorer, tmp_path) -> None:
    fitted.save(tmp_path / "svm")
    config = json.loads((tmp_path / "svm" / "feature_config.json").read_text())
    assert config["columns"] == feature_columns(FEATURES)
    assert config["features"][1] == {"dx": 3, "dy": 2, "taux": 1, "tauy": 1, "scale": 1}
    loaded = CeScorer.load(tmp_path / "svm")
    X, _ = _separable(seed=2)
    np.testing.assert_array_equal(loaded.score_matrix(X), fitted.score_matrix(X))
    assert loaded.columns == fitted.columns


def test_missing_feature_column_is_a_clear_error(fitted: CeScorer) -> None:
    X, _ = _separable(n=4)
    frame = pd.DataFrame(X, columns=fitted.columns).drop(columns=["C_dx3_dy2_tx1_ty1_s1"])
    with pytest.raises(ValueError, match=r"missing feature column\(s\) \['C_dx3_dy2_tx1_ty1_s1'\]"):
        fitted.score_frame(frame, "my.csv")
    with pytest.raises(ValueError, match="4 columns"):
        fitted.score_matrix(X[:, :3])


def test_feature_list_must_match_the_model() -> None:
    X, y = _separable()
    with pytest.raises(ValueError, match="expects 4 features"):
        CeScorer(fit_ce_svm(X, y), [{"dx": 2, "dy": 2}])


def test_load_refuses_untrusted_types_and_missing_files(fitted: CeScorer, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="svm.skops"):
        CeScorer.load(tmp_path / "nothing")
    fitted.save(tmp_path / "svm")
    sio.dump({"model": Opaque()}, tmp_path / "svm" / "svm.skops")
    with pytest.raises(ValueError, match="Opaque"):
        CeScorer.load(tmp_path / "svm")
    assert "sklearn.calibration._CalibratedClassifier" in TRUSTED_TYPES


def test_fit_refuses_a_single_class_and_bad_values() -> None:
    X, y = _separable()
    with pytest.raises(ValueError, match="label 0"):
        fit_ce_svm(X[y == 1], y[y == 1])
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"rows \[3\]"):
        fit_ce_svm(X, y)


def _image(good: bool, seed: int, size: int = 48) -> Image.Image:
    """Preferred: a clean shape on a flat background. Other: the same under heavy noise."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(150, 255, 3)))
    x0, y0 = (int(v) for v in rng.integers(2, size // 2, 2))
    ImageDraw.Draw(img).ellipse([x0, y0, x0 + size // 3, y0 + size // 3],
                                fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
    if not good:
        noise = rng.normal(0, 40, (size, size, 3))
        img = Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8))
        img = img.filter(ImageFilter.GaussianBlur(0.5))
    return img


def test_scorer_on_pil_images_equals_scoring_the_feature_table(tmp_path) -> None:
    paths, labels = [], []
    for i in range(24):
        path = tmp_path / f"{i}.png"
        _image(i % 2 == 0, i).save(path)
        paths.append(str(path))
        labels.append(int(i % 2 == 0))
    table = feature_table(paths, FEATURES, n_jobs=1)
    scorer = CeScorer(fit_ce_svm(table[feature_columns(FEATURES)].to_numpy(), np.array(labels)),
                      FEATURES)
    scorer.save(tmp_path / "svm")
    loaded = CeScorer.load(tmp_path / "svm")
    from_images = loaded.score([Image.open(p) for p in paths])
    np.testing.assert_array_equal(from_images, scorer.score_frame(table))
    assert np.mean((from_images > 0.5) == np.array(labels, dtype=bool)) > 0.9
    with pytest.raises(TypeError, match="image 1"):
        loaded.score([Image.open(paths[0]), "not an image"])
    assert loaded.score([]).shape == (0,)


def test_plane_rows_and_png(tmp_path) -> None:
    from t2ieval.entropy.features import FeatureSpec

    frame = pd.DataFrame({"H_dx2_dy2_tx1_ty1_s1": [0.8, 0.9, 0.95],
                          "C_dx2_dy2_tx1_ty1_s1": [0.2, 0.1, 0.05]})
    rows = plane_rows(frame, np.array([1, 0, 0]), FeatureSpec())
    assert rows["label"].tolist() == ["preferred", "other", "other"]
    assert rows["H"].tolist() == [0.8, 0.9, 0.95]
    png = plot_plane(rows, tmp_path / "plane.png", FeatureSpec())
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] > 300
    with pytest.raises(ValueError, match="H_dx3"):
        plane_rows(frame, np.array([1, 0, 0]), FeatureSpec(dx=3))


def _project(tmp_path: Path, n_pairs: int = 30) -> Path:
    """A tiny project tree: stage scripts, params and split tables over generated images."""
    root = tmp_path / "project"
    (root / "stages").mkdir(parents=True)
    for stage in ("entropy_features.py", "fit_svm.py"):
        shutil.copy(ROOT / "stages" / stage, root / "stages" / stage)
    (root / "params.yaml").write_text(
        "entropy:\n  features:\n    - {dx: 2, dy: 2, taux: 1, tauy: 1, scale: 1}\n"
        "    - {dx: 3, dy: 2, taux: 1, tauy: 1, scale: 2}\n  n_jobs: 1\n"
        "svm: {kernel: rbf, C: 1.0, gamma: scale, cv: 3}\n", encoding="utf-8")
    img_dir = root / "data" / "prepared" / "images"
    img_dir.mkdir(parents=True)
    pairs, images = [], []
    for i in range(n_pairs):
        split = "train" if i < 20 else ("val" if i < 25 else "test")
        preferred = 1 + (i % 2)
        row = {"pair_id": f"p{i:03d}", "prompt": f"prompt {i}", "preferred": preferred,
               "category": "style", "split": split}
        for slot in (1, 2):
            rel = f"data/prepared/images/p{i:03d}_{slot}.png"
            _image(slot == preferred, 100 * i + slot).save(root / rel)
            row[f"image_{slot}"] = rel
            images.append({"image": rel, "pair_id": row["pair_id"], "split": split,
                           "prompt": row["prompt"], "slot": slot,
                           "preferred": int(slot == preferred), "category": "style"})
        pairs.append(row)
    (root / "data" / "split").mkdir(parents=True)
    pd.DataFrame(pairs).to_csv(root / "data" / "split" / "pairs.csv", index=False)
    pd.DataFrame(images).to_csv(root / "data" / "split" / "images.csv", index=False)
    return root


def _run(root: Path, stage: str) -> None:
    result = subprocess.run([sys.executable, f"stages/{stage}.py"], cwd=root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_stages_end_to_end(tmp_path) -> None:
    root = _project(tmp_path)
    _run(root, "entropy_features")
    table = pd.read_csv(root / "data" / "features" / "entropy.csv")
    assert list(table.columns) == ["image", "H_dx2_dy2_tx1_ty1_s1", "C_dx2_dy2_tx1_ty1_s1",
                                   "H_dx3_dy2_tx1_ty1_s2", "C_dx3_dy2_tx1_ty1_s2"]
    assert len(table) == 60
    fmetrics = json.loads((root / "metrics" / "entropy_features.json").read_text())
    assert fmetrics["n_images"] == 60 and fmetrics["n_images_train"] == 40

    _run(root, "fit_svm")
    scores = pd.read_csv(root / "data" / "scores" / "ce.csv")
    assert list(scores.columns) == ["pair_id", "split", "score_1", "score_2"]
    assert len(scores) == 30 and set(scores["split"]) == {"train", "val", "test"}
    metrics = json.loads((root / "metrics" / "fit_svm.json").read_text())
    for key in ("val_accuracy_ce", "test_accuracy_ce", "svm_image_accuracy_val"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["val_accuracy_ce"] >= 0.8  # noise vs clean shapes is easy
    assert metrics["val_accuracy_ce.style"] == metrics["val_accuracy_ce"]  # one category
    plane = pd.read_csv(root / "plots" / "fit_svm" / "plane.csv")
    assert list(plane.columns) == ["H", "C", "label"] and len(plane) == 40
    assert (root / "plots" / "fit_svm" / "plane.png").stat().st_size > 1000
    scorer = CeScorer.load(root / "models" / "svm")
    pairs = pd.read_csv(root / "data" / "split" / "pairs.csv")
    first = pairs.iloc[0]
    direct = scorer.score([Image.open(root / first["image_1"]), Image.open(root / first["image_2"])])
    np.testing.assert_allclose(direct, scores.iloc[0][["score_1", "score_2"]].to_numpy(float),
                               rtol=0, atol=1e-12)
