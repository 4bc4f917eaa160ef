"""The real-size path end to end: ``dvc repro`` with ``ViT-B-32`` and real-size ViLT, then BLIP.

Random weights, but the real architectures and file layouts (``tests/checkpoints.py``): open_clip
``ViT-B-32`` as a local ``open_clip_model.safetensors`` (``finetune_clip.pretrained: <file>``,
heads trained for one epoch), ViLT-B/32 with its 3,129-answer label map and BERT's 30,522-token
vocabulary, and BLIP-VQA base, each used as it is (``vqa.train_embedded: false``). After each
``dvc repro`` the registered model is served by the real ``mlflow models serve`` on loopback and
scores one pair over HTTP. Switching ``vqa.model`` from ViLT to BLIP re-runs only the VQA stages
and what depends on them. Kept small (14 pairs' images, each pair listed 4 times, one question per
image, the published fusion weights) because CI runs it; the checkpoints are 2.5 GB on disk.
"""

from __future__ import annotations

import base64
import json
import math

import pandas as pd
import pytest
from test_pipeline_manifest import _user_manifest

from t2ieval.serving.server import ModelServer, split_body

from checkpoints import CLIP_ARCHITECTURES, OPEN_CLIP_FILE, write_blip, write_open_clip, write_vilt
from pipeline import BIN, TINY_PARAMS, copy_project, run, write_params

pytestmark = pytest.mark.slow

MODEL_URI = "models:/t2ieval@champion"


@pytest.fixture(scope="module")
def real_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_size")
    (root / "user").mkdir()
    manifest, _ = _user_manifest(root / "user", n_pairs=14)
    # the fuse stage also learns weights for comparison, with nested grouped CV on the validation
    # split: that needs ~20 validation pairs. Each pair is listed 4 times (new pair ids, same
    # images and prompt): the VQA, CLIP and quality work stays that of 14 pairs' distinct images
    rows = pd.read_csv(manifest)
    rows = pd.concat(
        [rows.assign(pair_id=rows["pair_id"].astype(str) + f"-{k}") for k in range(4)],
        ignore_index=True,
    )
    rows.to_csv(manifest, index=False)
    checkpoints = root / "checkpoints"
    clip = write_open_clip(checkpoints / "clip" / OPEN_CLIP_FILE, size="real")
    vilt = write_vilt(checkpoints / "vilt", size="real")
    project = copy_project(root / "project")
    write_params(
        project,
        {
            **TINY_PARAMS,
            "data": {"source": "manifest", "manifest": str(manifest)},
            "finetune_clip": {
                "model": CLIP_ARCHITECTURES["real"],
                "pretrained": str(clip),
                "train": "heads",
                "epochs": 1,
                "batch_size": 8,
                "lr": 1e-3,
            },
            "vqa": {
                "model": str(vilt),
                "kind": "auto",
                "train_embedded": False,
                "max_questions_per_image": 1,
                "infer_batch_size": 16,
            },
            "split": {"train": 0.35, "val": 0.45, "test": 0.2},
            "fuse": {"mode": "fixed", "cv_folds": 2},
        },
    )
    run(["git", "init", "-q"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "real-size checkpoints"], project)
    run([str(BIN / "dvc"), "repro"], project, timeout=1200)
    return project, checkpoints, manifest


def _metrics(project, stage: str) -> dict:
    return json.loads((project / "metrics" / f"{stage}.json").read_text())


def _serve_one_pair(project, manifest) -> dict:
    """Serve the champion and score the manifest's first pair over HTTP; the response row."""
    import pandas as pd

    first = pd.read_csv(manifest).iloc[4]
    b64 = [
        base64.b64encode((manifest.parent / first[c]).read_bytes()).decode()
        for c in ("image_1", "image_2")
    ]
    body = split_body([{"prompt": first["prompt"], "image_1": b64[0], "image_2": b64[1]}])
    with ModelServer(
        MODEL_URI, tracking_uri=f"sqlite:///{project / 'mlflow.db'}", startup_timeout=300
    ) as server:
        response = server.invoke(body)
    assert response.status == 200, response.message[:2000]
    rows = response.body["predictions"]
    assert len(rows) == 1
    return rows[0]


def _assert_scored(row: dict) -> None:
    assert row["branches"] == "clip,ce,d"
    for key in (
        "score_1",
        "score_2",
        "clip_score_1",
        "clip_score_2",
        "ce_score_1",
        "ce_score_2",
        "d_score_1",
        "d_score_2",
    ):
        assert row[key] is not None and math.isfinite(row[key]), key
    for key in ("d_score_1", "d_score_2"):  # mean P(yes) of the image's answered questions
        assert 0.0 <= row[key] <= 1.0, key
    assert -1.0 <= row["clip_score_1"] <= 1.0
    assert 0.0 <= row["p_1_over_2"] <= 1.0
    assert row["preferred"] in (1, 2)


def test_vit_b_32_with_real_size_vilt_runs_registers_and_serves(real_project):
    project, _, manifest = real_project
    clip = _metrics(project, "finetune_clip")
    assert (
        json.loads((project / "models/clip/t2ieval_clip.json").read_text())["architecture"]
        == "ViT-B-32"
    )
    assert clip  # the stage wrote its metrics
    trained = _metrics(project, "train_vqa")
    assert trained["kind"] == "vilt" and trained["trained"] is False
    scored = _metrics(project, "score_vqa")
    assert scored["questions"] > 0 and scored["questions_per_image"] > 0  # 1 per image and pair
    assert _metrics(project, "evaluate")["branches"] == "clip,ce,d"
    _assert_scored(_serve_one_pair(project, manifest))


def test_switching_to_real_size_blip_reruns_only_the_vqa_side_and_serves(real_project):
    project, checkpoints, manifest = real_project
    blip = write_blip(checkpoints / "blip", size="real")
    write_params(project, {"vqa": {"model": str(blip)}})
    out = run([str(BIN / "dvc"), "repro"], project, timeout=1200).stdout
    for stage in ("train_vqa", "score_vqa", "fuse", "evaluate"):
        assert f"Running stage '{stage}'" in out, stage
    for stage in ("prepare", "split", "finetune_clip", "quality_features", "fit_quality"):
        assert f"Running stage '{stage}'" not in out, stage
    assert _metrics(project, "train_vqa")["kind"] == "blip"
    assert _metrics(project, "score_vqa")["questions"] > 0
    _assert_scored(_serve_one_pair(project, manifest))
