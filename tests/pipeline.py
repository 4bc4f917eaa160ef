"""A tiny copy of the project, run for real through ``dvc repro``, shared by the slow tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from t2ieval.runtime import load_time_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

TINY_PARAMS = {
    "data": {"n_pairs": 160, "image_size": 96},
    "split": {"train": 0.6, "val": 0.2, "test": 0.2},
    "finetune_clip": {"epochs": 2, "batch_size": 32},
    "quality": {"n_jobs": 1, "inner_folds": 3},
    "vqa": {"epochs": 1, "pretrain_epochs": 3, "max_questions_per_image": 4},
    "fuse": {"cv_folds": 3},
}


def env() -> dict[str, str]:
    """The environment of a pipeline subprocess: the venv first on PATH, no hub, local MLflow."""
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e["HF_HUB_OFFLINE"] = "1"
    e["TRANSFORMERS_OFFLINE"] = "1"
    e["DVC_NO_ANALYTICS"] = "1"
    # the kernels a stage pins (base.cpu_isa: avx2), set up front: no stage restarts itself
    for key, value in load_time_env("avx2").items():
        e.setdefault(key, value)
    e["GIT_AUTHOR_NAME"] = e["GIT_COMMITTER_NAME"] = "t2ieval-tests"
    e["GIT_AUTHOR_EMAIL"] = e["GIT_COMMITTER_EMAIL"] = "tests@localhost"
    for key in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "MLFLOW_RUN_ID",
        "MLFLOW_EXPERIMENT_NAME",
    ):
        e.pop(key, None)
    return e


def run(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``cmd`` and fail with its output if it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}\n"
            f"--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


def copy_project(dest: Path) -> Path:
    """The repository's tracked and untracked-but-not-ignored files, as a fresh git repository."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for name in filter(None, files):
        src = ROOT / name
        if not src.is_file() or name.startswith(
            ("data/", "models/", "metrics/", "plots/", "reports/", "cache/")
        ):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


def write_params(project: Path, overrides: dict) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in overrides.items():
        params.setdefault(section, {})
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def make_tiny_project(dest: Path) -> Path:
    """Copy the project, shrink it, commit it, and run the whole pipeline once."""
    project = copy_project(dest)
    write_params(project, TINY_PARAMS)
    run(["git", "init", "-q"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "tiny project"], project)
    run([str(BIN / "dvc"), "repro"], project)
    return project


def link_venv(project: Path) -> None:
    """Put the test's venv at ``project/.venv``, as ``make`` leaves it, with the install stamp
    newer than what it was made from (a copy keeps the source files' times, which an edit after
    the last install would leave newer, and ``make`` would then reinstall)."""
    (project / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    stamp = Path(sys.prefix) / ".installed"
    if stamp.is_file():
        past = stamp.stat().st_mtime - 1
        for name in ("pyproject.toml", "requirements/dev.lock"):
            os.utime(project / name, (past, past))
