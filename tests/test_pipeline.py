"""The whole pipeline through ``dvc repro`` on a tiny copy: metrics, MLflow, registry, remote."""

from __future__ import annotations

import json
import shutil

import pytest

from t2ieval.tracking import pipeline_stages

from pipeline import BIN, ROOT, run

pytestmark = pytest.mark.slow

STAGES = [s.name for s in pipeline_stages(ROOT)]


def _metrics(project):
    return {s: json.loads((project / "metrics" / f"{s}.json").read_text()) for s in STAGES}


def test_every_stage_ran_and_evaluate_has_its_metrics(tiny_project):
    m = json.loads((tiny_project / "metrics" / "evaluate.json").read_text())
    for key in (
        "val_accuracy",
        "test_accuracy",
        "val_accuracy_fixed_weights",
        "val_accuracy_learned_weights",
        "val_accuracy_clip",
        "val_accuracy_ce",
        "val_accuracy_d",
        "pairs_val",
        "pairs_test",
    ):
        assert key in m, key
        assert m[key] is not None
    assert any(k.startswith("test_accuracy.") for k in m)  # per category
    assert m["pairs_val"] > 0 and m["pairs_test"] > 0
    assert 0.0 <= m["test_accuracy"] <= 1.0
    result = (tiny_project / "reports" / "result.csv").read_text().splitlines()
    assert result[0].startswith("pair_id,prompt,image_1,image_2,category,clip_score_1")
    assert len(result) == m["pairs_test"] + 1
    for plot in ("confusion.csv", "roc.csv", "category.csv"):
        assert (tiny_project / "plots" / "evaluate" / plot).is_file()


def test_second_repro_is_a_no_op(tiny_project):
    out = run([str(BIN / "dvc"), "repro"], tiny_project).stdout
    assert "Running stage" not in out, out
    status = run([str(BIN / "dvc"), "status"], tiny_project).stdout
    assert "up to date" in status, status


def test_dvc_metrics_show_and_mlflow_agree(tiny_project):
    import mlflow

    shown = json.loads(run([str(BIN / "dvc"), "metrics", "show", "--json"], tiny_project).stdout)
    dvc_eval = next(iter(shown.values()))["data"]["metrics/evaluate.json"]["data"]
    client = mlflow.MlflowClient(
        tracking_uri=f"sqlite:///{tiny_project / 'mlflow.db'}",
        registry_uri=f"sqlite:///{tiny_project / 'mlflow.db'}",
    )
    exp = client.get_experiment_by_name("t2ieval")
    runs = client.search_runs([exp.experiment_id], "tags.`t2ieval.kind` = 'pipeline'")
    assert len(runs) == 1
    parent = runs[0]
    assert parent.data.metrics["val_accuracy"] == pytest.approx(dvc_eval["val_accuracy"])
    assert parent.data.metrics["test_accuracy"] == pytest.approx(dvc_eval["test_accuracy"])
    assert parent.data.params["finetune_clip.epochs"] == "2"
    assert len(parent.data.tags["git_commit"]) == 40
    assert len(parent.data.tags["dvc_lock_sha256"]) == 64
    children = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert {c.data.tags["t2ieval.stage"] for c in children} == set(STAGES)
    clip = next(c for c in children if c.data.tags["t2ieval.stage"] == "finetune_clip")
    dvc_clip = json.loads((tiny_project / "metrics" / "finetune_clip.json").read_text())
    assert clip.data.metrics["val_accuracy_clip"] == pytest.approx(dvc_clip["val_accuracy_clip"])
    curve = client.get_metric_history(clip.info.run_id, "curve.val_accuracy")
    assert [p.step for p in curve] == [1, 2]
    # the registered composite model, with its alias
    mv = client.get_model_version_by_alias("t2ieval", "champion")
    assert mv.run_id == parent.info.run_id
    model = client.get_logged_model(mv.model_id) if getattr(mv, "model_id", None) else None
    assert model is None or model.name == "model"


def test_push_then_pull_in_a_fresh_clone_restores_everything(tiny_project, tmp_path):
    project = tmp_path / "project"  # a copy: the session's tiny project stays as it was
    shutil.copytree(tiny_project, project, symlinks=True)
    remote = tmp_path / "remote"
    run([str(BIN / "dvc"), "remote", "add", "--local", "-f", "storage", str(remote)], project)
    run([str(BIN / "dvc"), "push"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "pipeline outputs"], project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    run([str(BIN / "dvc"), "remote", "add", "--local", "-f", "storage", str(remote)], clone)
    run([str(BIN / "dvc"), "pull"], clone)
    for out in (
        "data/prepared/pairs.csv",
        "data/split/pairs.csv",
        "models/clip",
        "models/quality",
        "models/vqa",
        "models/fusion/weights.json",
        "data/scores/clip.csv",
        "data/fused/pairs.csv",
        "reports/result.csv",
    ):
        assert (clone / out).exists(), out
    assert (clone / "reports/result.csv").read_bytes() == (
        project / "reports/result.csv"
    ).read_bytes()
    status = run([str(BIN / "dvc"), "status"], clone).stdout
    assert "up to date" in status, status


def test_retraining_gives_the_same_bytes(tiny_project, tmp_path):
    """`dvc repro --force` of the training stages on a copy changes no byte of any output."""
    project = tmp_path / "project"
    shutil.copytree(
        tiny_project, project, symlinks=True, ignore=shutil.ignore_patterns("mlflow.db", "mlruns")
    )
    before = (project / "dvc.lock").read_text()
    for stage in ("finetune_clip", "fit_quality", "train_vqa", "score_vqa", "fuse"):
        run([str(BIN / "dvc"), "repro", "--force", "--single-item", stage], project)
    assert (project / "dvc.lock").read_text() == before
