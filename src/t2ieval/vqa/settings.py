"""Training settings of the embedded VQA model (``vqa.*`` in ``params.yaml`` extends these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings of :func:`t2ieval.vqa.train.train_vqa`; the seed is passed apart."""

    epochs: int = 4  # epochs of answers (+ auxiliary loss), over questions
    pretrain_epochs: int = 30  # epochs of the auxiliary loss alone, over images, first
    lr: float = 1e-3
    batch_size: int = 32  # a pair's two images asked the same question share a batch
    weight_decay: float = 0.01
    warmup: float = 0.05  # share of the steps with a linearly rising learning rate
    rank_weight: float = 1.0  # weight of the minimal-pair ranking loss (0: answers' loss only)
    aux_weight: float = 1.0  # weight of the auxiliary scene-facts + question-words loss (0: off)
    shift: int = 4  # augmentation: training images moved by up to this many pixels
