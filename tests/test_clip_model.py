"""CLIP model factory, heads, save/load and the scorer."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from t2ieval.clip.model import (
    ClipModelError,
    PretrainedUnavailableError,
    create_clip,
    load_clip,
    save_clip,
)
from t2ieval.clip.score import ClipScorer

MICRO = "t2i-micro"  # src/t2ieval/configs/open_clip/t2i-micro.json


def _images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in range(n)]


PROMPTS = ["a red square", "two blue circles", "a red square", "a green star left of a cross"]


def test_embedded_default_config_builds_offline():
    bundle = create_clip("t2i-tiny")
    cfg = bundle.model_cfg
    assert cfg["text_cfg"]["vocab_size"] == 49408
    assert isinstance(bundle.tokenizer, open_clip.tokenizer.SimpleTokenizer)
    assert bundle.model.embed_dim == cfg["embed_dim"]
    assert bundle.preprocess_cfg["size"] in ([64, 64], (64, 64), 64)


def test_heads_start_at_identity_so_scores_equal_zero_shot():
    torch.manual_seed(0)
    bundle = create_clip(MICRO)
    scorer = ClipScorer(bundle)
    images = _images(4)
    with torch.inference_mode():
        tokens = bundle.tokenizer(PROMPTS)
        x = torch.stack([bundle.preprocess(im) for im in images])
        zero_shot = (bundle.model.backbone_text(tokens) * bundle.model.backbone_image(x)).sum(1)
    np.testing.assert_allclose(scorer.score(PROMPTS, images), zero_shot.numpy(), atol=1e-6)


def test_save_load_round_trip_gives_identical_scores(tmp_path):
    torch.manual_seed(1)
    bundle = create_clip(MICRO)
    with torch.no_grad():  # heads away from identity, so the test sees whether they are saved
        bundle.model.image_head.weight.add_(0.1 * torch.randn_like(bundle.model.image_head.weight))
        bundle.model.text_head.bias.add_(0.1 * torch.randn_like(bundle.model.text_head.bias))
        bundle.model.clip.logit_scale.fill_(2.0)
    images = _images(4)
    before = ClipScorer(bundle, batch_size=2).score(PROMPTS, images)

    save_clip(bundle, tmp_path / "clip", {"best_epoch": 3})
    meta = json.loads((tmp_path / "clip" / "t2ieval_clip.json").read_text())
    assert meta["embed_dim"] == 32 and meta["heads"]["type"] == "linear"
    assert meta["preprocess"]["size"] == [32, 32] and meta["training"]["best_epoch"] == 3

    loaded = ClipScorer.load(tmp_path / "clip", device="cpu", batch_size=2)
    after = loaded.score(PROMPTS, images)
    np.testing.assert_array_equal(before, after)
    assert float(loaded.model.logit_scale.detach()) == pytest.approx(float(np.exp(2.0)), rel=1e-6)

    # the folder also fine-tunes further: create_clip() on it restores the heads
    again = create_clip(str(tmp_path / "clip"))
    np.testing.assert_array_equal(ClipScorer(again, batch_size=2).score(PROMPTS, images), before)

    # and its backbone is a plain open_clip local-dir model
    clip, _, _ = open_clip.create_model_and_transforms(f"local-dir:{tmp_path / 'clip'}")
    for k, v in bundle.model.clip.state_dict().items():
        assert torch.equal(v, clip.state_dict()[k]), k


def test_scorer_checks_its_input():
    scorer = ClipScorer(create_clip(MICRO))
    with pytest.raises(ValueError, match="2 prompts but 1 images"):
        scorer.score(["a", "b"], _images(1))
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        scorer.score([""], _images(1))
    assert scorer.score([], []).shape == (0,)


def test_unfetchable_pretrained_fails_fast_with_local_path_hint():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # tests/conftest.py
    start = time.perf_counter()
    with pytest.raises(PretrainedUnavailableError, match="local path"):
        create_clip("ViT-B-32", pretrained="openai")
    assert time.perf_counter() - start < 5.0


def test_unknown_tag_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(PretrainedUnavailableError, match="not a pretrained tag.*local path"):
        create_clip(MICRO, pretrained="no_such_tag")
    with pytest.raises(ClipModelError, match="does not exist"):
        create_clip(MICRO, pretrained=str(tmp_path / "missing.bin"))
    with pytest.raises(ClipModelError, match="unknown open_clip architecture"):
        create_clip("ViT-Nope-1")
    with pytest.raises(ClipModelError, match="neither"):
        create_clip(str(tmp_path))
    with pytest.raises(ClipModelError, match="not a saved t2ieval CLIP model"):
        load_clip(tmp_path)


def test_local_checkpoint_and_config_json_paths(tmp_path):
    torch.manual_seed(2)
    source = create_clip(MICRO)
    ckpt = tmp_path / "weights.pt"
    torch.save(source.model.clip.state_dict(), ckpt)
    cfg = tmp_path / "my-arch.json"
    cfg.write_text(json.dumps(source.model_cfg))
    torch.manual_seed(3)  # a different random init that the checkpoint must overwrite
    loaded = create_clip(str(cfg), pretrained=str(ckpt))
    assert loaded.architecture == "my-arch"
    for k, v in source.model.clip.state_dict().items():
        assert torch.equal(v, loaded.model.clip.state_dict()[k]), k
