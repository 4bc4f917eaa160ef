"""Handcrafted quality features on images whose answer is known."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image, ImageFilter

from t2ieval.images import to_luminance
from t2ieval.quality import handcrafted as hc

NAMES = hc.feature_names()


def features(img: Image.Image) -> dict[str, float]:
    return dict(zip(NAMES, hc.image_handcrafted_features(img)))


def solid(colour, size=(48, 40)) -> Image.Image:
    return Image.new("RGB", size, colour)


def texture(size: int = 96, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(arr).filter(ImageFilter.GaussianBlur(1.0))


def test_flat_grey_image_is_all_zero():
    f = features(solid((128, 128, 128)))
    for name in (
        "hc_sharp_s1",
        "hc_sharp_s2",
        "hc_edge_density",
        "hc_colourfulness",
        "hc_sat_mean",
        "hc_sat_sd",
        "hc_bright_sd",
        "hc_hue_cos",
        "hc_hue_sin",
        "hc_rms_contrast",
        "hc_spread",
        "hc_clip_low",
        "hc_clip_high",
        "hc_noise_sigma",
        "hc_blockiness",
    ):
        assert f[name] == 0.0, name
    assert f["hc_bright_mean"] == pytest.approx(128 / 255)
    # no chroma at all: no mean direction, the largest circular sd
    assert f["hc_hue_circ_sd"] == pytest.approx(math.sqrt(-2 * math.log(hc.MIN_RESULTANT)))


def test_blur_lowers_laplacian_variance_at_both_scales():
    sharp = texture()
    blurred = sharp.filter(ImageFilter.GaussianBlur(2.0))
    fs, fb = features(sharp), features(blurred)
    assert fb["hc_sharp_s1"] < fs["hc_sharp_s1"]
    assert fb["hc_sharp_s2"] < fs["hc_sharp_s2"]
    lum = to_luminance(sharp).astype(float)
    lap = lum[:-2, 1:-1] + lum[2:, 1:-1] + lum[1:-1, :-2] + lum[1:-1, 2:] - 4 * lum[1:-1, 1:-1]
    assert fs["hc_sharp_s1"] == pytest.approx(math.log1p(lap.var()), rel=1e-12)


def test_jpeg_grid_raises_blockiness():
    smooth = texture(128).filter(ImageFilter.GaussianBlur(3.0))
    buf = io.BytesIO()
    smooth.save(buf, format="JPEG", quality=8)
    jpeg = Image.open(buf).convert("RGB")
    assert features(jpeg)["hc_blockiness"] > features(smooth)["hc_blockiness"] + 0.1
    # constant 8x8 blocks on the grid vs the same blocks shifted off it by 4 pixels
    rng = np.random.default_rng(1)
    blocks = np.kron(rng.integers(60, 200, (12, 12)), np.ones((8, 8))).astype(np.uint8)
    on_grid = Image.fromarray(blocks).convert("RGB")
    off_grid = Image.fromarray(np.roll(blocks, (4, 4), axis=(0, 1))).convert("RGB")
    assert features(on_grid)["hc_blockiness"] > 3.0
    assert features(off_grid)["hc_blockiness"] < -3.0


def test_clipping_fractions():
    assert features(solid((255, 255, 255)))["hc_clip_high"] == 1.0
    assert features(solid((255, 255, 255)))["hc_clip_low"] == 0.0
    assert features(solid((0, 0, 0)))["hc_clip_low"] == 1.0
    half = np.zeros((20, 20, 3), dtype=np.uint8)
    half[:, 10:] = 254
    f = features(Image.fromarray(half))
    assert (f["hc_clip_low"], f["hc_clip_high"]) == (0.5, 0.5)


def test_colourfulness_of_a_two_colour_image():
    arr = np.zeros((10, 20, 3), dtype=np.uint8)
    arr[:, :10] = (255, 0, 0)  # red:  rg = 255, yb = 127.5
    arr[:, 10:] = (0, 0, 255)  # blue: rg = 0,   yb = -255
    # rg: mean 127.5, sd 127.5; yb: mean -63.75, sd 191.25
    expected = math.sqrt(127.5**2 + 191.25**2) + 0.3 * math.sqrt(127.5**2 + 63.75**2)
    assert features(Image.fromarray(arr))["hc_colourfulness"] == pytest.approx(expected, rel=1e-12)
    assert hc.colourfulness(arr) == pytest.approx(expected, rel=1e-12)


def test_hue_is_circular():
    red = features(solid((255, 0, 0)))
    assert (red["hc_hue_cos"], red["hc_hue_sin"]) == pytest.approx((1.0, 0.0))
    assert red["hc_hue_circ_sd"] == pytest.approx(0.0, abs=1e-6)
    # two reds either side of 0 degrees: the mean direction is 0 (a linear mean of 352 and 8
    # degrees would say 180), the spread small
    arr = np.zeros((10, 20, 3), dtype=np.uint8)
    arr[:, :10] = (255, 0, 40)
    arr[:, 10:] = (255, 40, 0)
    f = features(Image.fromarray(arr))
    assert f["hc_hue_sin"] == pytest.approx(0.0, abs=1e-12)
    assert f["hc_hue_cos"] > 0.98
    assert 0 < f["hc_hue_circ_sd"] < 0.2
    # complementary colours cancel
    arr[:, 10:] = (0, 255, 255)
    arr[:, :10] = (255, 0, 0)
    g = features(Image.fromarray(arr))
    assert abs(g["hc_hue_cos"]) < 1e-12 and abs(g["hc_hue_sin"]) < 1e-12


def test_saturation_brightness_contrast_and_spread():
    checker = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8)
    f = features(Image.fromarray(checker).convert("RGB"))
    assert f["hc_rms_contrast"] == pytest.approx(0.5)
    assert f["hc_bright_mean"] == pytest.approx(0.5) and f["hc_bright_sd"] == pytest.approx(0.5)
    assert f["hc_sat_mean"] == 0.0
    # every grey level once: P5 = 12, P95 = 243 by the inverted empirical CDF
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert features(Image.fromarray(ramp).convert("RGB"))["hc_spread"] == pytest.approx(231 / 255)
    sat = features(solid((200, 100, 50)))
    assert sat["hc_sat_mean"] == pytest.approx(150 / 200) and sat["hc_sat_sd"] == 0.0


def test_edge_density_of_a_step():
    arr = np.zeros((30, 40), dtype=np.uint8)
    arr[:, 20:] = 255
    f = features(Image.fromarray(arr).convert("RGB"))
    # central differences see the step in columns 19 and 20 of the 38 interior columns
    assert f["hc_edge_density"] == pytest.approx(2 / 38)


def test_immerkaer_recovers_gaussian_noise():
    rng = np.random.default_rng(2)
    noisy = np.clip(128 + rng.normal(0, 10, (256, 256)), 0, 255).round().astype(np.uint8)
    assert hc.immerkaer_sigma(noisy) == pytest.approx(10.0, rel=0.05)
    assert hc.immerkaer_sigma(np.full((20, 20), 7, dtype=np.uint8)) == 0.0


def test_finite_for_random_images_of_any_size_from_16():
    # property check over seeded random sizes, contents and extreme images
    rng = np.random.default_rng(3)
    for _ in range(25):
        h, w = (int(v) for v in rng.integers(16, 90, 2))
        kind = rng.integers(0, 3)
        if kind == 0:
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        elif kind == 1:
            arr = np.full((h, w, 3), rng.integers(0, 256, 3), dtype=np.uint8)
        else:
            arr = (rng.random((h, w, 3)) < 0.5).astype(np.uint8) * 255
        out = hc.handcrafted_features(arr)
        assert out.shape == (len(NAMES),) and np.isfinite(out).all(), (h, w, kind)
        assert 0 <= out[NAMES.index("hc_edge_density")] <= 1


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="RGB array"):
        hc.handcrafted_features(np.zeros((20, 20), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        hc.handcrafted_features(np.zeros((20, 20, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="at least 6x6"):
        hc.handcrafted_features(np.zeros((5, 20, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="luminance must be uint8 of shape"):
        hc.handcrafted_features(
            np.zeros((20, 20, 3), dtype=np.uint8), np.zeros((10, 20), dtype=np.uint8)
        )
