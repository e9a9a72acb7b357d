"""The embedded default, SmolLM2-135M-Instruct, converted from its wheel and served by SGLang."""

from __future__ import annotations

import json
from pathlib import Path

import apar_sgl
from apar_sgl.models import DEFAULT_MODEL, resolve_model


def test_default_model_converts_once_into_an_hf_folder():
    folder = Path(resolve_model(DEFAULT_MODEL))
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert (folder / "tokenizer.json").is_file()
    assert resolve_model(None) == str(folder)


def test_smollm2_answers_a_factual_question():
    engine = apar_sgl.Engine(DEFAULT_MODEL, dtype="bfloat16")
    try:
        tokenizer = engine.tokenizer_manager.tokenizer
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": "What is the capital of France?"}],
            tokenize=False,
            add_generation_prompt=True,
        )
        out = engine.generate(prompt, {"temperature": 0, "max_new_tokens": 24})
    finally:
        engine.shutdown()
    assert "Paris" in out["text"]
    assert out["meta_info"]["completion_tokens"] <= 24
