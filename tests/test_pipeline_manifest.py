"""`dvc repro` on a user's own manifest: with a local VQA checkpoint, then with the D-branch off.

The manifest is what a user brings: JPEG and PNG files of odd sizes, paths relative to the
manifest, rows the raters called a tie (``preferred: tie``, left out and counted) and a pair of
two identical images (every branch ties: the pair earns 0.5). The VQA model is a local folder in
the real ``ViltForQuestionAnswering`` format (random weights, ``tests/checkpoints.py``), used as
it is (``vqa.train_embedded: false``), as the README's "Real pretrained models" section says.
"""

from __future__ import annotations

import base64
import io
import json

import mlflow
import pandas as pd
import pytest
from PIL import Image

from checkpoints import write_vilt
from pipeline import BIN, TINY_PARAMS, copy_project, run, write_params

pytestmark = pytest.mark.slow

SIZES = [(97, 131), (150, 90), (128, 128), (211, 173)]


def _user_manifest(folder, n_pairs: int = 48):
    """A manifest in the user's format, built from generated scenes saved as odd-sized files."""
    from t2ieval.data.synthetic import generate

    generated = folder / "generated"
    generate(generated, n_pairs, size=128, seed=5, image_root=generated)
    pairs = pd.read_csv(generated / "pairs.csv")
    images = folder / "photos"
    images.mkdir()
    rows = []
    for k, rec in enumerate(pairs.to_dict("records")):
        names = []
        for slot in (1, 2):
            img = Image.open(rec[f"image_{slot}"]).convert("RGB").resize(SIZES[(k + slot) % 4])
            ext = "jpg" if (k + slot) % 2 else "png"
            name = f"photos/{rec['pair_id']}_{slot}.{ext}"
            img.save(folder / name, quality=95) if ext == "jpg" else img.save(folder / name)
            names.append(name)
        rows.append(
            {
                "pair_id": rec["pair_id"],
                "prompt": rec["prompt"],
                "image_1": names[0],
                "image_2": names[1],
                "preferred": rec["preferred"],
                "category": rec["category"],
            }
        )
    rows[0]["preferred"] = "tie"
    rows[1]["preferred"] = 0
    rows[2]["image_2"] = rows[2]["image_1"]  # two identical images: a tie in every score
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest, rows[2]["pair_id"]


@pytest.fixture(scope="module")
def manifest_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest")
    (root / "user").mkdir()
    manifest, tied_pair = _user_manifest(root / "user")
    vilt = write_vilt(root / "vilt-b32-like")
    project = copy_project(root / "project")
    write_params(
        project,
        {
            **TINY_PARAMS,
            "data": {"source": "manifest", "manifest": str(manifest)},
            "vqa": {"model": str(vilt), "train_embedded": False, "max_questions_per_image": 4},
        },
    )
    run(["git", "init", "-q"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "user data"], project)
    run([str(BIN / "dvc"), "repro"], project)
    return project, tied_pair


def _metrics(project, stage):
    return json.loads((project / "metrics" / f"{stage}.json").read_text())


def _served(project, version: int, image: str) -> dict:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/t2ieval/{version}")
    buf = io.BytesIO()
    Image.open(project / image).save(buf, format="PNG")
    b64 = base64.b64encode(buf.getvalue()).decode()
    out = model.predict(pd.DataFrame([{"prompt": "a red circle", "image_1": b64, "image_2": b64}]))
    return out.iloc[0].to_dict()


def test_manifest_with_a_local_vqa_checkpoint_runs_end_to_end(manifest_project):
    project, tied_pair = manifest_project
    prepare = _metrics(project, "prepare")
    assert prepare["source"] == "manifest" and prepare["tied_rows"] == 2
    assert prepare["pairs"] == 46 and prepare["skipped_rows"] == 0
    trained = _metrics(project, "train_vqa")
    assert trained["d_branch"] == "on" and trained["trained"] is False
    assert trained["kind"] == "vilt"
    scored = _metrics(project, "score_vqa")
    assert scored["questions"] > 0 and scored["vqa_answer_accuracy"] is None  # no ground truth
    assert (project / "models/vqa/model.safetensors").is_file()  # served without the folder
    ev = _metrics(project, "evaluate")
    assert ev["branches"] == "clip,ce,d"
    for key in ("val_accuracy", "test_accuracy", "val_accuracy_d", "test_accuracy_clip"):
        assert ev[f"{key}_ci_low"] <= ev[key] <= ev[f"{key}_ci_high"], key
    header = (project / "plots/train_vqa/curve.csv").read_text().splitlines()
    assert header == ["epoch,train_loss,train_answer_accuracy,train_aux_loss,val_answer_accuracy"]
    fused = pd.read_csv(project / "data/fused/pairs.csv").set_index("pair_id")
    tie = fused.loc[tied_pair]
    assert tie["score_1"] == tie["score_2"] and tie["verdict"] == 0
    row = _served(project, 1, fused.iloc[0]["image_1"])
    assert row["branches"] == "clip,ce,d" and row["d_score_1"] is not None


def test_d_branch_off_fuses_clip_and_ce_and_says_so(manifest_project):
    project, _ = manifest_project
    write_params(project, {"vqa": {"enabled": False}})
    out = run([str(BIN / "dvc"), "repro"], project).stdout
    for stage in ("train_vqa", "score_vqa", "fuse", "evaluate"):
        assert f"Running stage '{stage}'" in out, stage
    assert "Running stage 'finetune_clip'" not in out
    assert _metrics(project, "train_vqa") == {"d_branch": "off"}
    assert _metrics(project, "score_vqa") == {"d_branch": "off"}
    fuse = _metrics(project, "fuse")
    assert fuse["branches"] == "clip,ce" and "weight_d" not in fuse
    ev = _metrics(project, "evaluate")
    assert ev["branches"] == "clip,ce" and "val_accuracy_d" not in ev
    weights = json.loads((project / "models/fusion/weights.json").read_text())
    assert set(weights["weights"]) == {"clip", "ce"}
    fused = pd.read_csv(project / "data/fused/pairs.csv")
    assert "d_score_1" not in fused.columns
    row = _served(project, 2, fused.iloc[0]["image_1"])
    assert row["branches"] == "clip,ce" and row["d_score_1"] is None
    assert row["score_1"] is not None and row["preferred"] == 1
