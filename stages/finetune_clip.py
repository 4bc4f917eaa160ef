"""Stage finetune_clip: fine-tune the CLIP-score model, save the best epoch, score every pair.

Reads ``data/split/pairs.csv`` and the images; writes ``models/clip/``, ``data/scores/clip.csv``,
``metrics/finetune_clip.json`` and ``plots/finetune_clip/curve.csv``.
With ``finetune_clip.distributed.nproc > 1`` the script re-launches itself under torchrun (DDP);
rank 0 alone writes the outputs.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from t2ieval.clip.data import PairSet
from t2ieval.clip.distributed import init_distributed, relaunch_with_torchrun, shutdown, under_torchrun
from t2ieval.clip.model import save_clip
from t2ieval.clip.score import ClipScorer, score_pairs
from t2ieval.metrics import pairwise_accuracy
from t2ieval.clip.train import finetune
from t2ieval.io import read_table, write_metrics, write_plot, write_table
from t2ieval.paths import CLIP_MODEL_DIR, SPLIT_PAIRS, scores_path
from t2ieval.pipeline import start_stage
from t2ieval.runtime import pick_device

STAGE = "finetune_clip"
log = logging.getLogger(STAGE)


def main() -> int:
    params = start_stage()
    cfg = params.finetune_clip
    if cfg.distributed.nproc > 1 and not under_torchrun():
        return relaunch_with_torchrun(Path(__file__), cfg.distributed.nproc)

    device = pick_device(params.base.device)
    ctx, device = init_distributed(cfg.distributed.backend, device)
    pairs = read_table(SPLIT_PAIRS, required=["pair_id", "prompt", "image_1", "image_2",
                                              "preferred", "split"])
    pairs["pair_id"] = pairs["pair_id"].astype(str)
    train = PairSet.from_frame(pairs[pairs["split"] == "train"], f"{SPLIT_PAIRS} (train)")
    val = PairSet.from_frame(pairs[pairs["split"] == "val"], f"{SPLIT_PAIRS} (val)")

    result = finetune(train, val, cfg, params.base.seed, device, ctx)

    if ctx.is_main:
        info = {"params": dataclasses.asdict(cfg), "seed": params.base.seed,
                "best_epoch": result.best_epoch, "val_accuracy": result.best_val_accuracy,
                **result.info}
        save_clip(result.bundle, CLIP_MODEL_DIR, info)
        scorer = ClipScorer.load(CLIP_MODEL_DIR, device=str(device))  # what later stages load
        scores = score_pairs(scorer, pairs)
        write_table(scores_path("clip"), scores)
        scored = scores.assign(preferred=pairs["preferred"].to_numpy())
        by_split = {s: pairwise_accuracy(part["score_1"], part["score_2"], part["preferred"])
                    for s, part in ((s, scored[scored["split"] == s]) for s in ("train", "val", "test"))}
        write_plot(STAGE, "curve", result.curve)
        write_metrics(STAGE, {
            "val_accuracy_clip": by_split["val"],
            "val_accuracy_clip_zeroshot": result.zeroshot_val_accuracy,
            "test_accuracy_clip": by_split["test"],
            "train_accuracy_clip": by_split["train"],
            "best_epoch": result.best_epoch,
            "train_pairs": result.train_pairs,
            "val_pairs": result.val_pairs,
            "test_pairs": int((pairs["split"] == "test").sum()),
        })
    shutdown(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
