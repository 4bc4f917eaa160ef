"""The embedded model's vocabulary: whole words, spelt fallbacks, the same in every process."""

from __future__ import annotations

import json
import subprocess
import sys

from t2ieval.vqa.tokenizer import SPECIAL_TOKENS, train_wordpiece

TEXTS = [
    "Is the square to the left of the star?",
    "Can you find any square?",
    "Are there two red diamonds?",
    "a sketch of an orange hexagon",
]
SCRIPT = (
    "import json, sys; from t2ieval.vqa.tokenizer import train_wordpiece; "
    f"print(json.dumps(train_wordpiece({TEXTS!r}).get_vocab(), sort_keys=True))"
)


def test_known_words_are_one_token_and_unseen_words_are_spelt():
    tok = train_wordpiece(TEXTS)
    assert tok.convert_ids_to_tokens(list(range(len(SPECIAL_TOKENS)))) == list(SPECIAL_TOKENS)
    assert tok.tokenize("Is the hexagon orange?") == ["is", "the", "hexagon", "orange", "?"]
    assert tok.tokenize("zebra") == ["z", "##e", "##b", "##r", "##a"]
    assert tok.unk_token not in tok.tokenize("a zebra-crossing, 42!")
    ids = tok("Is the star red?")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id


def test_vocab_size_keeps_the_most_frequent_words():
    tok = train_wordpiece(TEXTS, vocab_size=len(SPECIAL_TOKENS) + 2 * 68 + 2)
    words = [
        t
        for t in tok.get_vocab()
        if len(t) > 1 and not t.startswith("##") and t not in SPECIAL_TOKENS
    ]
    # "the" 3 times; "of" and "square" twice each, "of" first alphabetically
    assert sorted(words) == ["of", "the"]
    assert tok.tokenize("square") == ["s", "##q", "##u", "##a", "##r", "##e"]


def test_the_vocabulary_is_the_same_in_every_process():
    runs = [
        subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert json.loads(runs[0]) == dict(sorted(train_wordpiece(TEXTS).get_vocab().items()))
