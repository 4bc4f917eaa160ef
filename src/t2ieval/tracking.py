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
import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

EXPERIMENT = "t2ieval"
RUNTIME_LOCK = Path("requirements/runtime.lock")


#: the URIs :func:`configure` itself put in the environment (``mlflow.set_tracking_uri`` exports
#: them), so that they are not mistaken for the user's own choice on the next call
_SET_BY_US: dict[str, str] = {}
_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def _user_env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value and value != _SET_BY_US.get(name) else None


def tracking_uri(root: str | Path = ".") -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<root>/mlflow.db`` (absolute)."""
    return (
        _user_env("MLFLOW_TRACKING_URI")
        or f"sqlite:///{(Path(root).resolve() / 'mlflow.db').as_posix()}"
    )


def _project_uris(root: str | Path) -> tuple[str, str]:
    """``(tracking, registry)`` URIs: the user's ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI``
    when set, else the project's store (the registry follows the tracking URI)."""
    tracking = tracking_uri(root)
    return tracking, _user_env("MLFLOW_REGISTRY_URI") or tracking


def configure(root: str | Path = ".") -> str:
    """Point MLflow at the project's store (tracking and registry) for the rest of the process;
    returns the tracking URI. For a pipeline stage, which logs runs until it exits; library code
    that only needs the store for a while uses :func:`using_tracking_uri`."""
    import mlflow

    users = {name: _user_env(name) for name in _URI_VARS}
    uri, registry = _project_uris(root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry)
    for name, value in zip(_URI_VARS, (uri, registry)):
        if users[name] is None:
            _SET_BY_US[name] = value
    return uri


@contextmanager
def using_tracking_uri(uri: str | None = None, root: str | Path = ".") -> Iterator[str]:
    """Use ``uri`` as MLflow's tracking and registry URI inside the block (``None``: the
    project's store as :func:`configure` chooses it), then put everything back as it was.

    ``mlflow.set_tracking_uri``/``set_registry_uri`` also export ``MLFLOW_TRACKING_URI`` and
    ``MLFLOW_REGISTRY_URI`` to the process environment, so both MLflow's own settings (including
    "not set": MLflow then falls back to the environment or its default again) and those two
    variables are restored. Yields the tracking URI in use.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_state
    from mlflow.tracking._tracking_service import utils as tracking_state

    tracking, registry = (uri, uri) if uri else _project_uris(root)
    env = {name: os.environ.get(name) for name in _URI_VARS}
    # MLflow keeps an explicitly set URI in these module globals (None when never set); its
    # public getters resolve the fallbacks instead, which would pin them if written back
    before = (tracking_state._tracking_uri, registry_state._registry_uri)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
    try:
        yield tracking
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def git_commit(root: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_dirty(root: str | Path = ".") -> bool | None:
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return bool(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None


def file_sha256(path: str | Path) -> str | None:
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def locked_requirements(lock: str | Path = RUNTIME_LOCK) -> list[str]:
    """``name==version`` of every package in the runtime lock file (hashes dropped)."""
    lock = Path(lock)
    if not lock.is_file():
        raise FileNotFoundError(f"{lock}: missing; the lock file is regenerated by `make lock`")
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*==[^\s;\\]+)", lock.read_text(), re.M)
    if not pins:
        raise ValueError(f"{lock}: no `name==version` line; not a lock file")
    return pins


def pinned_requirements(root: str | Path = ".") -> list[str]:
    """The served model's requirements: the runtime lock of the project at ``root``, or, where
    the package runs without its repository, the installed versions of its dependencies."""
    lock = Path(root) / RUNTIME_LOCK
    if lock.is_file():
        return locked_requirements(lock)
    log.warning("%s not found: pinning the installed versions of t2ieval's dependencies", lock)
    pins = []
    for req in metadata.requires("t2ieval") or []:
        if "extra ==" in req:
            continue
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            log.warning("%s is not installed; left out of the model's requirements", name)
    return pins


@dataclass(frozen=True)
class StageSpec:
    """What ``dvc.yaml`` says of one stage: the params it reads, its metrics and its curves."""

    name: str
    params: tuple[str, ...]  # "base", "vqa.model", ... ("*": all of params.yaml)
    metrics: tuple[str, ...]  # metrics files
    curves: tuple[tuple[str, str], ...]  # (plot file, step column) of plots along ``epoch``


def pipeline_stages(root: str | Path = ".") -> list[StageSpec]:
    """The stages of ``<root>/dvc.yaml`` in their order there (the one list of stages)."""
    import yaml

    path = Path(root) / "dvc.yaml"
    with path.open(encoding="utf-8") as fh:
        stages = (yaml.safe_load(fh) or {}).get("stages") or {}
    specs = []
    for name, stage in stages.items():
        params: list[str] = []
        for entry in stage.get("params") or []:
            if isinstance(entry, dict):  # {file: keys}: a file of its own, or all of params.yaml
                params += [
                    "*" if keys is None else k for keys in entry.values() for k in (keys or ["*"])
                ]
            else:
                params.append(str(entry))
        metrics = [
            next(iter(m)) if isinstance(m, dict) else str(m) for m in stage.get("metrics") or []
        ]
        curves = []
        for plot in stage.get("plots") or []:
            if isinstance(plot, dict):
                ((file, opts),) = plot.items()
                if (opts or {}).get("x") == "epoch":
                    curves.append((file, "epoch"))
        specs.append(StageSpec(name, tuple(params), tuple(metrics), tuple(curves)))
    return specs


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


def _stage_params(flat: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    """The entries of ``flat`` that a stage reads: ``keys`` are dvc.yaml's (section or
    ``section.key``; ``*`` is everything)."""
    if "*" in keys:
        return {k: str(v) for k, v in flat.items()}
    return {
        k: str(v)
        for k, v in flat.items()
        if any(k == key or k.startswith(key + ".") for key in keys)
    }


@dataclass
class PipelineRun:
    run_id: str
    experiment_id: str
    stage_run_ids: dict[str, str]


def run_tags(root: str | Path = ".") -> dict[str, str]:
    """Tags every t2ieval MLflow run carries: commit, and hashes of the lock, dvc.lock, params."""
    root = Path(root)
    return {
        "git_commit": git_commit(root) or "unknown",
        "git_dirty": str(git_dirty(root)),
        "lock_sha256": file_sha256(root / RUNTIME_LOCK) or "none",
        "dvc_lock_sha256": file_sha256(root / "dvc.lock") or "none",
        "params_sha256": file_sha256(root / "params.yaml") or "none",
    }


def log_pipeline_execution(
    root: str | Path, flat_params: Mapping[str, Any], artifacts: list[Path]
) -> PipelineRun:
    """Log one pipeline execution: params, every stage's metrics (read from the metrics files
    ``dvc.yaml`` declares), curves, plots, the commit and the hashes of the lock files.

    Leaves the pipeline run active so the caller can log the model into it; the caller ends it.
    """
    import mlflow

    from t2ieval.io import read_json

    root = Path(root)
    configure(root)
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
    parent_id = os.environ.get("MLFLOW_RUN_ID")
    if parent_id:
        run = mlflow.start_run(run_id=parent_id)
    else:
        mlflow.set_experiment(experiment)
        run = mlflow.start_run(run_name="pipeline")
    tags = {"t2ieval.kind": "pipeline", **run_tags(root)}
    mlflow.set_tags(tags)
    items = [(k, str(v)) for k, v in flat_params.items()]
    for i in range(0, len(items), 90):
        mlflow.log_params(dict(items[i : i + 90]))
    stage_runs: dict[str, str] = {}
    for spec in pipeline_stages(root):
        metrics: dict[str, Any] = {}
        for file in spec.metrics:
            if (root / file).is_file():
                metrics.update(read_json(root / file))
        nums, text = _numeric(metrics)
        prefix = "" if spec.name == "evaluate" else f"{spec.name}."
        mlflow.log_metrics({f"{prefix}{k}": v for k, v in nums.items()})
        with mlflow.start_run(run_name=spec.name, nested=True) as child:
            mlflow.set_tags(
                {
                    **tags,
                    "t2ieval.kind": "stage",
                    "t2ieval.stage": spec.name,
                    **{f"metric.{k}": v for k, v in text.items()},
                }
            )
            params = list(_stage_params(flat_params, spec.params).items())
            for i in range(0, len(params), 90):
                mlflow.log_params(dict(params[i : i + 90]))
            mlflow.log_metrics(nums)
            for file, step_col in spec.curves:
                _log_curve(root / file, step_col)
            plot_dir = root / "plots" / spec.name
            if plot_dir.is_dir():
                mlflow.log_artifacts(str(plot_dir), artifact_path="plots")
            stage_runs[spec.name] = child.info.run_id
    for path in artifacts:
        if path.is_file():
            parent = path.parent.as_posix()
            mlflow.log_artifact(
                str(path),
                artifact_path=None if parent in (".", "") or path.parent.is_absolute() else parent,
            )
        elif path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=path.as_posix())
    return PipelineRun(run.info.run_id, run.info.experiment_id, stage_runs)


def _log_curve(path: Path, step_col: str) -> None:
    import mlflow

    if not path.is_file() or path.stat().st_size == 0:
        return
    curve = pd.read_csv(path)
    for rec in curve.to_dict("records"):
        step = int(rec.pop(step_col))
        mlflow.log_metrics(
            {
                f"curve.{k}": float(v)
                for k, v in rec.items()
                if isinstance(v, (int, float)) and pd.notna(v)
            },
            step=step,
        )


def register_model(
    run_id: str, model_uri: str, name: str, alias: str, val_accuracy: float
) -> tuple[str, bool]:
    """Register ``model_uri`` as a new version of ``name``; move ``alias`` to it if it is at least
    as accurate on validation as the current holder. Returns ``(version, promoted)``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    mv = mlflow.register_model(
        model_uri, name, tags={"val_accuracy": f"{val_accuracy:.6f}", "run_id": run_id}
    )
    current: float | None = None
    try:
        holder = client.get_model_version_by_alias(name, alias)
        current = float(holder.tags.get("val_accuracy", "nan"))
    except MlflowException:
        holder = None
    promoted = holder is None or not (current is not None and current > val_accuracy)
    if promoted:
        client.set_registered_model_alias(name, alias, mv.version)
        log.info(
            "%s version %s is now @%s (val_accuracy %.4f, previous %s)",
            name,
            mv.version,
            alias,
            val_accuracy,
            current,
        )
    else:
        log.info(
            "%s version %s registered; @%s stays on version %s (%.4f > %.4f)",
            name,
            mv.version,
            alias,
            holder.version,
            current,
            val_accuracy,
        )
    return str(mv.version), promoted
