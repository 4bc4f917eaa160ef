"""CLIP fine-tuning on a handful of generated pairs: overfitting, determinism, training modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2ieval.batching import score_pair_table
from t2ieval.clip.data import PairSet
from t2ieval.clip.model import create_clip
from t2ieval.clip.score import ClipScorer
from t2ieval.clip.train import finetune, set_trainable
from t2ieval.metrics import pairwise_accuracy
from t2ieval.params import FinetuneClipParams
from t2ieval.runtime import pick_device

from helpers import make_pairs


def _cfg(**kw) -> FinetuneClipParams:
    base = dict(
        model="t2i-micro",
        train="full",
        epochs=1,
        lr=3e-3,
        lr_decay=1.0,
        batch_size=4,
        weight_decay=0.0,
    )
    base.update(kw)
    return FinetuneClipParams(**base)


def test_tiny_model_overfits_a_handful_of_pairs(tmp_path):
    torch.set_num_threads(1)
    frame = make_pairs(tmp_path / "img", 8)
    pairs = PairSet.from_frame(frame)
    result = finetune(
        pairs, pairs, _cfg(epochs=30, batch_size=8), seed=0, device=pick_device("cpu")
    )
    assert result.zeroshot_val_accuracy < 1.0  # the random backbone does not already know
    assert result.best_val_accuracy == 1.0
    assert result.best_epoch >= 1
    assert [r["epoch"] for r in result.curve] == list(range(1, 31))
    assert result.curve[-1]["train_loss"] < result.curve[0]["train_loss"]
    scores = score_pair_table(frame, ClipScorer(result.bundle).score)
    assert list(scores.columns) == ["pair_id", "split", "score_1", "score_2"]
    assert pairwise_accuracy(scores["score_1"], scores["score_2"], frame["preferred"]) == 1.0


def _weights(bundle) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in bundle.model.state_dict().items()}


def test_same_seed_gives_same_weights_after_a_step(tmp_path):
    pairs = PairSet.from_frame(make_pairs(tmp_path / "img", 4))
    cfg = _cfg(epochs=1, batch_size=4)  # one step
    runs = [
        _weights(finetune(pairs, pairs, cfg, seed=s, device=pick_device("cpu")).bundle)
        for s in (5, 5, 6)
    ]
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_heads_mode_trains_only_heads_on_cached_embeddings(tmp_path):
    pairs = PairSet.from_frame(make_pairs(tmp_path / "img", 8))
    torch.manual_seed(0)
    bundle = create_clip("t2i-micro")
    backbone_before = {k: v.clone() for k, v in bundle.model.clip.state_dict().items()}
    result = finetune(
        pairs,
        pairs,
        _cfg(train="heads", epochs=3, lr=1e-2, batch_size=4, temperature=0.1),
        seed=0,
        device=pick_device("cpu"),
        bundle=bundle,
    )
    after = result.bundle.model
    for k, v in after.clip.state_dict().items():
        assert torch.equal(v, backbone_before[k]), k
    assert all(np.isfinite(r["train_loss"]) for r in result.curve)
    # frozen backbone and fixed temperature: only the heads can move the loss
    assert result.curve[-1]["train_loss"] < result.curve[0]["train_loss"]


def test_last_blocks_unlocks_only_the_final_blocks():
    model = create_clip("t2i-tiny").model  # 4 vision and 3 text blocks
    set_trainable(model, "last_blocks", unlocked_blocks=1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("clip.visual.transformer.resblocks.3.") for n in trainable)
    assert not any(n.startswith("clip.visual.transformer.resblocks.2.") for n in trainable)
    assert any(n.startswith("clip.transformer.resblocks.2.") for n in trainable)
    assert not any(n.startswith("clip.transformer.resblocks.1.") for n in trainable)
    assert "clip.token_embedding.weight" not in trainable
    assert {"clip.logit_scale", "image_head.weight", "text_head.weight"} <= trainable
    set_trainable(model, "heads", fixed_temperature=True)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        "image_head.weight",
        "image_head.bias",
        "text_head.weight",
        "text_head.bias",
    }


def test_bad_pairs_table_names_the_row(tmp_path):
    frame = make_pairs(tmp_path / "img", 3)
    frame.loc[1, "preferred"] = 3
    with pytest.raises(ValueError, match=r"pairs row 3 \(pair_id p001\): preferred must be 1 or 2"):
        PairSet.from_frame(frame)
    with pytest.raises(ValueError, match="missing column"):
        PairSet.from_frame(frame.drop(columns=["prompt"]))


def test_batch_size_must_split_over_ranks(tmp_path):
    from t2ieval.clip.distributed import DistContext
    from t2ieval.clip.train import make_loader

    with pytest.raises(ValueError, match="multiple of"):
        make_loader(list(range(10)), 5, DistContext(rank=0, world_size=2), seed=0, num_workers=0)
    loader, _ = make_loader(list(range(10)), 4, DistContext(), seed=0, num_workers=0)
    assert sum(len(b) for b in loader) == 10
