"""Helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

SRC = Path(__file__).resolve().parents[1] / "src"

#: scores computed twice through the same code may differ by float rounding of other batches
TOL = 1e-6


def fused_tolerance(fusion) -> float:
    """How far two fused scores may differ when every branch score agrees within ``TOL``.

    A fused score is ``sum_b w_b (s_b - mean_b) / std_b``: float32 noise in a branch (e.g. VQA
    probabilities that depend on the batch's order at 1e-8) is multiplied by ``w_b / std_b``,
    which is large when a branch barely varies (the tiny project's D-score has std ~1e-4).
    """
    return TOL * max(1.0, sum(abs(w) / fusion.std[b] for b, w in fusion.weights.items()))


def column_tolerance(column: str, fusion) -> float:
    """Tolerance of one output column: a fused score's (:func:`fused_tolerance`); ``p_1_over_2``'s
    (``sigmoid(a * diff)`` moves by at most ``a / 4`` per unit of ``diff``, which two fused scores
    can each move by ``fused_tolerance``); ``TOL`` for a branch score."""
    if column.startswith("score_"):
        return fused_tolerance(fusion)
    if column == "p_1_over_2":
        return max(TOL, fusion.scale / 2 * fused_tolerance(fusion))
    return TOL


COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 30),
}


def make_pairs(root, n: int) -> pd.DataFrame:
    """``n`` pairs "a <colour> square": the preferred image shows that colour, the other not."""
    root.mkdir(parents=True, exist_ok=True)
    names = list(COLOURS)
    rows = []
    for i in range(n):
        good, bad = names[i % 4], names[(i + 1 + i // 4) % 4]
        paths = []
        for slot, colour in ((1, good), (2, bad)):
            img = Image.new("RGB", (40, 40), (255, 255, 255))
            offset = 4 + (i % 3) * 3
            ImageDraw.Draw(img).rectangle(
                [offset, offset, offset + 20, offset + 20], fill=COLOURS[colour]
            )
            path = root / f"p{i:03d}_{slot}.png"
            img.save(path)
            paths.append(str(path))
        preferred = 1 if i % 2 == 0 else 2
        if preferred == 2:
            paths.reverse()
        rows.append(
            {
                "pair_id": f"p{i:03d}",
                "prompt": f"a {good} square",
                "image_1": paths[0],
                "image_2": paths[1],
                "preferred": preferred,
                "split": "train",
            }
        )
    return pd.DataFrame(rows)


# ---- which library files a script imports (dvc.yaml deps must name them) -------------------
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
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("t2ieval"):
                found.add(module)
                found.update(f"{module}.{a.name}" for a in node.names)  # submodules
    return found


def imported_files(script: Path) -> set[Path]:
    """Every ``src/t2ieval`` file ``script`` imports, transitively (imports inside functions
    included, ``if TYPE_CHECKING:`` blocks excluded); ``script`` itself is left out."""
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
