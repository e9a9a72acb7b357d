"""The APAR fine-tune end to end on the tiny model: corpus in, small adapter out, merge works."""

from __future__ import annotations

import json

import pytest

from apar_sgl.train.corpus import CorpusRecord, write_jsonl
from apar_sgl.train.finetune import FinetuneConfig, finetune
from apar_sgl.train.shipped import add_control_tokens, merge_state

LIST_ANSWER = (
    "Here are tips for the day:\n"
    "1. Sleep: sleep eight hours and wake in the morning.\n"
    "2. Water: drink water with every meal of the day.\n"
    "3. Walk: walk in the city in the evening with a dog.\n"
    "Plan the day well."
)
PLAIN_ANSWER = "The quick brown fox jumps over the lazy dog and the cat sat on the mat."
LOOPED_ANSWER = "Walk the dog every day.\nWalk the dog every day.\nWalk the dog every day."


@pytest.fixture(scope="module")
def trained(tiny_model_path, tmp_path_factory):
    work = tmp_path_factory.mktemp("finetune")
    records = [
        CorpusRecord("tips for the day", True, LIST_ANSWER, "stop", 60),
        CorpusRecord("a fox", False, PLAIN_ANSWER, "stop", 20),
        CorpusRecord("a dog", True, LOOPED_ANSWER, "stop", 20),
    ]
    write_jsonl(records, work / "corpus.jsonl")
    cfg = FinetuneConfig(rank=4, alpha=8, lr=5e-3, warmup_steps=1, epochs=3, batch_tokens=256)
    record = finetune(work / "corpus.jsonl", work / "adapter", cfg, base_dir=tiny_model_path)
    return work / "adapter", record


def test_finetune_writes_a_small_adapter_and_its_record(trained):
    adapter, record = trained
    assert record["corpus_stats"]["structured"] == 1 and record["corpus_stats"]["plain"] == 1
    assert record["degenerate_filtered"] == {"repeated_line": 1}
    assert len(record["epoch_mean_loss"]) == 3
    assert record["steps"] == 3 * record["steps_per_epoch"]
    assert record["mix"]["structured_answers"] == 1 and record["mix"]["plain_answers"] == 1
    assert record["steps"] >= 3
    assert all(json.loads((adapter / "adapter_config.json").read_text())["trainable_token_indices"])
    assert (adapter / "loss.png").stat().st_size > 1000
    rows = (adapter / "loss.csv").read_text().splitlines()
    assert len(rows) == record["steps"] + 1
    assert (adapter / "adapter_model.safetensors").stat().st_size < 200_000


def test_adapter_loads_and_the_control_token_rows_changed(trained, tiny_model_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter, _ = trained
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    before = len(tokenizer)
    ids = list(add_control_tokens(tokenizer))  # already present in the tiny tokenizer
    assert len(tokenizer) == before
    base = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32)
    original = base.get_input_embeddings().weight[ids].clone()
    state = load_file(str(adapter / "adapter_model.safetensors"))
    rows = [v for k, v in state.items() if k.endswith("trainable_tokens_delta")]
    assert len(rows) == 1 and rows[0].shape == original.shape
    assert not torch.allclose(rows[0].float(), original, atol=1e-3)

    reference = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    fresh = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32)
    config = json.loads((adapter / "adapter_config.json").read_text())
    with torch.no_grad():
        assert merge_state(fresh, state, config, ids) == 2 * 7  # 2 layers x 7 projections
    ours, theirs = fresh.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        torch.testing.assert_close(value, theirs[key], atol=1e-5, rtol=1e-4, msg=key)
    assert not torch.allclose(fresh.get_input_embeddings().weight[ids], original, atol=1e-3)


def test_prefix_cached_backward_gives_the_full_sequence_loss(tiny_model_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from apar_sgl.train.convert import TrainingSequence
    from apar_sgl.train.finetune import _backward, encode
    from apar_sgl.train.sampling import Sample

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32)
    sample = Sample(
        "tips", TrainingSequence("1. Sleep:[Fork][Child]", " sleep well."), "list", "child"
    )
    e = encode(tokenizer, sample, max_len=64)
    assert e is not None and e.labels[-1] == tokenizer.eos_token_id
    full = model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels])).loss
    targets = sum(label != -100 for label in e.labels)
    ours = _backward(model, e, targets) / targets
    assert ours == pytest.approx(full.item(), rel=1e-4)
    assert model.lm_head.weight.grad is not None
