"""What ``make repro`` exports before ``dvc repro``: ``python -m t2ieval.pipeline.exports``.

The load-time kernel variables of ``base.cpu_isa`` (:func:`t2ieval.runtime.load_time_env`), as
``export`` lines for a shell to evaluate: a stage started under them finds its NumPy and
OpenBLAS kernels already pinned and does not restart itself to pin them
(:func:`t2ieval.runtime.pin_load_time_kernels`); the values are the ones a stage would set.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from t2ieval.params import load_params
from t2ieval.runtime import load_time_env


def shell_exports(params_path: str | Path = "params.yaml") -> str:
    """``export`` lines for the load-time kernel variables of ``params_path``'s ``base.cpu_isa``."""
    cpu_isa = load_params(params_path).base.cpu_isa
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in load_time_env(cpu_isa).items())


if __name__ == "__main__":
    sys.stdout.write(shell_exports(*sys.argv[1:2]) + "\n")
