"""Feature families: fixed layout, entropy unchanged, one decode per image for all families."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image, ImageDraw

from t2ieval.entropy.features import FeatureSpec, feature_columns, image_features
from t2ieval.images import ImageError, load_image, to_luminance
from t2ieval.quality import families as fam
from t2ieval.quality import handcrafted, nss

ROOT = Path(__file__).resolve().parents[1]


def scene(seed: int, size=(72, 60)) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.normal(120, 25, (size[1], size[0], 3)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    draw = ImageDraw.Draw(img)
    draw.rectangle([5, 5, 30, 25], fill=(250, 20, 20))
    draw.ellipse([30, 20, 65, 55], fill=(20, 120, 230))
    return img


def test_default_entropy_specs_are_params_yaml():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert fam.DEFAULT_ENTROPY_SPECS == tuple(
        FeatureSpec.from_any(f) for f in params["quality"]["entropy_features"]
    )


def test_names_in_fixed_order_whatever_the_request():
    specs = fam.DEFAULT_ENTROPY_SPECS
    expected = feature_columns(specs) + nss.feature_names() + handcrafted.feature_names()
    assert fam.feature_names("all") == expected
    assert fam.feature_names(["handcrafted", "nss", "entropy"]) == expected
    assert fam.feature_names("handcrafted,entropy") == (
        feature_columns(specs) + handcrafted.feature_names()
    )
    assert len(set(expected)) == len(expected) == 6 + 36 + 17
    custom = [{"dx": 3, "dy": 3}]
    assert fam.feature_names("entropy", custom) == ["H_dx3_dy3_tx1_ty1_s1", "C_dx3_dy3_tx1_ty1_s1"]


@pytest.mark.parametrize(
    "request_, message",
    [
        ("colour", r"unknown feature family 'colour'; known families: entropy, nss, handcrafted"),
        (["nss", "brisque", "sift"], r"unknown feature families 'brisque', 'sift'; known"),
        ("nss,nss", "listed twice"),
        ("", "no feature family selected; known families: entropy, nss, handcrafted"),
    ],
)
def test_unknown_families_are_named_with_the_known_ones(request_, message):
    with pytest.raises(ValueError, match=message):
        fam.feature_names(request_)
    with pytest.raises(ValueError, match=message):
        fam.image_feature_vector(scene(0), request_)


@pytest.mark.parametrize(
    "specs",
    [None, [{"dx": 2, "dy": 2}, {"dx": 2, "dy": 3, "taux": 2}, {"dx": 3, "dy": 2, "scale": 3}]],
)
def test_entropy_family_is_the_existing_features_exactly(specs):
    img = scene(1)
    used = fam.DEFAULT_ENTROPY_SPECS if specs is None else specs
    np.testing.assert_array_equal(
        fam.image_feature_vector(img, "entropy", specs), image_features(img, used)
    )


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_any_pil_mode_featurises_as_its_parts(mode):
    img = scene(2).convert(mode)
    vec = fam.image_feature_vector(img, "all")
    rgb = img.convert("RGB")
    expected = np.concatenate(
        [
            image_features(img, fam.DEFAULT_ENTROPY_SPECS),
            nss.brisque_features(to_luminance(img)),
            handcrafted.handcrafted_features(np.asarray(rgb), to_luminance(img)),
        ]
    )
    np.testing.assert_array_equal(vec, expected)


def test_feature_table_decodes_each_image_once(tmp_path):
    paths = []
    for i in range(5):
        scene(10 + i).save(tmp_path / f"img{i}.png")
        paths.append(f"img{i}.png")
    calls: list[str] = []

    def counting_load(path: str) -> Image.Image:
        calls.append(Path(path).name)
        return load_image(path)

    table = fam.feature_table(paths, "all", root=tmp_path, load=counting_load, batch_size=2)
    assert sorted(calls) == sorted(paths)  # one decode per image, for all three families
    assert list(table.columns) == ["image", *fam.feature_names("all")]
    assert table["image"].tolist() == paths
    for i, path in enumerate(paths):
        np.testing.assert_array_equal(
            table.iloc[i, 1:].to_numpy(dtype=float),
            fam.image_feature_vector(load_image(tmp_path / path), "all"),
        )
    threaded = fam.feature_table(paths, "all", root=tmp_path, n_jobs=2, batch_size=2)
    pd.testing.assert_frame_equal(threaded, table)
    only = fam.feature_table(paths, ["nss"], root=tmp_path)
    assert list(only.columns) == ["image", *nss.feature_names()]


def test_feature_table_errors_name_the_file(tmp_path):
    scene(3).save(tmp_path / "ok.png")
    Image.new("RGB", (5, 40)).save(tmp_path / "narrow.png")
    with pytest.raises(ImageError, match="missing.png"):
        fam.feature_table(["ok.png", "missing.png"], "nss", root=tmp_path)
    with pytest.raises(ValueError, match=r"narrow\.png: .*at least"):
        fam.feature_table(["ok.png", "narrow.png"], "handcrafted", root=tmp_path)
    with pytest.raises(TypeError, match="PIL image"):
        fam.image_feature_vector(np.zeros((20, 20, 3), dtype=np.uint8), "nss")
