"""VQA inference work done once per image, and the int8 and bf16 settings (issue 16, "Speed at real
size").

* BLIP: cross-attention keys and values over the image tokens are projected once per distinct
  image, with answers equal to transformers' plain per-question path.
* ViLT: one padded batch holds every question of every image of a request; the image tokens are
  computed once per image (also for padded images of different sizes).
* ``vqa.quantize: int8`` / ``bf16`` is written beside the model and applied by every scorer loaded
  from it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from t2ieval.params import load_params
from t2ieval.pipeline.vqa import VqaStageError, train_stage
from t2ieval.vqa.model import (
    BlipVqa,
    ViltVqa,
    VqaModelError,
    cpu_has_native_bf16,
    load_vqa_model,
)
from t2ieval.vqa.score import SCORER_SETTINGS, VqaScorer
from t2ieval.vqa.settings import TrainSettings

from checkpoints import write_blip, write_vilt

QUESTIONS = [
    "is there a red circle?",
    "are there two squares?",
    "is the cat left of the dog?",
    "is there a star?",
    "is the photo a sketch?",
]


def _images(n: int, size: int = 64, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)
    ]


def _rows(n_images: int) -> tuple[list[int], list[str]]:
    """Every question about every image, images interleaved (not sorted)."""
    pairs = [(i, q) for q in QUESTIONS for i in range(n_images)]
    return [i for i, _ in pairs], [q for _, q in pairs]


@pytest.fixture(scope="module")
def blip(tmp_path_factory) -> BlipVqa:
    """A tiny random BLIP whose answers depend on the image: at initialisation (weights of
    std 0.02) the cross-attention adds ~1e-7 to the text, too little to tell images apart, so
    its key, value and output projections are scaled up."""
    vqa = load_vqa_model(write_blip(tmp_path_factory.mktemp("blip"), size="tiny"), device="cpu")
    assert isinstance(vqa, BlipVqa)
    with torch.no_grad():
        for layer in vqa.model.text_encoder.encoder.layer:
            att = layer.crossattention
            for linear in (att.self.key, att.self.value, att.output.dense):
                linear.weight.mul_(40.0)
    return vqa


@pytest.fixture(scope="module")
def vilt_folder(tmp_path_factory):
    return write_vilt(tmp_path_factory.mktemp("vilt"), size="tiny")


def _text_encoder_outputs(
    vqa: BlipVqa, image_tokens: torch.Tensor, idx, questions, shared: bool
) -> torch.Tensor:
    vqa.share_image_kv = shared
    try:
        with torch.inference_mode():
            text = vqa._encode_text(questions)
            return vqa._encode_questions(image_tokens, torch.as_tensor(idx), text)
    finally:
        vqa.share_image_kv = True


def test_blip_shared_image_keys_equal_the_plain_path(blip):
    images = _images(3)
    idx, questions = _rows(3)
    pixels = blip.encode_images(images)
    blip.share_image_kv = False
    plain = blip.yes_probability(pixels, idx, questions)
    blip.share_image_kv = True
    shared = blip.yes_probability(pixels, idx, questions)
    assert np.abs(shared - plain).max() <= 1e-5
    # the text encoder's outputs themselves, over image tokens that differ strongly from image
    # to image (a random BLIP's vision encoder gives nearly equal tokens for any image): a
    # question attending to another question's image would show
    torch.manual_seed(0)
    width = blip.model.config.vision_config.hidden_size
    tokens = torch.randn(3, 17, width) * 3.0
    a = _text_encoder_outputs(blip, tokens, idx, questions, shared=True)
    b = _text_encoder_outputs(blip, tokens, idx, questions, shared=False)
    assert (a - b).abs().max().item() <= 1e-5
    wrong = _text_encoder_outputs(blip, tokens, [(i + 1) % 3 for i in idx], questions, shared=False)
    assert (wrong - b).abs().max().item() > 1e-2


def test_blip_projects_each_image_once_per_layer(blip):
    images = _images(2)
    idx, questions = _rows(2)
    rows_seen: list[int] = []
    layers = blip.model.text_encoder.encoder.layer
    hooks = [
        layer.crossattention.self.key.register_forward_hook(
            lambda _m, args, _o: rows_seen.append(args[0].shape[0])
        )
        for layer in layers
    ]
    try:
        blip.yes_probability(blip.encode_images(images), idx, questions)
        assert rows_seen == [2] * len(layers)  # 2 images, not 10 questions
        rows_seen.clear()
        blip.share_image_kv = False
        blip.yes_probability(blip.encode_images(images), idx, questions)
        assert rows_seen == [len(questions)] * len(layers)
    finally:
        blip.share_image_kv = True
        for hook in hooks:
            hook.remove()


def test_blip_sharing_leaves_weights_saving_and_fingerprint_alone(tmp_path):
    from transformers import BlipForQuestionAnswering

    folder = write_blip(tmp_path / "blip", size="tiny")
    vqa = load_vqa_model(folder, device="cpu")
    assert vqa.n_shared_layers == len(vqa.model.text_encoder.encoder.layer)
    plain = BlipForQuestionAnswering.from_pretrained(folder)
    assert vqa.model.state_dict().keys() == plain.state_dict().keys()
    vqa.model.save_pretrained(tmp_path / "saved")
    assert load_vqa_model(folder, device="cpu").fingerprint == vqa.fingerprint
    reloaded = BlipForQuestionAnswering.from_pretrained(tmp_path / "saved")
    assert all(
        torch.equal(a, b)
        for a, b in zip(reloaded.state_dict().values(), plain.state_dict().values())
    )


def test_vilt_request_is_one_padded_batch_with_image_tokens_once_per_image(vilt_folder):
    vqa = load_vqa_model(vilt_folder, device="cpu")
    assert isinstance(vqa, ViltVqa)
    scorer = VqaScorer(vqa, batch_size=64)
    images = _images(3, size=64)
    requests = [(i, q) for i in range(3) for q in QUESTIONS]  # 15 rows
    patch_rows: list[int] = []
    text_lengths: list[int] = []
    hooks = [
        vqa.model.vilt.embeddings.patch_embeddings.register_forward_hook(
            lambda _m, args, _o: patch_rows.append(args[0].shape[0])
        ),
        vqa.model.vilt.embeddings.text_embeddings.word_embeddings.register_forward_hook(
            lambda _m, args, _o: text_lengths.append(args[0].shape[1])
        ),
    ]
    try:
        p = scorer.answer(images, requests)
    finally:
        for hook in hooks:
            hook.remove()
    assert scorer.n_forward == 1 and vqa.n_forward == 1 and scorer.n_computed == 15
    assert patch_rows == [3]  # three images, not fifteen rows
    longest = max(len(vqa.tokenizer(q)["input_ids"]) for q in QUESTIONS)
    assert text_lengths == [longest] < [vqa.model.config.max_position_embeddings]
    one_by_one = [vqa.answer([images[i]], [q])[0] for i, q in requests]
    np.testing.assert_allclose(p, one_by_one, atol=1e-5)


def test_vilt_padded_images_of_different_sizes_embed_once_and_agree(vilt_folder):
    vqa = load_vqa_model(vilt_folder, device="cpu")
    images = [Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 96), "blue")]
    idx, questions = _rows(2)
    pixels = vqa.encode_images(images)
    assert pixels["pixel_values"].shape[-2:] != (64, 64)  # padded batch: the general path
    p = vqa.yes_probability(pixels, idx, questions)
    for i, q, got in zip(idx, questions, p):
        alone = vqa.encode_images([images[i]])
        assert got == pytest.approx(vqa.yes_probability(alone, [0], [q])[0], abs=1e-5)


@pytest.mark.parametrize("mode", ["int8", "bf16"])
def test_quantize_setting_reaches_every_scorer_of_the_folder(tmp_path, vilt_folder, mode):
    out = tmp_path / "models" / "vqa"
    train_stage(
        None,
        None,
        enabled=True,
        model=str(vilt_folder),
        kind="auto",
        device=torch.device("cpu"),
        settings=TrainSettings(),
        seed=0,
        train_embedded=False,
        max_questions=5,
        out_dir=out,
        load=Image.open,
        quantize=mode,
    )
    saved = json.loads((out / SCORER_SETTINGS).read_text())
    assert saved["quantize"] == mode
    assert (out / "model.safetensors").is_file()  # the saved weights stay fp32
    scorer = VqaScorer.load(out, device="cpu")  # what score_vqa, the served model and Spark run
    assert scorer.vqa.quantized == mode
    linear = [m for m in scorer.vqa.model.modules() if type(m) is torch.nn.Linear]
    if mode == "int8":
        assert not linear, "every Linear layer is quantised"
    else:
        assert linear and all(m.weight.dtype == torch.float32 for m in linear), "weights stay fp32"
    fp32 = VqaScorer.load(out, device="cpu", quantize="none")
    assert fp32.vqa.quantized == "none" and fp32.vqa.fingerprint != scorer.vqa.fingerprint
    images = _images(2)
    d_mode, _ = scorer.score("two red circles to the left of a blue square", images)
    d32, _ = fp32.score("two red circles to the left of a blue square", images)
    assert 0 < np.abs(d_mode - d32).max() < 0.05  # changed (so it ran), and close


def test_int8_on_blip_keeps_the_shared_image_path(tmp_path):
    vqa = load_vqa_model(write_blip(tmp_path / "b", size="tiny"), device="cpu")
    images = _images(2)
    idx, questions = _rows(2)
    pixels = vqa.encode_images(images)
    fp32 = vqa.yes_probability(pixels, idx, questions)
    vqa.quantize("int8")
    int8 = vqa.yes_probability(pixels, idx, questions)
    vqa.share_image_kv = False
    int8_plain = vqa.yes_probability(pixels, idx, questions)
    assert np.abs(int8 - int8_plain).max() <= 1e-5
    assert np.abs(int8 - fp32).max() < 0.05


def test_cpu_bf16_answers_close_to_fp32_on_both_kinds(tmp_path, vilt_folder):
    """bf16 autocast changes the answers (so it ran) by little, and BLIP's shared image keys and
    values still give the plain path's answers."""
    for folder in (vilt_folder, write_blip(tmp_path / "b", size="tiny")):
        vqa = load_vqa_model(folder, device="cpu")
        images = _images(2)
        idx, questions = _rows(2)
        pixels = vqa.encode_images(images)
        fp32 = vqa.yes_probability(pixels, idx, questions)
        before = vqa.fingerprint
        assert vqa.quantize("bf16") is vqa and vqa.quantized == "bf16"
        assert vqa.fingerprint != before
        bf16 = vqa.yes_probability(pixels, idx, questions)
        assert 0 < np.abs(bf16 - fp32).max() < 0.05, vqa.kind
        if isinstance(vqa, BlipVqa):
            vqa.share_image_kv = False
            plain = vqa.yes_probability(pixels, idx, questions)
            assert np.abs(bf16 - plain).max() < 5e-3
        with pytest.raises(VqaModelError, match="already bf16"):
            vqa.quantize("int8")


def test_bad_quantize_values_are_refused(tmp_path, blip):
    params = tmp_path / "params.yaml"
    params.write_text("vqa:\n  quantize: int4\n")
    with pytest.raises(ValueError, match="vqa.quantize"):
        load_params(params)
    for mode in ("int8", "bf16"):
        params.write_text(f"vqa:\n  quantize: {mode}\n")
        assert load_params(params).vqa.quantize == mode
    with pytest.raises(VqaModelError, match="vqa.quantize"):
        blip.quantize("fp8")
    with pytest.raises(VqaStageError, match="vqa.quantize"):
        train_stage(
            None,
            None,
            enabled=True,
            model="x",
            kind="auto",
            device=torch.device("cpu"),
            settings=TrainSettings(),
            seed=0,
            train_embedded=False,
            max_questions=5,
            out_dir=tmp_path / "m",
            load=Image.open,
            quantize="int4",
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 autocast runs on CUDA only")
def test_cuda_runs_in_bf16_autocast_close_to_fp32(vilt_folder, tmp_path):
    for folder in (vilt_folder, write_blip(tmp_path / "b", size="tiny")):
        cpu = load_vqa_model(folder, device="cpu")
        gpu = load_vqa_model(folder, device="cuda")
        images = _images(2)
        idx, questions = _rows(2)
        p_cpu = cpu.yes_probability(cpu.encode_images(images), idx, questions)
        p_gpu = gpu.yes_probability(gpu.encode_images(images), idx, questions)
        assert np.abs(p_cpu - p_gpu).max() < 0.02
        assert gpu.quantize("int8").quantized == "none"  # int8 is CPU-only: left as it is


def test_blip_batched_answers_equal_one_by_one_whatever_the_padding(blip):
    """transformers' BLIP drops the decoder's cross-attention mask: without decoding by length,
    a short question's answer changed with the longest question of its batch."""
    image = _images(1)
    questions = ["is there a star?", "is the circle to the left of the square or of the star?"]
    pixels = blip.encode_images(image)
    together = blip.yes_probability(pixels, [0, 0], questions)
    alone = [blip.yes_probability(pixels, [0], [q])[0] for q in questions]
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    ("cap", "allowed"),
    [
        ("AVX2", False),
        ("AVX2_VNNI", False),
        ("AVX512_CORE", False),
        ("AVX512_CORE_VNNI", False),
        ("AVX512_CORE_BF16", True),
        ("AVX512_CORE_AMX", True),
        ("AVX10_1_512", True),
        (None, True),
    ],
)
def test_native_bf16_needs_the_cpu_and_a_onednn_cap_that_allows_it(monkeypatch, cap, allowed):
    """A oneDNN cap below AVX512_CORE_BF16 (base.cpu_isa: avx2 sets AVX2) means emulated bf16
    whatever the CPU; above it, the CPU's own flags decide."""
    if cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    hardware = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert cpu_has_native_bf16() is (allowed and hardware)
