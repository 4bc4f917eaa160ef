"""dvc.yaml names, for every stage, each library file the stage imports and the locked environment.

A stage that imports a module DVC does not know about would not re-run when that module changes
(a new tie rule in ``metrics.py``, say), and the committed ``dvc.lock`` would describe outputs that
the code no longer produces. The imports are found statically: every ``import t2ieval...`` anywhere
in the stage script and, transitively, in the modules it reaches (imports inside functions
included, ``if TYPE_CHECKING:`` blocks excluded).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _module_file(module: str) -> Path | None:
    path = SRC.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package: list[str] = []
    if path.is_relative_to(SRC):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        package = parts[:-1]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("t2ieval"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("t2ieval"):
                found.add(module)
                found.update(f"{module}.{a.name}" for a in node.names)  # submodules
    return found


def _closure(script: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imported_modules(path):
            parts = module.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__
                found = _module_file(".".join(parts[:i]))
                if found is not None and found not in seen:
                    todo.append(found)
    seen.discard(script)
    return seen


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
