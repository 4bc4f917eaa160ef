"""FID, KID, IS and CLIPScore through torchmetrics, the feature extractors and their labels."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from t2ieval.benchmark.distribution import (
    CLIPSCORE,
    clipscore,
    distribution_metrics,
    fid,
    inception_score,
    kid,
)
from t2ieval.benchmark.features import (
    INCEPTION_FILE,
    ExtractorUnavailable,
    FeatureSpace,
    InceptionExtractor,
    hub_cache_path,
    make_extractor,
)

CLIP_SPACE = FeatureSpace(
    "clip",
    "test CLIP tower (8-d)",
    8,
    comparable=False,
    has_class_logits=False,
    note="not comparable to published FID",
)


def test_fid_is_zero_for_one_set_and_the_squared_mean_shift_for_a_shifted_copy():
    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(400, 8, generator=gen, dtype=torch.float64)
    assert fid(ref, ref) == pytest.approx(0.0, abs=1e-6)
    shift = torch.zeros(8, dtype=torch.float64)
    shift[:2] = torch.tensor([1.0, 2.0])
    assert fid(ref + shift, ref) == pytest.approx(5.0, rel=1e-6)  # same covariance: |shift|^2


def test_kid_is_reproducible_from_its_seed_and_leaves_torch_rng_alone():
    gen = torch.Generator().manual_seed(1)
    ref = torch.randn(60, 8, generator=gen, dtype=torch.float64)
    near = torch.randn(50, 8, generator=gen, dtype=torch.float64)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = kid(near, ref, subsets=20, subset_size=1000, seed=3)
    assert torch.rand(1) == before  # the caller's RNG stream is untouched
    assert kid(near, ref, subsets=20, seed=3) == first
    assert kid(near + 3.0, ref, subsets=20, seed=3)[0] > first[0] + 1.0


def test_inception_score_of_confident_distinct_classes_is_their_number():
    confident = torch.eye(4, dtype=torch.float64).repeat(5, 1) * 60.0
    mean, _ = inception_score(confident, splits=1)
    assert mean == pytest.approx(4.0, rel=1e-6)
    mean, _ = inception_score(torch.zeros(20, 4, dtype=torch.float64), splits=2)
    assert mean == pytest.approx(1.0)


def test_clipscore_is_100_times_the_cosine_floored_at_zero():
    mean, std = clipscore(np.array([0.3, -0.2, 0.1]))
    assert mean == pytest.approx((30 + 0 + 10) / 3)
    assert std == pytest.approx(np.std([30, 0, 10], ddof=1))


def _features(n_per_gen=30, seed=0):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.cat(
        [
            torch.randn(n_per_gen, 8, generator=gen, dtype=torch.float64),
            torch.randn(n_per_gen, 8, generator=gen, dtype=torch.float64) + 2.0,
        ]
    )
    names = ["near"] * n_per_gen + ["far"] * n_per_gen
    return names, feats


def test_every_metric_row_is_labelled_and_what_cannot_be_computed_says_why():
    names, feats = _features()
    ref = torch.randn(40, 8, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    cos = np.linspace(-0.1, 0.5, len(names))
    result = distribution_metrics(["near", "far"], names, feats, None, cos, CLIP_SPACE, ref)
    table = result.table
    assert set(table["metric"]) == {"fid_clip", "kid_clip", CLIPSCORE}
    spaces = table.loc[table["metric"] != CLIPSCORE, "feature_space"]
    assert (spaces == "test CLIP tower (8-d)").all()
    assert not table["comparable_to_published"].any()
    assert table["note"].str.contains("not comparable").all()
    assert "is_clip" in result.skipped and "class logits" in result.skipped["is_clip"]
    wide = result.wide().set_index("generator")
    assert wide.at["far", "fid_clip"] > wide.at["near", "fid_clip"]
    assert {"kid_clip_std", "clipscore_t2ieval_std"} <= set(wide.columns)
    no_ref = distribution_metrics(["near", "far"], names, feats, None, cos, CLIP_SPACE, None)
    assert set(no_ref.table["metric"]) == {CLIPSCORE}
    assert "--reference" in no_ref.skipped["fid_clip"] and "kid_clip" in no_ref.skipped


def test_asking_for_inception_offline_without_the_weights_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not hub_cache_path().exists()
    start = time.monotonic()
    with pytest.raises(ExtractorUnavailable) as err:
        make_extractor("inception")
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert "HF_HUB_OFFLINE=1" in message and str(hub_cache_path()) in message
    assert "--inception-weights" in message and "--features clip" in message
    with pytest.raises(ExtractorUnavailable, match="no such Inception weights file"):
        make_extractor("auto", inception_weights=tmp_path / "missing.pth")
    # auto without weights falls back to the CLIP tower, which needs the model's CLIP branch
    with pytest.raises(ExtractorUnavailable, match="CLIP branch"):
        make_extractor("auto")


def random_inception_weights(path):
    """torch-fidelity's Inception-v3 with random weights, saved as its weights file would be
    (the real weights cannot be downloaded here): the architecture and code path are real."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    empty = path.with_name("empty.pth")
    torch.save({}, empty)
    net = FeatureExtractorInceptionV3.__new__(FeatureExtractorInceptionV3)
    with pytest.raises(RuntimeError):  # the layers exist before the (empty) weights load
        FeatureExtractorInceptionV3.__init__(
            net, "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty)
        )
    torch.save(net.state_dict(), path)
    return path


def test_the_inception_path_gives_pool_features_logits_and_an_inception_score(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = random_inception_weights(tmp_path / "inception.pth")
    extractor = make_extractor("auto", inception_weights=weights)
    assert isinstance(extractor, InceptionExtractor)
    assert extractor.space.key == "inception" and not extractor.space.comparable
    assert "not FID's reference weights" in extractor.space.note
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(3)]
    images.append(Image.new("RGB", (80, 48), (200, 20, 20)))  # another size: its own batch
    feats, logits = extractor.extract(images)
    assert feats.shape == (4, 2048) and logits.shape == (4, 1008)
    assert feats.dtype == torch.float64 and torch.isfinite(feats).all()
    again, _ = extractor.extract(images[3:])
    torch.testing.assert_close(again[0], feats[3])
    result = distribution_metrics(
        ["g"], ["g"] * 4, feats, logits, np.zeros(4), extractor.space, feats[:3]
    )
    assert set(result.table["metric"]) == {
        "fid_inception",
        "kid_inception",
        "is_inception",
        CLIPSCORE,
    }
    assert not result.skipped
    # in the hub cache, under the reference file name, it is found without --inception-weights
    hub_cache_path().parent.mkdir(parents=True)
    hub_cache_path().write_bytes(weights.read_bytes())
    assert hub_cache_path().name == INCEPTION_FILE
    assert isinstance(make_extractor("auto"), InceptionExtractor)
