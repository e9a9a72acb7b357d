"""A 2-layer Llama with its own BPE tokenizer, built in seconds for real-SGLang tests.

The tokenizer knows apar-sgl's control tokens, so the same builder serves the APAR tests.
`train_steps > 0` fits the model to `texts` so its greedy output follows them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from apar_sgl.tree import CHILD_TOKEN, FORK_TOKEN

WORDS = (
    "the quick brown fox jumps over lazy dog a cat sat on mat red blue green one two three "
    "four five six seven eight nine ten hello world radix tree cache fork tips sleep water "
    "walk read plan day city morning evening name age json"
).split()
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>", FORK_TOKEN, CHILD_TOKEN]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def build_tiny_model(
    out_dir: Path, texts: Sequence[str] = (), train_steps: int = 0, seed: int = 0
) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(seed)
    torch.manual_seed(seed)
    corpus = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(400)]
    corpus += [" ".join(str(i) for i in range(100)), '{ } [ ] : , " 0 1 2 3 4 5 6 7 8 9 .']
    corpus += list(texts)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=[FORK_TOKEN, CHILD_TOKEN],
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=1024,
        bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    if train_steps:
        _fit(model, hf_tok, list(texts), train_steps)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    hf_tok.save_pretrained(out_dir)
    return out_dir


def _fit(model, tokenizer, texts: list[str], steps: int) -> None:
    """Overfit the model on `texts` (full-sequence loss) so greedy decoding reproduces them."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
