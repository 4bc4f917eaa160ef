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
