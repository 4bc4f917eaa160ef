"""The embedded model's WordPiece vocabulary, built offline from the generated questions.

ViLT (and BLIP) read text through a BERT WordPiece tokenizer whose vocabulary cannot be downloaded
here. We build a small one and wrap it as a transformers ``BertTokenizer`` (the fast,
tokenizers-backed class; ``BertTokenizerFast`` is its alias), which ``save_pretrained`` writes
beside the model so that ``ViltProcessor.from_pretrained`` finds it.

The vocabulary is whole words, not learnt sub-word merges: ``tokenizers``' WordPiece trainer breaks
ties between equally frequent merges in hash-map order, which changes from one process to the next,
so the same texts gave different vocabularies (``squa`` + ``##re`` in one run, ``sq`` + ``##uare``
in another) and a retrained model was never byte-identical. Here the texts are normalised and
split exactly like BERT does (lower case, punctuation apart), and the vocabulary is, in this order:
the special tokens, every character seen plus lower-case ASCII letters, digits and punctuation,
each of them again as a ``##`` continuation, then the words by falling frequency (ties
alphabetical) up to ``vocab_size``. Known words are one token; an unseen word is spelt in
characters, and only a character outside that alphabet becomes ``[UNK]``.
"""

from __future__ import annotations

import logging
import string
from collections import Counter
from collections.abc import Iterable

from tokenizers import normalizers, pre_tokenizers

log = logging.getLogger(__name__)

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""In BERT's order, so ids 0..4 are pad, unk, cls, sep, mask."""
BASE_ALPHABET = string.ascii_lowercase + string.digits + string.punctuation
"""Always in the vocabulary (besides every character seen), so unseen words can be spelt."""


def _bert_pieces():
    normalizer = normalizers.BertNormalizer(
        lowercase=True, clean_text=True, handle_chinese_chars=True
    )
    return normalizer, pre_tokenizers.BertPreTokenizer()


def train_wordpiece(
    texts: Iterable[str],
    vocab_size: int = 1000,
    min_frequency: int = 1,
    extra_special_tokens: Iterable[str] = (),
):  # -> transformers.BertTokenizer
    """A lower-cased whole-word WordPiece vocabulary of ``texts``, as a ``BertTokenizer``.

    Deterministic: the same texts give the same vocabulary and ids in every process. Words seen
    fewer than ``min_frequency`` times, or beyond ``vocab_size`` entries, are left out (they are
    then spelt in characters). ``extra_special_tokens`` (e.g. BLIP's ``[DEC]``) are added after the
    BERT special tokens.
    """
    from transformers import BertTokenizer

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("train_wordpiece: no text to build the vocabulary from")
    special = list(SPECIAL_TOKENS) + [t for t in extra_special_tokens if t not in SPECIAL_TOKENS]
    normalizer, pre_tokenizer = _bert_pieces()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    alphabet = sorted({c for w in words for c in w} | set(BASE_ALPHABET))
    vocab = special + alphabet + [f"##{c}" for c in alphabet]
    room = max(0, vocab_size - len(vocab))
    ranked = sorted(
        (w for w, n in words.items() if n >= min_frequency and len(w) > 1),
        key=lambda w: (-words[w], w),
    )
    vocab += ranked[:room]
    ids = {tok: i for i, tok in enumerate(vocab)}
    log.info(
        "built a WordPiece vocabulary of %d tokens (%d words) from %d texts",
        len(ids),
        min(room, len(ranked)),
        len(texts),
    )
    tokenizer = BertTokenizer(vocab=ids, do_lower_case=True)
    if len(special) > len(SPECIAL_TOKENS):
        tokenizer.add_special_tokens({"additional_special_tokens": special[len(SPECIAL_TOKENS) :]})
    return tokenizer
