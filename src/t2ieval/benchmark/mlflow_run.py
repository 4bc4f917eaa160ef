"""The benchmark's MLflow side: which model version was used, and one run with everything.

The run goes to experiment ``t2ieval-benchmark`` in the same store the model was resolved in,
inside :func:`t2ieval.tracking.using_tracking_uri`, so the process's MLflow settings and
``MLFLOW_TRACKING_URI`` are left as they were. It carries the leaderboard as metrics (the same
numbers as ``metrics.json``), the files as artifacts, the settings as params, and tags naming
the model version, the feature space and the commit (:func:`t2ieval.tracking.run_tags`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

EXPERIMENT = "t2ieval-benchmark"


@dataclass(frozen=True)
class ModelInfo:
    """The model a benchmark used: as asked (``uri``), as loaded (``loaded_uri``: a registry
    alias is resolved to its version first, so the tag names what was really scored with)."""

    uri: str
    loaded_uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


_REGISTRY = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


def resolve_model(model: str, tracking_uri: str) -> ModelInfo:
    """Resolve ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` to a version in the registry
    at ``tracking_uri`` (``latest`` as a version also works); any other URI or a path is
    returned as it is, without a version."""
    from t2ieval.tracking import using_tracking_uri

    found = _REGISTRY.match(str(model))
    if not found:
        run = re.match(r"^runs:/([^/]+)/", str(model))
        return ModelInfo(
            uri=str(model), loaded_uri=str(model), run_id=run.group(1) if run else None
        )
    import mlflow

    name, alias, version = found.group("name"), found.group("alias"), found.group("version")
    with using_tracking_uri(tracking_uri):
        client = mlflow.MlflowClient()
        if alias:
            mv = client.get_model_version_by_alias(name, alias)
        elif version == "latest":
            mv = max(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
        else:
            mv = client.get_model_version(name, version)
    return ModelInfo(
        uri=str(model),
        loaded_uri=f"models:/{name}/{mv.version}",
        name=name,
        version=str(mv.version),
        alias=alias,
        run_id=mv.run_id,
    )


def log_benchmark_run(
    tracking_uri: str,
    model: ModelInfo,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    files: Mapping[str, Path],
    experiment: str = EXPERIMENT,
    run_name: str = "benchmark",
    artifact_root: Path | None = None,
) -> str:
    """Log one run: ``params``, ``metrics``, ``tags`` plus the model's, and ``files`` as
    artifacts. Returns the run id.

    A new experiment keeps its artifacts under ``artifact_root/<experiment>`` when given (for
    a local store: the project's ``mlruns``, wherever the command runs), else where the
    tracking server puts them.
    """
    import mlflow

    from t2ieval.tracking import using_tracking_uri

    model_tags = {
        "model_uri": model.uri,
        "model_loaded_uri": model.loaded_uri,
        "model_name": model.name or "none",
        "model_version": model.version or "none",
        "model_alias": model.alias or "none",
        "model_run_id": model.run_id or "none",
    }
    with using_tracking_uri(tracking_uri):
        # not mlflow.set_experiment: it would export MLFLOW_EXPERIMENT_ID to the process
        client = mlflow.MlflowClient()
        found = client.get_experiment_by_name(experiment)
        location = (
            None if artifact_root is None else (Path(artifact_root).resolve() / experiment).as_uri()
        )
        experiment_id = (
            found.experiment_id
            if found
            else client.create_experiment(experiment, artifact_location=location)
        )
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            mlflow.set_tags({"t2ieval.kind": "benchmark", **model_tags, **dict(tags)})
            items = [(k, str(v)) for k, v in params.items()]
            for i in range(0, len(items), 90):
                mlflow.log_params(dict(items[i : i + 90]))
            pairs = list(metrics.items())
            for i in range(0, len(pairs), 500):
                mlflow.log_metrics(dict(pairs[i : i + 500]))
            for path in files.values():
                if Path(path).is_file():
                    mlflow.log_artifact(str(path))
            run_id = run.info.run_id
    log.info("logged the benchmark as MLflow run %s (experiment %s)", run_id, experiment)
    return run_id
