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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
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
YES_NO_METHOD = "softmax-yes-no-v1"  # part of every fingerprint: change it when P(yes) changes
Kind = Literal["auto", "vilt", "blip"]


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
    return h.hexdigest()[:32]


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

    def __post_init__(self) -> None:
        self.model.to(self.device).eval()
        if not self.fingerprint:
            self.fingerprint = fingerprint_model(self.kind, self.model, self.processor)

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
        max_len = getattr(self.model.config, "max_position_embeddings", None)
        if max_len is None:
            max_len = getattr(
                getattr(self.model.config, "text_config", None), "max_position_embeddings", 512
            )
        enc = self.tokenizer(
            list(questions),
            padding="longest",
            truncation=True,
            max_length=int(max_len),
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in enc.items()}

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


def fast_image_embeds(
    model: torch.nn.Module, pixel_values: torch.Tensor, pixel_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """ViLT's image tokens for unpadded images at the config's own grid, computed once per image.

    ``ViltEmbeddings.visual_embed`` loops over the batch in Python to interpolate position
    embeddings and to sample patches for padded images of varying size. For images whose mask is
    all ones and whose patch grid equals the config's, it reduces to patch embedding + position
    embedding + ``[CLS]``, in a random patch order that the transformer cannot see (attention is
    permutation-equivariant and the pooler reads the text ``[CLS]``). This computes that directly,
    once per distinct image rather than once per question. Returns ``(image_embeds, mask)``, or
    None when the general path is needed.
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
        else:
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
        with torch.inference_mode():
            logits = self.logits(pixels, image_index, questions).float()
            p = torch.sigmoid(logits[:, self.yes_id] - logits[:, self.no_id])
        return p.cpu().numpy().astype(np.float64)


class BlipVqa(VqaModel):
    """BLIP: P(yes) = softmax over the decoder log-likelihoods of the answers "yes" and "no"."""

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
        super().__post_init__()

    def yes_probability(self, pixels, image_index, questions) -> np.ndarray:
        m = self.model
        with torch.inference_mode():
            image_embeds = m.vision_model(pixel_values=pixels["pixel_values"]).last_hidden_state
            idx = torch.as_tensor(list(image_index), dtype=torch.long, device=self.device)
            image_embeds = image_embeds.index_select(0, idx)
            image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
            text = self._encode_text(questions)
            question_embeds = m.text_encoder(
                input_ids=text["input_ids"],
                attention_mask=text["attention_mask"],
                encoder_hidden_states=image_embeds,
                encoder_attention_mask=image_mask,
                return_dict=True,
            ).last_hidden_state
            n, n_answers = len(questions), self.answer_ids.shape[0]
            dec_ids = self.answer_ids.to(self.device).repeat(n, 1)  # [n*2, T]
            dec_mask = self.answer_mask.to(self.device).repeat(n, 1)
            enc = question_embeds.repeat_interleave(n_answers, dim=0)
            enc_mask = text["attention_mask"].repeat_interleave(n_answers, dim=0)
            logits = m.text_decoder(
                input_ids=dec_ids,
                attention_mask=dec_mask,
                encoder_hidden_states=enc,
                encoder_attention_mask=enc_mask,
                use_cache=False,
                return_logits=True,
            )  # [n*2, T-1, V]
            logp = torch.log_softmax(logits.float(), dim=-1)
            target = dec_ids[:, 1:]
            token_ll = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1) * dec_mask[:, 1:]
            ll = token_ll.sum(-1).view(n, n_answers)
            p = torch.sigmoid(ll[:, 0] - ll[:, 1])
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
