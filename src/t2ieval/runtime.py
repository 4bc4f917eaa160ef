"""Process-level helpers: logging set-up, seeding, thread counts, CPU kernels and device choice.

A pipeline stage calls :func:`configure_process` first thing, so that its outputs depend on
``params.yaml`` and the inputs alone, not on the machine:

* **threads**: torch intra-op threads and the BLAS pools of NumPy/SciPy (through threadpoolctl)
  are set to ``base.threads``. A float reduction split over 4 threads sums in another order than
  over 2, so the thread count is part of the result.
* **CPU kernels**: with ``base.cpu_isa: avx2`` (the default) torch's own kernels, oneDNN and MKL
  are capped at AVX2 and MKL runs in its conditional-numerical-reproducibility mode, so a machine
  with AVX-512 computes the same bytes as one without. ``native`` lets every library pick the
  fastest kernels of this CPU (results then depend on the CPU model).
* **determinism**: ``torch.use_deterministic_algorithms(True)`` (an op without a deterministic
  implementation raises instead of silently varying) and seeds for Python, NumPy and torch.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: environment read by torch/oneDNN/MKL when they first run a kernel, per ``base.cpu_isa``
ISA_ENV: dict[str, dict[str, str]] = {
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "MKL_CBWR": "AVX2",
    },
    "native": {},
}

_thread_limits: Any = None  # keeps threadpoolctl's limits alive for the life of the process


class RuntimeSetupError(RuntimeError):
    """The process could not be put into the reproducible state the params ask for."""


def setup_logging(level: int | str | None = None) -> None:
    """Configure root logging once for a stage script or the CLI (``T2IEVAL_LOG`` overrides)."""
    level = level or os.environ.get("T2IEVAL_LOG", "INFO")
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (if imported) and make torch refuse nondeterministic ops."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def set_cpu_isa(cpu_isa: str) -> None:
    """Cap the CPU kernels of torch, oneDNN and MKL (``avx2``) or leave them native.

    Must run before torch executes its first CPU kernel: the libraries read these variables
    once. Raises :class:`RuntimeSetupError` if torch already chose another kernel set.
    """
    if cpu_isa not in ISA_ENV:
        raise RuntimeSetupError(f"base.cpu_isa must be one of {sorted(ISA_ENV)}, got {cpu_isa!r}")
    for key, value in ISA_ENV[cpu_isa].items():
        os.environ[key] = value
    if cpu_isa == "native":
        return
    import torch

    chosen = torch.backends.cpu.get_cpu_capability()
    if chosen not in ("AVX2", "DEFAULT"):  # DEFAULT: a CPU without AVX2 runs the generic kernels
        raise RuntimeSetupError(
            f"torch already runs {chosen} kernels, but base.cpu_isa is {cpu_isa!r}: call "
            "configure_process() before any torch computation, or set ATEN_CPU_CAPABILITY=avx2"
        )


def set_threads(threads: int) -> None:
    """Use ``threads`` threads in torch and in the BLAS libraries of NumPy and SciPy."""
    global _thread_limits
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise RuntimeSetupError(f"base.threads must be an integer >= 1, got {threads!r}")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    _thread_limits = threadpool_limits(limits=threads)


def configure_process(seed: int, threads: int, cpu_isa: str = "avx2") -> None:
    """Everything a stage needs to compute the same bytes on every run: see the module doc."""
    set_cpu_isa(cpu_isa)
    set_threads(threads)
    seed_everything(seed)
    log.info("process: seed %d, %d thread(s), cpu_isa %s", seed, threads, cpu_isa)


def pick_device(requested: str = "auto") -> torch.device:  # noqa: F821
    """``auto`` gives CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    import torch

    if requested == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"base.device is {requested!r} but CUDA is not available here")
    log.info("using device %s", device)
    return device
