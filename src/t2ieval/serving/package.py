"""Logging the composite model to MLflow with its signature, input example and requirements."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

import t2ieval
from t2ieval.images import encode_image_base64
from t2ieval.serving.pyfunc import T2IEvalModel
from t2ieval.tracking import pinned_requirements

log = logging.getLogger(__name__)


def model_signature():
    """Input: ``prompt``, ``image_1`` and optional ``image_2`` (base64 strings); output: scores."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string", "prompt"),
            ColSpec("string", "image_1"),
            ColSpec("string", "image_2", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec("double", "score_1"),
            ColSpec("double", "score_2"),
            ColSpec("long", "preferred"),
            ColSpec("double", "p_1_over_2"),
            *[ColSpec("double", f"{b}_score_{s}") for b in ("clip", "ce", "d") for s in (1, 2)],
            ColSpec("string", "branches"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(prompt: str, image_1: str | Path, image_2: str | Path) -> pd.DataFrame:
    """A one-row request built from two image files."""
    return pd.DataFrame(
        [
            {
                "prompt": prompt,
                "image_1": encode_image_base64(image_1),
                "image_2": encode_image_base64(image_2),
            }
        ]
    )


def log_composite_model(
    artifacts: Mapping[str, str | Path], example: pd.DataFrame, name: str = "model"
):
    """Log the pyfunc into the active run; returns MLflow's ``ModelInfo``."""
    import mlflow

    missing = [k for k, v in artifacts.items() if not Path(v).exists()]
    if missing:
        raise FileNotFoundError(f"model parts {missing} are missing; run the pipeline first")
    code = Path(t2ieval.__file__).resolve().parent
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=T2IEvalModel(),
        artifacts={k: str(v) for k, v in artifacts.items()},
        signature=model_signature(),
        input_example=example,
        pip_requirements=pinned_requirements(),
        code_paths=[str(code)],
    )
    log.info("logged the composite model at %s", info.model_uri)
    return info
