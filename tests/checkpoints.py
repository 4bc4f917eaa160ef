"""Random-weight checkpoints saved exactly as the real ones are shipped (test helper, not a model).

No weights can be downloaded here, but the architectures and the file layouts can be rebuilt:
a folder written here loads through the same code path as the real checkpoint would
(``from_pretrained`` on ``config.json`` + ``model.safetensors`` + the processor files, or an
open_clip checkpoint file), so tests and benchmarks exercise every real loading path.

``size="real"`` gives the published configurations (ViLT-B/32 at 384 px with BERT's 30,522-token
vocabulary and VQAv2's 3,129 answers; BLIP-VQA base; open_clip ``ViT-B-32``); ``size="tiny"``
keeps the same layout with small widths so that a pipeline test runs in seconds.
"""

from __future__ import annotations

from pathlib import Path

import torch

#: VQAv2 answer count of ``dandelin/vilt-b32-finetuned-vqa``; in its label map "yes" is id 3 and
#: "no" id 9 (the other 3,127 answers are placeholders here: only yes/no are ever read)
VQA_ANSWERS = 3129
YES_ID, NO_ID = 3, 9
BERT_VOCAB = 30522

WORDS = (
    "a an the is are there any can you find of to left right above below on in red blue "
    "green yellow orange purple white black circle circles square squares star stars "
    "triangle heart cross one two three four sketch photo cat dog car person drawing "
    "placed next under over"
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
