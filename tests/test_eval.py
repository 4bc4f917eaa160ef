"""``t2ieval eval``: the accuracy of a registered model on each adapter's manifest, as computed by
hand from the same model's per-image scores, under both tie policies; and its checks.

Each public dataset is written in its owner's on-disk format (``owner_formats``), imported with
``t2ieval import --keep-ties`` (so that the manifest holds the human ties), and evaluated with
``t2ieval eval`` against the tiny project's ``models:/t2ieval@champion``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from owner_formats import (
    imagereward_rows,
    pickapic_frame,
    write_hpd_test,
    write_imagereward,
    write_pickapic_shard,
)
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from t2ieval.cli import app
from t2ieval.data.manifest import ManifestError
from t2ieval.manifest_eval import EvalError, evaluate_manifest, registry_model

from helpers import fused_tolerance

MODEL_URI = "models:/t2ieval@champion"
PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 30),
}


def scene(k: int) -> Image.Image:
    """Image ``k``: a coloured square (the colour, place and size vary with ``k``) on a lightly
    textured background, in the spirit of the tiny model's training data."""
    rng = np.random.default_rng(1000 + k)
    base = rng.integers(200, 256, size=(72, 72, 3), dtype=np.uint8)
    img = Image.fromarray(base)
    colour = list(PALETTE.values())[k % 4]
    x, y, side = 6 + (k * 7) % 30, 8 + (k * 11) % 26, 18 + (k * 5) % 20
    ImageDraw.Draw(img).rectangle([x, y, x + side, y + side], fill=colour)
    return img


def _invoke(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


# ---------------------------------------------------------------- each owner's format, imported


def _hpd(root: Path) -> Path:
    """HPD v2 test.json: four prompts of three images; one record ranks two images equal."""
    records = [
        {
            "prompt": f"a {name} square",
            "image_path": [f"{3 * i + j:05d}.jpg" for j in range(3)],
            "rank": ranks,
            "raw_annotations": [{"rank": ranks, "user_hash": "u1"}],
        }
        for i, (name, ranks) in enumerate(
            [("red", [1, 2, 3]), ("green", [3, 1, 2]), ("blue", [1, 2, 2]), ("yellow", [2, 3, 1])]
        )
    ]
    src = write_hpd_test(root / "HPDv2", records, draw=scene)
    return src


def _imagereward(root: Path) -> Path:
    """ImageRewardDB as on the hub (metadata parquet + images/test/test_1.zip)."""
    groups = {
        "000001-0001": ("a red square on a white wall", "People", [1, 2, 2, 3]),
        "000002-0002": ("a blue square in a field", "Outdoor Scenes", [2, 1, 3]),
        "000003-0003": ("a green square", "People", [1, 2]),
    }
    rows = imagereward_rows(groups, split="test")
    return write_imagereward(root / "ImageRewardDB", rows, draw=scene, split="test")


def _pickapic(root: Path) -> Path:
    """A Pick-a-Pic v2 test_unique shard: six decided rows, a tie and an unlabelled row."""
    rows = [
        ("a red square", 1.0, 0.0, True, True),
        ("a blue square", 0.0, 1.0, True, True),
        ("a green square", 0.5, 0.5, True, True),
        ("a yellow square", 1.0, 0.0, True, True),
        ("a red square", 0.0, 1.0, True, True),
        ("a blue square", 1.0, 0.0, True, True),
        ("a green square", 0.0, 1.0, True, True),
        ("unjudged", 0.0, 0.0, False, True),
    ]
    return write_pickapic_shard(
        root / "pickapic_v2" / "data" / "test_unique-00000-of-00001.parquet",
        pickapic_frame(rows, draw=scene),
    )


SOURCES = {
    "hpd": (_hpd, 12, 1),
    "imagereward": (_imagereward, 10, 1),
    "pickapic": (_pickapic, 7, 1),
}  # source: (writer, pairs written, of which ties)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> dict[str, Path]:
    """Every source imported with ``t2ieval import --keep-ties``."""
    root = tmp_path_factory.mktemp("owners")
    out = {}
    for source, (write, pairs, ties) in SOURCES.items():
        src = write(root / "raw")
        manifest = root / "manifests" / f"{source}.csv"
        summary = _invoke(
            "import", source, "--from", str(src), "--out", str(manifest), "--keep-ties"
        )
        assert summary["pairs_written"] == pairs and summary["ties_written"] == ties, summary
        out[source] = manifest
    return out


def _by_hand(ev, manifest: Path, ties: str) -> tuple[pd.DataFrame, float]:
    """Every pair of the manifest with each image scored alone by the same model, its credit
    under ``ties`` (a human tie: left out, or 0.5; a model tie: 0.5), and the accuracy."""
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    tolerance = fused_tolerance(ev.scorer.fusion)
    scores: dict[tuple[str, str], float] = {}  # an image of several pairs is scored once
    rows = []
    for rec in frame.to_dict("records"):
        if rec["preferred"] == "tie" and ties == "drop":
            continue
        for k in (1, 2):
            key = (rec["prompt"], rec[f"image_{k}"])
            if key not in scores:
                scores[key] = ev.score(rec["prompt"], manifest.parent / rec[f"image_{k}"])[0]
        s1, s2 = scores[rec["prompt"], rec["image_1"]], scores[rec["prompt"], rec["image_2"]]
        assert abs(s1 - s2) > tolerance, f"{rec['pair_id']}: a near tie makes the test fragile"
        if rec["preferred"] == "tie":
            credit = 0.5
        elif s1 == s2:
            credit = 0.5
        else:
            credit = float((s1 > s2) == (rec["preferred"] == "1"))
        rows.append(
            {
                "pair_id": rec["pair_id"],
                "category": rec["category"],
                "score_1": s1,
                "score_2": s2,
                "credit": credit,
            }
        )
    hand = pd.DataFrame(rows)
    return hand, float(hand["credit"].mean())


@pytest.mark.slow
@pytest.mark.parametrize("ties", ["drop", "half"])
@pytest.mark.parametrize("source", list(SOURCES))
def test_eval_reproduces_the_accuracy_computed_by_hand(
    source, ties, manifests, tiny_evaluator, tiny_tracking, tmp_path, monkeypatch
):
    manifest = manifests[source]
    _, pairs, human_ties = SOURCES[source]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    out = tmp_path / "eval" / "result.csv"
    summary = _invoke(
        "eval",
        "--model",
        MODEL_URI,
        "--manifest",
        str(manifest),
        "--ties",
        ties,
        "--out",
        str(out),
        "--tracking-uri",
        tiny_tracking,
        "--batch-size",
        "4",
    )

    hand, accuracy = _by_hand(tiny_evaluator, manifest, ties)
    assert summary["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert summary["accuracy_ci_low"] <= summary["accuracy"] <= summary["accuracy_ci_high"]
    assert summary["pairs"] == len(hand) == (pairs - human_ties if ties == "drop" else pairs)
    assert summary["human_ties"] == human_ties
    assert summary["ties_dropped"] == (human_ties if ties == "drop" else 0)
    assert summary["ties_scored"] == (0 if ties == "drop" else human_ties)
    assert summary["bad_rows_skipped"] == 0 and summary["ties"] == ties
    for cat, group in hand.groupby("category"):
        assert summary["per_category"][cat]["accuracy"] == pytest.approx(group["credit"].mean())
        assert summary["per_category"][cat]["pairs"] == len(group)
    by_prompt = pd.read_csv(manifest, dtype=str, keep_default_na=False).set_index("pair_id")
    prompt_mean = (
        hand.assign(prompt=by_prompt.loc[hand["pair_id"], "prompt"].to_numpy())
        .groupby("prompt")["credit"]
        .mean()
        .mean()
    )
    assert summary["accuracy_prompt_mean"] == pytest.approx(prompt_mean)

    # result.csv: one row per scored pair, the same scores and credit
    result = pd.read_csv(out, keep_default_na=False).set_index("pair_id")
    assert list(result.index) == list(hand["pair_id"])
    assert {"prompt", "category", "score_1", "score_2", "verdict", "preferred", "credit"} <= set(
        result.columns
    )
    tol = fused_tolerance(tiny_evaluator.scorer.fusion)
    for rec in hand.to_dict("records"):
        row = result.loc[rec["pair_id"]]
        assert row["score_1"] == pytest.approx(rec["score_1"], abs=tol)
        assert row["score_2"] == pytest.approx(rec["score_2"], abs=tol)
        assert row["credit"] == rec["credit"]
        assert row["verdict"] == (1 if rec["score_1"] > rec["score_2"] else 2)

    # the scorer's calibrated probability, when it gives one, is passed through
    first = (
        pd.read_csv(manifest, dtype=str, keep_default_na=False)
        .set_index("pair_id")
        .loc[hand["pair_id"].iloc[0]]
    )
    api = tiny_evaluator.score_pairs(
        [first["prompt"]],
        [manifest.parent / first["image_1"]],
        [manifest.parent / first["image_2"]],
    )
    assert api.loc[0, "score_1"] == pytest.approx(result["score_1"].iloc[0], abs=tol)
    if "p_1_over_2" in api.columns:
        assert result["p_1_over_2"].iloc[0] == pytest.approx(api.loc[0, "p_1_over_2"], abs=1e-6)
    else:
        assert "p_1_over_2" not in result.columns

    # one MLflow run, and the process's MLflow settings untouched
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    client = mlflow.MlflowClient(tracking_uri=tiny_tracking, registry_uri=tiny_tracking)
    run = client.get_run(summary["mlflow"]["run_id"])
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "t2ieval-eval" and run.info.status == "FINISHED"
    assert run.data.metrics["accuracy"] == pytest.approx(summary["accuracy"])
    assert run.data.metrics["ties_dropped"] == summary["ties_dropped"]
    assert run.data.params["ties"] == ties and run.data.params["model_uri"] == MODEL_URI
    assert run.data.params["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    champion = client.get_model_version_by_alias("t2ieval", "champion")
    assert (
        run.data.tags["model_version"]
        == str(champion.version)
        == summary["mlflow"]["model_version"]
    )
    assert run.data.tags["t2ieval.kind"] == "eval" and "lock_sha256" in run.data.tags
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
        "result.csv",
        "summary.json",
    }
    local = Path(client.download_artifacts(run.info.run_id, "result.csv", str(tmp_path)))
    assert local.read_bytes() == out.read_bytes()
    assert not (tmp_path / "mlruns").exists()  # artifacts live beside the store, not in the cwd


# ---------------------------------------------------------------- checks that need no model


def _manifest(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_options_and_manifest_problems_are_reported_before_any_model_loads(tmp_path):
    """Each check names what is wrong; the model (here one that does not exist) is never
    loaded when there is nothing to score."""
    scene(0).save(tmp_path / "a.png")
    scene(1).save(tmp_path / "b.png")
    ties_only = _manifest(
        tmp_path / "ties.csv",
        [{"prompt": "a red square", "image_1": "a.png", "image_2": "b.png", "preferred": "tie"}],
    )
    with pytest.raises(EvalError, match=r"ties must be one of \('drop', 'half'\), got 'third'"):
        evaluate_manifest("models:/nope@x", ties_only, ties="third", log_run=False)
    with pytest.raises(EvalError, match="on_error must be one of"):
        evaluate_manifest("models:/nope@x", ties_only, on_error="ignore", log_run=False)
    with pytest.raises(EvalError, match=r"no pair to score \(1 rows, 0 problems, 1 human ties"):
        evaluate_manifest("models:/nope@x", ties_only, log_run=False)
    bad = _manifest(
        tmp_path / "bad.csv",
        [
            {"prompt": "a red square", "image_1": "a.png", "image_2": "b.png", "preferred": "1"},
            {"prompt": " ", "image_1": "a.png", "image_2": "b.png", "preferred": "3"},
        ],
    )
    with pytest.raises(ManifestError, match=r"row 2, field 'prompt'.*\n.*row 2, field 'preferred'"):
        evaluate_manifest("models:/nope@x", bad, on_error="fail", log_run=False)
    with pytest.raises(FileNotFoundError, match="nowhere.csv: manifest not found"):
        evaluate_manifest("models:/nope@x", tmp_path / "nowhere.csv", log_run=False)


def test_cli_says_why_it_cannot_run_and_leaves_mlflow_as_it_was(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    scene(0).save(tmp_path / "a.png")
    scene(1).save(tmp_path / "b.png")
    manifest = _manifest(
        tmp_path / "m.csv",
        [{"prompt": "a red square", "image_1": "a.png", "image_2": "b.png", "preferred": "2"}],
    )
    store = f"sqlite:///{(tmp_path / 'empty.db').as_posix()}"
    runner = CliRunner()
    missing = runner.invoke(
        app,
        [
            "eval",
            "--model",
            "models:/no-such-model@champion",
            "--manifest",
            str(manifest),
            "--tracking-uri",
            store,
        ],
    )
    assert missing.exit_code == 2
    assert "cannot load model 'models:/no-such-model@champion'" in missing.output
    bad_ties = runner.invoke(app, ["eval", "--manifest", str(manifest), "--ties", "win"])
    assert bad_ties.exit_code == 2 and "ties must be one of" in bad_ties.output
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert not (tmp_path / "result.csv").exists()


@pytest.mark.parametrize(
    "uri, parsed",
    [
        ("models:/t2ieval@champion", ("t2ieval", "champion", None)),
        ("models:/t2ieval/7", ("t2ieval", None, "7")),
        ("runs:/abc/model", None),
        (".", None),
        ("models:/t2ieval", None),
    ],
)
def test_registry_uris_name_a_model_version(uri, parsed):
    assert registry_model(uri) == parsed


_NAME = st.text(
    st.characters(blacklist_characters="/@", blacklist_categories=("Cs",)), min_size=1, max_size=20
)


@given(name=_NAME, alias=_NAME, version=st.integers(1, 10**6))
def test_every_registry_uri_parses_back_to_its_parts(name, alias, version):
    assert registry_model(f"models:/{name}@{alias}") == (name, alias, None)
    assert registry_model(f"models:/{name}/{version}") == (name, None, str(version))
    assert registry_model(f"runs:/{name}/{alias}") is None
