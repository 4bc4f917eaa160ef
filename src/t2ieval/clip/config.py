"""Fine-tuning settings of the CLIP branch (``finetune_clip.*`` in ``params.yaml`` extends them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class FinetuneConfig:
    """What :func:`t2ieval.clip.train.finetune` trains and how; the seed is passed apart."""

    model: str = "t2i-tiny"  # open_clip architecture, config JSON or saved model folder
    pretrained: str | None = None  # pretrained tag, local checkpoint path, or None (random init)
    train: Literal["heads", "last_blocks", "full"] = "full"
    unlocked_blocks: int = 2  # with train="last_blocks": final blocks of each tower that train
    epochs: int = 12
    lr: float = 5e-4
    lr_decay: float = 0.8  # multiplied into lr after each epoch
    batch_size: int = 32  # global batch (pairs), also under DDP
    weight_decay: float = 0.05
    precision: Literal["fp32", "bf16", "amp"] = "fp32"
    temperature: float | None = None  # None: CLIP's learned logit scale; a number fixes tau
    num_workers: int = 0
