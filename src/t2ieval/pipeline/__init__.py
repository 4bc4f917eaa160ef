"""The DVC pipeline's application layer: what the stage scripts in ``stages/`` share.

The scoring library (``t2ieval.clip``, ``t2ieval.entropy``, ``t2ieval.vqa``, ``t2ieval.fusion``,
...) knows nothing of ``params.yaml``; this package turns params into library calls.
"""

from __future__ import annotations

from pathlib import Path

from t2ieval.params import Params, load_params
from t2ieval.runtime import configure_process, setup_logging


def start_stage(params_path: str | Path = "params.yaml", torch: bool = True) -> Params:
    """What every stage does first: logging, ``params.yaml``, and the reproducible process
    state of ``base.seed``, ``base.threads`` and ``base.cpu_isa`` (see :mod:`t2ieval.runtime`).

    A stage that computes nothing with torch passes ``torch=False``: it then starts without
    importing torch, and cannot import it (:func:`t2ieval.runtime.configure_process`)."""
    setup_logging()
    params = load_params(params_path)
    configure_process(params.base.seed, params.base.threads, params.base.cpu_isa, torch=torch)
    return params
