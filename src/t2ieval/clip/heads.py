"""Learnable linear heads on CLIP embeddings (the method's 512x512 layers for ViT-B-32)."""

from __future__ import annotations

import torch
from torch import nn


class LinearHead(nn.Linear):
    """A square ``dim x dim`` linear map initialised to the identity.

    Starting from the identity (zero bias) means that, before training, the projected embeddings
    equal the backbone's, so fine-tuning starts from the backbone's zero-shot behaviour.
    """

    def __init__(self, dim: int, bias: bool = True) -> None:
        super().__init__(dim, dim, bias=bias)

    def reset_parameters(self) -> None:  # called by nn.Linear.__init__
        with torch.no_grad():
            self.weight.copy_(torch.eye(self.in_features, dtype=self.weight.dtype))
            if self.bias is not None:
                self.bias.zero_()
