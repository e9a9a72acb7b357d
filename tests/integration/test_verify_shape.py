"""SmolLM2 through the CPU path's ops: a k-token verify forward equals k one-token decodes.

Per op (linear layers, RMSNorm, rotary embedding, SiLU-and-mul, attention, LM head, argmax),
in bfloat16 and float32, on SmolLM2's real weights and shapes, with SGLang's own layer
classes as the engine dispatches them on our platform (their `forward_native`). This is the
property greedy ANPD / NGRAM rely on to reproduce plain greedy decoding bit for bit.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from apar_sgl.runtime_patches.cpu import ops as cpu_ops
from apar_sgl.runtime_patches.cpu.row_exact import rows_alone

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, LAYERS = 576, 9, 3, 64, 30
VERIFY_TOKENS = 8  # ANPD's default verify width
PROMPT = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018]


class SmolLM2:
    """SmolLM2-135M built from SGLang's layers and our CPU ops, recording each op's rows."""

    def __init__(self, dtype: torch.dtype) -> None:
        from safetensors.torch import load_file
        from sglang.srt.layers.activation import SiluAndMul
        from sglang.srt.layers.layernorm import RMSNorm
        from sglang.srt.layers.rotary_embedding import get_rope

        from apar_sgl.models import resolve_model

        w = load_file(resolve_model(None) + "/model.safetensors")
        w = {name: t.to(dtype) for name, t in w.items()}
        self.dtype, self.embed = dtype, w["model.embed_tokens.weight"]

        def norm(name: str):
            layer = RMSNorm(HIDDEN, eps=1e-5).to(dtype)
            layer.weight.data.copy_(w[name])
            return layer

        def attn(i: int, part: str) -> torch.Tensor:
            return w[f"model.layers.{i}.self_attn.{part}_proj.weight"]

        def mlp(i: int, part: str) -> torch.Tensor:
            return w[f"model.layers.{i}.mlp.{part}_proj.weight"]

        self.layers = [
            {
                "input_norm": norm(f"model.layers.{i}.input_layernorm.weight"),
                "post_norm": norm(f"model.layers.{i}.post_attention_layernorm.weight"),
                "qkv": torch.cat([attn(i, "q"), attn(i, "k"), attn(i, "v")]),
                "o": attn(i, "o"),
                "gate_up": torch.cat([mlp(i, "gate"), mlp(i, "up")]),
                "down": mlp(i, "down"),
            }
            for i in range(LAYERS)
        ]
        self.final_norm = norm("model.norm.weight")
        self.rope = get_rope(HEAD_DIM, HEAD_DIM, 8192, 100000.0, True, dtype=dtype)
        self.act = SiluAndMul()
        size = len(PROMPT) + 64
        self.k_cache = torch.zeros(LAYERS, size, KV_HEADS, HEAD_DIM, dtype=dtype)
        self.v_cache = torch.zeros_like(self.k_cache)

    def linear(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """What the engine runs: cpu_ops.linear in float32; in bfloat16 SGLang's F.linear
        through `row_exact.rows_alone`, as `cpu.wrappers.unquantized_linear` calls it."""
        if self.dtype == torch.float32:
            return cpu_ops.linear(x, weight)
        return rows_alone(x, lambda rows: F.linear(rows, weight))

    def forward(self, ids: list[int], start: int, record: dict) -> list[int]:
        """One request's tokens at positions start.. as one forward; each op's rows recorded."""
        n = len(ids)
        positions = torch.arange(start, start + n)

        def rec(name: str, t: torch.Tensor) -> None:
            for j in range(n):
                record.setdefault(start + j, {})[name] = t[j].clone()

        h, residual = self.embed[torch.tensor(ids)], None
        for i, layer in enumerate(self.layers):
            if residual is None:
                h, residual = layer["input_norm"](h), h
            else:
                h, residual = layer["input_norm"](h, residual)
            rec(f"{i}.input_norm", h)
            qkv = self.linear(h, layer["qkv"])
            rec(f"{i}.qkv", qkv)
            q, k, v = qkv.split([HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM], -1)
            q, k = self.rope(positions, q.contiguous(), k.contiguous())
            rec(f"{i}.rotary_q", q)
            rec(f"{i}.rotary_k", k)
            self.k_cache[i, positions] = k.reshape(n, KV_HEADS, HEAD_DIM)
            self.v_cache[i, positions] = v.reshape(n, KV_HEADS, HEAD_DIM)
            queries = q.reshape(n, HEADS, HEAD_DIM)
            attended = torch.stack(
                [
                    cpu_ops._attend(
                        queries[j],
                        self.k_cache[i, : start + j + 1].float(),
                        self.v_cache[i, : start + j + 1].float(),
                        HEAD_DIM**-0.5,
                    )
                    for j in range(n)
                ]
            ).reshape(n, -1)
            rec(f"{i}.attention", attended)
            o = self.linear(attended, layer["o"])
            rec(f"{i}.o_proj", o)
            h, residual = layer["post_norm"](o, residual)
            rec(f"{i}.post_norm", h)
            gate_up = self.linear(h, layer["gate_up"])
            rec(f"{i}.gate_up", gate_up)
            act = self.act(gate_up)
            rec(f"{i}.silu_and_mul", act)
            h = self.linear(act, layer["down"])
            rec(f"{i}.down", h)
        h, _ = self.final_norm(h, residual)
        rec("final_norm", h)
        if self.dtype == torch.float32:
            logits = cpu_ops.linear(h, self.embed)
        else:
            # LogitsProcessor._compute_lm_head, through cpu.wrappers.compute_lm_head
            logits = rows_alone(h, lambda rows: torch.matmul(rows, self.embed.T))
        rec("lm_head", logits)
        return logits.argmax(-1).tolist()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_verify_forward_reproduces_one_token_decoding_op_by_op(dtype):
    model = SmolLM2(dtype)
    decoded: dict = {}
    tokens = list(PROMPT)
    for position in range(len(PROMPT) + VERIFY_TOKENS):
        (greedy,) = model.forward([tokens[position]], position, decoded)
        if position + 1 >= len(tokens):
            tokens.append(greedy)
    start = len(tokens) - 1 - VERIFY_TOKENS  # the last VERIFY_TOKENS decoded inputs
    verified: dict = {}
    predicted = model.forward(tokens[start:-1], start, verified)
    assert predicted == tokens[start + 1 :]  # greedy verify accepts every decoded token
    differing = [
        (position, name)
        for position in range(start, start + VERIFY_TOKENS)
        for name, row in decoded[position].items()
        if not torch.equal(row, verified[position][name])
    ]
    assert differing == []
