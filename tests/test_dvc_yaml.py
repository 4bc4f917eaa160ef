"""dvc.yaml names, for every stage, each library file the stage imports and the locked environment.

A stage that imports a module DVC does not know about would not re-run when that module changes
(a new tie rule in ``metrics.py``, say), and the committed ``dvc.lock`` would describe outputs that
the code no longer produces. The imports are found statically: every ``import t2ieval...`` anywhere
in the stage script and, transitively, in the modules it reaches (imports inside functions
included, ``if TYPE_CHECKING:`` blocks excluded).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import imported_files as _closure

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_imported_library_file_is_a_dependency(stage):
    spec = STAGES[stage]
    script = ROOT / spec["cmd"].split()[-1]
    deps = [str(d) for d in spec["deps"]]
    assert str(script.relative_to(ROOT)) in deps, f"{stage}: its own script is not a dep"
    assert "requirements/runtime.lock" in deps, f"{stage}: the locked environment is not a dep"
    missing = sorted(str(p.relative_to(ROOT)) for p in _closure(script) if not _covered(p, deps))
    assert not missing, f"{stage} imports files dvc.yaml does not list as deps: {missing}"


def test_the_closure_follows_imports_inside_functions():
    """The checker itself: a lazy import inside a function counts (scoring.py loads branches so)."""
    reached = {str(p.relative_to(SRC)) for p in _closure(SRC / "t2ieval" / "scoring.py")}
    assert "t2ieval/vqa/score.py" in reached and "t2ieval/clip/score.py" in reached


def test_bytecode_caches_are_not_part_of_a_code_dependency(tmp_path):
    """The committed .dvcignore keeps ``__pycache__`` out of the dir hashes of ``src/t2ieval/...``.

    Bytecode is written by whichever process imports the code first and carries the sources'
    mtimes, so with it hashed a fresh clone's ``dvc.lock`` named different code deps than the
    committed one while every out was identical (real ``dvc repro`` and ``dvc status`` here).
    """
    import subprocess
    import sys

    dvc = [sys.executable, "-m", "dvc"]

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    run("git", "init", "-q")
    run(*dvc, "init", "-q")
    (tmp_path / ".dvcignore").write_text((ROOT / ".dvcignore").read_text())
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod.py").write_text("X = 1\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: python -c \"open('out.txt', 'w').write('1')\"\n"
        "    deps: [pkg]\n    outs: [out.txt]\n"
    )
    run(*dvc, "repro", "-q")
    lock = (tmp_path / "dvc.lock").read_text()
    assert "nfiles: 1" in lock
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\x00bytecode")
    assert "up to date" in run(*dvc, "status")
    (pkg / "mod.py").write_text("X = 2\n")  # a real change still counts
    assert "modified" in run(*dvc, "status")
