"""The embedded model's WordPiece vocabulary, trained offline on the generated questions.

ViLT (and BLIP) read text through a BERT WordPiece tokenizer whose vocabulary cannot be downloaded
here. We train a small one with the ``tokenizers`` library (BERT normaliser and pre-tokeniser,
lower case, ``##`` continuation prefix) and wrap it as a transformers ``BertTokenizer`` (the fast,
tokenizers-backed class; ``BertTokenizerFast`` is its alias), which ``save_pretrained`` writes
beside the model so that ``ViltProcessor.from_pretrained`` finds it.
"""

from __future__ import annotations

import logging
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

log = logging.getLogger(__name__)

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""In BERT's order, so ids 0..4 are pad, unk, cls, sep, mask."""


def train_wordpiece(texts: Iterable[str], vocab_size: int = 1000, min_frequency: int = 1,
                    extra_special_tokens: Iterable[str] = ()):  # -> transformers.BertTokenizer
    """Train a lower-cased WordPiece vocabulary on ``texts`` and return a ``BertTokenizer``.

    The alphabet of every character seen is always kept, so unseen words still split into
    known pieces instead of ``[UNK]``. ``extra_special_tokens`` (e.g. BLIP's ``[DEC]``) are added
    after the BERT special tokens.
    """
    from transformers import BertTokenizer

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("train_wordpiece: no text to train the vocabulary on")
    special = list(SPECIAL_TOKENS) + [t for t in extra_special_tokens if t not in SPECIAL_TOKENS]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, clean_text=True,
                                                    handle_chinese_chars=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=special, continuing_subword_prefix="##",
                                        show_progress=False)
    backend.train_from_iterator(texts, trainer=trainer)
    vocab = backend.get_vocab()
    log.info("trained a WordPiece vocabulary of %d tokens on %d texts", len(vocab), len(texts))
    tokenizer = BertTokenizer(vocab=dict(sorted(vocab.items(), key=lambda kv: kv[1])),
                              do_lower_case=True)
    if len(special) > len(SPECIAL_TOKENS):
        tokenizer.add_special_tokens(
            {"additional_special_tokens": special[len(SPECIAL_TOKENS):]})
    return tokenizer
