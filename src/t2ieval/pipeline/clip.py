"""The ``finetune_clip`` stage: fine-tune the CLIP-score model, keep the best epoch, score pairs."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from t2ieval.batching import score_pair_table
from t2ieval.clip.data import PairSet
from t2ieval.clip.distributed import DistContext
from t2ieval.clip.model import save_clip
from t2ieval.clip.score import ClipScorer
from t2ieval.clip.train import finetune
from t2ieval.io import read_table
from t2ieval.metrics import accuracy_report
from t2ieval.params import Params
from t2ieval.paths import SPLIT_PAIRS

log = logging.getLogger(__name__)


@dataclass
class ClipStageResult:
    """What the stage writes (rank 0 only; other ranks get ``scores`` None)."""

    curve: list[dict]
    scores: pd.DataFrame | None  # pair_id, split, score_1, score_2
    metrics: dict


def finetune_stage(
    params: Params, device: torch.device, ctx: DistContext, model_dir: Path
) -> ClipStageResult:
    """Fine-tune on the train split, keep the best validation epoch in ``model_dir``, then score
    every pair with the saved model exactly as later stages and the served model load it."""
    cfg = params.finetune_clip
    pairs = read_table(
        SPLIT_PAIRS,
        required=["pair_id", "prompt", "image_1", "image_2", "preferred", "split", "category"],
    )
    pairs["pair_id"] = pairs["pair_id"].astype(str)
    train = PairSet.from_frame(pairs[pairs["split"] == "train"], f"{SPLIT_PAIRS} (train)")
    val = PairSet.from_frame(pairs[pairs["split"] == "val"], f"{SPLIT_PAIRS} (val)")
    result = finetune(train, val, cfg, params.base.seed, device, ctx)
    if not ctx.is_main:
        return ClipStageResult(result.curve, None, {})
    info = {
        "params": dataclasses.asdict(cfg),
        "seed": params.base.seed,
        "best_epoch": result.best_epoch,
        "val_accuracy": result.best_val_accuracy,
        **result.info,
    }
    save_clip(result.bundle, model_dir, info)
    scorer = ClipScorer.load(model_dir, device=str(device))
    scores = score_pair_table(pairs, scorer.score, desc="CLIP-scoring pairs")
    metrics = {
        **accuracy_report(
            scores.merge(pairs[["pair_id", "preferred", "category"]], on="pair_id"), "clip"
        ),
        "val_accuracy_clip_zeroshot": result.zeroshot_val_accuracy,
        "best_epoch": result.best_epoch,
        "train_pairs": result.train_pairs,
        "val_pairs": result.val_pairs,
        "test_pairs": int((pairs["split"] == "test").sum()),
    }
    return ClipStageResult(result.curve, scores, metrics)
