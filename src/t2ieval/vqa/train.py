"""Building and training the embedded tiny ViLT on the generated yes/no questions.

No VQA checkpoint can be downloaded here, so the embedded default ``t2i-tiny-vilt`` is a small
``ViltForQuestionAnswering`` (config in ``configs/vqa/t2i-tiny-vilt.json``) with a WordPiece
vocabulary trained on the questions and prompts, and a ``ViltImageProcessor`` at the generated
images' size, trained from random initialisation on the train split's question/answer pairs with
two labels (``id2label = {0: "no", 1: "yes"}``) and ViLT's own VQA loss (binary cross-entropy over
one-hot answer targets, times the number of labels).

Two additions make it learn more than the answers' priors (see :mod:`t2ieval.vqa.auxiliary`):

* a training-only auxiliary head on the pooled output predicts the image's whole answer sheet and
  the question's words, added to the loss with ``aux_weight``;
* ``pretrain_epochs`` epochs of that auxiliary loss alone come first, over images rather than
  questions (each image with one of its own questions as text), which is ~8x cheaper per epoch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from t2ieval.vqa.auxiliary import AuxiliaryHead, answer_sheet
from t2ieval.vqa.model import ViltVqa, fingerprint_model
from t2ieval.vqa.settings import TrainSettings

log = logging.getLogger(__name__)


@dataclass
class QaExamples:
    """Yes/no questions about a set of distinct images (``image_index[i]`` -> ``images``)."""

    images: list[Image.Image]
    image_index: np.ndarray  # int, one per question
    questions: list[str]
    labels: np.ndarray  # 1 = yes, 0 = no
    groups: np.ndarray | None = None  # rows sharing a group id are batched together
    facts: np.ndarray | None = None  # per image (row of ``images``): 0/1 facts, NaN unknown

    def __post_init__(self) -> None:
        self.image_index = np.asarray(self.image_index, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        n = len(self.questions)
        if len(self.image_index) != n or len(self.labels) != n:
            raise ValueError(
                f"QaExamples: {n} questions, {len(self.image_index)} image indices, "
                f"{len(self.labels)} labels"
            )
        if n and (self.image_index.min() < 0 or self.image_index.max() >= len(self.images)):
            raise ValueError("QaExamples: image index out of range")
        if self.groups is not None:
            self.groups = np.asarray(self.groups, dtype=np.int64)
            if len(self.groups) != n:
                raise ValueError(f"QaExamples: {n} questions but {len(self.groups)} group ids")
        if self.facts is not None:
            self.facts = np.asarray(self.facts, dtype=np.float32)
            if self.facts.ndim != 2 or len(self.facts) != len(self.images):
                raise ValueError(
                    f"QaExamples: facts need one row per image ({len(self.images)}), "
                    f"got shape {self.facts.shape}"
                )

    def __len__(self) -> int:
        return len(self.questions)

    def subset(self, rows: Sequence[int]) -> QaExamples:
        rows = np.asarray(rows, dtype=np.int64)
        return QaExamples(
            self.images,
            self.image_index[rows],
            [self.questions[i] for i in rows],
            self.labels[rows],
            None if self.groups is None else self.groups[rows],
            self.facts,
        )


def _batches(
    n: int, batch_size: int, rng: np.random.Generator | None, groups: np.ndarray | None = None
) -> list[np.ndarray]:
    """Row batches in random order; rows of one group stay next to each other."""
    if rng is None:
        order = np.arange(n)
    elif groups is None:
        order = rng.permutation(n)
    else:
        uniq, inverse = np.unique(groups, return_inverse=True)
        rank = rng.permutation(len(uniq))[inverse]
        order = np.lexsort((rng.random(n), rank))
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


class PixelCache:
    """The image processor's output for every image of a :class:`QaExamples`, computed once.

    Resizing and normalising the same images again in every batch of every epoch cost about a
    sixth of the training time. When every image comes out of the processor at the same size
    (the synthetic set's do), the tensors are stacked once and a batch is an index into them:
    the same values the processor gives per batch, since it treats each image alone and pads
    only to the largest image of the batch. Otherwise batches go through the processor.
    """

    def __init__(self, vqa: ViltVqa, images: Sequence[Image.Image], chunk: int = 256):
        self.vqa = vqa
        self.images = images
        self.pixels: dict[str, torch.Tensor] | None = None
        parts = [vqa.encode_images(images[i : i + chunk]) for i in range(0, len(images), chunk)]
        shapes = {tuple(p["pixel_values"].shape[1:]) for p in parts}
        if len(shapes) == 1:
            self.pixels = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
            if "pixel_mask" in self.pixels and not bool(self.pixels["pixel_mask"].bool().all()):
                self.pixels = None  # padded within a chunk: sizes differ, batch by batch
        log.info(
            "pixel cache: %s",
            "stacked once"
            if self.pixels is not None
            else "images differ in size, processed per batch",
        )

    def batch(self, image_ids: np.ndarray) -> dict[str, torch.Tensor]:
        if self.pixels is None:
            return self.vqa.encode_images([self.images[i] for i in image_ids])
        idx = torch.as_tensor(image_ids, dtype=torch.long, device=self.vqa.device)
        return {k: v.index_select(0, idx) for k, v in self.pixels.items()}


def _encode_batch(
    vqa: ViltVqa,
    data: QaExamples,
    rows: np.ndarray,
    shift: int = 0,
    rng: np.random.Generator | None = None,
    cache: PixelCache | None = None,
):
    img_ids, local = np.unique(data.image_index[rows], return_inverse=True)
    pixels = (
        cache.batch(img_ids)
        if cache is not None
        else vqa.encode_images([data.images[i] for i in img_ids])
    )
    if shift > 0 and rng is not None:
        pixels = {**pixels, "pixel_values": random_shift(pixels["pixel_values"], shift, rng)}
    return pixels, local.tolist(), [data.questions[i] for i in rows]


def random_shift(
    pixel_values: torch.Tensor, max_shift: int, rng: np.random.Generator
) -> torch.Tensor:
    """Each image moved by up to ``max_shift`` pixels each way, edges repeated into the gap.

    Objects then fall across patch boundaries at new offsets, which the tiny ViLT otherwise
    memorises per training image. Every fact of the scene (and every answer) is unchanged: the
    synthetic scenes keep a margin around their objects and the background is plain.
    """
    if max_shift <= 0:
        return pixel_values
    n, _, h, w = pixel_values.shape
    padded = torch.nn.functional.pad(pixel_values, (max_shift,) * 4, mode="replicate")
    dy, dx = rng.integers(0, 2 * max_shift + 1, size=(2, n))
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def _minimal_pair_loss(
    margin: torch.Tensor, groups: np.ndarray, labels: np.ndarray
) -> torch.Tensor:
    """Ranking loss over minimal pairs: the same question, one image answered yes, one no.

    ``softplus(-(s_yes - s_no))`` on the yes-vs-no logit difference ``s``: the question's text
    prior cancels, so all of this gradient asks the model to look at the image.
    """
    same = groups[:, None] == groups[None, :]
    differ = labels[:, None] > labels[None, :]  # i answered yes, j answered no
    i, j = np.nonzero(same & differ)
    if len(i) == 0:
        return margin.new_zeros(())
    return torch.nn.functional.softplus(-(margin[i] - margin[j])).mean()


def _optimizer(params, settings: TrainSettings, total_steps: int):
    """AdamW with a linear warm-up over ``settings.warmup`` of the steps, then linear decay to 0."""
    # fused: one pass over each tensor (AdamW was 7 % of a step as a per-tensor loop)
    optimizer = torch.optim.AdamW(
        params, lr=settings.lr, weight_decay=settings.weight_decay, fused=True
    )
    warmup = max(1, int(settings.warmup * total_steps))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def _step(loss: torch.Tensor, params: list[torch.nn.Parameter], optimizer, scheduler) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()


def pretrain_auxiliary(
    vqa: ViltVqa,
    train: QaExamples,
    head: AuxiliaryHead,
    settings: TrainSettings,
    seed: int = 0,
    progress: bool = True,
    cache: PixelCache | None = None,
) -> list[float]:
    """``settings.pretrain_epochs`` epochs of the auxiliary loss alone, one row per image.

    Each step shows every image of the batch with one of its own questions (drawn at random) and
    asks for its facts and that question's words. Returns the mean loss of each epoch.
    """
    by_image: dict[int, list[int]] = {}
    for row, img in enumerate(train.image_index):
        by_image.setdefault(int(img), []).append(row)
    images = np.array(sorted(by_image), dtype=np.int64)
    params = list(vqa.model.parameters()) + list(head.parameters())
    optimizer, scheduler = _optimizer(
        params, settings, math.ceil(len(images) / settings.batch_size) * settings.pretrain_epochs
    )
    rng = np.random.default_rng([seed, 1])
    losses_per_epoch = []
    for epoch in range(1, settings.pretrain_epochs + 1):
        vqa.model.train()
        losses = []
        bar = tqdm(
            _batches(len(images), settings.batch_size, rng),
            desc=f"vqa pretrain {epoch}",
            unit="batch",
            disable=not progress,
            mininterval=2.0,
        )
        for batch in bar:
            img_rows = images[batch]
            rows = np.array(
                [by_image[int(i)][int(rng.integers(len(by_image[int(i)])))] for i in img_rows]
            )
            pixels, local, questions = _encode_batch(vqa, train, rows, settings.shift, rng, cache)
            _, pooled = vqa.logits_and_pooled(pixels, local, questions)
            loss = head.loss(pooled, train.image_index[rows], questions)
            _step(loss, params, optimizer, scheduler)
            losses.append(loss.item())
        losses_per_epoch.append(float(np.mean(losses)))
        log.info("vqa pretrain epoch %d: auxiliary loss %.4f", epoch, losses_per_epoch[-1])
    return losses_per_epoch


def predict(
    vqa: ViltVqa,
    data: QaExamples,
    batch_size: int = 256,
    progress: bool = False,
    cache: PixelCache | None = None,
) -> np.ndarray:
    """P(yes) for every question of ``data`` (batched, ``inference_mode``)."""
    vqa.model.eval()
    out = np.empty(len(data), dtype=np.float64)
    batches = _batches(len(data), batch_size, None)
    for rows in tqdm(
        batches, desc="answering", unit="batch", disable=not progress, mininterval=2.0
    ):
        pixels, local, questions = _encode_batch(vqa, data, rows, cache=cache)
        out[rows] = vqa.yes_probability(pixels, local, questions)
    return out


def answer_accuracy(p_yes: np.ndarray, labels: np.ndarray) -> float:
    """Share of questions answered right with the threshold P(yes) >= 0.5."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return float("nan")
    return float(((np.asarray(p_yes) >= 0.5).astype(int) == labels).mean())


def train_vqa(
    vqa: ViltVqa,
    train: QaExamples,
    settings: TrainSettings,
    seed: int = 0,
    val: QaExamples | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train ``vqa`` in place; returns one row per epoch (loss, train/val answer accuracy).

    The validation accuracy per epoch is measured on at most 2,000 validation questions (a fixed
    sample) to keep the curve cheap; the stage measures the full validation set at the end.
    """
    if len(train) == 0:
        raise ValueError("train_vqa: no training question")
    if settings.epochs < 1 or settings.batch_size < 1:
        raise ValueError(f"train_vqa: epochs and batch_size must be >= 1, got {settings}")
    if settings.pretrain_epochs < 0 or settings.aux_weight < 0:
        raise ValueError(f"train_vqa: pretrain_epochs and aux_weight must be >= 0, got {settings}")
    model = vqa.model
    num_labels = model.config.num_labels
    cache = PixelCache(vqa, train.images)
    yes_no = torch.tensor([vqa.no_id, vqa.yes_id])
    head = None
    if settings.aux_weight > 0 or settings.pretrain_epochs > 0:
        facts = train.facts
        if facts is None:
            _, facts = answer_sheet(
                train.image_index, train.questions, train.labels, len(train.images)
            )
        head = AuxiliaryHead(model.config.hidden_size, facts, vqa.tokenizer).to(vqa.device)
        if settings.pretrain_epochs > 0:
            pretrain_auxiliary(vqa, train, head, settings, seed, progress=progress, cache=cache)
    params = list(model.parameters())
    if head is not None and settings.aux_weight > 0:
        params += list(head.parameters())
    optimizer, scheduler = _optimizer(
        params, settings, math.ceil(len(train) / settings.batch_size) * settings.epochs
    )
    rng = np.random.default_rng(seed)
    val_probe = None
    if val is not None and len(val):
        probe_rows = np.random.default_rng(seed + 1).permutation(len(val))[:2000]
        val_probe = val.subset(np.sort(probe_rows))
        val_cache = PixelCache(vqa, val.images)
    history = []
    for epoch in range(1, settings.epochs + 1):
        model.train()
        losses, aux_losses, correct = [], [], 0
        bar = tqdm(
            _batches(len(train), settings.batch_size, rng, train.groups),
            desc=f"vqa epoch {epoch}",
            unit="batch",
            disable=not progress,
            mininterval=2.0,
        )
        for rows in bar:
            pixels, local, questions = _encode_batch(vqa, train, rows, settings.shift, rng, cache)
            logits, pooled = vqa.logits_and_pooled(pixels, local, questions)
            labels = torch.as_tensor(train.labels[rows], device=logits.device)
            targets = torch.zeros_like(logits)
            targets[torch.arange(len(rows)), yes_no.to(logits.device)[labels]] = 1.0
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(logits, targets) * num_labels
            )
            if settings.rank_weight > 0 and train.groups is not None:
                loss = loss + settings.rank_weight * _minimal_pair_loss(
                    logits[:, vqa.yes_id] - logits[:, vqa.no_id],
                    train.groups[rows],
                    train.labels[rows],
                )
            losses.append(loss.item())
            if head is not None and settings.aux_weight > 0:
                aux = head.loss(pooled, train.image_index[rows], questions)
                aux_losses.append(aux.item())
                loss = loss + settings.aux_weight * aux
            _step(loss, params, optimizer, scheduler)
            pred_yes = logits[:, vqa.yes_id] > logits[:, vqa.no_id]
            correct += int((pred_yes.long() == labels).sum())
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "train_answer_accuracy": correct / len(train),
        }
        if aux_losses:
            row["train_aux_loss"] = float(np.mean(aux_losses))
        if val_probe is not None:
            row["val_answer_accuracy"] = answer_accuracy(
                predict(vqa, val_probe, cache=val_cache), val_probe.labels
            )
        log.info("vqa epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items()})
        history.append(row)
    model.eval()
    vqa.fingerprint = fingerprint_model(vqa.kind, model, vqa.processor)
    return history
