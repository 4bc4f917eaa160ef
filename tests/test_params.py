"""params.yaml is validated with messages that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from t2ieval.params import ParamsError, load_params, params_from_dict

ROOT = Path(__file__).resolve().parents[1]


def test_the_repo_params_load():
    p = load_params(ROOT / "params.yaml")
    assert p.data.source == "synthetic" and p.fuse.mode in ("fixed", "learned")
    flat = p.to_flat_dict()
    assert flat["finetune_clip.lr"] == p.finetune_clip.lr
    assert "quality.entropy_features.0.dx" in flat
    assert p.vqa.train_settings().epochs == p.vqa.epochs


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"data": {"sourse": "x"}}, r"unknown key\(s\) \['sourse'\] in data"),
        ({"data": {"source": "s3"}}, r"data.source must be one of \['synthetic', 'manifest'\]"),
        ({"finetune_clip": {"epochs": "ten"}}, "finetune_clip.epochs must be an integer"),
        ({"split": {"train": "most"}}, "split.train must be a number"),
        ({"bogus": {}}, r"unknown key\(s\) \['bogus'\] in the top level"),
        ({"quality": {"families": ["nss", "vibes"]}}, r"quality.*unknown or no family \['vibes'\]"),
        ({"quality": {"entropy_features": [{"dx": 1, "dy": 1}]}}, "single ordinal pattern"),
        ({"quality": {"model": "tree"}}, r"quality.model must be one of"),
    ],
)
def test_bad_params_name_the_key(raw, message):
    with pytest.raises(ParamsError, match=message):
        params_from_dict(raw)


def test_missing_file(tmp_path):
    with pytest.raises(ParamsError, match="no such params file"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"base": {"seed": 3}}))
    assert load_params(tmp_path / "params.yaml").base.seed == 3
