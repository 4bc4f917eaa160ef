"""Typed view of ``params.yaml``.

Every stage reads its parameters through :func:`load_params`, never through ad-hoc dictionary
look-ups, so that a typo in ``params.yaml`` fails with a message naming the key instead of a
``KeyError`` deep inside a stage.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_type_hints

import yaml

from t2ieval.branches import PUBLISHED_WEIGHTS
from t2ieval.clip.config import FinetuneConfig
from t2ieval.quality.config import QualityConfig
from t2ieval.vqa.settings import TrainSettings


class ParamsError(ValueError):
    """Raised when ``params.yaml`` holds an unknown key or a value of the wrong kind."""


@dataclass(frozen=True)
class BaseParams:
    seed: int = 0
    device: str = "auto"
    threads: int = 2
    cpu_isa: Literal["avx2", "native"] = "avx2"


@dataclass(frozen=True)
class DataParams:
    source: Literal["synthetic", "manifest"] = "synthetic"
    manifest: str | None = None
    on_error: Literal["fail", "skip"] = "fail"
    max_pixels: int = 40_000_000
    n_pairs: int = 2000
    image_size: int = 128
    seed: int = 0


@dataclass(frozen=True)
class SplitParams:
    train: float = 0.7
    val: float = 0.15
    test: float = 0.15
    seed: int = 0


@dataclass(frozen=True)
class DistributedParams:
    nproc: int = 1
    backend: Literal["auto", "gloo", "nccl"] = "auto"


@dataclass(frozen=True)
class FinetuneClipParams(FinetuneConfig):
    """``finetune_clip``: the library's :class:`FinetuneConfig` plus how to distribute it."""

    distributed: DistributedParams = field(default_factory=DistributedParams)


@dataclass(frozen=True)
class QualityParams(QualityConfig):
    """``quality``: the library's :class:`QualityConfig` (families, model, regularisation)."""


@dataclass(frozen=True)
class VqaParams(TrainSettings):
    """``vqa``: which model, how to score, and the library's :class:`TrainSettings`."""

    enabled: bool = True
    model: str = "t2i-tiny-vilt"
    kind: Literal["auto", "vilt", "blip"] = "auto"
    train_embedded: bool = True
    infer_batch_size: int = 64
    max_questions_per_image: int = 12
    quantize: Literal["none", "bf16", "int8"] = "none"  # CPU bf16 autocast or int8 Linear layers

    def train_settings(self) -> TrainSettings:
        """The training settings alone, as the library takes them."""
        return TrainSettings(**{f.name: getattr(self, f.name) for f in fields(TrainSettings)})


@dataclass(frozen=True)
class FuseParams:
    mode: Literal["fixed", "learned"] = "learned"
    fixed_weights: dict[str, float] = field(default_factory=lambda: dict(PUBLISHED_WEIGHTS))
    cv_folds: int = 5


@dataclass(frozen=True)
class EvaluateParams:
    model_name: str = "t2ieval"
    alias: str = "champion"


@dataclass(frozen=True)
class Params:
    base: BaseParams = field(default_factory=BaseParams)
    data: DataParams = field(default_factory=DataParams)
    split: SplitParams = field(default_factory=SplitParams)
    finetune_clip: FinetuneClipParams = field(default_factory=FinetuneClipParams)
    quality: QualityParams = field(default_factory=QualityParams)
    vqa: VqaParams = field(default_factory=VqaParams)
    fuse: FuseParams = field(default_factory=FuseParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)

    def to_flat_dict(self) -> dict[str, Any]:
        """All parameters as ``{"section.key": value}``, the form MLflow and DVC display."""
        return _flatten(dataclasses.asdict(self))


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
            for i, item in enumerate(value):
                out.update(_flatten(item, f"{name}.{i}."))
        else:
            out[name] = value
    return out


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Coerce a YAML value to the annotated type or raise :class:`ParamsError` naming ``where``."""
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    origin = getattr(tp, "__origin__", None)
    args = getattr(tp, "__args__", ())
    if origin is tuple:  # tuple[X, ...]
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"params.yaml: {where} must be a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is Literal:
        if value not in args:
            raise ParamsError(f"params.yaml: {where} must be one of {list(args)}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"params.yaml: {where} must be a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if args and type(None) in args:  # Optional / union
        if value is None:
            return None
        errors = []
        for alt in args:
            if alt is type(None):
                continue
            try:
                return _coerce(value, alt, where)
            except ParamsError as exc:
                errors.append(str(exc))
        raise ParamsError(errors[-1])
    if origin is not None and args:  # str | float and similar unions
        for alt in args:
            try:
                return _coerce(value, alt, where)
            except ParamsError:
                continue
        raise ParamsError(f"params.yaml: {where} has the wrong type: {value!r}")
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"params.yaml: {where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"params.yaml: {where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"params.yaml: {where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamsError(f"params.yaml: {where} must be a string, got {value!r}")
        return value
    return value


def _build(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml: {where} must be a mapping, got {raw!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(
            f"params.yaml: unknown key(s) {unknown} in {where or 'the top level'}; "
            f"known keys: {sorted(known)}"
        )
    kwargs = {
        name: _coerce(value, hints[name], f"{where}.{name}" if where else name)
        for name, value in raw.items()
    }
    try:
        return cls(**kwargs)
    except ParamsError:
        raise
    except ValueError as exc:  # a library config's own check (e.g. an unknown family)
        raise ParamsError(f"params.yaml: {where or 'the top level'}: {exc}") from exc


def params_from_dict(raw: dict[str, Any]) -> Params:
    """Build :class:`Params` from a parsed ``params.yaml`` mapping, validating every key."""
    return _build(Params, raw, "")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml`` (missing sections and keys take their defaults)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: no such params file (run from the project root)")
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    return params_from_dict(raw)
