"""The CLIP-score model: an open_clip backbone plus the method's two linear heads.

One factory, :func:`create_clip`, serves every source of a model, and all of them go through
open_clip (``create_model_and_transforms``, ``get_tokenizer``):

* an open_clip architecture name (``ViT-B-32``) with a pretrained tag (``openai``,
  ``laion2b_s34b_b79k``), a local checkpoint file, or ``None`` (random initialisation);
* our embedded tiny architecture ``t2i-tiny`` (``src/t2ieval/configs/open_clip/t2i-tiny.json``,
  registered with ``open_clip.add_model_config``), or any architecture JSON file;
* an open_clip ``local-dir`` folder (``open_clip_config.json`` + weights) or ``hf-hub:org/repo``;
* a folder written by :func:`save_clip` (a fine-tuned model, heads included), to fine-tune further.

A saved folder is an open_clip ``local-dir`` model (``open_clip_config.json`` +
``open_clip_model.safetensors``, loadable by plain open_clip) plus ``heads.safetensors`` and
``t2ieval_clip.json`` (architecture, embedding size, heads, image preprocessing).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from t2ieval.clip.heads import LinearHead

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "open_clip"
DEFAULT_ARCHITECTURE = "t2i-tiny"
META_FILE = "t2ieval_clip.json"
OPEN_CLIP_CONFIG_FILE = "open_clip_config.json"
BACKBONE_FILE = "open_clip_model.safetensors"
HEADS_FILE = "heads.safetensors"
FORMAT_NAME = "t2ieval-clip"
FORMAT_VERSION = 1
_CHECKPOINT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".ckpt")

_registered = False


class ClipModelError(ValueError):
    """A model name, config or folder cannot be used; the message says which and why."""


class PretrainedUnavailableError(RuntimeError):
    """Pretrained weights could not be fetched (offline, or an unknown tag)."""


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    """open_clip logs every factory step at INFO on the root logger; keep warnings only."""
    root = logging.getLogger()
    level = root.level
    if level < logging.WARNING and not log.isEnabledFor(logging.DEBUG):
        root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


def register_configs() -> None:
    """Register the repo's open_clip architecture configs (``t2i-tiny`` ...) once per process."""
    global _registered
    if not _registered:
        open_clip.add_model_config(CONFIG_DIR)
        _registered = True


class ClipWithHeads(nn.Module):
    """An open_clip model with a learnable linear head on each side.

    The heads act on the backbone's L2-normalised embeddings; their outputs are normalised again,
    so the CLIP-score is the cosine similarity of the projected prompt and image.
    """

    def __init__(self, clip: nn.Module, embed_dim: int, head_bias: bool = True) -> None:
        super().__init__()
        self.clip = clip
        self.embed_dim = embed_dim
        self.image_head = LinearHead(embed_dim, bias=head_bias)
        self.text_head = LinearHead(embed_dim, bias=head_bias)

    @property
    def logit_scale(self) -> torch.Tensor:
        """CLIP's learned logit scale ``exp(logit_scale)`` (= 1 / tau)."""
        return self.clip.logit_scale.exp()

    def backbone_image(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised backbone image embeddings (no head): the zero-shot space."""
        return self.clip.encode_image(images, normalize=True)

    def backbone_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Normalised backbone text embeddings (no head)."""
        return self.clip.encode_text(tokens, normalize=True)

    def project_image(self, emb: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_head(emb.to(self.image_head.weight.dtype)), dim=-1)

    def project_text(self, emb: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_head(emb.to(self.text_head.weight.dtype)), dim=-1)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Projected, normalised image embeddings."""
        return self.project_image(self.backbone_image(images))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Projected, normalised prompt embeddings."""
        return self.project_text(self.backbone_text(tokens))

    def forward(
        self,
        tokens: torch.Tensor | None = None,
        images: torch.Tensor | None = None,
        text_emb: torch.Tensor | None = None,
        image_emb: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training forward: ``(text_features, image_features, logit_scale)``.

        Pass raw inputs (``tokens``, ``images``) or cached backbone embeddings (``text_emb``,
        ``image_emb``, when the backbone is frozen); the heads are applied either way.
        """
        text = self.project_text(text_emb) if text_emb is not None else self.encode_text(tokens)
        image = (
            self.project_image(image_emb) if image_emb is not None else self.encode_image(images)
        )
        return text, image, self.logit_scale


@dataclass
class ClipBundle:
    """Everything needed to train, score or save a CLIP-score model."""

    model: ClipWithHeads
    preprocess: Callable  # PIL image -> tensor (open_clip's inference transform)
    tokenizer: Callable  # list[str] -> LongTensor [n, context_length]
    architecture: str
    model_cfg: dict[str, Any]
    preprocess_cfg: dict[str, Any]
    pretrained: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # what a saved folder recorded


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _looks_like_path(value: str) -> bool:
    return (
        os.sep in value
        or "/" in value
        or value.startswith(".")
        or value.lower().endswith(_CHECKPOINT_SUFFIXES)
    )


def _local_path_hint(architecture: str, pretrained: str) -> str:
    hf = ""
    try:
        cfg = open_clip.get_pretrained_cfg(architecture, pretrained) or {}
        if cfg.get("hf_hub"):
            hf = f" (e.g. open_clip_pytorch_model.bin from https://huggingface.co/{cfg['hf_hub']})"
    except Exception:  # noqa: BLE001 - only used to improve a message
        pass
    return (
        f"download the checkpoint on a connected machine{hf} and set "
        "finetune_clip.pretrained to its local path "
        f"(e.g. /models/{architecture}-{pretrained}.bin), "
        "or set finetune_clip.model to a local open_clip folder holding open_clip_config.json "
        "and the weights"
    )


def _resolve_name(model: str) -> tuple[str, str, Path | None]:
    """Classify ``model``: returns (kind, open_clip name, folder) with kind saved|local-dir|name."""
    register_configs()
    path = Path(model)
    if path.is_dir():
        if (path / META_FILE).is_file():
            return "saved", f"local-dir:{path}", path
        if (path / OPEN_CLIP_CONFIG_FILE).is_file():
            return "local-dir", f"local-dir:{path}", path
        raise ClipModelError(
            f"finetune_clip.model: folder {path} holds neither {META_FILE} (a saved t2ieval model) "
            f"nor {OPEN_CLIP_CONFIG_FILE} (an open_clip local-dir model)"
        )
    if model.lower().endswith(".json"):
        if not path.is_file():
            raise ClipModelError(f"finetune_clip.model: config file {path} does not exist")
        cfg = _read_json(path, "finetune_clip.model: ")
        missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in cfg]
        if missing:
            raise ClipModelError(
                f"finetune_clip.model: {path} is not an open_clip model config (missing {missing})"
            )
        open_clip.add_model_config(path)
        return "name", path.stem, None
    if model.startswith(("hf-hub:", "local-dir:")):
        return "name", model, None
    if _looks_like_path(model):
        raise ClipModelError(f"finetune_clip.model: {model} does not exist")
    if model not in open_clip.list_models():
        raise ClipModelError(
            f"finetune_clip.model: unknown open_clip architecture {model!r}; use one of "
            f"open_clip.list_models() (e.g. ViT-B-32, {DEFAULT_ARCHITECTURE}), a config JSON path "
            "or a model folder"
        )
    return "name", model, None


def _model_config(name: str) -> dict[str, Any]:
    if name.startswith("local-dir:"):
        raw = json.loads((Path(name[len("local-dir:") :]) / OPEN_CLIP_CONFIG_FILE).read_text())
        return copy.deepcopy(raw.get("model_cfg", raw))
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ClipModelError(f"finetune_clip.model: no open_clip config for {name!r}")
    return copy.deepcopy(cfg)


def _tokenizer_for(name: str, model_cfg: dict[str, Any], architecture: str) -> Callable:
    with _quiet_open_clip():
        return _get_tokenizer(name, model_cfg, architecture)


def _get_tokenizer(name: str, model_cfg: dict[str, Any], architecture: str) -> Callable:
    if name.startswith("local-dir:") and model_cfg.get("text_cfg", {}).get("hf_tokenizer_name"):
        # HF tokenizers are not stored in our folders: resolve them through the architecture
        return open_clip.get_tokenizer(architecture)
    return open_clip.get_tokenizer(name)


def create_clip(
    model: str = DEFAULT_ARCHITECTURE,
    pretrained: str | None = None,
    device: str | torch.device = "cpu",
) -> ClipBundle:
    """Build a :class:`ClipBundle` from an architecture, config file or model folder.

    Args:
        model: open_clip architecture name (``ViT-B-32``, ``t2i-tiny``), path to an open_clip
            config JSON, ``hf-hub:org/repo``, an open_clip local-dir folder, or a folder written
            by :func:`save_clip` (its heads are loaded too).
        pretrained: open_clip pretrained tag (``openai``, ``laion2b_s34b_b79k``), a local
            checkpoint file, or ``None`` for random initialisation (ignored for folders).
        device: where the model lives.

    Raises:
        ClipModelError: bad model name/config/folder or missing checkpoint file.
        PretrainedUnavailableError: the tag cannot be fetched (offline: set ``HF_HUB_OFFLINE=1``
            to fail at once instead of retrying); the message explains how to use a local file.
    """
    kind, name, folder = _resolve_name(model)
    if kind in ("saved", "local-dir") and pretrained:
        log.warning(
            "finetune_clip.pretrained=%r ignored: model %s is a folder with its own weights",
            pretrained,
            folder,
        )
        pretrained = None
    if kind == "saved":
        return load_clip(folder, device=device)

    model_cfg = _model_config(name)
    architecture = name
    kwargs: dict[str, Any] = {}
    if pretrained:
        if Path(pretrained).is_file():
            log.info("loading %s weights from local checkpoint %s", name, pretrained)
        elif _looks_like_path(pretrained):
            raise ClipModelError(
                f"finetune_clip.pretrained: checkpoint file {pretrained} does not exist"
            )
        else:
            tag_cfg = open_clip.get_pretrained_cfg(name, pretrained)
            if not tag_cfg:
                tags = open_clip.list_pretrained_tags_by_model(name)
                raise PretrainedUnavailableError(
                    f"finetune_clip.pretrained: {pretrained!r} is not a pretrained tag of {name} "
                    f"(known tags: {tags or 'none'}) nor an existing file; "
                    + _local_path_hint(name, pretrained)
                )
            if tag_cfg.get("quick_gelu") and not model_cfg.get("quick_gelu"):
                kwargs["force_quick_gelu"] = True  # e.g. OpenAI weights were trained with QuickGELU
                model_cfg["quick_gelu"] = True
            if os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false", "False"):
                log.info(
                    "fetching pretrained weights %s/%s (offline? set HF_HUB_OFFLINE=1 to fail "
                    "fast, or give a local checkpoint path)",
                    name,
                    pretrained,
                )
    try:
        with _quiet_open_clip():
            clip, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device="cpu", **kwargs
            )
    except RuntimeError as exc:
        if pretrained and not Path(pretrained).is_file():
            raise PretrainedUnavailableError(
                f"could not fetch pretrained weights {pretrained!r} for {name} ({exc}); "
                + _local_path_hint(name, pretrained)
            ) from exc
        raise
    tokenizer = _tokenizer_for(name, model_cfg, architecture)
    embed_dim = int(model_cfg["embed_dim"])
    wrapped = ClipWithHeads(clip, embed_dim).to(device)
    return ClipBundle(
        model=wrapped,
        preprocess=preprocess,
        tokenizer=tokenizer,
        architecture=architecture,
        model_cfg=model_cfg,
        preprocess_cfg=_jsonable(dict(clip.visual.preprocess_cfg)),
        pretrained=pretrained,
    )


def _state_to_save(module: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
        for k, v in module.state_dict().items()
    }


def save_clip(bundle: ClipBundle, out_dir: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write ``bundle`` to ``out_dir`` (created; our files in it are replaced).

    ``info`` (e.g. training settings, best epoch) is stored under ``"training"`` in
    ``t2ieval_clip.json``. The folder loads with :func:`load_clip` / :class:`ClipScorer` and its
    backbone with plain ``open_clip.create_model_and_transforms("local-dir:<out_dir>")``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = bundle.model
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": bundle.architecture,
        "pretrained": bundle.pretrained,
        "embed_dim": model.embed_dim,
        "heads": {
            "type": "linear",
            "in_features": model.embed_dim,
            "out_features": model.embed_dim,
            "bias": model.image_head.bias is not None,
            "applied_to": "L2-normalised backbone embeddings; outputs L2-normalised",
            "file": HEADS_FILE,
        },
        "backbone_file": BACKBONE_FILE,
        "preprocess": bundle.preprocess_cfg,
        "tokenizer": {
            "type": type(bundle.tokenizer).__name__,
            "context_length": int(getattr(bundle.tokenizer, "context_length", 0) or 0),
        },
        "logit_scale": float(model.logit_scale.detach().cpu()),
        "score": "cosine similarity of projected prompt and projected image",
        "training": info or {},
    }
    (out / OPEN_CLIP_CONFIG_FILE).write_text(
        json.dumps(
            {"model_cfg": _jsonable(bundle.model_cfg), "preprocess_cfg": bundle.preprocess_cfg},
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    save_file(_state_to_save(model.clip), str(out / BACKBONE_FILE), metadata={"format": "pt"})
    heads = {f"image_head.{k}": v for k, v in _state_to_save(model.image_head).items()}
    heads.update({f"text_head.{k}": v for k, v in _state_to_save(model.text_head).items()})
    save_file(heads, str(out / HEADS_FILE), metadata={"format": "pt"})
    (out / META_FILE).write_text(json.dumps(_jsonable(meta), indent=2) + "\n", encoding="utf-8")
    log.info("saved CLIP model to %s", out)
    return out


def _read_json(path: Path, prefix: str = "") -> dict:
    """A JSON file's content, or :class:`ClipModelError` naming the file (after ``prefix``)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ClipModelError(f"{prefix}{path}: not valid JSON ({exc})") from exc


def load_clip(model_dir: str | Path, device: str | torch.device = "cpu") -> ClipBundle:
    """Load a folder written by :func:`save_clip` (no training state needed)."""
    folder = Path(model_dir)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise ClipModelError(f"{folder}: not a saved t2ieval CLIP model (no {META_FILE})")
    meta = _read_json(meta_path)
    if meta.get("format") != FORMAT_NAME or meta.get("format_version") != FORMAT_VERSION:
        raise ClipModelError(
            f"{meta_path}: format {meta.get('format')!r} v{meta.get('format_version')!r} is not "
            f"{FORMAT_NAME} v{FORMAT_VERSION}"
        )
    for needed in (OPEN_CLIP_CONFIG_FILE, BACKBONE_FILE, HEADS_FILE):
        if not (folder / needed).is_file():
            raise ClipModelError(f"{folder}: missing {needed}")
    register_configs()
    name = f"local-dir:{folder}"
    model_cfg = _model_config(name)
    with _quiet_open_clip():
        clip, _, preprocess = open_clip.create_model_and_transforms(name, device="cpu")
    tokenizer = _tokenizer_for(name, model_cfg, meta.get("architecture", ""))
    heads_cfg = meta.get("heads", {})
    wrapped = ClipWithHeads(
        clip, int(meta["embed_dim"]), head_bias=bool(heads_cfg.get("bias", True))
    )
    state = load_file(str(folder / HEADS_FILE))
    wrapped.image_head.load_state_dict(
        {k[len("image_head.") :]: v for k, v in state.items() if k.startswith("image_head.")}
    )
    wrapped.text_head.load_state_dict(
        {k[len("text_head.") :]: v for k, v in state.items() if k.startswith("text_head.")}
    )
    wrapped.to(device).eval()
    return ClipBundle(
        model=wrapped,
        preprocess=preprocess,
        tokenizer=tokenizer,
        architecture=meta.get("architecture", name),
        model_cfg=model_cfg,
        preprocess_cfg=_jsonable(dict(clip.visual.preprocess_cfg)),
        pretrained=meta.get("pretrained"),
        meta=meta,
    )
