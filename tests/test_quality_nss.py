"""BRISQUE natural-scene statistics: against OpenCV's reference, and on known distributions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import stats

from t2ieval.images import load_image, to_luminance
from t2ieval.quality import nss

AVT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "avt-ai-images"
NAMES = nss.feature_names()
SHAPES = [i for i, n in enumerate(NAMES) if n.endswith("_alpha")]
OTHERS = [i for i in range(len(NAMES)) if i not in SHAPES]


def _opencv_quality():
    try:
        import cv2

        return cv2.quality
    except (ImportError, AttributeError) as exc:
        pytest.skip(
            f"cv2.quality is not importable ({exc}); install "
            "opencv-contrib-python-headless for the BRISQUE reference"
        )


def textured(width: int, height: int, seed: int) -> Image.Image:
    """Gradient, ellipses and noise everywhere: no flat patch (see the tolerance note below)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [xx * 200 / width, yy * 200 / height, (xx + yy) * 100 / (width + height)], axis=-1
    ) + rng.normal(0, 12, (height, width, 3))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        draw.ellipse(
            [x0, y0, x0 + int(rng.integers(4, width // 2)), y0 + int(rng.integers(4, height // 2))],
            fill=tuple(int(v) for v in rng.integers(0, 256, 3)),
        )
    arr = np.asarray(img).astype(float) + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def assert_matches_opencv(gray: np.ndarray) -> None:
    """Shapes within one grid step (0.001) and equal to float32 rounding for most; every other
    feature within rtol 1e-4, atol 1e-5 (OpenCV computes in float32, this module in float64)."""
    ref = _opencv_quality().QualityBRISQUE_computeFeatures(gray).ravel().astype(np.float64)
    ours = nss.brisque_features(gray)
    assert ref.shape == ours.shape == (36,)
    shape_diff = np.abs(ref[SHAPES] - ours[SHAPES])
    assert shape_diff.max() <= 1e-3 + 1e-6, dict(zip(np.array(NAMES)[SHAPES], shape_diff))
    assert np.median(shape_diff) < 1e-6
    np.testing.assert_allclose(
        ours[OTHERS],
        ref[OTHERS],
        rtol=1e-4,
        atol=1e-5,
        err_msg=str(np.array(NAMES)[OTHERS].tolist()),
    )


@pytest.mark.parametrize("width, height, seed", [(512, 512, 0), (383, 511, 1), (130, 97, 2)])
def test_matches_opencv_on_textured_images(width, height, seed):
    # odd sizes included: OpenCV's half scale is W // 2 x H // 2 with a non-integer step
    assert_matches_opencv(to_luminance(textured(width, height, seed)))


def test_matches_opencv_on_a_real_generated_image():
    path = AVT / "images" / "stable_diffusion_p24.jpg"
    if not path.is_file():
        pytest.skip(f"{path}: the avt-ai-images development set is not here")
    # a textured real image (1.5 % of its pixels have local variance < 1e-5); on images with
    # large smooth areas OpenCV's float32 E[x^2] - E[x]^2 cancels and the two drift apart (see
    # the t2ieval.quality.nss docstring for the numbers over the whole set)
    assert_matches_opencv(to_luminance(load_image(path)))


def test_half_scale_is_opencvs_cubic_resize():
    _opencv_quality()
    import cv2

    x = nss.luminance_to_unit(to_luminance(textured(131, 90, 4)))
    ref = cv2.resize(x.astype(np.float32), (65, 45), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(nss.resize_half_cubic(x), ref, atol=1e-6)


def test_opencv_reads_any_dtype_as_0_255():
    # OpenCV divides by 255 whatever the dtype: a float image in [0, 255] equals the uint8 one
    quality = _opencv_quality()
    gray = to_luminance(textured(64, 64, 5))
    np.testing.assert_array_equal(
        quality.QualityBRISQUE_computeFeatures(gray),
        quality.QualityBRISQUE_computeFeatures(gray.astype(np.float32)),
    )


@pytest.mark.parametrize("beta", [0.8, 1.0, 2.0])
def test_aggd_fit_recovers_a_generalised_gaussian(beta):
    sample = stats.gennorm.rvs(beta, size=200_000, random_state=np.random.default_rng(0))
    alpha, mean, var_l, var_r = nss.aggd_fit(sample)
    assert alpha == pytest.approx(beta, rel=0.03)
    assert abs(mean) < 0.02 * np.sqrt(sample.var())
    assert var_l == pytest.approx(var_r, rel=0.03)
    assert (var_l + var_r) / 2 == pytest.approx(np.mean(sample**2), rel=0.02)


def test_aggd_fit_sees_asymmetry_and_border_zeros():
    rng = np.random.default_rng(1)
    sample = np.where(
        rng.random(100_000) < 0.5,
        -np.abs(rng.normal(0, 1, 100_000)),
        np.abs(rng.normal(0, 2, 100_000)),
    )
    alpha, mean, var_l, var_r = nss.aggd_fit(sample)
    assert var_l == pytest.approx(1.0, rel=0.03) and var_r == pytest.approx(4.0, rel=0.03)
    assert mean > 0
    # zeros outside the array (total > size) enter E|x| and E[x^2] but neither side's variance
    _, _, var_l2, var_r2 = nss.aggd_fit(sample, total=150_000)
    assert (var_l2, var_r2) == (var_l, var_r)
    with pytest.raises(ValueError, match="smaller than"):
        nss.aggd_fit(sample, total=10)


def test_flat_and_tiny_images():
    flat = np.full((40, 50), 128, dtype=np.uint8)
    features = nss.brisque_features(flat)
    assert np.isfinite(features).all()
    assert features[SHAPES].tolist() == [0.2] * 10
    assert not features[OTHERS].any()
    with pytest.raises(ValueError, match="at least 4x4"):
        nss.brisque_features(np.zeros((3, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        nss.brisque_features(flat.astype(np.float32))
    with pytest.raises(ValueError, match="2-D"):
        nss.brisque_features(np.zeros((8, 8, 3), dtype=np.uint8))


def test_names_and_buffers_do_not_leak_between_images():
    assert len(NAMES) == len(set(NAMES)) == 36
    a, b = to_luminance(textured(64, 48, 6)), to_luminance(textured(96, 80, 7))
    first = nss.brisque_features(a)
    nss.brisque_features(b)  # reuses (and resizes) the scratch buffers
    np.testing.assert_array_equal(nss.brisque_features(a), first)
