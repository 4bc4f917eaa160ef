"""DDP fine-tuning (2 CPU processes, gloo) reproduces a single process on the same global batches.

Two checks in one spawn (process start-up dominates the cost), each on what is deterministic:

1. plain SGD through the library's epoch loop (``train_one_epoch`` + ``make_loader`` +
   ``PairwiseInfoNCE`` with negatives gathered across ranks): the loss and the weight update of
   2 steps equal the single process's up to float rounding. SGD is linear in the gradient, so the
   update differs only by the rounding of summing per-rank gradients in another order (relative
   error ~1e-7 per value); the tolerance, 1e-4 of the update itself, is far above that and far
   below what a wrong gradient scale (an error of 100 % of the update) or missing negatives give.
   AdamW is not compared weight by weight: its first step moves every weight by about ``lr``
   times the *sign* of its gradient, so a gradient of 1e-12 that rounds to another sign flips a
   whole ``lr``-sized step, whatever the machine.
2. the full ``finetune()`` (AdamW) under DDP: both ranks report the same all-reduced train loss
   (bit for bit), and only rank 0 validates (rank 1 has no validation numbers), so that only
   rank 0 has anything to write.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from t2ieval.clip.data import PairImageDataset, PairSet  # noqa: E402
from t2ieval.clip.distributed import (  # noqa: E402
    DistContext,
    init_distributed,
    share_cpu_threads,
    shutdown,
)
from t2ieval.clip.loss import PairwiseInfoNCE  # noqa: E402
from t2ieval.clip.model import create_clip  # noqa: E402
from t2ieval.clip.train import finetune, make_loader, set_trainable, train_one_epoch  # noqa: E402
from t2ieval.params import FinetuneClipParams  # noqa: E402
from t2ieval.runtime import seed_everything, set_threads  # noqa: E402

from helpers import make_pairs  # noqa: E402  (tiny generated pairs)

GLOBAL_BATCH = 8
N_PAIRS = 16  # 2 global batches; 4 pairs per rank per step
CFG = FinetuneClipParams(
    model="t2i-micro",
    train="full",
    epochs=2,
    lr=2e-3,
    lr_decay=0.5,
    batch_size=GLOBAL_BATCH,
    weight_decay=0.01,
)


def _sgd_run(pairs: PairSet, ctx: DistContext) -> tuple[dict[str, torch.Tensor], float]:
    seed_everything(0)
    bundle = create_clip("t2i-micro")
    model = bundle.model
    set_trainable(model, "full")
    dataset = PairImageDataset(pairs, bundle.tokenizer, bundle.preprocess)
    train_model = model
    if ctx.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    loader, sampler = make_loader(dataset, GLOBAL_BATCH, ctx, seed=0, num_workers=0)
    sampler.set_epoch(1)
    loss = train_one_epoch(
        train_model,
        loader,
        PairwiseInfoNCE(None, rank=ctx.rank, world_size=ctx.world_size),
        optimizer,
        torch.device("cpu"),
        cached=False,
        ctx=ctx,
    )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, loss


def _worker(rank: int, world_size: int, port: int, data_dir: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    ctx, device = init_distributed("auto", torch.device("cpu"))
    assert ctx.backend == "gloo" and ctx.world_size == world_size
    pairs = PairSet.from_frame(pd.read_csv(Path(data_dir) / "pairs.csv"))
    state, loss = _sgd_run(pairs, ctx)
    result = finetune(pairs, pairs, CFG, seed=0, device=device, ctx=ctx)
    torch.save(
        {
            "state": state,
            "loss": loss,
            "train_loss": [r["train_loss"] for r in result.curve],
            "val_accuracy": [r["val_accuracy"] for r in result.curve],
            "best_val_accuracy": result.best_val_accuracy,
        },
        Path(out_dir) / f"rank{rank}.pt",
    )
    shutdown(ctx)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_single_process(tmp_path):
    torch.set_num_threads(1)
    frame = make_pairs(tmp_path / "img", N_PAIRS)
    frame.to_csv(tmp_path / "pairs.csv", index=False)
    pairs = PairSet.from_frame(frame)

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]

    # 1. SGD: the same loss and the same update as one process on the same global batches
    single_state, single_loss = _sgd_run(pairs, DistContext())
    seed_everything(0)
    initial = create_clip("t2i-micro").model.state_dict()
    assert ranks[0]["loss"] == pytest.approx(single_loss, rel=1e-5)
    update = max(
        float((v - initial[k]).abs().max())
        for k, v in single_state.items()
        if v.is_floating_point()
    )
    assert update > 1e-3  # the weights did move
    for rank in ranks:
        for k, v in single_state.items():
            if v.is_floating_point():
                gap = float((rank["state"][k] - v).abs().max())
                assert gap <= 1e-4 * update, (k, gap, update)

    # 2. AdamW finetune(): ranks agree on the all-reduced loss; rank 0 alone validates
    assert ranks[0]["train_loss"] == ranks[1]["train_loss"]
    assert all(math.isfinite(a) for a in ranks[0]["val_accuracy"])
    assert all(math.isnan(a) for a in ranks[1]["val_accuracy"])
    assert math.isfinite(ranks[0]["best_val_accuracy"])
    assert math.isnan(ranks[1]["best_val_accuracy"])


def test_cpu_ranks_share_the_process_threads():
    """N ranks on one machine split base.threads instead of each taking all of it."""
    set_threads(2)
    try:
        assert share_cpu_threads(4) == 1 and torch.get_num_threads() == 1
        set_threads(2)
        assert share_cpu_threads(2) == 1 and torch.get_num_threads() == 1
        set_threads(2)
        assert share_cpu_threads(1) == 2 and torch.get_num_threads() == 2
        set_threads(3)
        assert share_cpu_threads(2) == 1  # rounded down
        set_threads(2)
        assert share_cpu_threads(8) == 1  # never 0
    finally:
        set_threads(2)
