"""Random-weight checkpoints saved exactly as the real ones are shipped (test helper, not a model).

No weights can be downloaded here, but the architectures and the file layouts can be rebuilt:
a folder written here loads through the same code path as the real checkpoint would
(``from_pretrained`` on ``config.json`` + ``model.safetensors`` + the processor files, or an
open_clip checkpoint file), so tests and benchmarks exercise every real loading path.

``size="real"`` gives the published configurations (ViLT-B/32 at 384 px with BERT's 30,522-token
vocabulary and VQAv2's 3,129 answers; BLIP-VQA base; open_clip ``ViT-B-32``); ``size="tiny"``
keeps the same layout with small widths so that a pipeline test runs in seconds.

As a script it writes all three into a folder, for benchmarks and for users trying the real
loading paths offline::

    python tests/checkpoints.py OUT_DIR [--size real|tiny] [--seed 0]

which leaves ``OUT_DIR/clip/open_clip_model.safetensors`` (use with ``finetune_clip.model``
set to the printed architecture), ``OUT_DIR/vilt/`` and ``OUT_DIR/blip/`` (``vqa.model``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

#: VQAv2 answer count of ``dandelin/vilt-b32-finetuned-vqa``; in its label map "yes" is id 3 and
#: "no" id 9 (the other 3,127 answers are placeholders here: only yes/no are ever read)
VQA_ANSWERS = 3129
YES_ID, NO_ID = 3, 9
BERT_VOCAB = 30522

#: open_clip architecture of :func:`write_open_clip` per size (``t2i-micro`` is the repository's
#: own config in ``src/t2ieval/configs/open_clip``, registered by ``t2ieval.clip.model``)
CLIP_ARCHITECTURES = {"real": "ViT-B-32", "tiny": "t2i-micro"}
#: the file name open_clip's published Hugging Face checkpoints use for safetensors weights
OPEN_CLIP_FILE = "open_clip_model.safetensors"

WORDS = (
    "a an the is are there any can you find of to left right above below on in red blue "
    "green yellow orange purple white black circle circles square squares star stars "
    "triangle heart cross one two three four sketch photo cat dog car person drawing "
    "placed next under over yes no"
).split()


def bert_tokenizer(vocab_size: int):
    """A BERT WordPiece tokenizer (lower case) of exactly ``vocab_size`` tokens."""
    import string

    from transformers import BertTokenizer

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    alphabet = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
    vocab = special + alphabet + [f"##{c}" for c in alphabet]
    vocab += [w for w in dict.fromkeys(WORDS) if w not in vocab]
    if len(vocab) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is below the {len(vocab)} base tokens")
    vocab += [f"[unused{i}]" for i in range(vocab_size - len(vocab))]
    tokenizer = BertTokenizer(vocab={tok: i for i, tok in enumerate(vocab)}, do_lower_case=True)
    assert len(tokenizer) == vocab_size
    return tokenizer


def _answer_labels(n: int) -> dict[int, str]:
    labels = {i: f"answer_{i}" for i in range(n)}
    labels[YES_ID], labels[NO_ID] = "yes", "no"
    return labels


def write_vilt(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """A ``ViltForQuestionAnswering`` folder like ``dandelin/vilt-b32-finetuned-vqa``."""
    from transformers import ViltConfig, ViltForQuestionAnswering, ViltImageProcessor, ViltProcessor

    folder = Path(folder)
    labels = _answer_labels(VQA_ANSWERS)
    if size == "real":
        config = ViltConfig(id2label=labels, label2id={v: k for k, v in labels.items()})
        image_size = 384
    elif size == "tiny":
        config = ViltConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=64,
            patch_size=16,
            max_position_embeddings=40,
            id2label=labels,
            label2id={v: k for k, v in labels.items()},
        )
        image_size = 64
    else:
        raise ValueError(f"size must be tiny or real, got {size!r}")
    tokenizer = bert_tokenizer(BERT_VOCAB if size == "real" else 400)
    config.vocab_size = len(tokenizer)
    torch.manual_seed(seed)
    model = ViltForQuestionAnswering(config)
    processor = ViltProcessor(
        image_processor=ViltImageProcessor(
            size={"shortest_edge": image_size}, size_divisor=config.patch_size
        ),
        tokenizer=tokenizer,
    )
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def write_blip(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """A ``BlipForQuestionAnswering`` folder like ``Salesforce/blip-vqa-base``."""
    from transformers import BlipConfig, BlipForQuestionAnswering, BlipImageProcessor, BlipProcessor

    folder = Path(folder)
    tokenizer = bert_tokenizer(BERT_VOCAB if size == "real" else 400)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    special = dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.convert_tokens_to_ids("[DEC]"),
        pad_token_id=tokenizer.pad_token_id,
        sep_token_id=tokenizer.sep_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    if size == "real":
        text, vision, image_size = dict(**special), dict(image_size=384), 384
    elif size == "tiny":
        text = dict(
            hidden_size=32,
            encoder_hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=40,
            **special,
        )
        vision = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=64,
            patch_size=16,
        )
        image_size = 64
    else:
        raise ValueError(f"size must be tiny or real, got {size!r}")
    torch.manual_seed(seed)
    model = BlipForQuestionAnswering(BlipConfig(text_config=text, vision_config=vision))
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": image_size, "width": image_size}),
        tokenizer=tokenizer,
    )
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def write_open_clip(path: str | Path, size: str = "real", seed: int = 0) -> Path:
    """An open_clip checkpoint FILE with random weights, as the published ones are shipped.

    ``size="real"`` is ``ViT-B-32`` (151M parameters), ``"tiny"`` the repository's ``t2i-micro``
    (:data:`CLIP_ARCHITECTURES`). ``path`` is the file to write, or a folder to write
    :data:`OPEN_CLIP_FILE` into. The file is the model's plain ``state_dict`` in safetensors, the
    layout of e.g. ``laion/CLIP-ViT-B-32-laion2B-s34B-b79K``'s ``open_clip_model.safetensors``:
    ``open_clip.create_model(architecture, pretrained=<file>)`` loads it, and so does
    ``finetune_clip.pretrained: <file>``. Returns the file's path.
    """
    import open_clip
    from safetensors.torch import save_file

    from t2ieval.clip.model import register_configs

    if size not in CLIP_ARCHITECTURES:
        raise ValueError(f"size must be one of {sorted(CLIP_ARCHITECTURES)}, got {size!r}")
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / OPEN_CLIP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    register_configs()
    torch.manual_seed(seed)
    model = open_clip.create_model(CLIP_ARCHITECTURES[size], pretrained=None)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})
    return path


def write_all(out_dir: str | Path, size: str = "real", seed: int = 0) -> dict[str, Path]:
    """``out_dir/clip/<OPEN_CLIP_FILE>``, ``out_dir/vilt/`` and ``out_dir/blip/``."""
    out = Path(out_dir)
    return {
        "clip": write_open_clip(out / "clip" / OPEN_CLIP_FILE, size=size, seed=seed),
        "vilt": write_vilt(out / "vilt", size=size, seed=seed),
        "blip": write_blip(out / "blip", size=size, seed=seed),
    }


def main(argv: list[str] | None = None) -> int:
    """``python tests/checkpoints.py OUT_DIR [--size real|tiny] [--seed N]``."""
    parser = argparse.ArgumentParser(
        description="Write random-weight open_clip, ViLT and BLIP "
        "VQA checkpoints in their real file layouts."
    )
    parser.add_argument("out_dir")
    parser.add_argument("--size", choices=("real", "tiny"), default="real")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    written = write_all(args.out_dir, size=args.size, seed=args.seed)
    print(f"finetune_clip.model: {CLIP_ARCHITECTURES[args.size]}")
    print(f"finetune_clip.pretrained: {written['clip']}")
    print(f"vqa.model: {written['vilt']}   (or {written['blip']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
