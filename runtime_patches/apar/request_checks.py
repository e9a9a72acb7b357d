"""Client input checked where it enters SGLang (tokenizer manager, OpenAI layer), not later.

- apar's `custom_params` fields are parsed here: a bad value is a ValueError, which SGLang's
  HTTP layer answers with 400 naming the field, instead of an exception in the scheduler loop.
- Text a client sends that spells a control token (`[Fork]`, `[Child]`: special tokens of an
  APAR tokenizer) is encoded as plain text, so no client can inject a fork into a prompt. A
  client that sends token ids (`input_ids`) gets exactly those ids.
"""

from __future__ import annotations

from array import array

from apar_sgl.config import apar_args_of
from apar_sgl.request_params import escape_control_ids, parse_custom_params


def create_tokenized_object(original, self, obj, input_text, input_ids, *args, **kwargs):
    """sglang.srt.managers.tokenizer_manager.TokenizerManager._create_tokenized_object"""
    tokenized = original(self, obj, input_text, input_ids, *args, **kwargs)
    parse_custom_params(getattr(tokenized.sampling_params, "custom_params", None))
    if getattr(obj, "text", None) is not None and tokenized.input_ids is not None:
        escaped = escape_control_ids(list(tokenized.input_ids), plain_control_ids(self))
        if escaped is not None:
            tokenized.input_ids = array("q", escaped)
    return tokenized


def process_messages(original, self, request, *args, **kwargs):
    """sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat._process_messages"""
    result = original(self, request, *args, **kwargs)
    if request.input_ids is None and isinstance(result.prompt_ids, list):
        escaped = escape_control_ids(result.prompt_ids, plain_control_ids(self.tokenizer_manager))
        if escaped is not None:
            result.prompt_ids = escaped
    return result


def plain_control_ids(tokenizer_manager) -> dict[int, list[int]]:
    """Each control token's id -> the ids of its text encoded as ordinary text (cached)."""
    cached = getattr(tokenizer_manager, "apar", None)
    if cached is None:
        cached = _plain_encodings(tokenizer_manager)
        tokenizer_manager.apar = cached
    return cached


def _plain_encodings(tokenizer_manager) -> dict[int, list[int]]:
    tokenizer = tokenizer_manager.tokenizer
    if tokenizer is None:
        return {}
    args = apar_args_of(tokenizer_manager.server_args)
    out = {}
    for token in (args.apar_fork_token, args.apar_child_token):
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) == 1:
            out[ids[0]] = tokenizer.encode(
                token, add_special_tokens=False, split_special_tokens=True
            )
    return out
