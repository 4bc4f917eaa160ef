"""``benchmarks/real_size.py`` on tiny checkpoints: the floor of both VQA kinds (fast) and one
whole run -- model built and registered, served over HTTP, Python API, table (slow; Spark off)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from checkpoints import CLIP_ARCHITECTURES, write_all

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("real_size", ROOT / "benchmarks" / "real_size.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["real_size"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("ckpt"), size="tiny")


@pytest.mark.parametrize("kind", ["vilt", "blip"])
def test_floor_runs_one_plain_pass_per_image_and_question(kind, tiny_checkpoints, tmp_path):
    bench = _bench()
    images = bench.make_images(tmp_path, 2, size=96)
    questions = ["Can you find any circle?", "Is the circle red?", "Is the square blue?"]
    floor = bench.floor(
        kind, tiny_checkpoints, CLIP_ARCHITECTURES["tiny"], images, questions, "cpu", repeats=1
    )
    assert len(floor.per_question_ms) == 2 * len(questions)  # two images, every question each
    assert all(ms > 0 for ms in floor.per_question_ms)
    assert floor.clip_ms > 0
    assert math.isclose(floor.total_ms, floor.clip_ms + sum(floor.per_question_ms))
    if kind == "blip":  # the image encoder runs again for every question: the plain way
        assert 0 < floor.vqa_image_ms < floor.vqa_ms
    else:
        assert floor.vqa_image_ms == 0


def test_prompt_yields_the_twelve_questions_the_benchmark_claims():
    from t2ieval.vqa.parse import parse_prompts
    from t2ieval.vqa.questions import make_questions

    bench = _bench()
    assert len(make_questions(parse_prompts([bench.PROMPT])[0], None)) >= 12


@pytest.mark.slow
def test_whole_run_serves_batches_and_prints_the_table(tiny_checkpoints, tmp_path, capsys):
    bench = _bench()
    folder = next(iter(tiny_checkpoints.values())).parents[1]
    out = tmp_path / "results.json"
    assert (
        bench.main(
            [
                "--checkpoints",
                str(folder),
                "--size",
                "tiny",
                "--kinds",
                "blip",
                "--requests",
                "2",
                "--api-pairs",
                "1",
                "--no-spark",  # Spark's score-batch has its own tests; this one keeps CI short
                "--work",
                str(tmp_path / "work"),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "served/floor" in printed and "blip: served p50" in printed
    (result,) = json.loads(out.read_text())
    served = result["served"]
    assert served["requests"] == 2 and 0 < served["p50_ms"] <= served["p95_ms"]
    assert served["peak_rss_mb"] > 100  # the server process holds torch and the models
    row = served["row"]
    assert row["branches"] == "clip,ce,d" and 0 <= row["p_1_over_2"] <= 1
    assert result["api"]["questions_per_pair"] == 24 and result["api"]["pairs_per_s"] > 0
    assert "spark" not in result
    assert result["questions_per_image"] == 12 and result["floor"]["total_ms"] > 0
