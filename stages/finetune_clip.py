"""DVC stage ``finetune_clip``: the CLIP-score model, its per-pair scores and training curve.

Writes ``models/clip/``, ``data/scores/clip.csv``, ``metrics/finetune_clip.json`` and
``plots/finetune_clip/curve.csv``. With ``finetune_clip.distributed.nproc > 1`` the script
re-launches itself under torchrun (DDP); rank 0 alone writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from t2ieval.clip.distributed import (
    init_distributed,
    relaunch_with_torchrun,
    shutdown,
    under_torchrun,
)
from t2ieval.io import write_metrics, write_plot, write_table
from t2ieval.paths import CLIP_MODEL_DIR, scores_path
from t2ieval.pipeline import start_stage
from t2ieval.pipeline.clip import finetune_stage
from t2ieval.runtime import pick_device


def main() -> int:
    params = start_stage()
    dist = params.finetune_clip.distributed
    if dist.nproc > 1 and not under_torchrun():
        return relaunch_with_torchrun(Path(__file__), dist.nproc)
    ctx, device = init_distributed(dist.backend, pick_device(params.base.device))
    result = finetune_stage(params, device, ctx, CLIP_MODEL_DIR)
    if ctx.is_main:
        write_table(scores_path("clip"), result.scores)
        write_plot("finetune_clip", "curve", result.curve)
        write_metrics("finetune_clip", result.metrics)
    shutdown(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
