"""Entropy-complexity features: ordpy is the oracle for H and C, ties included."""

from __future__ import annotations

import math

import numpy as np
import ordpy
import pytest
from PIL import Image, ImageDraw, ImageFilter

from t2ieval.entropy.features import (
    complexity_entropy,
    downsample,
    feature_columns,
    feature_specs,
    image_features,
    luminance_features,
    pattern_counts,
)
from t2ieval.entropy.plane import complexity_bounds
from t2ieval.entropy.spec import FeatureSpec
from t2ieval.images import to_luminance

CONFIGS = [
    (2, 2, 1, 1),
    (3, 2, 1, 1),
    (2, 3, 1, 1),
    (2, 2, 2, 1),
    (2, 2, 1, 2),
    (3, 3, 1, 1),
    (2, 1, 1, 1),
    (1, 3, 1, 2),
    (3, 2, 2, 3),
]


def _rendered(size: int = 64, seed: int = 0) -> Image.Image:
    """Shapes on a noisy gradient, as the synthetic data looks: flat areas (ties) and edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx * 2.0, yy * 1.5, (xx + yy) * 0.8], axis=-1) + rng.normal(
        0, 6, (size, size, 3)
    )
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(img)
    draw.rectangle([5, 8, 30, 25], fill=(200, 30, 30))
    draw.ellipse([30, 30, 58, 60], fill=(20, 160, 220), outline=(0, 0, 0))
    draw.polygon([(10, 60), (25, 35), (40, 60)], fill=(250, 250, 0))
    return img


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    shapes = to_luminance(_rendered())
    flat_shapes = Image.new("RGB", (48, 40), (255, 255, 255))
    ImageDraw.Draw(flat_shapes).rectangle([10, 10, 30, 25], fill=(0, 0, 255))
    return {
        "random": rng.integers(0, 256, (37, 41), dtype=np.uint8),
        "shapes": shapes,
        "blurred_shapes": to_luminance(_rendered(seed=2).filter(ImageFilter.GaussianBlur(2))),
        "few_levels": rng.integers(0, 3, (30, 33), dtype=np.uint8),  # ties everywhere
        "binary": (rng.random((25, 29)) < 0.2).astype(np.uint8) * 255,
        "flat_shapes": to_luminance(flat_shapes),  # mostly constant windows
        "gradient": np.tile(np.arange(40, dtype=np.uint8), (20, 1)),  # ties along columns
    }


IMAGES = _images()


@pytest.mark.parametrize("name", sorted(IMAGES))
@pytest.mark.parametrize("dx,dy,taux,tauy", CONFIGS)
def test_matches_ordpy(name: str, dx: int, dy: int, taux: int, tauy: int) -> None:
    gray = IMAGES[name]
    expected = ordpy.complexity_entropy(gray, dx=dx, dy=dy, taux=taux, tauy=tauy)
    got = complexity_entropy(gray, dx=dx, dy=dy, taux=taux, tauy=tauy)
    assert got == pytest.approx(expected, abs=1e-9, rel=0)


def test_large_window_uses_sparse_histogram_and_matches_ordpy() -> None:
    gray = IMAGES["few_levels"]  # 4x3 window: 12! states, counted with np.unique
    assert complexity_entropy(gray, 4, 3) == pytest.approx(
        ordpy.complexity_entropy(gray, dx=4, dy=3), abs=1e-9, rel=0
    )


@pytest.mark.parametrize("dx,dy,taux,tauy", [(2, 2, 1, 1), (3, 2, 1, 1), (2, 2, 2, 1)])
def test_pattern_distribution_equals_ordpy_including_ties(
    dx: int, dy: int, taux: int, tauy: int
) -> None:
    """Stronger than H and C: the same multiset of pattern counts as ordpy's argsort patterns."""
    for gray in (IMAGES["few_levels"], IMAGES["flat_shapes"], IMAGES["shapes"]):
        _, probs = ordpy.ordinal_distribution(gray, dx=dx, dy=dy, taux=taux, tauy=tauy)
        counts = pattern_counts(gray, dx, dy, taux, tauy)
        n_windows = (gray.shape[0] - (dy - 1) * tauy) * (gray.shape[1] - (dx - 1) * taux)
        assert counts.sum() == n_windows
        np.testing.assert_allclose(np.sort(counts / n_windows), np.sort(probs), atol=1e-12)


def test_tie_rule_is_stable_earlier_position_first() -> None:
    # windows (row-major): [0,0,1,1] -> argsort (0,1,2,3); [0,5,1,5] -> (0,2,1,3);
    # [5,5,5,5] -> (0,1,2,3) with the stable rule (earlier position first), so two patterns with
    # counts 2 and 1. Ordering ties the other way round would give three distinct patterns.
    gray = np.array([[0, 0, 5, 5], [1, 1, 5, 5]], dtype=np.uint8)
    assert sorted(pattern_counts(gray, 2, 2).tolist()) == [1, 2]
    symbols, _ = ordpy.ordinal_distribution(gray, dx=2, dy=2)
    assert symbols.tolist() == [[0, 1, 2, 3], [0, 2, 1, 3]]


def test_chunking_does_not_change_counts() -> None:
    gray = IMAGES["shapes"]
    whole = pattern_counts(gray, 3, 2)
    chunked = pattern_counts(gray, 3, 2, chunk_windows=7)  # one row of windows at a time
    np.testing.assert_array_equal(whole, chunked)


def test_float_input_matches_ordpy() -> None:
    gray = np.random.default_rng(3).normal(size=(20, 22))
    assert complexity_entropy(gray, 2, 2) == pytest.approx(
        ordpy.complexity_entropy(gray, dx=2, dy=2), abs=1e-9, rel=0
    )


def test_constant_image_gives_zero_like_ordpy() -> None:
    gray = np.full((16, 16), 128, dtype=np.uint8)
    assert complexity_entropy(gray, 2, 2) == (0.0, 0.0)
    h, c = ordpy.complexity_entropy(gray, dx=2, dy=2)
    assert abs(h) < 1e-12 and abs(c) < 1e-12


def test_values_in_unit_interval_and_noise_near_max_entropy() -> None:
    h, c = complexity_entropy(np.random.default_rng(0).integers(0, 256, (200, 200)), 2, 2)
    assert 0.99 < h <= 1.0 and 0.0 <= c < 0.01


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((8, 8, 3), dtype=np.uint8), "2-D"),
        (np.zeros(10, dtype=np.uint8), "2-D"),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN"),
        (np.array([["a", "b"], ["c", "d"]]), "numeric"),
    ],
)
def test_bad_arrays_are_refused(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        complexity_entropy(bad, 2, 2)


def test_window_larger_than_image_is_refused() -> None:
    gray = np.zeros((3, 10), dtype=np.uint8)
    with pytest.raises(ValueError, match="larger than the 10 x 3"):
        complexity_entropy(gray, dx=2, dy=4)
    with pytest.raises(ValueError, match="larger than"):
        complexity_entropy(gray, dx=2, dy=2, tauy=3)  # span 4 rows


@pytest.mark.parametrize(
    "dx,dy,taux,tauy", [(1, 1, 1, 1), (0, 2, 1, 1), (2, 2, 0, 1), (5, 5, 1, 1)]
)
def test_bad_window_parameters_are_refused(dx: int, dy: int, taux: int, tauy: int) -> None:
    with pytest.raises(ValueError):
        complexity_entropy(np.zeros((30, 30), dtype=np.uint8), dx, dy, taux, tauy)


def test_feature_spec_columns_and_validation() -> None:
    specs = feature_specs([{"dx": 2, "dy": 2}, FeatureSpec(3, 2, 1, 1, 2)])
    assert feature_columns(specs) == [
        "H_dx2_dy2_tx1_ty1_s1",
        "C_dx2_dy2_tx1_ty1_s1",
        "H_dx3_dy2_tx1_ty1_s2",
        "C_dx3_dy2_tx1_ty1_s2",
    ]
    with pytest.raises(ValueError, match="twice"):
        feature_specs([{"dx": 2}, {"dx": 2, "dy": 2}])
    with pytest.raises(ValueError, match="empty"):
        feature_specs([])
    with pytest.raises(ValueError, match="unknown"):
        FeatureSpec.from_any({"dx": 2, "dz": 1})
    with pytest.raises(ValueError, match="scale"):
        FeatureSpec(scale=0)


def test_params_hold_feature_specs() -> None:
    from t2ieval.params import params_from_dict

    p = params_from_dict({"quality": {"entropy_features": [{"dx": 3, "scale": 2}]}})
    assert p.quality.entropy_features == (FeatureSpec(3, 2, 1, 1, 2),)


def test_image_features_downsample_then_compute() -> None:
    img = _rendered(size=64)
    features = [
        {"dx": 2, "dy": 2, "scale": 1},
        {"dx": 3, "dy": 2, "scale": 2},
        {"dx": 2, "dy": 2, "taux": 2, "scale": 4},
    ]
    vec = image_features(img, features)
    gray = to_luminance(img)
    half = np.asarray(img.convert("L").reduce(2))
    quarter = np.asarray(img.convert("L").reduce(4))
    assert half.shape == (32, 32) and np.array_equal(downsample(gray, 2), half)
    expected = [
        *ordpy.complexity_entropy(gray, dx=2, dy=2),
        *ordpy.complexity_entropy(half, dx=3, dy=2),
        *ordpy.complexity_entropy(quarter, dx=2, dy=2, taux=2),
    ]
    np.testing.assert_allclose(vec, expected, atol=1e-9, rtol=0)
    np.testing.assert_array_equal(vec, luminance_features(gray, features))


def test_image_too_small_after_downsampling_names_the_feature() -> None:
    img = Image.new("RGB", (4, 4), (10, 20, 30))
    with pytest.raises(ValueError, match="dx2_dy2_tx1_ty1_s4.*downsampled to 1x1"):
        image_features(img, [{"dx": 2, "dy": 2, "scale": 4}])


def test_complexity_bounds_match_ordpy_curves() -> None:
    lo, hi = complexity_bounds(math.factorial(4), points=400)
    ref_lo = ordpy.minimum_complexity_entropy(dx=2, dy=2, size=100)
    ref_hi = ordpy.maximum_complexity_entropy(dx=2, dy=2, m=25)
    ref_hi = ref_hi[np.argsort(ref_hi[:, 0])]
    grid = np.linspace(0.05, 0.95, 19)
    np.testing.assert_allclose(
        np.interp(grid, lo[:, 0], lo[:, 1]), np.interp(grid, ref_lo[:, 0], ref_lo[:, 1]), atol=3e-3
    )
    np.testing.assert_allclose(
        np.interp(grid, hi[:, 0], hi[:, 1]), np.interp(grid, ref_hi[:, 0], ref_hi[:, 1]), atol=3e-3
    )
    # every real image lies between the bounds
    for gray in IMAGES.values():
        h, c = complexity_entropy(gray, 2, 2)
        assert (
            np.interp(h, lo[:, 0], lo[:, 1]) - 1e-3 <= c <= np.interp(h, hi[:, 0], hi[:, 1]) + 1e-3
        )
