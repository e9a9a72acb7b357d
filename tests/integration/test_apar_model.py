"""The shipped APAR-SmolLM2 resolves by name, loads in SGLang and forks on a list prompt.

Its engines run in spawned processes (tests/integration/isolated.py): SGLang keeps resolved
server arguments process-wide, and the session engines of other modules share this process.
"""

from __future__ import annotations

import json
from pathlib import Path

from apar_sgl.models import resolve_model
from apar_sgl.tree import CHILD_TOKEN, FORK_TOKEN
from tests.integration.isolated import generate_isolated

LIST_PROMPT = "What are some practical tips for staying productive when working from home?"


def _chat_prompt(folder: str) -> str:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": LIST_PROMPT}], tokenize=False, add_generation_prompt=True
    )


def test_apar_smollm2_resolves_to_a_merged_folder_with_control_tokens():
    folder = Path(resolve_model("apar-smollm2"))
    config = json.loads((folder / "config.json").read_text())
    assert config["vocab_size"] == 49154 and config["tie_word_embeddings"]
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    added = {t["content"]: t["special"] for t in tokenizer["added_tokens"]}
    assert added.get(FORK_TOKEN) and added.get(CHILD_TOKEN)
    assert resolve_model("apar-smollm2") == str(folder)  # built once, then reused


def test_apar_smollm2_emits_a_fork_on_a_list_prompt_with_the_runtime_off():
    folder = resolve_model("apar-smollm2")
    params = {"temperature": 0, "max_new_tokens": 96, "skip_special_tokens": False}
    [out] = generate_isolated(
        folder, {"dtype": "bfloat16", "apar_mode": "off"}, [(_chat_prompt(folder), params)]
    )
    assert FORK_TOKEN in out["text"]


def test_apar_smollm2_forks_under_the_runtime_and_joins_one_answer():
    folder = resolve_model("apar-smollm2")
    params = {"temperature": 0, "max_new_tokens": 160}
    [out] = generate_isolated(folder, {"dtype": "bfloat16"}, [(_chat_prompt(folder), params)])
    stats = out["meta_info"]["apar"]
    assert stats["branches"] > 1
    assert stats["critical_path_steps"] < stats["total_tokens"]
    assert FORK_TOKEN not in out["text"] and CHILD_TOKEN not in out["text"]
