"""Distributed (DDP) plumbing for CLIP fine-tuning: torchrun launch, process group, rank info.

``finetune_clip.distributed.nproc > 1`` makes the stage script re-launch itself with
``python -m torch.distributed.run --standalone --nproc_per_node N stages/finetune_clip.py``;
each worker then calls :func:`init_distributed`, which reads torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes metrics, checkpoints and score files."""
        return self.rank == 0


def under_torchrun() -> bool:
    """True inside a worker started by torchrun (or any launcher setting its variables)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ and "LOCAL_RANK" in os.environ


def resolve_backend(backend: str, device: torch.device) -> str:
    """``auto`` -> ``nccl`` on CUDA, ``gloo`` on CPU; ``nccl`` on CPU is an error."""
    if backend == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and device.type != "cuda":
        raise ValueError(
            "finetune_clip.distributed.backend is nccl but the device is CPU; use gloo or auto"
        )
    if backend not in ("gloo", "nccl"):
        raise ValueError(
            f"finetune_clip.distributed.backend must be auto, gloo or nccl, got {backend!r}"
        )
    return backend


def init_distributed(backend: str, device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group when running under torchrun; a no-op for a single process.

    Returns the context and the device of this rank (``cuda:LOCAL_RANK`` on CUDA). On CPU the
    process's thread count (``base.threads``, set before) is shared by the ranks of this machine:
    each takes ``max(1, threads // LOCAL_WORLD_SIZE)``, so N ranks do not start N times the
    threads the machine was given (4 ranks x 2 threads on 2 cores ran the tiny project's
    fine-tuning about twice as slowly).
    """
    if not under_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return DistContext(), device
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    name = resolve_backend(backend, device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        share_cpu_threads(int(os.environ.get("LOCAL_WORLD_SIZE", world_size)))
    if not dist.is_initialized():
        dist.init_process_group(backend=name, rank=rank, world_size=world_size)
    log.info(
        "DDP rank %d/%d (local %d) on %s, backend %s", rank, world_size, local_rank, device, name
    )
    return DistContext(rank, world_size, local_rank, name), device


def share_cpu_threads(local_ranks: int) -> int:
    """Give this rank its share of the process's CPU threads among ``local_ranks`` ranks.

    Returns the threads it now uses: ``max(1, torch.get_num_threads() // local_ranks)``.
    """
    from t2ieval.runtime import set_threads

    threads = max(1, torch.get_num_threads() // max(1, local_ranks))
    if threads != torch.get_num_threads():
        log.info(
            "%d ranks on this machine share %d CPU threads: %d each",
            local_ranks,
            torch.get_num_threads(),
            threads,
        )
    set_threads(threads)
    return threads


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (after a final barrier)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def all_reduce_sum(ctx: DistContext, values: Sequence[float], device: torch.device) -> list[float]:
    """Sum floats over ranks (identity for a single process)."""
    if not ctx.enabled:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def torchrun_command(script: str | Path, nproc: int, args: Sequence[str] = ()) -> list[str]:
    """The command that runs ``script`` as ``nproc`` DDP workers on this machine."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(script),
        *args,
    ]


def relaunch_with_torchrun(script: str | Path, nproc: int, args: Sequence[str] = ()) -> int:
    """Run ``script`` under torchrun with ``nproc`` workers and return its exit status."""
    cmd = torchrun_command(script, nproc, args)
    log.info("launching %d DDP workers: %s", nproc, " ".join(cmd))
    return subprocess.run(cmd, check=False).returncode
