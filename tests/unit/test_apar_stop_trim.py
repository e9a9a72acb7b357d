"""`trim_stop_str`: a branch's tokens cut where SGLang's detokenizer would cut its text."""

from __future__ import annotations

import pytest
from apar_sgl.runtime_patches.apar.state import trim_stop_str

VOCAB = [" is", " c", "o", "ol", " 3", "[Fork]", " ", "l"]


class CharTokenizer:
    """Token i is VOCAB[i]; text encodes one character per token where it can."""

    def decode(self, ids):
        return "".join(VOCAB[i] for i in ids)

    def encode(self, text, add_special_tokens=False):
        return [VOCAB.index(ch) for ch in text]


@pytest.mark.parametrize(
    ("stop", "keep_stop", "expected"),
    [
        ("cool", False, [0, 6]),  # the cut splits " c": its kept space is re-encoded
        ("cool", True, [0, 1, 2, 3]),
        ("ol", False, [0, 1, 2]),
        ("absent", False, [0, 1, 2, 3]),
    ],
)
def test_cut_text_matches_the_detokenizer(stop, keep_stop, expected):
    tok = CharTokenizer()
    text = tok.decode([0, 1, 2, 3])
    ids = trim_stop_str([0, 1, 2, 3], stop, tok, keep_stop=keep_stop)
    assert ids == expected
    pos = text.find(stop)
    assert tok.decode(ids) == (text if pos < 0 else text[: pos + len(stop) * keep_stop])


def test_tokens_before_keep_from_stay():
    tok = CharTokenizer()
    assert trim_stop_str([0, 5, 1, 2], "[Fork] c", tok, keep_from=2) == [0, 5]
