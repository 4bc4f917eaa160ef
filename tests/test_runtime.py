"""The reproducible process state of a stage: NumPy's and OpenBLAS's kernels pinned at AVX2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from t2ieval.runtime import NUMPY_ABOVE_AVX2, OPENBLAS_AVX2_CORE

PROBE = """
import json
from t2ieval.runtime import configure_process
configure_process(0, 1, {isa!r})
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
from threadpoolctl import threadpool_info
print(json.dumps({{
    "numpy_above_avx2": sorted(
        f for f in {above!r} if f in __cpu_dispatch__ and __cpu_features__.get(f)
    ),
    "openblas": sorted({{i.get("architecture") for i in threadpool_info()
                        if i["internal_api"] == "openblas"}}),
}}))
"""


def _probe(isa: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(isa=isa, above=NUMPY_ABOVE_AVX2)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_avx2_stage_runs_numpy_and_openblas_at_avx2_on_any_cpu():
    # on an AVX-512 machine the process restarts itself with the kernels pinned; on an AVX2 one
    # it already runs them: either way what a stage computes with NumPy and OpenBLAS is the same
    state = _probe("avx2")
    assert state["numpy_above_avx2"] == []
    assert state["openblas"] == [OPENBLAS_AVX2_CORE]


def test_native_leaves_the_kernels_to_the_machine():
    # what a fresh interpreter finds on this machine, with nothing disabled
    machine = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from numpy._core._multiarray_umath import __cpu_dispatch__ as d, "
            "__cpu_features__ as f; "
            f"print(json.dumps(sorted(x for x in {NUMPY_ABOVE_AVX2!r} if x in d and f.get(x))))",
        ],
        env={k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert _probe("native")["numpy_above_avx2"] == json.loads(machine)


def test_make_repros_exports_are_what_a_stage_would_set(tmp_path):
    # `make repro` evaluates `python -m t2ieval.pipeline.exports params.yaml` before dvc: a stage
    # started under those exports finds its kernels pinned and has nothing left to set (no restart)
    (tmp_path / "params.yaml").write_text("base: {cpu_isa: avx2}\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")
    }
    check = (
        "from t2ieval.runtime import load_time_env; import os; "
        'print(sorted(k for k in load_time_env("avx2") if k not in os.environ))'
    )
    exports = f"{sys.executable} -m t2ieval.pipeline.exports params.yaml"
    script = f"eval \"$({exports})\" && {sys.executable} -c '{check}'"
    out = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stderr
    assert (
        "OPENBLAS_CORETYPE"
        in subprocess.run(
            [sys.executable, "-m", "t2ieval.pipeline.exports", str(tmp_path / "params.yaml")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


NO_TORCH = """
import sys
from t2ieval.runtime import configure_process
configure_process(0, 1, "avx2", torch=False)
import numpy as np, spacy  # spaCy's thinc probes for torch and goes on without it
print(sys.modules.get("torch") is None, np.random.rand())
try:
    import torch
except ImportError as exc:
    print("refused:", exc)
"""


def test_a_stage_without_torch_neither_imports_it_nor_can():
    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    seeded = subprocess.run(
        [sys.executable, "-c", "import numpy as np; np.random.seed(0); print(np.random.rand())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out[0] == f"True {seeded}"
    assert out[1].startswith("refused: import torch: this process was configured without torch")
