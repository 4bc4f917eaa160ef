"""Process-level helpers: logging set-up, seeding, thread counts, CPU kernels and device choice.

A pipeline stage calls :func:`configure_process` first thing, so that its outputs depend on
``params.yaml`` and the inputs alone, not on the machine:

* **threads**: torch intra-op threads and the BLAS pools of NumPy/SciPy (through threadpoolctl)
  are set to ``base.threads``. A float reduction split over 4 threads sums in another order than
  over 2, so the thread count is part of the result.
* **CPU kernels**: with ``base.cpu_isa: avx2`` (the default) torch's own kernels, oneDNN and MKL
  are capped at AVX2 and MKL runs in its conditional-numerical-reproducibility mode, so a machine
  with AVX-512 computes the same bytes as one without. NumPy's dispatched loops (its ``exp`` and
  ``log``, among others) and OpenBLAS (NumPy's and SciPy's, so scikit-learn's) are capped too, but
  they choose their kernels once, when they are loaded: :func:`pin_load_time_kernels` restarts the
  stage's interpreter with their variables set when they loaded with AVX-512 kernels (measured:
  on an AVX-512 machine the NSS features differed in their last digits from a lock written on
  another machine, whose kernels are not known; with the pins they match).
  ``native`` lets every library pick the fastest kernels of this CPU (results then depend on the
  CPU model). Measured limit of ``avx2``: NumPy, OpenBLAS and scikit-learn gave the same bytes on
  an Intel Xeon as on an AMD EPYC, torch's training did not (last digits from the first CLIP
  epoch on; README, "Same inputs, same bytes").
* **determinism**: ``torch.use_deterministic_algorithms(True)`` (an op without a deterministic
  implementation raises instead of silently varying) and seeds for Python, NumPy and torch.
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import random
import sys
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

#: NumPy's dispatch targets above AVX2 (``NPY_DISABLE_CPU_FEATURES`` turns found ones off)
NUMPY_ABOVE_AVX2 = ("X86_V4", "AVX512_SKX", "AVX512_CLX", "AVX512_CNL", "AVX512_ICL", "AVX512_SPR")
#: the OpenBLAS core type of ``base.cpu_isa: avx2`` (its AVX2 kernels, on any AVX2 CPU)
OPENBLAS_AVX2_CORE = "Haswell"

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


def seed_everything(seed: int, torch: bool = True) -> None:
    """Seed Python, NumPy and (unless ``torch`` is False) torch, and make torch refuse
    nondeterministic ops."""
    random.seed(seed)
    np.random.seed(seed)
    if not torch:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch as _torch

    _torch.manual_seed(seed)
    _torch.use_deterministic_algorithms(True)


def set_cpu_isa(cpu_isa: str, torch: bool = True) -> None:
    """Cap the CPU kernels of torch, oneDNN and MKL (``avx2``) or leave them native.

    Must run before torch executes its first CPU kernel: the libraries read these variables
    once. Raises :class:`RuntimeSetupError` if torch already chose another kernel set (checked
    unless ``torch`` is False: the process then does not import torch).
    """
    if cpu_isa not in ISA_ENV:
        raise RuntimeSetupError(f"base.cpu_isa must be one of {sorted(ISA_ENV)}, got {cpu_isa!r}")
    for key, value in ISA_ENV[cpu_isa].items():
        os.environ[key] = value
    if cpu_isa == "native" or not torch:
        return
    import torch as _torch

    chosen = _torch.backends.cpu.get_cpu_capability()
    if chosen not in ("AVX2", "DEFAULT"):  # DEFAULT: a CPU without AVX2 runs the generic kernels
        raise RuntimeSetupError(
            f"torch already runs {chosen} kernels, but base.cpu_isa is {cpu_isa!r}: call "
            "configure_process() before any torch computation, or set ATEN_CPU_CAPABILITY=avx2"
        )


def load_time_env(cpu_isa: str) -> dict[str, str]:
    """The variables NumPy and OpenBLAS must have found when they loaded, for ``cpu_isa``.

    Only NumPy targets this machine has are named (NumPy rejects the others).
    """
    if cpu_isa != "avx2":
        return {}
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    above = [f for f in NUMPY_ABOVE_AVX2 if f in __cpu_dispatch__ and __cpu_features__.get(f)]
    env = {"OPENBLAS_CORETYPE": OPENBLAS_AVX2_CORE}
    if above:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(above)
    return env


def pin_load_time_kernels(cpu_isa: str) -> None:
    """Restart this interpreter (same arguments) when NumPy or OpenBLAS loaded other kernels than
    ``cpu_isa`` allows; a no-op when they already run the pinned ones.

    They read their variables once, at import, and a stage script imports NumPy before it reads
    ``params.yaml``; so the stage sets the variables and replaces itself with a fresh process
    (``os.execv``: same PID, same arguments; measured ~4 s a stage, the imports again).
    """
    want = {k: v for k, v in load_time_env(cpu_isa).items() if k not in os.environ}
    if not want:
        return
    log.info("restarting with %s (base.cpu_isa %s)", want, cpu_isa)
    os.environ.update(want)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, list(sys.orig_argv))


def set_threads(threads: int, torch: bool = True) -> None:
    """Use ``threads`` threads in torch (unless ``torch`` is False) and in the BLAS libraries of
    NumPy and SciPy."""
    global _thread_limits
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise RuntimeSetupError(f"base.threads must be an integer >= 1, got {threads!r}")
    from threadpoolctl import threadpool_limits

    if torch:
        import torch as _torch

        _torch.set_num_threads(threads)
    _thread_limits = threadpool_limits(limits=threads)


def configure_process(seed: int, threads: int, cpu_isa: str = "avx2", torch: bool = True) -> None:
    """Everything a stage needs to compute the same bytes on every run: see the module doc.

    May restart the process first (:func:`pin_load_time_kernels`): call it first thing. A stage
    that computes nothing with torch passes ``torch=False``: torch is then neither imported
    (importing it, 1.5-2 s, was a third of such a stage's time) nor importable in this process
    (:class:`TorchBlocked`), so no torch computation can run unseeded.
    """
    if cpu_isa in ISA_ENV:
        pin_load_time_kernels(cpu_isa)
    if not torch and "torch" in sys.modules:
        raise RuntimeSetupError(
            "configure_process(torch=False), but torch is already imported: pass torch=True"
        )
    set_cpu_isa(cpu_isa, torch=torch)
    set_threads(threads, torch=torch)
    seed_everything(seed, torch=torch)
    if not torch and not any(isinstance(f, TorchBlocked) for f in sys.meta_path):
        sys.meta_path.insert(0, TorchBlocked())
    log.info(
        "process: seed %d, %d thread(s), cpu_isa %s%s",
        seed,
        threads,
        cpu_isa,
        "" if torch else ", without torch",
    )


class TorchBlocked(importlib.abc.MetaPathFinder):
    """Import hook of a process configured with ``torch=False``: importing torch fails with an
    :class:`ImportError` that says why (a library that merely probes for torch goes on without)."""

    def find_spec(self, name: str, path=None, target=None):  # noqa: D102
        if name == "torch" or name.startswith("torch."):
            raise ImportError(
                f"import {name}: this process was configured without torch "
                "(t2ieval.runtime.configure_process(torch=False)), so torch would run unseeded "
                "here; configure it with torch=True"
            )
        return None


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
