"""The README's commands, run exactly as written, as a new user would run them.

Every ```bash and ```python block of README.md is taken from the file and run, in order, in a copy
of the tiny project (``tests/pipeline.py``), in a shell whose ``PATH`` does not hold the venv:
the README tells the user to activate it (``. .venv/bin/activate``), so each block runs after
that line and nothing else. Servers the README starts (``mlflow models serve``, ``mlflow ui``)
run in the background on loopback until the test ends. Each block must be listed in
:data:`POLICY` (what to check, or why it cannot run here) and each entry of :data:`POLICY` must
match a block, so the README and this test cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import BIN, ROOT, env, link_venv, run

pytestmark = pytest.mark.slow

ACTIVATE = ". .venv/bin/activate"


@dataclass(frozen=True)
class Policy:
    """How to run a README block: in the foreground (``expect``: a regex its output must
    match), in the background until ``ping`` answers, or not at all (``skip``: why)."""

    expect: str = ""
    ping: str = ""
    skip: str = ""
    timeout: int = 600


#: README blocks, by a snippet of their text
POLICY: dict[str, Policy] = {
    "make repro   #": Policy(
        skip="the block's first line is run alone below; its second, "
        "`make test`, is this very suite"
    ),
    ACTIVATE: Policy(expect=""),
    "dvc metrics show": Policy(expect=r"val_accuracy"),
    "mlflow ui --backend-store-uri": Policy(ping="http://127.0.0.1:5000/health"),
    "mlflow run . --env-manager local": Policy(expect=r"succeeded"),
    "mlflow models serve -m models:/t2ieval@champion": Policy(ping="http://127.0.0.1:5001/ping"),
    "curl -s -X POST http://127.0.0.1:5001/invocations": Policy(expect=r'"predictions"'),
    "t2ieval score --prompt": Policy(expect=r"preferred: image [12][\s\S]*rank"),
    "from t2ieval import Evaluator": Policy(expect=r"\[.*\]"),
    "dvc exp run -S finetune_clip.distributed.nproc=4": Policy(expect=r"evaluate"),
    "t2ieval score-batch --manifest": Policy(expect=r'"scored": \d+'),
    "t2ieval benchmark-demo --out demo": Policy(
        expect=r"rank\s+generator[\s\S]*not comparable to published FID[\s\S]*MLflow run "
        r"[0-9a-f]{32}"
    ),
    "make leaderboard": Policy(
        skip="needs the full embedded pipeline's model to rank the default demo in its known "
        "order; tests/test_benchmark_cli.py runs `make leaderboard` on the tiny project "
        "with generators that model separates"
    ),
    "t2ieval import pickapic": Policy(
        skip="needs the public datasets on disk; tests/test_adapters.py runs each importer on "
        "fixtures in the owner's on-disk format"
    ),
    "t2ieval eval --model": Policy(
        skip="needs a public dataset imported; tests/test_eval.py imports each owner's format "
        "and checks `t2ieval eval` against the accuracy computed by hand"
    ),
}


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every ```bash and ```python block, in order."""
    return [
        (m.group(1), m.group(2))
        for m in re.finditer(r"^```(bash|python)\n(.*?)^```", text, re.M | re.S)
    ]


def _policy(code: str) -> tuple[str, Policy]:
    matches = [(k, p) for k, p in POLICY.items() if k in code]
    assert len(matches) == 1, f"README block matches {len(matches)} POLICY entries:\n{code}"
    return matches[0]


def _shell_env() -> dict[str, str]:
    """The test environment minus the venv on PATH: what a user has before activating."""
    e = env()
    bins = {str(BIN), str(Path(sys.prefix) / "bin")}
    e["PATH"] = os.pathsep.join(p for p in e["PATH"].split(os.pathsep) if p not in bins)
    e.pop("VIRTUAL_ENV", None)
    e["PYTHONUNBUFFERED"] = "1"
    return e


def _command(language: str, code: str) -> list[str]:
    if language == "python":
        code = f"python - <<'PYTHON_BLOCK'\n{code}PYTHON_BLOCK\n"
    return ["bash", "-c", f"set -eo pipefail\n{ACTIVATE}\n{code}"]


def _wait(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server for {url} exited with {proc.returncode}:\n{proc.stdout.read()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="module")
def readme_project(tiny_project, tmp_path_factory):
    """A copy of the tiny project with its own MLflow store and registered model, and the test's
    venv at ``.venv`` (as ``make`` leaves it)."""
    project = tmp_path_factory.mktemp("readme") / "project"
    shutil.copytree(
        tiny_project,
        project,
        symlinks=True,
        ignore=shutil.ignore_patterns("mlflow.db", "mlruns", "mlartifacts"),
    )
    link_venv(project)
    run([str(BIN / "dvc"), "repro", "--force", "--single-item", "evaluate"], project)
    return project


def test_every_readme_block_has_a_policy_and_every_policy_a_block():
    blocks = readme_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    used = [_policy(code)[0] for _, code in blocks]
    assert sorted(set(used)) == sorted(POLICY), set(POLICY) - set(used)
    first = blocks[0][1].splitlines()
    assert [line.split("#")[0].strip() for line in first] == ["make repro", "make test"]
    assert blocks[1][1].strip() == ACTIVATE


def test_readme_commands_run_as_written(readme_project):
    blocks = readme_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    shell = _shell_env()
    probe = subprocess.run(
        ["bash", "-c", "command -v dvc mlflow t2ieval uvicorn || true"],
        env=shell,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "", f"the venv leaks into the user's shell: {probe.stdout}"
    # the README's first command, alone (its second, `make test`, is this suite)
    out = subprocess.run(
        ["make", "repro"],
        cwd=readme_project,
        env=shell,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Data and pipelines are up to date" in out.stdout, out.stdout[-3000:]

    servers: list[subprocess.Popen] = []
    try:
        for language, code in blocks:
            key, policy = _policy(code)
            if policy.skip:
                continue
            cmd = _command(language, code)
            if policy.ping:
                proc = subprocess.Popen(
                    cmd,
                    cwd=readme_project,
                    env=shell,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                servers.append(proc)
                _wait(policy.ping, proc)
                continue
            done = subprocess.run(
                cmd,
                cwd=readme_project,
                env=shell,
                capture_output=True,
                text=True,
                timeout=policy.timeout,
            )
            output = done.stdout + done.stderr
            assert done.returncode == 0, (
                f"README block failed ({done.returncode}):\n{code}\n--- output\n{output[-6000:]}"
            )
            assert re.search(policy.expect, output), (
                f"{key}: expected {policy.expect!r} in\n{output[-4000:]}"
            )
            if key.startswith("curl"):
                answer = json.loads(done.stdout)
                row = answer["predictions"][0]
                assert row["preferred"] in (1, 2) and row["branches"] == "clip,ce,d"
    finally:
        for proc in servers:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
