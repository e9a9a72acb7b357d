"""The shipped APAR-SmolLM2 resolves by name, loads in SGLang and forks on a list prompt."""

from __future__ import annotations

import json
from pathlib import Path

import apar_sgl
from apar_sgl.models import resolve_model
from apar_sgl.tree import CHILD_TOKEN, FORK_TOKEN

LIST_PROMPT = "What are some practical tips for staying productive when working from home?"


def test_apar_smollm2_resolves_to_a_merged_folder_with_control_tokens():
    folder = Path(resolve_model("apar-smollm2"))
    config = json.loads((folder / "config.json").read_text())
    assert config["vocab_size"] == 49154 and config["tie_word_embeddings"]
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    added = {t["content"]: t["special"] for t in tokenizer["added_tokens"]}
    assert added.get(FORK_TOKEN) and added.get(CHILD_TOKEN)
    assert resolve_model("apar-smollm2") == str(folder)  # built once, then reused


def test_apar_smollm2_emits_a_fork_on_a_list_prompt_with_the_runtime_off():
    engine = apar_sgl.Engine("apar-smollm2", dtype="bfloat16", apar_mode="off")
    try:
        tokenizer = engine.tokenizer_manager.tokenizer
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": LIST_PROMPT}], tokenize=False, add_generation_prompt=True
        )
        out = engine.generate(
            prompt, {"temperature": 0, "max_new_tokens": 96, "skip_special_tokens": False}
        )
    finally:
        engine.shutdown()
    fork_id = tokenizer.convert_tokens_to_ids(FORK_TOKEN)
    assert fork_id in out["output_ids"]
    assert FORK_TOKEN in out["text"]


def test_apar_smollm2_forks_under_the_runtime_and_joins_one_answer():
    engine = apar_sgl.Engine("apar-smollm2", dtype="bfloat16")
    try:
        tokenizer = engine.tokenizer_manager.tokenizer
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": LIST_PROMPT}], tokenize=False, add_generation_prompt=True
        )
        out = engine.generate(prompt, {"temperature": 0, "max_new_tokens": 160})
    finally:
        engine.shutdown()
    stats = out["meta_info"]["apar"]
    assert stats["branches"] > 1
    assert stats["critical_path_steps"] < stats["total_tokens"]
    assert FORK_TOKEN not in out["text"] and CHILD_TOKEN not in out["text"]
