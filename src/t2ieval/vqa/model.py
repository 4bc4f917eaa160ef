"""VQA models behind one interface: the probability that the answer to a question is "yes".

Two families, both through transformers:

* **ViLT** (``ViltForQuestionAnswering`` + ``ViltProcessor``),
  e.g. ``dandelin/vilt-b32-finetuned-vqa``
  or the embedded ``t2i-tiny-vilt`` trained by the ``run_vqa`` stage. ViLT's head scores every
  answer of its vocabulary with an independent logit (it is trained with a per-label sigmoid).
  **Choice:** ``P(yes) = softmax over {yes, no}`` of the two logits, i.e.
  ``sigmoid(logit_yes - logit_no)``: the decision between the only two answers a yes/no question
  allows, ignoring the mass the model puts on other answers ("2", "red"); for the embedded
  two-label model (``id2label = {0: "no", 1: "yes"}``) it is the model's full answer distribution.
* **BLIP** (``BlipForQuestionAnswering`` + ``BlipProcessor``, e.g. ``Salesforce/blip-vqa-base``), a
  generative answerer: ``P(yes)`` is the softmax over {yes, no} of the decoder's log-likelihood of
  the answer sequences ``[DEC] yes [SEP]`` and ``[DEC] no [SEP]`` given image and question.

:func:`load_vqa_model` takes the embedded name, a local folder (``save_pretrained`` output) or a
hub name; ``kind="auto"`` reads ``model_type`` from the model's config. A hub name that is neither
in the local cache nor reachable fails at once with a message saying how to give a local path.

Inference runs under ``torch.inference_mode``; on CUDA under bf16 autocast (:func:`autocast_for`),
on CPU in fp32 (exact) unless ``vqa.quantize`` asks for ``bf16`` or ``int8``. Per-image work is
done once per distinct image: ViLT's image tokens and BLIP's vision encoder output and every
text-encoder layer's cross-attention keys and values over the image tokens
(:func:`share_image_attention`). :meth:`VqaModel.quantize` offers CPU bf16
autocast and CPU int8 dynamic quantisation of the Linear layers (``vqa.quantize`` in
``params.yaml``; speed and accuracy cost in ``docs/vqa.md``).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import math
import os
import socket
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "vqa"
EMBEDDED_MODELS: tuple[str, ...] = ("t2i-tiny-vilt",)
YES_NO_METHOD = "softmax-yes-no-v2"  # part of every fingerprint: change it when P(yes) changes
# v2: BLIP decodes each question without its batch's padding (v1 let padding reach the decoder)
Kind = Literal["auto", "vilt", "blip"]
Quantize = Literal["none", "bf16", "int8"]
QUANTIZE_MODES: tuple[str, ...] = ("none", "bf16", "int8")
#: distinct questions whose token ids a model keeps (:meth:`VqaModel._encode_text`)
TOKEN_CACHE_SIZE = 65_536


class VqaModelError(RuntimeError):
    """A VQA model could not be found, loaded or used; the message says what to do."""


def embedded_config_path(name: str) -> Path | None:
    """The JSON config of an embedded model name (``t2i-tiny-vilt``), or None."""
    path = CONFIG_DIR / f"{name}.json"
    return path if name in EMBEDDED_MODELS and path.is_file() else None


def load_embedded_spec(name: str) -> dict:
    """The embedded model's spec: ``config`` (ViltConfig), ``image_processor``, ``tokenizer``."""
    path = embedded_config_path(name)
    if path is None:
        raise VqaModelError(
            f"{name!r} is not an embedded VQA model; known: {list(EMBEDDED_MODELS)}"
        )
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        with socket.create_connection((host or "huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _unavailable(name: str, reason: str) -> VqaModelError:
    return VqaModelError(
        f"VQA model {name!r} is not a local folder and cannot be fetched from the Hugging Face hub "
        f"({reason}). Download it where the hub is reachable, e.g. "
        f"`huggingface-cli download {name} --local-dir models/hub/{name.split('/')[-1]}`, copy the "
        f"folder here and set vqa.model to that path (a folder with config.json, the weights and "
        f"the processor files), or use the embedded model (vqa.model: t2i-tiny-vilt)."
    )


def resolve_source(name_or_path: str | Path) -> str:
    """A local folder, or a hub name already in the local cache; fails fast otherwise."""
    path = Path(name_or_path)
    if path.exists():
        if not (path / "config.json").is_file():
            raise VqaModelError(f"{path}: not a saved VQA model (no config.json in the folder)")
        return str(path)
    name = str(name_or_path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise VqaModelError(f"{name}: no such VQA model folder")
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
        return name  # in the local cache
    except (OSError, ValueError):
        pass
    if not _hub_reachable():
        raise _unavailable(name, "offline, and not in the local Hugging Face cache")
    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise _unavailable(name, str(exc).splitlines()[0]) from exc
    return name


def detect_kind(source: str, kind: Kind = "auto") -> Literal["vilt", "blip"]:
    """``vilt`` or ``blip``: ``kind`` itself, or read from the config's ``model_type``."""
    if kind in ("vilt", "blip"):
        return kind
    if kind != "auto":
        raise VqaModelError(f"vqa.kind must be auto, vilt or blip, got {kind!r}")
    from transformers import AutoConfig

    model_type = getattr(AutoConfig.from_pretrained(source), "model_type", None)
    if model_type in ("vilt", "blip"):
        return model_type  # type: ignore[return-value]
    raise VqaModelError(
        f"{source}: model_type {model_type!r} is neither vilt nor blip; set vqa.kind explicitly "
        "if it is a compatible model"
    )


def _hash_tensor(h: hashlib._Hash, t: torch.Tensor) -> None:
    t = t.detach().to("cpu").contiguous()
    h.update(str(t.dtype).encode())
    h.update(str(tuple(t.shape)).encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def fingerprint_model(kind: str, model: torch.nn.Module, processor) -> str:
    """SHA-256 of everything that decides an answer: kind, weights, processor and vocabulary."""
    h = hashlib.sha256()
    h.update(f"{YES_NO_METHOD}|{kind}|".encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        _hash_tensor(h, tensor)
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None:
        h.update(json.dumps(image_processor.to_dict(), sort_keys=True, default=str).encode())
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    tokens = salient_image_tokens(getattr(model, "config", None))
    if tokens:
        h.update(f"|salient_image_tokens={tokens}".encode())
    return h.hexdigest()[:32]


def salient_image_tokens(config) -> int:
    """The ViLT config's ``salient_image_tokens`` (0 or absent: every patch is an image token).

    A t2ieval field of the embedded ViLT's config, saved in its ``config.json``: the model sees,
    per image, only the patches that differ most from the image's own median colour
    (:func:`select_salient_patches`). Checkpoints without it (every hub ViLT) see every patch.
    """
    return int(getattr(config, "salient_image_tokens", 0) or 0)


def select_salient_patches(pixel_values: torch.Tensor, patch_size: int, keep: int) -> torch.Tensor:
    """Indices (ascending, ``[batch, keep]``) of the ``keep`` patches of each image that differ
    most from that image's median colour: the mean absolute difference over the patch's pixels
    and channels. Ties keep the earlier patch (a stable sort), so the choice is deterministic.

    On the synthetic scenes the median colour is the plain background, so the kept patches are
    the objects (about 17 of 64 at 8 px; ``docs/vqa.md``); ViLT's attention cost falls with the
    square of the sequence, and nothing of the scene is lost while ``keep`` covers the objects.
    """
    median = pixel_values.flatten(2).median(dim=2).values
    deviation = (pixel_values - median[:, :, None, None]).abs().mean(dim=1, keepdim=True)
    per_patch = torch.nn.functional.avg_pool2d(deviation, patch_size).flatten(1)
    order = torch.sort(per_patch, dim=1, descending=True, stable=True).indices[:, :keep]
    return order.sort(dim=1).values


def autocast_for(device: torch.device, cpu_bf16: bool = False) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, and on CPU when ``cpu_bf16``; otherwise nothing (fp32, exact)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if cpu_bf16 and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


#: what oneDNN's ISA names that allow bf16 kernels contain (AVX512_CORE_BF16, *_AMX*, AVX10_*)
BF16_ISA_MARKS = ("BF16", "AMX", "AVX10")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX512-BF16 or AMX) and oneDNN
    may use it. Elsewhere bf16 is emulated and several times slower than fp32 (measured: a
    1154x768x3072 Linear took 171 ms in bf16 against 40 ms in fp32 with oneDNN capped at AVX2,
    and 18 ms against 42 ms with AVX512-BF16)."""
    capped = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if capped not in ("ALL", "DEFAULT") and not any(s in capped for s in BF16_ISA_MARKS):
        return False  # a cap below bf16: SSE41, AVX, AVX2(_VNNI), AVX512_CORE(_VNNI)
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every ``nn.Linear`` replaced by a CPU int8 dynamic-quantised one, in place.

    Weights are stored as int8 (per tensor), activations quantised on the fly per batch; matrix
    products run in int8 (fbgemm/onednn). CPU only. Embeddings, convolutions (the image patch
    projections) and layer norms stay fp32. Uses ``torch.ao.quantization.quantize_dynamic``, which
    torch marks deprecated (successor: ``torchao``, not a dependency here) but still ships in the
    pinned 2.14; its deprecation warnings are silenced here, once per model.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        return torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )


@dataclass
class VqaModel:
    """A loaded VQA model that answers yes/no questions with a probability of "yes".

    Use :meth:`encode_images` once per batch of distinct images, then :meth:`yes_probability`
    with, for each question, the index of its image in that batch.
    """

    kind: str
    model: torch.nn.Module
    processor: object
    device: torch.device
    source: str = ""
    fingerprint: str = ""
    n_forward: int = field(default=0, init=False)  # model forward passes run so far
    quantized: str = field(default="none", init=False)  # "bf16" or "int8" after quantize()
    _token_rows: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.model.to(self.device).eval()
        if not self.fingerprint:
            self.fingerprint = fingerprint_model(self.kind, self.model, self.processor)

    def quantize(self, mode: str) -> VqaModel:
        """Apply ``vqa.quantize``: ``none`` (no change), ``bf16`` (CPU bf16 autocast of the
        forward passes, :func:`autocast_for`) or ``int8`` (:func:`quantize_int8`).

        Both are CPU settings: on another device the model is left as it is, with a warning (CUDA
        runs in bf16 autocast anyway). ``bf16`` pays only where the CPU has native bf16
        (:func:`cpu_has_native_bf16`); elsewhere it is applied with a warning that it is slower.
        The fingerprint then names the setting, since the answers change (slightly;
        ``docs/vqa.md``). Returns ``self``.
        """
        if mode not in QUANTIZE_MODES:
            raise VqaModelError(f"vqa.quantize must be one of {list(QUANTIZE_MODES)}, got {mode!r}")
        if mode == "none" or self.quantized == mode:
            return self
        if self.quantized != "none":
            raise VqaModelError(
                f"vqa.quantize: the model is already {self.quantized}; load it again for {mode}"
            )
        if self.device.type != "cpu":
            log.warning(
                "vqa.quantize: %s is a CPU setting; the model on %s stays as it is (bf16 autocast)",
                mode,
                self.device,
            )
            return self
        if mode == "int8":
            self.model = quantize_int8(self.model.eval())
            log.info("quantised the %s VQA model's Linear layers to int8 (dynamic)", self.kind)
        else:
            if not cpu_has_native_bf16():
                log.warning(
                    "vqa.quantize: bf16 on a CPU without native bf16 (AVX512-BF16 or AMX, or "
                    "oneDNN capped below them) is emulated and slower than fp32"
                )
            log.info("the %s VQA model runs in CPU bf16 autocast", self.kind)
        self.quantized = mode
        self.fingerprint = hashlib.sha256(f"{self.fingerprint}|{mode}".encode()).hexdigest()[:32]
        return self

    def _autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of this model's inference (:func:`autocast_for`)."""
        return autocast_for(self.device, cpu_bf16=self.quantized == "bf16")

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def encode_images(self, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        """The image processor's tensors for ``images`` (on the model's device)."""
        if not images:
            raise ValueError("encode_images: no image")
        enc = self.processor.image_processor(images=list(images), return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def _encode_text(self, questions: Sequence[str]) -> dict[str, torch.Tensor]:
        """The questions' token tensors, padded to the longest (as the tokenizer pads them).

        Each distinct question is tokenised once per model (the last :data:`TOKEN_CACHE_SIZE`
        are kept): training asks the same few thousand questions in every epoch, and tokenising
        them again cost about 5 % of its time. The tensors equal the tokenizer's own
        ``padding="longest"`` output (tests/test_vqa_model.py).
        """
        max_len = getattr(self.model.config, "max_position_embeddings", None)
        if max_len is None:
            max_len = getattr(
                getattr(self.model.config, "text_config", None), "max_position_embeddings", 512
            )
        cache = self._token_rows
        new = [q for q in dict.fromkeys(questions) if q not in cache]
        if new:
            enc = self.tokenizer(new, truncation=True, max_length=int(max_len))
            keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
            for i, q in enumerate(new):
                cache[q] = {k: enc[k][i] for k in keys}
        rows = [cache[q] for q in questions]
        while len(cache) > TOKEN_CACHE_SIZE:
            cache.popitem(last=False)
        return {k: v.to(self.device) for k, v in pad_token_rows(rows, self.tokenizer).items()}

    def yes_probability(
        self, pixels: dict[str, torch.Tensor], image_index: Sequence[int], questions: Sequence[str]
    ) -> np.ndarray:
        """P(yes) for each question about image ``pixels[image_index[i]]`` (one forward pass)."""
        raise NotImplementedError

    def answer(self, images: Sequence[Image.Image], questions: Sequence[str]) -> np.ndarray:
        """P(yes) of ``questions[i]`` about ``images[i]`` (convenience; no batching, no cache)."""
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images but {len(questions)} questions")
        pixels = self.encode_images(images)
        return self.yes_probability(pixels, list(range(len(images))), questions)


def pad_token_rows(rows: Sequence[dict[str, list[int]]], tokenizer) -> dict[str, torch.Tensor]:
    """Token rows (``input_ids``, ``token_type_ids``, ``attention_mask``) padded to the longest,
    on the tokenizer's padding side with its pad token and pad token type: what
    ``tokenizer(texts, padding="longest")`` returns, from rows tokenised once."""
    if not rows:
        raise ValueError("pad_token_rows: no row")
    length = max(len(r["input_ids"]) for r in rows)
    fill = {
        "input_ids": tokenizer.pad_token_id,
        "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0),
        "attention_mask": 0,
    }
    left = getattr(tokenizer, "padding_side", "right") == "left"
    out = {}
    for key in rows[0]:
        padded = []
        for r in rows:
            gap = [fill[key]] * (length - len(r[key]))
            padded.append(gap + list(r[key]) if left else list(r[key]) + gap)
        out[key] = torch.tensor(padded, dtype=torch.long)
    return out


def fast_image_embeds(
    model: torch.nn.Module, pixel_values: torch.Tensor, pixel_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """ViLT's image tokens for unpadded images at the config's own grid, computed once per image.

    ``ViltEmbeddings.visual_embed`` loops over the batch in Python to interpolate position
    embeddings and to sample patches for padded images of varying size. For images whose mask is
    all ones and whose patch grid equals the config's, it reduces to patch embedding + position
    embedding + ``[CLS]``, in a random patch order that the transformer cannot see (attention is
    permutation-equivariant and the pooler reads the text ``[CLS]``). This computes that directly,
    once per distinct image rather than once per question. With the config's
    ``salient_image_tokens`` (:func:`salient_image_tokens`) only that many patches per image are
    kept (:func:`select_salient_patches`). Returns ``(image_embeds, mask)``, or None when the
    general path is needed (padded images or another grid: every patch, as ViLT does).
    """
    emb = model.vilt.embeddings
    cfg = model.config
    grid = cfg.image_size // cfg.patch_size
    if pixel_values.shape[-2:] != (cfg.image_size, cfg.image_size):
        return None
    if pixel_mask is not None and not bool(pixel_mask.bool().all()):
        return None
    x = emb.patch_embeddings(pixel_values).flatten(2).transpose(1, 2)
    if x.shape[1] != grid * grid:
        return None
    pos = emb.position_embeddings
    x = x + pos[:, 1:, :]
    keep = salient_image_tokens(cfg)
    if 0 < keep < x.shape[1]:
        patches = select_salient_patches(pixel_values.float(), cfg.patch_size, keep)
        x = torch.gather(x, 1, patches[:, :, None].expand(-1, -1, x.shape[2]))
    cls = emb.cls_token.expand(x.shape[0], -1, -1) + pos[:, :1, :]
    x = torch.cat([cls, x], dim=1)
    return x, torch.ones(x.shape[:2], dtype=torch.long, device=x.device)


class ViltVqa(VqaModel):
    """ViLT: P(yes) = softmax over the classifier's {yes, no} logits."""

    def __post_init__(self) -> None:
        label2id = {str(k).lower(): int(v) for k, v in self.model.config.label2id.items()}
        if "yes" not in label2id or "no" not in label2id:
            raise VqaModelError(
                f"{self.source}: the ViLT model's labels have no 'yes'/'no' answer "
                f"(it has {len(label2id)} labels); it cannot answer yes/no questions"
            )
        self.yes_id, self.no_id = label2id["yes"], label2id["no"]
        super().__post_init__()

    def logits(
        self, pixels: dict[str, torch.Tensor], image_index: Sequence[int], questions: Sequence[str]
    ) -> torch.Tensor:
        """Raw answer logits (kept differentiable: training uses this too)."""
        return self.logits_and_pooled(pixels, image_index, questions)[0]

    def logits_and_pooled(
        self, pixels: dict[str, torch.Tensor], image_index: Sequence[int], questions: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Answer logits and ViLT's pooled ``[CLS]`` output, which the answer head reads.

        Training puts an auxiliary head on the pooled output (see :mod:`t2ieval.vqa.train`).
        """
        idx = torch.as_tensor(list(image_index), dtype=torch.long, device=self.device)
        text = self._encode_text(questions)
        pixel_values = pixels["pixel_values"]
        pixel_mask = pixels.get("pixel_mask")
        fast = fast_image_embeds(self.model, pixel_values, pixel_mask)
        if fast is not None:
            image_embeds, image_mask = fast
            image_inputs = {
                "image_embeds": image_embeds.index_select(0, idx),
                "pixel_mask": image_mask.index_select(0, idx),
            }
        elif not self.model.training:
            # padded images of different sizes: ViLT's own visual_embed, once per distinct image
            if pixel_mask is None:
                pixel_mask = torch.ones(
                    (pixel_values.shape[0], *pixel_values.shape[-2:]),
                    dtype=torch.long,
                    device=pixel_values.device,
                )
            image_embeds, image_mask, _ = self.model.vilt.embeddings.visual_embed(
                pixel_values, pixel_mask, max_image_length=self.model.config.max_image_length
            )
            image_inputs = {
                "image_embeds": image_embeds.index_select(0, idx),
                "pixel_mask": image_mask.index_select(0, idx),
            }
        else:  # training: ViLT's own path per question (its dropout and patch sampling)
            image_inputs = {
                "pixel_values": pixel_values.index_select(0, idx),
                "pixel_mask": None if pixel_mask is None else pixel_mask.index_select(0, idx),
            }
        out = self.model.vilt(
            input_ids=text["input_ids"],
            attention_mask=text["attention_mask"],
            token_type_ids=text.get("token_type_ids"),
            **image_inputs,
        )
        self.n_forward += 1
        return self.model.classifier(out.pooler_output), out.pooler_output

    def yes_probability(self, pixels, image_index, questions) -> np.ndarray:
        """P(yes) for each question about ``pixels[image_index[i]]``: one padded batch (text
        padded to its longest real length), image tokens computed once per distinct image."""
        with torch.inference_mode(), self._autocast():
            logits = self.logits(pixels, image_index, questions).float()
            p = torch.sigmoid(logits[:, self.yes_id] - logits[:, self.no_id])
        return p.cpu().numpy().astype(np.float64)


@dataclass
class _SharedImages:
    """The distinct images of one BLIP text-encoder call and which questions ask about each."""

    images: torch.Tensor  # [n_images, tokens, d]: vision encoder output
    groups: list[tuple[int, torch.Tensor]]  # (image, rows of its questions)
    marker: torch.Tensor  # the encoder_hidden_states passed in the call
    layers_used: int = 0


_SHARED_IMAGES: contextvars.ContextVar[_SharedImages | None] = contextvars.ContextVar(
    "t2ieval_blip_shared_images", default=None
)


def _shared_image_attention_class(base: type) -> type:
    """A subclass of BLIP's ``BlipTextSelfAttention`` whose cross-attention, while a
    :class:`_SharedImages` plan is set (a context variable, so per thread and per call), projects
    each distinct image's tokens to keys and values once and attends all the questions about that
    image in one product, the questions' query rows stacked; otherwise it is ``base`` itself.

    Per query row the arithmetic is the one of ``base`` (rows of a matrix product are independent
    and the image mask is all ones), so answers are equal to the plain path's (test: max abs diff
    of P(yes) below 1e-5, tiny and real size) without a per-question copy of the image tokens.
    """

    class SharedImageCrossAttention(base):  # type: ignore[misc, valid-type]
        def forward(
            self,
            hidden_states,
            attention_mask=None,
            encoder_hidden_states=None,
            encoder_attention_mask=None,
            cache=None,
            **kwargs,
        ):
            plan = _SHARED_IMAGES.get()
            if plan is None or encoder_hidden_states is not plan.marker:
                return super().forward(
                    hidden_states,
                    attention_mask=attention_mask,
                    encoder_hidden_states=encoder_hidden_states,
                    encoder_attention_mask=encoder_attention_mask,
                    cache=cache,
                    **kwargs,
                )
            n, length, _ = hidden_states.shape
            heads, size = self.num_attention_heads, self.attention_head_size
            query = self.query(hidden_states)  # [n, L, h*d]
            key = self.key(plan.images).view(*plan.images.shape[:2], heads, size).transpose(1, 2)
            value = self.value(plan.images).view(*plan.images.shape[:2], heads, size)
            value = value.transpose(1, 2)  # [n_images, h, T, d]
            context = query.new_empty(n, length, heads * size)
            scale = math.sqrt(size)
            for image, rows in plan.groups:
                q = query.index_select(0, rows).view(len(rows), length, heads, size)
                q = q.permute(2, 0, 1, 3).reshape(heads, len(rows) * length, size)
                scores = torch.matmul(q, key[image].transpose(-1, -2)) / scale
                probs = torch.softmax(scores, dim=-1)  # image mask: all ones
                ctx = torch.matmul(probs, value[image])  # [h, m*L, d]
                ctx = ctx.view(heads, len(rows), length, size).permute(1, 2, 0, 3)
                context.index_copy_(0, rows, ctx.reshape(len(rows), length, heads * size))
            plan.layers_used += 1
            return context, None

    SharedImageCrossAttention.__name__ = f"SharedImage{base.__name__}"
    SharedImageCrossAttention.__qualname__ = SharedImageCrossAttention.__name__
    return SharedImageCrossAttention


def share_image_attention(text_encoder: torch.nn.Module) -> int:
    """Make BLIP's text-encoder cross-attention modules compute image keys and values once per
    distinct image while a plan is set (see :func:`_shared_image_attention_class`).

    Changes the modules' class only (weights, ``state_dict`` and saving are unchanged; outside
    a plan they behave as before). Returns the number of cross-attention layers so prepared, 0
    when the text encoder has none of the expected form.
    """
    layers = getattr(getattr(text_encoder, "encoder", None), "layer", None) or []
    attentions = [getattr(getattr(layer, "crossattention", None), "self", None) for layer in layers]
    if not attentions or any(not hasattr(a, "attention_head_size") for a in attentions):
        return 0
    classes: dict[type, type] = {}
    for att in attentions:
        base = type(att)
        if base.__name__.startswith("SharedImage"):
            continue
        att.__class__ = classes.setdefault(base, _shared_image_attention_class(base))
    return len(attentions)


class BlipVqa(VqaModel):
    """BLIP: P(yes) = softmax over the decoder log-likelihoods of the answers "yes" and "no".

    ``share_image_kv`` (default True): the text encoder's cross-attention keys and values over
    the image tokens are computed once per distinct image and each image's questions attend to
    them in one product (:func:`share_image_attention`); False runs transformers' plain path,
    which projects the image tokens again for every question (same numbers; for benchmarks).
    """

    share_image_kv: bool = True

    def __post_init__(self) -> None:
        cfg = self.model.config.text_config
        self.bos_id = int(cfg.bos_token_id)
        self.sep_id = int(cfg.sep_token_id)
        self.pad_id = int(cfg.pad_token_id)
        answers = []
        for word in ("yes", "no"):
            ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
            if not ids or self.tokenizer.unk_token_id in ids:
                raise VqaModelError(f"{self.source}: the BLIP tokenizer cannot spell {word!r}")
            answers.append([self.bos_id, *ids, self.sep_id])
        width = max(len(a) for a in answers)
        self.answer_ids = torch.tensor([a + [self.pad_id] * (width - len(a)) for a in answers])
        self.answer_mask = torch.tensor([[1] * len(a) + [0] * (width - len(a)) for a in answers])
        self.n_shared_layers = share_image_attention(self.model.text_encoder)
        if not self.n_shared_layers:
            log.warning(
                "%s: BLIP text encoder without the expected cross-attention layers; "
                "image keys and values are projected once per question",
                self.source,
            )
        super().__post_init__()

    def _answer_yes(self, question_embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """P(yes) from the decoder's log-likelihoods of "yes" and "no" after each question.

        transformers' BLIP text model drops the cross-attention mask (``BlipTextAttention``
        does not pass ``encoder_attention_mask`` on), so the decoder would attend to a padded
        question's padding and a question's answer would depend on the longest question of its
        batch. Questions are therefore decoded in groups of equal real length, each cut to that
        length: no padding reaches the decoder, and batched answers equal one-by-one answers.
        """
        m = self.model
        n, n_answers = len(question_embeds), self.answer_ids.shape[0]
        lengths = mask.sum(-1)
        p = torch.empty(n, dtype=torch.float32, device=self.device)
        for length in torch.unique(lengths).tolist():
            rows = (lengths == length).nonzero().flatten()
            k = len(rows)
            dec_ids = self.answer_ids.to(self.device).repeat(k, 1)  # [k*2, T]
            dec_mask = self.answer_mask.to(self.device).repeat(k, 1)
            enc = question_embeds.index_select(0, rows)[:, :length]
            enc = enc.repeat_interleave(n_answers, dim=0)
            enc_mask = torch.ones(enc.shape[:2], dtype=torch.long, device=self.device)
            logits = m.text_decoder(
                input_ids=dec_ids,
                attention_mask=dec_mask,
                encoder_hidden_states=enc,
                encoder_attention_mask=enc_mask,
                use_cache=False,
                return_logits=True,
            )  # [k*2, T-1, V]
            logp = torch.log_softmax(logits.float(), dim=-1)
            target = dec_ids[:, 1:]
            token_ll = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1) * dec_mask[:, 1:]
            ll = token_ll.sum(-1).view(k, n_answers)
            p[rows] = torch.sigmoid(ll[:, 0] - ll[:, 1])
        return p

    def _encode_questions(
        self, images: torch.Tensor, idx: torch.Tensor, text: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The text encoder's output for each question over its image's tokens ``images[idx]``."""
        m = self.model
        n = len(idx)
        image_mask = torch.ones((n, images.shape[1]), dtype=torch.long, device=self.device)
        if not (self.share_image_kv and self.n_shared_layers):
            return m.text_encoder(
                input_ids=text["input_ids"],
                attention_mask=text["attention_mask"],
                encoder_hidden_states=images.index_select(0, idx),
                encoder_attention_mask=image_mask,
                return_dict=True,
            ).last_hidden_state
        # a view standing for the per-question image tokens, never read: the prepared layers
        # take each image's tokens from the plan
        marker = images[:1].expand(n, -1, -1)
        groups = [(int(j), (idx == j).nonzero().flatten()) for j in torch.unique(idx)]
        plan = _SharedImages(images=images, groups=groups, marker=marker)
        token = _SHARED_IMAGES.set(plan)
        try:
            out = m.text_encoder(
                input_ids=text["input_ids"],
                attention_mask=text["attention_mask"],
                encoder_hidden_states=marker,
                encoder_attention_mask=image_mask,
                return_dict=True,
            ).last_hidden_state
        finally:
            _SHARED_IMAGES.reset(token)
        if plan.layers_used != self.n_shared_layers:
            raise VqaModelError(
                f"BLIP text encoder: {plan.layers_used} of "
                f"{self.n_shared_layers} cross-attention layers used the shared "
                "image keys; this transformers version needs share_image_kv=False"
            )
        return out

    def yes_probability(self, pixels, image_index, questions) -> np.ndarray:
        """P(yes) for each question about ``pixels[image_index[i]]``: the vision encoder runs once
        per image of ``pixels``, the text encoder and the answer decoder once over all questions."""
        m = self.model
        with torch.inference_mode(), self._autocast():
            images = m.vision_model(pixel_values=pixels["pixel_values"]).last_hidden_state
            idx = torch.as_tensor(list(image_index), dtype=torch.long, device=self.device)
            text = self._encode_text(questions)
            question_embeds = self._encode_questions(images, idx, text)
            p = self._answer_yes(question_embeds, text["attention_mask"])
        self.n_forward += 1
        return p.cpu().numpy().astype(np.float64)


def load_vqa_model(
    name_or_path: str | Path, kind: Kind = "auto", device: str | torch.device = "auto"
) -> VqaModel:
    """Load a VQA model by local folder or hub name (``kind`` auto-detected from its config).

    The embedded name ``t2i-tiny-vilt`` has no weights of its own: it is trained by the
    ``run_vqa`` stage into ``models/vqa/``; pass that folder here.
    """
    from t2ieval.runtime import pick_device

    if str(name_or_path) in EMBEDDED_MODELS and not Path(name_or_path).exists():
        raise VqaModelError(
            f"{name_or_path!r} is the embedded VQA model: it is trained by the run_vqa stage "
            "(dvc repro run_vqa); load its output folder models/vqa instead"
        )
    source = resolve_source(name_or_path)
    resolved = detect_kind(source, kind)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    local = Path(source).exists()
    try:
        if resolved == "vilt":
            from transformers import ViltForQuestionAnswering, ViltProcessor

            model = ViltForQuestionAnswering.from_pretrained(source, local_files_only=local)
            processor = ViltProcessor.from_pretrained(source, local_files_only=local)
            cls: type[VqaModel] = ViltVqa
        else:
            from transformers import BlipForQuestionAnswering, BlipProcessor

            model = BlipForQuestionAnswering.from_pretrained(source, local_files_only=local)
            processor = BlipProcessor.from_pretrained(source, local_files_only=local)
            cls = BlipVqa
    except (OSError, ValueError) as exc:
        raise VqaModelError(f"{source}: cannot load a {resolved} VQA model: {exc}") from exc
    log.info("loaded %s VQA model from %s on %s", resolved, source, dev)
    return cls(kind=resolved, model=model, processor=processor, device=dev, source=source)


def build_embedded_model(
    name: str,
    texts: Iterable[str],
    device: torch.device | str = "cpu",
    config_overrides: dict | None = None,
) -> ViltVqa:
    """A randomly initialised embedded ViLT with a vocabulary trained on ``texts``.

    ``config_overrides`` replaces ``ViltConfig`` fields of the spec (tests use a smaller model).
    """
    from transformers import ViltConfig, ViltForQuestionAnswering, ViltImageProcessor, ViltProcessor

    from t2ieval.vqa.tokenizer import train_wordpiece

    spec = load_embedded_spec(name)
    spec["config"] = {**spec["config"], **(config_overrides or {})}
    tokenizer = train_wordpiece(texts, **spec.get("tokenizer", {}))
    config = ViltConfig(
        **spec["config"], vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id
    )
    config.id2label = {int(k): v for k, v in config.id2label.items()}
    model = ViltForQuestionAnswering(config)
    processor = ViltProcessor(
        image_processor=ViltImageProcessor(**spec["image_processor"]), tokenizer=tokenizer
    )
    n_params = sum(p.numel() for p in model.parameters())
    log.info("built %s: %d parameters, vocabulary of %d", name, n_params, len(tokenizer))
    return ViltVqa(
        kind="vilt", model=model, processor=processor, device=torch.device(device), source=name
    )


def save_vqa(vqa: VqaModel, out_dir: str | Path) -> Path:
    """``save_pretrained`` the model (safetensors) and its processor to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vqa.model.save_pretrained(out_dir, safe_serialization=True)
    vqa.processor.save_pretrained(out_dir)
    log.info("saved the VQA model to %s", out_dir)
    return out_dir
