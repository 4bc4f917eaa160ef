"""Pairs as tensors for the CLIP branch: tokenised prompts and preprocessed images."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from t2ieval.images import load_image

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("pair_id", "prompt", "image_1", "image_2", "preferred")
PRELOAD_LIMIT_BYTES = 2 * 1024**3  # preprocessed images above this are loaded lazily per batch


@dataclass(frozen=True)
class PairSet:
    """Pairs reordered as (prompt, preferred image, other image), in the table's row order."""

    pair_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    preferred_paths: tuple[str, ...]
    other_paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.pair_ids)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: str = "pairs") -> PairSet:
        """Validate a pairs table (``data/split/pairs.csv`` rows) and build the set.

        Raises ``ValueError`` naming ``source``, the row and the field for bad input.
        """
        missing = [c for c in PAIR_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{source}: missing column(s) {missing}; found {list(frame.columns)}")
        pair_ids, prompts, pref, other = [], [], [], []
        for row, rec in enumerate(frame.itertuples(index=False), start=2):  # row 1 is the header
            where = f"{source} row {row} (pair_id {rec.pair_id})"
            prompt = rec.prompt
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(f"{where}: prompt is empty")
            try:
                preferred = int(rec.preferred)
            except (TypeError, ValueError):
                preferred = None
            if preferred not in (1, 2):
                raise ValueError(f"{where}: preferred must be 1 or 2, got {rec.preferred!r}")
            for col in ("image_1", "image_2"):
                if not isinstance(getattr(rec, col), str) or not getattr(rec, col):
                    raise ValueError(f"{where}: {col} is empty")
            pair_ids.append(str(rec.pair_id))
            prompts.append(prompt)
            pref.append(rec.image_1 if preferred == 1 else rec.image_2)
            other.append(rec.image_2 if preferred == 1 else rec.image_1)
        return cls(tuple(pair_ids), tuple(prompts), tuple(pref), tuple(other))


def tokenize(tokenizer: Callable, prompts: list[str] | tuple[str, ...]) -> torch.Tensor:
    """Tokenise prompts with an open_clip tokenizer -> LongTensor ``[n, context_length]``."""
    return tokenizer(list(prompts))


def _image_bytes(n_images: int, preprocess: Callable, first_path: str) -> int:
    sample = preprocess(load_image(first_path))
    return n_images * sample.numel() * sample.element_size()


class PairImageDataset(Dataset):
    """Item ``i``: ``(tokens_i, preferred_image_i, other_image_i)`` as model-ready tensors.

    Images are decoded with :func:`t2ieval.images.load_image` and transformed with open_clip's
    inference preprocessing (no augmentation: crops could cut the objects a prompt counts).
    When they fit in ``preload_limit`` bytes they are preprocessed once up front, so epochs
    after the first cost no image decoding; otherwise each item is loaded on demand.
    """

    def __init__(
        self,
        pairs: PairSet,
        tokenizer: Callable,
        preprocess: Callable,
        preload: bool | None = None,
        preload_limit: int = PRELOAD_LIMIT_BYTES,
        desc: str = "images",
    ) -> None:
        self.pairs = pairs
        self.preprocess = preprocess
        self.tokens = tokenize(tokenizer, pairs.prompts)
        paths = sorted(set(pairs.preferred_paths) | set(pairs.other_paths))
        index = {p: i for i, p in enumerate(paths)}
        self.paths = paths
        self.preferred_idx = torch.tensor([index[p] for p in pairs.preferred_paths])
        self.other_idx = torch.tensor([index[p] for p in pairs.other_paths])
        if preload is None:
            preload = (
                bool(paths) and _image_bytes(len(paths), preprocess, paths[0]) <= preload_limit
            )
        self.images: torch.Tensor | None = None
        if preload and paths:
            self.images = torch.stack(
                [
                    preprocess(load_image(p))
                    for p in tqdm(paths, desc=f"preprocessing {desc}", unit="img", leave=False)
                ]
            )
        elif paths:
            log.info("%d %s loaded lazily (over the preload limit)", len(paths), desc)

    def __len__(self) -> int:
        return len(self.pairs)

    def _image(self, i: int) -> torch.Tensor:
        if self.images is not None:
            return self.images[i]
        return self.preprocess(load_image(self.paths[i]))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            self.tokens[i],
            self._image(int(self.preferred_idx[i])),
            self._image(int(self.other_idx[i])),
        )
