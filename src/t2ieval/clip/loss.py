"""The method's InfoNCE loss, with negatives gathered across ranks under DDP.

For a batch of N pairs with prompt embeddings ``q_i``, preferred-image embeddings ``k_i+`` and
non-preferred-image embeddings ``k_i-`` (all L2-normalised), the candidates of every anchor are the
2N images of the (global) batch, ``K = [k_1+ .. k_N+, k_1- .. k_N-]``::

    L = -1/N sum_i log( exp(s cos(q_i, k_i+)) / sum_{j<2N} exp(s cos(q_i, K_j)) )

where ``s = 1 / tau`` is CLIP's learned logit scale (``exp(logit_scale)``) unless a fixed
temperature is given.

Under DDP each rank holds ``n = N / world_size`` pairs. The image embeddings of all ranks are
gathered *with gradient* (``open_clip.loss.gather_features(..., gather_with_grad=True)``) and each
rank computes the loss of its own anchors against all 2N candidates. Averaging the ranks'
gradients (what DDP does) then gives exactly the gradient of the single-process loss on the global
batch, so the learning rate needs no scaling when ``batch_size`` (the global batch) is unchanged.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from open_clip.loss import gather_features
from torch import nn


class PairwiseInfoNCE(nn.Module):
    """Prompt-anchored InfoNCE over the preferred image (positive) and every other batch image.

    Args:
        temperature: fixed ``tau``; ``None`` uses the ``logit_scale`` passed to :meth:`forward`.
        rank, world_size: this process's place in the DDP group (1 process: 0, 1).
    """

    def __init__(
        self, temperature: float | None = None, rank: int = 0, world_size: int = 1
    ) -> None:
        super().__init__()
        if temperature is not None and temperature <= 0:
            raise ValueError(f"finetune_clip.temperature must be > 0 or null, got {temperature}")
        self.temperature = temperature
        self.rank = rank
        self.world_size = world_size

    def scale(self, logit_scale: torch.Tensor | float) -> torch.Tensor | float:
        """The multiplier ``s = 1/tau`` of the cosine similarities."""
        return 1.0 / self.temperature if self.temperature is not None else logit_scale

    def logits(
        self,
        text: torch.Tensor,
        preferred: torch.Tensor,
        other: torch.Tensor,
        logit_scale: torch.Tensor | float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[n_local, 2N]`` of this rank's anchors and the index of each one's positive."""
        text = F.normalize(text.float(), dim=-1)
        preferred = F.normalize(preferred.float(), dim=-1)
        other = F.normalize(other.float(), dim=-1)
        n_local = text.shape[0]
        if self.world_size > 1:
            # one gather for both image kinds: concatenate them along the feature axis
            images = torch.cat([preferred, other], dim=1)
            with (
                warnings.catch_warnings()
            ):  # open_clip 3.3 calls the deprecated autograd all_gather
                warnings.filterwarnings(
                    "ignore", message=".*all_gather is deprecated", category=FutureWarning
                )
                all_images, _ = gather_features(
                    images,
                    text,
                    local_loss=True,
                    gather_with_grad=True,
                    rank=self.rank,
                    world_size=self.world_size,
                )
            dim = preferred.shape[1]
            all_preferred, all_other = all_images[:, :dim], all_images[:, dim:]
        else:
            all_preferred, all_other = preferred, other
        keys = torch.cat([all_preferred, all_other], dim=0)  # [2N, d]: positives first
        logits = self.scale(logit_scale) * text @ keys.T
        labels = torch.arange(n_local, device=text.device) + self.rank * n_local
        return logits, labels

    def forward(
        self,
        text: torch.Tensor,
        preferred: torch.Tensor,
        other: torch.Tensor,
        logit_scale: torch.Tensor | float = 1.0,
    ) -> torch.Tensor:
        """Mean loss over this rank's anchors (equal to the global loss when world_size is 1)."""
        logits, labels = self.logits(text, preferred, other, logit_scale)
        return F.cross_entropy(logits, labels)
