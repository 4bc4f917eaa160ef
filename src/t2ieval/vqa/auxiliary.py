"""The training-only auxiliary objective that makes the embedded ViLT look *and* read.

Trained from scratch on yes/no answers alone, the tiny ViLT learns the answers' priors per
question kind and then stalls: its pooled ``[CLS]`` output (the only thing the answer head sees)
ends up carrying either the image's content or the question's words, not both, and an answer that
depends on both (``Is the triangle orange?``: is *orange* among the colours drawn?) never appears.
Measured on the embedded default: 0.54 answer accuracy on colour questions, the share of "yes".

The fix is a second head on the same pooled output, used only while training and then thrown
away (the saved model is a plain ``ViltForQuestionAnswering``). From one forward pass it predicts

* the image's **facts**: a 0/1 matrix row per image, NaN where a fact is unknown. For the
  synthetic set these are the generator's scene graphs of the train split's images
  (:func:`t2ieval.data.scenes.scene_facts`: 260 facts, shapes, colours, shape-colour objects,
  counts, style, relations, absent ones included); without scene graphs, the image's **answer
  sheet** (:func:`answer_sheet`: its answers to the train questions, NaN where not asked). One
  forward pass thus gets a label per fact, not one answer, and the ``[CLS]`` token must gather
  the image's content;
* the **question's words** (a bag of WordPiece ids, special tokens left out), so the same token
  must also keep what was asked.

The answer head then only has to combine two things that are already there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["AuxiliaryHead", "answer_sheet"]


def answer_sheet(
    image_index: np.ndarray, questions: Sequence[str], labels: np.ndarray, n_images: int
) -> tuple[list[str], np.ndarray]:
    """Per image, its answer (1 yes, 0 no) to every distinct question; NaN where not asked.

    Returns the sorted distinct questions (the columns) and an ``n_images x n_questions`` float32
    matrix. A question asked twice of the same image with different answers is an error.
    """
    image_index = np.asarray(image_index, dtype=np.int64)
    labels = np.asarray(labels)
    if not (len(image_index) == len(questions) == len(labels)):
        raise ValueError(
            f"answer_sheet: {len(image_index)} image indices, {len(questions)} "
            f"questions and {len(labels)} labels"
        )
    columns = sorted(set(questions))
    col = {q: j for j, q in enumerate(columns)}
    sheet = np.full((n_images, len(columns)), np.nan, dtype=np.float32)
    for i, q, y in zip(image_index, questions, labels):
        j = col[q]
        if not np.isnan(sheet[i, j]) and sheet[i, j] != float(y):
            raise ValueError(f"answer_sheet: image {i} has both answers to {q!r}")
        sheet[i, j] = float(y)
    return columns, sheet


class AuxiliaryHead(torch.nn.Module):
    """A linear head on ViLT's pooled output: the image's facts plus the question's words.

    ``facts`` has one row per image (0/1, NaN where unknown). ``loss`` is a sum of binary
    cross-entropies over the predicted entries, averaged over the batch: unknown facts do not
    count; every vocabulary entry of the words does.
    """

    def __init__(self, hidden_size: int, facts: np.ndarray, tokenizer) -> None:
        super().__init__()
        facts = np.asarray(facts, dtype=np.float32)
        if facts.ndim != 2 or facts.shape[1] == 0:
            raise ValueError(
                f"AuxiliaryHead: facts must be an images x facts matrix, got shape {facts.shape}"
            )
        self.register_buffer("sheet", torch.as_tensor(facts), persistent=False)
        self.tokenizer = tokenizer
        self.vocab_size = len(tokenizer)
        self.special = sorted(set(tokenizer.all_special_ids))
        self._word_ids: dict[str, list[int]] = {}
        self.linear = torch.nn.Linear(hidden_size, self.sheet.shape[1] + self.vocab_size)

    def words(self, questions: Sequence[str]) -> torch.Tensor:
        """Multi-hot WordPiece ids of each question (special tokens left out)."""
        new = [q for q in dict.fromkeys(questions) if q not in self._word_ids]
        if new:  # each distinct question tokenised once: training asks them every epoch
            for q, seq in zip(new, self.tokenizer(new, add_special_tokens=False)["input_ids"]):
                self._word_ids[q] = seq
        ids = [self._word_ids[q] for q in questions]
        out = torch.zeros(len(ids), self.vocab_size, device=self.sheet.device)
        rows = [row for row, seq in enumerate(ids) for _ in seq]
        if rows:
            cols = [i for seq in ids for i in seq]
            out[torch.tensor(rows, device=out.device), torch.tensor(cols, device=out.device)] = 1.0
        if self.special:
            out[:, self.special] = 0.0
        return out

    def loss(
        self, pooled: torch.Tensor, image_rows: np.ndarray, questions: Sequence[str]
    ) -> torch.Tensor:
        """Auxiliary loss of a batch: ``pooled[i]`` is about image ``image_rows[i]``."""
        out = self.linear(pooled)
        n_sheet = self.sheet.shape[1]
        rows = torch.as_tensor(np.asarray(image_rows, dtype=np.int64), device=self.sheet.device)
        sheet = self.sheet.index_select(0, rows)
        asked = ~torch.isnan(sheet)
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        sheet_loss = bce(out[:, :n_sheet][asked], sheet[asked], reduction="sum")
        words_loss = bce(out[:, n_sheet:], self.words(questions), reduction="sum")
        return (sheet_loss + words_loss) / len(pooled)
