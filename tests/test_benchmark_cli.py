"""``t2ieval benchmark`` end to end: ``make leaderboard``'s DVC project on the tiny project's
registered model, the files, the labels and the MLflow run; the CLI's error paths.

The tiny model is weak at contradictions (its validation accuracy is about 0.6) but its quality
branch is reliable on degraded images, so the generators here differ in their degradation rates
as well and the model is registered with the published fusion weights, which keep that branch;
the default demo's (5 / 25 / 50 % contradictions) need the full embedded model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from t2ieval.cli import app

from helpers import SRC, imported_files
from pipeline import BIN, ROOT, env, link_venv, run, write_params

TEST_GENERATORS = [
    {"name": "clean", "violation_rate": 0.05, "degradation_rate": 0.0},
    {"name": "sloppy", "violation_rate": 0.25, "degradation_rate": 0.5},
    {"name": "broken", "violation_rate": 0.5, "degradation_rate": 1.0},
]
KNOWN_ORDER = ["clean", "sloppy", "broken"]


def run_in(project: Path, cmd: list[str], cwd: Path, timeout: int = 1200):
    """``cmd`` as :func:`pipeline.run` runs it, with the project's own ``src`` first on
    ``PYTHONPATH`` (a relative entry of the test's would not resolve from ``leaderboard/``)."""
    entries = [str(project / "src")] + [
        str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env={**env(), "PYTHONPATH": os.pathsep.join(entries)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}\n"
        f"--- stdout\n{proc.stdout[-6000:]}\n"
        f"--- stderr\n{proc.stderr[-6000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def bench_project(tiny_project, tmp_path_factory) -> Path:
    """A copy of the tiny project (its registered model included) on which ``make leaderboard``
    ran once, with a small demo: 30 prompts x 3 generators."""
    project = tmp_path_factory.mktemp("bench") / "project"
    shutil.copytree(tiny_project, project, symlinks=True)
    params_file = project / "leaderboard" / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["demo"].update(n_prompts=30, image_size=96, generators=TEST_GENERATORS)
    params["benchmark"]["n_bootstrap"] = 500
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    # The tiny project's learned fusion is chosen on 32 validation pairs, where a tie goes to a
    # single branch: it may take CLIP alone, at chance after 2 epochs, and then no generator
    # order is there to find. The published weights keep the quality branch, which separates
    # degraded images; `dvc repro` re-runs fuse and evaluate, which registers the new champion.
    write_params(project, {"fuse": {"mode": "fixed"}})
    run([str(BIN / "dvc"), "repro"], project)
    link_venv(project)
    out = run_in(project, ["make", "leaderboard"], project)
    (project / "make_leaderboard.txt").write_text(out.stdout)
    return project


def _board(project: Path) -> pd.DataFrame:
    return pd.read_csv(project / "leaderboard" / "out" / "leaderboard.csv")


@pytest.mark.slow
def test_make_leaderboard_ranks_the_demo_generators_in_the_known_order(bench_project):
    board = _board(bench_project)
    assert board["generator"].tolist() == KNOWN_ORDER
    assert board["rank"].tolist() == [1, 2, 3]
    low, high = board["bt_ci_low"].to_numpy(), board["bt_ci_high"].to_numpy()
    assert (low <= board["bt_strength"]).all() and (board["bt_strength"] <= high).all()
    assert low[0] > high[1] and low[1] > high[2], board[["generator", "bt_ci_low", "bt_ci_high"]]
    assert (board["images"] == 30).all() and (board["missing_prompts"] == 0).all()
    # shared layouts: faithful images of one prompt are the same picture, a tie
    assert board.set_index("generator").at["clean", "ties"] > 0
    printed = (bench_project / "make_leaderboard.txt").read_text()
    assert printed.index("clean") < printed.index("sloppy") < printed.index("broken")
    assert "95% bootstrap interval over prompts" in printed
    assert (
        "known order clean > sloppy > broken: reproduced; neighbours' intervals do not "
        "overlap" in printed
    )


@pytest.mark.slow
def test_the_leaderboard_files_carry_every_metric_labelled_with_its_feature_space(bench_project):
    out = bench_project / "leaderboard" / "out"
    board = _board(bench_project)
    for col in (
        "fid_clip",
        "kid_clip",
        "kid_clip_std",
        "clipscore_t2ieval",
        "mean_score",
        "mean_clip_score",
        "mean_ce_score",
        "mean_d_score",
        "win_rate",
    ):
        assert board[col].notna().all(), col
    assert not [c for c in board.columns if c.startswith(("fid_inception", "is_"))]
    assert (board["feature_space"].str.startswith("t2ieval CLIP image tower")).all()
    assert not board["feature_space_comparable_to_published"].any()
    summary = json.loads((out / "leaderboard.json").read_text())
    space = summary["distribution"]["feature_space"]
    assert space["key"] == "clip" and space["comparable_to_published"] is False
    assert "not comparable to published FID" in space["note"]
    assert "class logits" in summary["distribution"]["skipped"]["is_clip"]
    assert "not comparable to published CLIPScore" in summary["distribution"]["clipscore_note"]
    assert "version" not in summary["model"]  # MLflow's assignments stay out of DVC outputs
    text = (out / "leaderboard.txt").read_text()
    for phrase in (
        "not comparable to published FID",
        "skipped is_clip",
        "not comparable to published CLIPScore",
        "fid_clip",
        "kid_clip",
    ):
        assert phrase in text, phrase
    dist = pd.read_csv(out / "distribution.csv")
    assert set(dist["metric"]) == {"fid_clip", "kid_clip", "clipscore_t2ieval"}
    assert dist["note"].str.contains("not comparable").all()
    cats = pd.read_csv(out / "categories.csv")
    assert set(cats["category"]) <= {
        "object",
        "colour",
        "count",
        "relation",
        "style",
        "degradation",
    } and set(cats["generator"]) == set(KNOWN_ORDER)
    pairwise = pd.read_csv(out / "pairwise.csv")
    assert (pairwise["comparisons"] == 30).all()
    with Image.open(out / "leaderboard.png") as chart:
        assert chart.size[0] > 600
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 90 and not scores["image"].str.startswith("/").any()


@pytest.mark.slow
def test_one_mlflow_run_holds_the_leaderboard_tagged_with_the_model_version(bench_project):
    db = f"sqlite:///{(bench_project / 'mlflow.db').as_posix()}"
    client = mlflow.MlflowClient(tracking_uri=db, registry_uri=db)
    experiment = client.get_experiment_by_name("t2ieval-benchmark")
    (run_,) = client.search_runs([experiment.experiment_id])
    champion = client.get_model_version_by_alias("t2ieval", "champion")
    tags = run_.data.tags
    assert tags["model_version"] == str(champion.version) and tags["model_name"] == "t2ieval"
    assert tags["model_uri"] == "models:/t2ieval@champion"
    assert tags["model_loaded_uri"] == f"models:/t2ieval/{champion.version}"
    assert tags["t2ieval.kind"] == "benchmark" and len(tags["git_commit"]) == 40
    assert "not comparable to published FID" in tags["feature_space_note"]
    assert tags["feature_space_comparable_to_published"] == "False"
    metrics = json.loads((bench_project / "leaderboard" / "out" / "metrics.json").read_text())
    assert run_.data.metrics == pytest.approx(metrics)
    assert "fid_clip.clean" in metrics and "bt_strength.broken" in metrics
    artifacts = {a.path for a in client.list_artifacts(run_.info.run_id)}
    assert {
        "leaderboard.csv",
        "leaderboard.json",
        "leaderboard.png",
        "leaderboard.txt",
        "scores.csv",
        "distribution.csv",
        "metrics.json",
    } <= artifacts
    assert experiment.artifact_location.startswith((bench_project / "mlruns").as_uri())
    recorded = json.loads((bench_project / "leaderboard" / "out" / "run.json").read_text())
    assert recorded["mlflow_run_id"] == run_.info.run_id
    assert recorded["model"]["version"] == str(champion.version)


@pytest.mark.slow
def test_the_leaderboard_is_a_dvc_project_of_its_own(bench_project):
    dvc = str(BIN / "dvc")
    again = run_in(bench_project, [dvc, "repro"], bench_project / "leaderboard").stdout
    assert "Running stage" not in again, again
    assert "up to date" in run([dvc, "status"], bench_project).stdout  # the pipeline's status
    shown = json.loads(
        run([dvc, "metrics", "show", "--json"], bench_project / "leaderboard").stdout
    )
    data = next(iter(shown.values()))["data"]["out/metrics.json"]["data"]
    assert data["rank.clean"] == 1.0


@pytest.mark.slow
def test_the_cli_reads_a_folder_layout_and_counts_missing_and_skipped_images(
    bench_project, tmp_path, monkeypatch
):
    demo = bench_project / "leaderboard" / "demo"
    root = tmp_path / "gens"
    for gen in ("clean", "broken"):
        shutil.copytree(demo / "images" / gen, root / gen)
    prompts = pd.read_csv(demo / "prompts.csv").head(8)
    prompts.to_csv(tmp_path / "prompts.csv", index=False)
    for f in root.glob("*/*.png"):  # keep the first 8 prompts
        if f.name.split("_")[0] not in set(prompts["prompt_id"]):
            f.unlink()
    (root / "broken" / "q00001_0.png").unlink()  # missing
    (root / "clean" / "q00002_0.png").write_bytes(b"\x89PNG broken")  # unreadable
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = mlflow.get_tracking_uri()
    result = CliRunner().invoke(
        app,
        [
            "benchmark",
            "--folder",
            str(root),
            "--prompts",
            str(tmp_path / "prompts.csv"),
            "--out",
            str(tmp_path / "out"),
            "--root",
            str(bench_project),
            "--on-error",
            "skip",
            "--no-distribution",
            "--no-mlflow",
            "--bootstrap",
            "200",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["inputs"]["kind"] == "folder" and summary["inputs"]["skipped_rows"] == 1
    assert summary["inputs"]["skip_reasons"] == {"bad_image": 1}
    assert summary["mlflow_run_id"] is None and summary["distribution"] is None
    board = {r["generator"]: r for r in summary["leaderboard"]}
    assert board["clean"]["missing_prompts"] == 1 and board["broken"]["missing_prompts"] == 1
    assert board["clean"]["images"] == 7 and board["broken"]["images"] == 7
    assert summary["pairwise"][0]["comparisons"] == 6  # prompts both have an image of
    assert summary["model_used"]["version"] is not None
    problems = pd.read_csv(tmp_path / "out" / "problems.csv")
    assert problems["message"].str.contains("q00002_0.png").all()
    # the tracking URI the command used is not left behind in the process
    assert "MLFLOW_TRACKING_URI" not in os.environ and mlflow.get_tracking_uri() == before


@pytest.mark.slow
def test_spark_scores_the_same_pictures_through_the_batch_path(bench_project, tmp_path):
    demo = bench_project / "leaderboard" / "demo"
    manifest = pd.read_csv(demo / "manifest.csv")
    manifest = manifest[manifest["prompt_id"].isin(sorted(set(manifest["prompt_id"]))[:5])]
    manifest.assign(image=[str(demo / p) for p in manifest["image"]]).to_csv(
        tmp_path / "m.csv", index=False
    )
    result = CliRunner().invoke(
        app,
        [
            "benchmark",
            "--manifest",
            str(tmp_path / "m.csv"),
            "--out",
            str(tmp_path / "out"),
            "--root",
            str(bench_project),
            "--spark-master",
            "local[1]",
            "--no-distribution",
            "--no-mlflow",
            "--bootstrap",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    spark = pd.read_csv(tmp_path / "out" / "scores.csv")
    local = pd.read_csv(bench_project / "leaderboard" / "out" / "scores.csv")
    both = spark.merge(local, on=["generator", "prompt_id", "seed"], suffixes=("", "_local"))
    assert len(both) == 15
    for col in ("clip_score", "ce_score", "d_score"):
        assert (both[col] - both[f"{col}_local"]).abs().max() < 1e-5, col
    # the same picture for the same prompt is scored once: faithful images still tie exactly
    pictures = both.groupby(["prompt_id", "digest"])["score"].nunique()
    assert (pictures == 1).all()
    assert (tmp_path / "out" / "spark" / "pairs.csv").is_file()


def test_bad_rows_fail_before_any_model_is_loaded_naming_row_and_field(tmp_path):
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    pd.DataFrame(
        [
            {"generator": "x", "prompt": "a red square", "image": "a.png"},
            {"generator": "y", "prompt": "", "image": "a.png"},
            {"generator": "y", "prompt": "a red square", "image": "gone.png"},
        ]
    ).to_csv(tmp_path / "m.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "benchmark",
            "--manifest",
            str(tmp_path / "m.csv"),
            "--out",
            str(tmp_path / "out"),
            "--model",
            "models:/no-such-model@x",
        ],
    )
    assert result.exit_code == 2
    assert "row 2, field 'prompt': prompt is empty" in result.output
    assert "row 3, field 'image'" in result.output and "gone.png: no such file" in result.output
    assert not (tmp_path / "out").exists()


def test_inception_asked_for_offline_fails_before_the_model_is_looked_up(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for gen in ("x", "y"):
        Image.new("RGB", (32, 32)).save(tmp_path / f"{gen}.png")
    pd.DataFrame(
        [{"generator": g, "prompt": "a red square", "image": f"{g}.png"} for g in ("x", "y")]
    ).to_csv(tmp_path / "m.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "benchmark",
            "--manifest",
            str(tmp_path / "m.csv"),
            "--out",
            str(tmp_path / "out"),
            "--features",
            "inception",
            "--model",
            "models:/no-such-model@x",
        ],
    )
    assert result.exit_code == 2
    assert "cannot be downloaded while offline" in result.output
    assert "HF_HUB_OFFLINE=1" in result.output
    assert "no-such-model" not in result.output


def test_one_generator_is_not_a_benchmark(tmp_path):
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    pd.DataFrame([{"generator": "x", "prompt": "a red square", "image": "a.png"}]).to_csv(
        tmp_path / "m.csv", index=False
    )
    result = CliRunner().invoke(
        app, ["benchmark", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2 and "at least two generators" in result.output


@pytest.mark.parametrize("stage, module", [("generators", "demo"), ("benchmark", "run")])
def test_the_leaderboard_stages_name_every_library_file_they_import(stage, module):
    spec = yaml.safe_load((ROOT / "leaderboard" / "dvc.yaml").read_text())["stages"][stage]
    deps = {(ROOT / "leaderboard" / d).resolve() for d in spec["deps"]}
    entry = SRC / "t2ieval" / "benchmark" / f"{module}.py"
    needed = imported_files(entry) | {entry, SRC / "t2ieval" / "cli.py"}
    missing = sorted(str(p.relative_to(ROOT)) for p in needed if p.resolve() not in deps)
    assert not missing, f"leaderboard/dvc.yaml: {stage} does not list {missing}"
    assert (ROOT / "requirements" / "runtime.lock").resolve() in deps


def test_benchmark_demo_renders_from_a_params_file_and_checks_a_leaderboard(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "demo:\n  n_prompts: 2\n  image_size: 96\n  generators:\n"
        "    - {name: good, violation_rate: 0.0}\n"
        "    - {name: bad, violation_rate: 1.0}\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "benchmark-demo",
            "--params",
            str(params),
            "--out",
            str(tmp_path / "demo"),
            "--n-prompts",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["prompts"] == 3 and summary["bad_share"] == {"good": 0.0, "bad": 1.0}
    assert len(list((tmp_path / "demo" / "images" / "bad").glob("*.png"))) == 3
    board = tmp_path / "board.csv"
    pd.DataFrame(
        [
            {"generator": "bad", "bt_strength": 1.0, "bt_ci_low": 0.5, "bt_ci_high": 1.5},
            {"generator": "good", "bt_strength": -1.0, "bt_ci_low": -1.5, "bt_ci_high": -0.5},
        ]
    ).to_csv(board, index=False)
    result = CliRunner().invoke(
        app, ["benchmark-demo", "--params", str(params), "--check", str(board)]
    )
    assert result.exit_code == 1
    assert "known order good > bad: NOT reproduced (got bad > good)" in result.output
    params.write_text("demo:\n  n_prompt: 2\n")
    result = CliRunner().invoke(app, ["benchmark-demo", "--params", str(params)])
    assert result.exit_code == 2 and "unknown key(s) ['n_prompt']" in result.output
