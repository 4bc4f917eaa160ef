"""Shared test set-up: no test may wait on a model hub."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# the same thread count on every machine (subprocesses inherit it; stages set base.threads)
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "2"


import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory):
    """A tiny copy of the project on which ``dvc repro`` has run once (slow: about a minute)."""
    from pipeline import make_tiny_project

    return make_tiny_project(tmp_path_factory.mktemp("tiny") / "project")


@pytest.fixture(scope="session")
def tiny_tracking(tiny_project) -> str:
    """The tiny project's MLflow store (tracking and registry)."""
    return f"sqlite:///{(tiny_project / 'mlflow.db').as_posix()}"


@pytest.fixture(scope="session")
def tiny_evaluator(tiny_tracking):
    """The tiny project's registered champion, loaded once for every test that reads it."""
    from t2ieval import Evaluator

    return Evaluator.load("models:/t2ieval@champion", tracking_uri=tiny_tracking)
