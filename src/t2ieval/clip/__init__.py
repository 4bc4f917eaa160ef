"""Branch 1 of the method: the CLIP-score (prompt-image alignment) with learnable linear heads.

Public API: :func:`create_clip`, :func:`save_clip`, :func:`load_clip`, :class:`ClipScorer`,
:func:`finetune`, :class:`PairwiseInfoNCE`.
"""

from t2ieval.clip.loss import PairwiseInfoNCE
from t2ieval.clip.model import (ClipBundle, ClipModelError, ClipWithHeads,
                                PretrainedUnavailableError, create_clip, load_clip, save_clip)
from t2ieval.clip.score import ClipScorer, score_pairs
from t2ieval.clip.train import FinetuneResult, finetune

__all__ = [
    "ClipBundle", "ClipModelError", "ClipScorer", "ClipWithHeads", "FinetuneResult", "PairwiseInfoNCE",
    "PretrainedUnavailableError", "create_clip", "load_clip",
    "finetune", "save_clip", "score_pairs",
]
