from __future__ import annotations

import pytest

from apar_sgl.models import resolve_model
from apar_sgl.train import shipped
from apar_sgl.train.shipped import AdapterFormatError, _token_indices, add_control_tokens


class FakeTokenizer:
    def __init__(self, vocab: list[str]) -> None:
        self.vocab = {t: i for i, t in enumerate(vocab)}
        self.calls = 0

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    def add_special_tokens(self, tokens, replace_extra_special_tokens=True):
        assert replace_extra_special_tokens is False
        self.calls += 1
        for t in tokens["extra_special_tokens"]:
            self.vocab[t] = len(self.vocab)
        return len(tokens["extra_special_tokens"])

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        return [self.vocab[t] for t in tokens]


def test_add_control_tokens_appends_missing_tokens_once():
    tok = FakeTokenizer(["a", "b"])
    assert add_control_tokens(tok) == (2, 3)
    assert add_control_tokens(tok) == (2, 3) and tok.calls == 1


def test_add_control_tokens_keeps_present_ones():
    tok = FakeTokenizer(["a", "[Child]", "b"])
    assert add_control_tokens(tok) == (3, 1)


def test_token_indices_from_either_config_form():
    assert _token_indices({"trainable_token_indices": [5, 6]}) == [5, 6]
    assert _token_indices({"trainable_token_indices": {"embed_tokens": [7]}}) == [7]
    with pytest.raises(AdapterFormatError, match="trainable_token_indices"):
        _token_indices({})


def test_unknown_shipped_name_and_missing_adapter(tmp_path, monkeypatch):
    with pytest.raises(KeyError, match="unknown shipped model"):
        shipped.prepare("nope", resolve_model)
    fake = shipped.ShippedModel("apar-test", "smollm2-135m-instruct", tmp_path)
    monkeypatch.setitem(shipped.SHIPPED, "apar-test", fake)
    with pytest.raises(FileNotFoundError, match="adapter is not shipped"):
        resolve_model("apar-test")


def test_training_modules_import_without_torch_or_sglang():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import apar_sgl.train.corpus, apar_sgl.train.evaluate, apar_sgl.train.finetune\n"
        "import apar_sgl.train.record, apar_sgl.train.rouge, apar_sgl.train.sampling\n"
        "import apar_sgl.train.shipped, apar_sgl.train.filters, apar_sgl.train.corpus_report\n"
        "import apar_sgl.train.prompts, apar_sgl.train.prompt_topics\n"
        "bad = [m for m in ('torch', 'sglang', 'transformers', 'peft') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
