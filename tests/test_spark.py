"""Batch scoring on Spark: the driver-side manifest, the executor-side image reader, and (slow)
the whole ``t2ieval score-batch`` on ``local[2]`` against the Python API, row by row."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

pytest.importorskip("pyspark")

from t2ieval.data.manifest import ManifestError, import_manifest  # noqa: E402
from t2ieval.images import load_image  # noqa: E402
from t2ieval.scaling.spark import (  # noqa: E402
    BatchScoringError,
    ImageReadError,
    encode_batch,
    prepare_manifest,
    score_manifest,
)
from t2ieval.serving.pyfunc import OUTPUT_COLUMNS  # noqa: E402

from helpers import column_tolerance, fused_tolerance  # noqa: E402

MODEL_URI = "models:/t2ieval@champion"
SCORE_COLUMNS = [c for c in OUTPUT_COLUMNS if c not in ("preferred", "branches")]


def _png(path: Path, colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), colour).save(path)
    return path


# ---- driver side: the manifest ----------------------------------------------------------------


def test_prepare_manifest_resolves_paths_against_its_folder(tmp_path):
    folder = tmp_path / "batch"
    _png(folder / "imgs" / "a.png")
    absolute = _png(tmp_path / "elsewhere" / "b.png")
    pd.DataFrame(
        {
            "prompt": [" a red square ", "a blue dot"],
            "image_1": ["imgs/a.png", "imgs/../imgs/a.png"],
            "image_2": [str(absolute), str(absolute)],
            "preferred": ["2", ""],
            "category": ["colour", "object"],
        }
    ).to_csv(folder / "m.csv", index=False)

    got = prepare_manifest(folder / "m.csv")

    assert list(got.columns) == [
        "row",
        "pair_id",
        "prompt",
        "image_1",
        "image_2",
        "category",
        "preferred_truth",
    ]
    assert got["row"].tolist() == [1, 2]
    assert got["pair_id"].tolist() == ["row000001", "row000002"]
    assert got["prompt"].tolist() == ["a red square", "a blue dot"]
    assert got["image_1"].tolist() == [str(folder / "imgs" / "a.png")] * 2
    assert got["image_2"].tolist() == [str(absolute)] * 2
    assert got["preferred_truth"].tolist()[0] == 2 and pd.isna(got["preferred_truth"].iloc[1])


def test_prepare_manifest_without_preferred_has_no_truth_column(tmp_path):
    pd.DataFrame(
        {"prompt": ["p"], "image_1": ["a.png"], "image_2": ["b.png"], "pair_id": ["x"]}
    ).to_json(tmp_path / "m.jsonl", orient="records", lines=True)
    got = prepare_manifest(tmp_path / "m.jsonl")
    assert "preferred_truth" not in got.columns
    assert got["pair_id"].tolist() == ["x"]


def test_prepare_manifest_lists_every_bad_row(tmp_path):
    pd.DataFrame(
        {
            "pair_id": ["a", "b", "a", "c"],
            "prompt": ["ok", "  ", "ok", "ok"],
            "image_1": ["1.png", "1.png", "1.png", ""],
            "image_2": ["2.png", "2.png", "2.png", "2.png"],
            "preferred": ["1", "2", "3", "1"],
        }
    ).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ManifestError) as info:
        prepare_manifest(tmp_path / "m.csv")
    text = str(info.value)
    assert "row 2, field 'prompt': prompt is empty" in text
    assert "row 3, field 'pair_id': 'a' already used by row 1" in text
    assert "row 3, field 'preferred': must be 1, 2 or 0/tie (or empty), got '3'" in text
    assert "row 4, field 'image_1': image path is empty" in text
    assert len(info.value.problems) == 4


def test_prepare_manifest_checks_rows_as_the_pipelines_import_does(tmp_path):
    """One check of manifest rows: score-batch finds the same problems as ``prepare`` (which
    also requires ``preferred``), and keeps a tie as truth 0."""
    _png(tmp_path / "1.png")
    _png(tmp_path / "2.png", (0, 0, 255))
    pd.DataFrame(
        {
            "pair_id": ["a", "b", "a", "c", "d", ""],
            "prompt": ["ok", "  ", "ok", "ok", "ok", "ok"],
            "image_1": ["1.png", "1.png", "1.png", "", "1.png", "1.png"],
            "image_2": ["2.png", "2.png", "2.png", "2.png", "2.png", "2.png"],
            "preferred": ["1", "2", "3", "1", "tie", "0"],
        }
    ).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ManifestError) as for_spark:
        prepare_manifest(tmp_path / "m.csv")
    with pytest.raises(ManifestError) as for_prepare:
        import_manifest(tmp_path / "m.csv", tmp_path / "out", max_pixels=10_000)
    assert (
        [(p.row, p.field, p.reason) for p in for_spark.value.problems]
        == [(p.row, p.field, p.reason) for p in for_prepare.value.problems]
        == [
            (2, "prompt", "empty_prompt"),
            (3, "preferred", "bad_preferred"),
            (3, "pair_id", "duplicate_pair_id"),
            (4, "image_1", "missing_path"),
        ]
    )

    pd.DataFrame(
        {
            "prompt": ["a", "b", "c"],
            "image_1": ["1.png"] * 3,
            "image_2": ["2.png"] * 3,
            "preferred": ["tie", "2", ""],
        }
    ).to_csv(tmp_path / "ties.csv", index=False)
    got = prepare_manifest(tmp_path / "ties.csv")
    assert got["preferred_truth"].tolist()[:2] == [0, 2] and pd.isna(got["preferred_truth"][2])


def test_prepare_manifest_rejects_missing_and_clashing_columns(tmp_path):
    pd.DataFrame({"prompt": ["p"], "image_1": ["a"]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['image_2'\]"):
        prepare_manifest(tmp_path / "m.csv")
    pd.DataFrame({"prompt": ["p"], "image_1": ["a"], "image_2": ["b"], "score_1": [1]}).to_csv(
        tmp_path / "m.csv", index=False
    )
    with pytest.raises(ValueError, match="score_1"):
        prepare_manifest(tmp_path / "m.csv")


# ---- executor side: reading images ------------------------------------------------------------


def test_encode_batch_reads_files_as_base64(tmp_path):
    a, b = _png(tmp_path / "a.png"), _png(tmp_path / "b.png", (0, 0, 255))
    got = encode_batch(pd.Series([1]), pd.Series(["p1"]), pd.Series([str(a)]), pd.Series([str(b)]))
    assert base64.b64decode(got["image_1"].iloc[0]) == a.read_bytes()
    assert base64.b64decode(got["image_2"].iloc[0]) == b.read_bytes()
    assert got["error"].isna().all()


def test_encode_batch_names_row_pair_and_path_of_a_bad_image(tmp_path):
    good = _png(tmp_path / "good.png")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image")
    missing = tmp_path / "missing.png"
    rows, ids = pd.Series([7, 8]), pd.Series(["ok", "bad"])
    p1, p2 = pd.Series([str(good), str(missing)]), pd.Series([str(good), str(corrupt)])

    with pytest.raises(
        ImageReadError,
        match=rf"manifest row 8 \(pair_id 'bad'\): "
        rf"image_1: {re.escape(str(missing))}: no such file",
    ):
        encode_batch(rows, ids, p1, p2, on_error="fail")

    got = encode_batch(rows, ids, p1, p2, on_error="skip")
    assert pd.isna(got["error"].iloc[0])
    err = got["error"].iloc[1]
    assert err.startswith("manifest row 8 (pair_id 'bad'): ")
    assert f"image_1: {missing}: no such file" in err
    assert f"image_2: {corrupt}: not an image" in err
    # the placeholder the model sees instead is a valid image
    Image.open(io.BytesIO(base64.b64decode(got["image_1"].iloc[1]))).load()


# ---- Spark, with a stand-in model ----------------------------------------------------------------

MEAN_MODEL = """
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from t2ieval.serving.pyfunc import OUTPUT_COLUMNS, parse_rows


class MeanBrightness(PythonModel):
    \"\"\"Scores each image by its mean pixel value: the served model's input contract (base64
    decoded by parse_rows), numbers a test can recompute.\"\"\"

    def predict(self, context, model_input, params=None):
        prompts, images_1, images_2 = parse_rows(model_input)
        out = pd.DataFrame(index=model_input.index, columns=list(OUTPUT_COLUMNS), dtype=float)
        for col, images in (("score_1", images_1), ("score_2", images_2)):
            out[col] = [sum(img.convert("L").getdata()) / (img.width * img.height)
                        for img in images]
        out["preferred"] = [1 if a >= b else 2 for a, b in zip(out["score_1"], out["score_2"])]
        out["branches"] = "mean"
        return out


set_model(MeanBrightness())
"""


@pytest.fixture(scope="module")
def mean_model(tmp_path_factory) -> str:
    """A pyfunc saved from code (no trained pipeline needed), scoring images by brightness."""
    import mlflow.pyfunc

    folder = tmp_path_factory.mktemp("mean_model")
    code = folder / "mean_model.py"
    code.write_text(MEAN_MODEL)
    mlflow.pyfunc.save_model(str(folder / "model"), python_model=str(code))
    return str(folder / "model")


@pytest.mark.slow
def test_score_manifest_on_a_real_session(mean_model, tmp_path, monkeypatch, capsys):
    """A 4-row manifest on local[1] with --image-root, a tie and a bad image (skip): the plan
    reads each image once, scores stay with their rows, ties do not count towards accuracy,
    MLflow's URIs and the environment are left as they were, and a session already running in
    the process is refused, not stopped."""
    import mlflow
    from pyspark.sql import SparkSession

    from t2ieval.scaling.spark import build_scoring_frame, spark_session

    images = tmp_path / "images"
    shades = {"dark.png": (20, 20, 20), "mid.png": (120, 120, 120), "light.png": (240, 240, 240)}
    for name, colour in shades.items():
        _png(images / name, colour)
    (images / "truncated.png").write_bytes((images / "light.png").read_bytes()[:60])
    pd.DataFrame(
        {
            "pair_id": ["a", "b", "c", "d"],
            "prompt": ["p"] * 4,
            "image_1": ["light.png", "dark.png", "mid.png", "truncated.png"],
            "image_2": ["dark.png", "mid.png", "mid.png", "dark.png"],
            "preferred": ["1", "1", "tie", "2"],
            "category": ["x", "y", "z", "w"],
        }
    ).to_csv(tmp_path / "m.csv", index=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'user.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = (
        mlflow.get_tracking_uri(),
        mlflow.get_registry_uri(),
        {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")},
    )

    summary = score_manifest(
        tmp_path / "m.csv",
        mean_model,
        tmp_path / "out",
        master="local[1]",
        on_error="skip",
        image_root=images,
        tracking_uri=f"sqlite:///{tmp_path / 'other.db'}",
    )

    assert (
        mlflow.get_tracking_uri(),
        mlflow.get_registry_uri(),
        {k: os.environ.get(k) for k in before[2]},
    ) == before
    got = pd.read_parquet(tmp_path / "out")
    assert got["pair_id"].tolist() == ["a", "b", "c", "d"]
    assert got["image_1"].tolist()[:3] == [
        str(images / n) for n in ("light.png", "dark.png", "mid.png")
    ]
    assert got["score_1"].tolist()[:3] == [240.0, 20.0, 120.0]
    assert got["score_2"].tolist()[:3] == [20.0, 120.0, 120.0]
    assert got["preferred"].tolist()[:3] == [1, 2, 1] and pd.isna(got["preferred"][3])
    assert got["preferred_truth"].tolist() == [1, 1, 0, 2]
    assert got["error"][3].startswith("manifest row 4 (pair_id 'd'): image_1: ")
    assert "truncated" in got["error"][3]
    assert (summary["rows"], summary["scored"], summary["errors"]) == (4, 3, 1)
    assert summary["pairs_with_truth"] == 2 and summary["accuracy"] == 0.5  # the tie is left out

    with spark_session("local[1]") as spark:
        prepared = prepare_manifest(tmp_path / "m.csv", images)
        build_scoring_frame(spark, prepared, mean_model, 1).explain()
        plan = capsys.readouterr().out
        # one Python evaluation of the image reader and one of the model, whatever the number
        # of columns read from their results
        assert plan.count("ArrowEvalPython") == 2 and plan.count("read_images(") == 1, plan
        with pytest.raises(RuntimeError, match="SparkSession is already running"):
            score_manifest(tmp_path / "m.csv", mean_model, tmp_path / "again", master="local[1]")
        assert SparkSession.getActiveSession() is spark
        assert not (tmp_path / "again").exists()


# ---- slow: the whole command on Spark against the Python API ----------------------------------


def _tiny_manifest(project: Path, n_rows: int = 240) -> pd.DataFrame:
    """The tiny project's pairs (absolute paths), reused with new pair ids up to ``n_rows``."""
    pairs = pd.read_csv(project / "data" / "split" / "pairs.csv", dtype={"pair_id": str})
    pairs["image_1"] = [str(project / p) for p in pairs["image_1"]]
    pairs["image_2"] = [str(project / p) for p in pairs["image_2"]]
    parts, copy = [], 0
    while sum(len(p) for p in parts) < n_rows:
        part = pairs.copy()
        if copy:
            part["pair_id"] = part["pair_id"] + f"-r{copy}"
        parts.append(part)
        copy += 1
    manifest = pd.concat(parts, ignore_index=True).head(n_rows)
    return manifest[["pair_id", "prompt", "image_1", "image_2", "preferred", "category"]]


@pytest.fixture(scope="module")
def tiny_model(tiny_project):
    """The tiny project's tracking store, and its champion loaded by the Python API."""
    from t2ieval import Evaluator

    uri = f"sqlite:///{(tiny_project / 'mlflow.db').as_posix()}"
    return uri, Evaluator.load(MODEL_URI, tracking_uri=uri)


@pytest.mark.slow
def test_score_batch_on_spark_equals_python_api(tiny_project, tiny_model, tmp_path, monkeypatch):
    """240 pairs and 2 bad rows on local[2], --on-error skip: every score equals the API's."""
    import torch
    from typer.testing import CliRunner

    from t2ieval.cli import app

    uri, evaluator = tiny_model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    good = _tiny_manifest(tiny_project)
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    bad = pd.DataFrame(
        {
            "pair_id": ["gone", "broken"],
            "prompt": good["prompt"].iloc[:2],
            "image_1": ["nowhere/missing.png", good["image_1"].iloc[1]],
            "image_2": [good["image_2"].iloc[0], "corrupt.png"],
            "preferred": [1, 2],
            "category": ["object", "object"],
        }
    )
    manifest = pd.concat(
        [good.iloc[:100], bad.iloc[:1], good.iloc[100:200], bad.iloc[1:], good.iloc[200:]],
        ignore_index=True,
    )
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    is_bad = manifest["pair_id"].isin(["gone", "broken"]).to_numpy()
    out = tmp_path / "scores.parquet"

    res = CliRunner().invoke(
        app,
        [
            "score-batch",
            "--manifest",
            str(tmp_path / "manifest.csv"),
            "--model",
            MODEL_URI,
            "--out",
            str(out),
            "--master",
            "local[2]",
            "--partitions",
            "2",
            "--batch-size",
            "32",
            "--on-error",
            "skip",
        ],
    )
    assert res.exit_code == 0, res.output
    assert os.environ["MLFLOW_TRACKING_URI"] == uri and "MLFLOW_REGISTRY_URI" not in os.environ
    got = pd.read_parquet(out)

    # every manifest row comes back, in manifest order, with the manifest's columns
    assert got["row"].tolist() == list(range(1, 243))
    assert got["pair_id"].tolist() == manifest["pair_id"].tolist()
    for col in ("prompt", "category"):
        assert got[col].tolist() == manifest[col].tolist(), col
    assert got["image_1"].iloc[100] == os.path.normpath(tmp_path / "nowhere" / "missing.png")
    assert got["image_2"].iloc[201] == str(tmp_path / "corrupt.png")
    assert got["preferred_truth"].tolist() == manifest["preferred"].tolist()

    # the bad rows are recorded, not scored
    assert got["error"].iloc[100] == (
        f"manifest row 101 (pair_id 'gone'): image_1: {got['image_1'].iloc[100]}: no such file"
    )
    assert (
        got["error"]
        .iloc[201]
        .startswith(f"manifest row 202 (pair_id 'broken'): image_2: {tmp_path / 'corrupt.png'}: ")
    )
    assert got.loc[is_bad, SCORE_COLUMNS + ["preferred"]].isna().all().all()
    assert got.loc[~is_bad, "error"].isna().all()

    # every score of every other row equals the Python API's, row by row. The branch scores
    # agree to 1e-6 whatever the batch; the fused score is linear in them, sum_b w_b (s_b -
    # mean_b) / std_b, so its tolerance is 1e-6 * sum_b |w_b| / std_b (a tiny model's branch with
    # a tiny std amplifies the float noise of batch composition), and verdicts must agree
    # wherever the two fused scores are further apart than that
    scored = got.loc[~is_bad].reset_index(drop=True)
    scorer = evaluator.scorer
    fusion = scorer.fusion
    fused_tol = fused_tolerance(fusion)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the Spark workers; also far faster on a shared machine
    try:
        api = scorer.score_pairs(
            list(scored["prompt"]),
            [load_image(p) for p in scored["image_1"]],
            [load_image(p) for p in scored["image_2"]],
        )
        # the per-pair Evaluator.compare agrees too (a sample: it scores one pair per call)
        compared = {
            i: evaluator.compare(*scored.loc[i, ["prompt", "image_1", "image_2"]])
            for i in range(0, len(scored), 30)
        }
    finally:
        torch.set_num_threads(threads)
    for col in SCORE_COLUMNS:  # a prompt without VQA questions has a NaN D-score
        tol = column_tolerance(col, fusion)
        np.testing.assert_allclose(
            scored[col].to_numpy(float), api[col].to_numpy(float), rtol=0, atol=tol, err_msg=col
        )
    clear = (np.abs(api["score_1"] - api["score_2"]) > 2 * fused_tol).to_numpy()
    assert clear.mean() > 0.5  # the verdict check is not vacuous
    assert (scored["preferred"].to_numpy()[clear] == api["preferred"].to_numpy()[clear]).all()
    for i, v in compared.items():
        rec = scored.iloc[i]
        for col in SCORE_COLUMNS:
            tol = column_tolerance(col, fusion)
            assert rec[col] == pytest.approx(getattr(v, col), abs=tol, nan_ok=True), (i, col)

    # the summary counts them; its accuracy is the verdicts' accuracy on the scored rows
    summary = json.loads(res.stdout[res.stdout.index("{") :])
    assert (summary["rows"], summary["scored"], summary["errors"]) == (242, 240, 2)
    assert summary["first_errors"] == got["error"].iloc[[100, 201]].tolist()
    assert summary["partitions"] == 2 and summary["master"] == "local[2]"
    accuracy = float(np.mean(scored["preferred"] == scored["preferred_truth"]))
    assert summary["accuracy"] == pytest.approx(accuracy)
    print(
        f"\nscore-batch local[2]: {summary['rows']} rows in {summary['scoring_s']} s "
        f"({summary['rows_per_s']} rows/s; start-up {summary['startup_s']} s), "
        f"accuracy {summary['accuracy']:.4f}"
    )


@pytest.mark.slow
def test_score_batch_stops_at_a_missing_image_naming_it(
    tiny_project, tiny_model, tmp_path, monkeypatch
):
    """Default --on-error fail: exit code 2, the row, pair id and path named, no output left."""
    from typer.testing import CliRunner

    from t2ieval.cli import app

    uri, _ = tiny_model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    manifest = _tiny_manifest(tiny_project, 3)
    manifest.loc[1, "image_2"] = "missing.png"
    manifest.to_csv(tmp_path / "m.csv", index=False)
    missing = tmp_path / "missing.png"

    res = CliRunner().invoke(
        app,
        [
            "score-batch",
            "--manifest",
            str(tmp_path / "m.csv"),
            "--model",
            MODEL_URI,
            "--out",
            str(tmp_path / "out"),
            "--master",
            "local[1]",
        ],
    )
    assert res.exit_code == 2, res.output
    assert (
        f"error: manifest row 2 (pair_id '{manifest.loc[1, 'pair_id']}'): image_2: "
        f"{missing}: no such file"
    ) in res.stderr
    assert not (tmp_path / "out").exists()

    # the library raises the same, as BatchScoringError, and puts MLflow's URIs back
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(BatchScoringError, match=re.escape(f"image_2: {missing}: no such file")):
        score_manifest(
            tmp_path / "m.csv", MODEL_URI, tmp_path / "out", master="local[1]", tracking_uri=uri
        )
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
