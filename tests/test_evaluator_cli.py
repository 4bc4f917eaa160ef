"""The Python API (``Evaluator``) and the ``t2ieval score`` / ``rank`` commands, tiny project."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from PIL import Image
from typer.testing import CliRunner

from t2ieval.cli import app
from t2ieval.evaluator import Answer, Evaluator, ImageScore, Verdict, ranks_of
from t2ieval.images import ImageError

from helpers import TOL, fused_tolerance

MODEL_URI = "models:/t2ieval@champion"


def test_import_t2ieval_stays_light_and_exports_the_api_lazily():
    code = (
        "import sys, t2ieval; heavy = [m for m in ('torch', 'mlflow', 'open_clip') "
        "if m in sys.modules]; assert not heavy, heavy; "
        "from t2ieval import Evaluator, Verdict; "
        "assert Evaluator.__module__ == 't2ieval.evaluator' and Verdict.__name__ == 'Verdict'; "
        "assert 'Evaluator' in dir(t2ieval)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_ranks_of_puts_the_best_first_and_keeps_ties_in_input_order():
    assert ranks_of([0.1, 0.9, 0.5]) == [3, 1, 2]
    assert ranks_of([0.5, 0.7, 0.5]) == [2, 1, 3]
    assert ranks_of([]) == []


def test_loading_leaves_mlflow_and_the_environment_as_they_were(tmp_path, monkeypatch):
    """With or without an explicit tracking URI, a load (here one that fails) changes neither
    MLflow's URIs nor ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI``."""
    import mlflow

    monkeypatch.chdir(tmp_path)  # the default store: ./mlflow.db, here an empty one
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    for tracking_uri in (None, f"sqlite:///{(tmp_path / 'other.db').as_posix()}"):
        with pytest.raises(MlflowException, match="no-such-model"):
            Evaluator.load("models:/no-such-model@champion", tracking_uri=tracking_uri)
        assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before, tracking_uri
        assert "MLFLOW_TRACKING_URI" not in os.environ, tracking_uri
        assert "MLFLOW_REGISTRY_URI" not in os.environ, tracking_uri


# ---- on the tiny project -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tracking(tiny_tracking) -> str:
    return tiny_tracking


@pytest.fixture(scope="module")
def ev(tiny_evaluator) -> Evaluator:
    return tiny_evaluator


@pytest.fixture(scope="module")
def fused(tiny_project) -> pd.DataFrame:
    """Test pairs with the pipeline's branch scores (``<branch>_score_<slot>``), paths absolute."""
    table = pd.read_csv(tiny_project / "data" / "split" / "pairs.csv", dtype={"pair_id": str})
    for b in ("clip", "ce", "d"):
        scores = pd.read_csv(tiny_project / "data" / "scores" / f"{b}.csv", dtype={"pair_id": str})
        table = table.merge(
            scores[["pair_id", "score_1", "score_2"]].rename(
                columns={"score_1": f"{b}_score_1", "score_2": f"{b}_score_2"}
            ),
            on="pair_id",
        )
    table = table[table["split"] == "test"].head(6).reset_index(drop=True)
    for col in ("image_1", "image_2"):
        table[col] = [str(tiny_project / p) for p in table[col]]
    return table


@pytest.mark.slow
def test_registry_model_and_pipeline_root_score_the_same(ev, tiny_project, fused):
    row = fused.iloc[0]
    images = [row["image_1"], row["image_2"]]
    from_root = Evaluator.load(tiny_project).score(row["prompt"], images)
    assert np.allclose(ev.score(row["prompt"], images), from_root, atol=TOL)


@pytest.mark.slow
def test_compare_matches_the_pipelines_branch_scores(ev, fused):
    """The API scores images exactly as the pipeline's stages did (data/scores/*.csv)."""
    for _, row in fused.iterrows():
        v = ev.compare(row["prompt"], row["image_1"], row["image_2"])
        assert isinstance(v, Verdict)
        for b in ("clip", "ce", "d"):
            for slot in (1, 2):
                key = f"{b}_score_{slot}"
                assert getattr(v, key) == pytest.approx(row[key], abs=1e-5), (row["pair_id"], key)
        fused_scores = ev.scorer.fusion.fuse(
            {
                b: np.array([getattr(v, f"{b}_score_1"), getattr(v, f"{b}_score_2")])
                for b in ("clip", "ce", "d")
            }
        )
        assert [v.score_1, v.score_2] == pytest.approx(fused_scores.tolist(), abs=1e-12)
        assert v.preferred == (2 if v.score_2 > v.score_1 else 1)
        assert v.margin == pytest.approx(abs(v.score_1 - v.score_2))


@pytest.mark.slow
def test_compare_explains_with_branch_scores_and_vqa_answers(ev, fused):
    row = fused.iloc[1]
    v = ev.compare(row["prompt"], row["image_1"], row["image_2"])
    swapped = ev.compare(row["prompt"], row["image_2"], row["image_1"])
    for name in ("clip_score", "ce_score", "d_score"):
        assert getattr(v, f"{name}_1") == pytest.approx(getattr(swapped, f"{name}_2"), abs=TOL)
        assert np.isfinite(getattr(v, f"{name}_1"))
    assert v.score_2 == pytest.approx(swapped.score_1, abs=fused_tolerance(ev.scorer.fusion))
    assert 0.0 <= v.ce_score_1 <= 1.0 and -1.0 <= v.clip_score_1 <= 1.0
    assert v.answers_1, "no VQA question was asked about the prompt"
    for a in v.answers_1 + v.answers_2:
        assert isinstance(a, Answer) and a.question and 0.0 <= a.p_yes <= 1.0
    assert [a.question for a in v.answers_1] == [a.question for a in v.answers_2]
    as_json = json.loads(json.dumps(v.to_dict()))
    assert as_json["preferred"] == v.preferred and as_json["answers_1"][0]["question"]


@pytest.mark.slow
def test_score_and_rank_take_paths_or_pil_images(ev, fused):
    row = fused.iloc[2]
    paths = [row["image_1"], row["image_2"], fused.iloc[3]["image_1"]]
    pil = [Image.open(p) for p in paths]
    by_path = ev.score(row["prompt"], paths)
    assert isinstance(by_path, list) and len(by_path) == 3
    assert np.allclose(ev.score(row["prompt"], pil), by_path, atol=TOL)
    assert ev.score(row["prompt"], paths[0]) == pytest.approx(
        by_path[:1], abs=fused_tolerance(ev.scorer.fusion)
    )
    ranks, scores = ev.rank(row["prompt"], paths)
    assert sorted(ranks) == [1, 2, 3]
    assert np.allclose(scores, by_path, atol=TOL)
    assert scores[ranks.index(1)] == max(scores) and scores[ranks.index(3)] == min(scores)
    details = ev.details(row["prompt"], paths)
    assert all(isinstance(d, ImageScore) for d in details)
    assert [d.score for d in details] == pytest.approx(by_path, abs=TOL)


@pytest.mark.slow
def test_a_pil_image_with_alpha_scores_like_the_same_file(ev, fused, tmp_path):
    rgba = Image.open(fused.iloc[2]["image_1"]).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))  # half the pixels see-through
    rgba.save(tmp_path / "alpha.png")
    prompt = fused.iloc[2]["prompt"]
    assert ev.score(prompt, rgba) == pytest.approx(
        ev.score(prompt, tmp_path / "alpha.png"), abs=TOL
    )


@pytest.mark.slow
def test_bad_input_and_bad_model_fail_clearly(ev, fused, tmp_path):
    row = fused.iloc[0]
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        ev.score("  ", [row["image_1"]])
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    with pytest.raises(ImageError, match="notes.png: not an image"):
        ev.compare(row["prompt"], row["image_1"], not_image)
    with pytest.raises(TypeError, match="image 1: expected a PIL image or a file path"):
        ev.score(row["prompt"], [row["image_1"], 3])
    with pytest.raises(FileNotFoundError, match="neither a pipeline root"):
        Evaluator.load(tmp_path)
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    with pytest.raises(MlflowException, match="no-such-model"):
        Evaluator.load(
            "models:/no-such-model@champion",
            tracking_uri=f"sqlite:///{(tmp_path / 'empty.db').as_posix()}",
        )
    # an explicit tracking URI is used for that load only, not left in the process environment
    assert {k: os.environ.get(k) for k in env} == env


# ---- the command line ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.slow
def test_cli_score_json_matches_the_api(runner, ev, fused, tiny_project):
    row = fused.iloc[0]
    result = runner.invoke(
        app,
        [
            "score",
            "--prompt",
            row["prompt"],
            row["image_1"],
            row["image_2"],
            "--model",
            str(tiny_project),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    v = ev.compare(row["prompt"], row["image_1"], row["image_2"])
    assert got["preferred"] == v.preferred and got["image_2"] == row["image_2"]
    for name in ("score", "clip_score", "ce_score", "d_score"):
        for slot in (1, 2):
            key = f"{name}_{slot}"
            assert got[key] == pytest.approx(getattr(v, key), abs=TOL)
    assert [a["question"] for a in got["answers_1"]] == [a.question for a in v.answers_1]


@pytest.mark.slow
def test_cli_score_text_uses_the_registered_champion_by_default(runner, ev, fused, tracking):
    row = fused.iloc[1]
    result = runner.invoke(
        app,
        ["score", "-p", row["prompt"], row["image_1"], row["image_2"]],
        env={"MLFLOW_TRACKING_URI": tracking},
    )
    assert result.exit_code == 0, result.output
    v = ev.compare(row["prompt"], row["image_1"], row["image_2"])
    text = result.stdout
    assert f"preferred: image {v.preferred} (" in text
    assert f"{v.clip_score_1:12.4f}{v.clip_score_2:12.4f}" in text
    assert "why (VQA questions, probability of yes):" in text
    assert v.answers_1[0].question in text


@pytest.mark.slow
def test_cli_rank_orders_images_best_first(runner, ev, fused, tiny_project):
    row = fused.iloc[2]
    paths = [row["image_1"], row["image_2"], fused.iloc[4]["image_2"]]
    result = runner.invoke(
        app, ["rank", "--prompt", row["prompt"], *paths, "--model", str(tiny_project), "--json"]
    )
    assert result.exit_code == 0, result.output
    ranking = json.loads(result.stdout)["ranking"]
    ranks, scores = ev.rank(row["prompt"], paths)
    assert [r["rank"] for r in ranking] == [1, 2, 3]
    assert [r["image"] for r in ranking] == [paths[ranks.index(k)] for k in (1, 2, 3)]
    assert [r["score"] for r in ranking] == pytest.approx(sorted(scores, reverse=True), abs=TOL)
    text = runner.invoke(app, ["rank", "-p", row["prompt"], *paths, "-m", str(tiny_project)])
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[2].split()[-1] == paths[ranks.index(1)]


@pytest.mark.slow
def test_cli_errors_exit_2_with_a_message(runner, fused, tiny_project, tmp_path):
    row = fused.iloc[0]
    missing = tmp_path / "missing.png"
    result = runner.invoke(
        app, ["score", "-p", row["prompt"], row["image_1"], str(missing), "-m", str(tiny_project)]
    )
    assert result.exit_code == 2 and f"{missing}: no such file" in result.stderr
    result = runner.invoke(
        app, ["score", "-p", " ", row["image_1"], row["image_2"], "-m", str(tiny_project)]
    )
    assert result.exit_code == 2 and "--prompt is empty" in result.stderr
    result = runner.invoke(app, ["rank", "-p", row["prompt"], row["image_1"], "-m", str(tmp_path)])
    assert result.exit_code == 2 and "cannot load model" in result.stderr
