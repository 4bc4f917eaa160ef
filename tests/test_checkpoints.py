"""The random-weight checkpoints of ``tests/checkpoints.py`` load through the real code paths.

``finetune_clip.model: ViT-B-32`` with ``finetune_clip.pretrained: <file>`` must go through
:func:`t2ieval.clip.model.create_clip` and open_clip's own checkpoint loading, and end with the
exact tensors of the file (not a random initialisation that merely has the same shapes).
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch
from safetensors.torch import load_file

from t2ieval.clip.model import create_clip

from checkpoints import CLIP_ARCHITECTURES, OPEN_CLIP_FILE, main, write_open_clip


def _assert_loads_exact_weights(file: Path, architecture: str) -> None:
    saved = load_file(str(file))
    bundle = create_clip(architecture, pretrained=str(file))
    loaded = bundle.model.clip.state_dict()
    assert set(saved) == set(loaded)
    for key in (
        "visual.conv1.weight",
        "token_embedding.weight",
        "visual.proj",
        "text_projection",
        "logit_scale",
    ):
        assert torch.equal(loaded[key], saved[key]), key
    assert bundle.pretrained == str(file) and bundle.architecture == architecture
    # a second random model of the same architecture differs: the equality above is the load
    fresh = create_clip(architecture, pretrained=None).model.clip.state_dict()
    assert not torch.equal(fresh["visual.conv1.weight"], saved["visual.conv1.weight"])
    # plain open_clip reads the same file (the file is what open_clip's loader expects)
    plain = open_clip.create_model(architecture, pretrained=str(file))
    assert torch.equal(plain.state_dict()["text_projection"], saved["text_projection"])


def test_tiny_open_clip_file_loads_its_exact_weights_through_create_clip(tmp_path):
    file = write_open_clip(tmp_path, size="tiny", seed=3)
    assert file == tmp_path / OPEN_CLIP_FILE
    _assert_loads_exact_weights(file, CLIP_ARCHITECTURES["tiny"])


def test_seed_changes_the_weights_and_bad_size_is_refused(tmp_path):
    a = load_file(str(write_open_clip(tmp_path / "a.safetensors", size="tiny", seed=0)))
    b = load_file(str(write_open_clip(tmp_path / "b.safetensors", size="tiny", seed=1)))
    assert not torch.equal(a["visual.conv1.weight"], b["visual.conv1.weight"])
    with pytest.raises(ValueError, match="size"):
        write_open_clip(tmp_path, size="huge")


@pytest.mark.slow
def test_real_vit_b_32_file_loads_its_exact_weights_through_create_clip(tmp_path):
    file = write_open_clip(tmp_path / "vit-b-32" / OPEN_CLIP_FILE, size="real")
    assert file.stat().st_size > 500e6  # 151M float32 parameters
    _assert_loads_exact_weights(file, "ViT-B-32")


def test_command_line_writes_all_three_checkpoints(tmp_path, capsys):
    assert main([str(tmp_path), "--size", "tiny"]) == 0
    out = capsys.readouterr().out
    assert f"finetune_clip.pretrained: {tmp_path / 'clip' / OPEN_CLIP_FILE}" in out
    assert (tmp_path / "clip" / OPEN_CLIP_FILE).is_file()
    for kind in ("vilt", "blip"):
        assert (tmp_path / kind / "model.safetensors").is_file()
        assert (tmp_path / kind / "config.json").is_file()
        assert (tmp_path / kind / "tokenizer.json").is_file()
