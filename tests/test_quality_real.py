"""benchmarks/quality_real.py end to end on a few prompts of the real avt-ai-images set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AVT = ROOT / ".." / "shared" / "data" / "avt-ai-images"


def test_quality_real_prints_its_table(tmp_path):
    if not (AVT / "pairs.csv").is_file():
        pytest.skip(f"{AVT}: the avt-ai-images development set is not here")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    out_json = tmp_path / "real.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "quality_real.py"),
            "--max-prompts",
            "6",
            "--n-boot",
            "500",
            "--json",
            str(out_json),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert "leave-one-prompt-out" in text and "6 prompts" in text
    for label in (
        "quality[entropy]",
        "quality[nss]",
        "quality[handcrafted]",
        "quality[all]",
        "IQA NIQE (lower=better)",
        "IQA MANIQA",
    ):
        assert label in text, text
    result = json.loads(out_json.read_text())
    assert result["n_prompts"] == 6
    rows = {r["model"]: r for r in result["rows"]}
    for row in rows.values():
        assert 0.0 <= row["ci_low"] <= row["accuracy"] <= row["ci_high"] <= 1.0
    assert rows["quality[all]"]["n_features"] == 59


def test_iqa_anchors_reproduce_the_readme():
    if not (AVT / "iqa.csv").is_file():
        pytest.skip(f"{AVT}: the avt-ai-images development set is not here")
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "quality_real", ROOT / "benchmarks" / "quality_real.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    pairs = bench.load_pairs(AVT, None)
    rows = bench.anchor_rows(AVT / "iqa.csv", pairs, pairs["group"].to_numpy(), 200, 0)
    got = {r["metric"]: round(r["accuracy"], 3) for r in rows}
    assert got == bench.README_ANCHORS  # NIQE 0.724, MANIQA 0.713, ... on all 268 pairs
