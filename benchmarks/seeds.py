"""Seed noise: the pipeline under several model seeds, as DVC experiments; mean ± sd per metric.

    python benchmarks/seeds.py --seeds 0 1 2        (or `make seeds`)

Queues one experiment per seed (``dvc exp run --queue -S base.seed=K``), runs the queue one job
at a time, then reads every experiment's ``metrics/evaluate.json`` back from ``dvc exp show``
and prints, for each headline metric, the value under each seed and their mean and standard
deviation. A difference between two settings smaller than about two of these sd is seed noise.
Only ``base.seed`` changes (initialisation, batch order, CV folds); the data and its split keep
their own seeds. The experiments log into the project's MLflow store like any pipeline run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = (
    "val_accuracy",
    "test_accuracy",
    "val_accuracy_fixed_weights",
    "test_accuracy_fixed_weights",
    "val_accuracy_clip",
    "test_accuracy_clip",
    "val_accuracy_ce",
    "test_accuracy_ce",
    "val_accuracy_d",
    "test_accuracy_d",
)


def _dvc(*args: str, capture: bool = False) -> str:
    proc = subprocess.run(["dvc", *args], cwd=ROOT, text=True, check=False, capture_output=capture)
    if proc.returncode != 0:
        sys.exit(
            f"dvc {' '.join(args)} failed ({proc.returncode})\n"
            f"{proc.stdout or ''}{proc.stderr or ''}"
        )
    return proc.stdout or ""


def _wait_for_queue(poll: float = 10.0) -> None:
    while True:
        status = _dvc("queue", "status", capture=True)
        if not any(word in status for word in ("Queued", "Running")):
            return
        time.sleep(poll)


def _experiment_metrics(names: list[str]) -> dict[str, dict]:
    shown = json.loads(_dvc("exp", "show", "--json", capture=True))
    found: dict[str, dict] = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                name = rev.get("name")
                data = (rev.get("data") or {}).get("metrics") or {}
                if name in names and "metrics/evaluate.json" in data:
                    found[name] = data["metrics/evaluate.json"]["data"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--prefix", default="seed", help="experiment names: <prefix>-<seed>")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}")
    names = [f"{args.prefix}-{s}" for s in args.seeds]
    for seed, name in zip(args.seeds, names):
        _dvc("exp", "remove", name, capture=True) if name in _dvc(
            "exp", "list", "--name-only", capture=True
        ).split() else None
        _dvc("exp", "run", "--queue", "-S", f"base.seed={seed}", "-n", name)
    _dvc("queue", "start", "--jobs", "1")
    _wait_for_queue()
    found = _experiment_metrics(names)
    missing = [n for n in names if n not in found]
    if missing:
        sys.exit(f"no metrics for experiment(s) {missing}; see `dvc queue logs <name>`")
    print(f"{'metric':34s}" + "".join(f"{n:>10s}" for n in names) + f"{'mean':>9s}{'sd':>8s}")
    for key in HEADLINE:
        values = [found[n].get(key) for n in names]
        if any(v is None for v in values):
            continue
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        print(
            f"{key:34s}"
            + "".join(f"{v:10.4f}" for v in values)
            + f"{statistics.mean(values):9.4f}{sd:8.4f}"
        )


if __name__ == "__main__":
    main()
