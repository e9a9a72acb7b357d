"""Role markers rendered with the model's own chat template."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apar_sgl.dsl.ops import ROLES

logger = logging.getLogger(__name__)

_SENTINEL = "\x00APAR_CONTENT\x00"


@dataclass(frozen=True, slots=True)
class ChatFormat:
    """Text before and after each role's content."""

    prefix: Mapping[str, str]
    suffix: Mapping[str, str]

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> ChatFormat:
        """Render each role once around a sentinel with the HF chat template and cut it out."""
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("tokenizer has no chat template")
        prefix, suffix = {}, {}
        for role in ROLES:
            # Earlier turns keep templates from inserting a default system prompt.
            before = [] if role == "system" else [{"role": "system", "content": "S"}]
            if role == "assistant":
                before.append({"role": "user", "content": "U"})
            head = _render(tokenizer, before) if before else ""
            full = _render(tokenizer, before + [{"role": role, "content": _SENTINEL}])
            if not full.startswith(head) or _SENTINEL not in full:
                raise ValueError(f"chat template does not render role {role!r} incrementally")
            prefix[role], suffix[role] = full[len(head) :].split(_SENTINEL, 1)
        return cls(prefix, suffix)

    @classmethod
    def from_sglang(cls, template: Any) -> ChatFormat:
        """From a ``sglang.lang.chat_template.ChatTemplate``."""
        pairs = {role: template.get_prefix_and_suffix(role, []) for role in ROLES}
        return cls({r: p[0] for r, p in pairs.items()}, {r: p[1] for r, p in pairs.items()})


def chat_format_for(tokenizer: Any | None, model_path: str) -> ChatFormat:
    """The tokenizer's HF template if it has one, else SGLang's template for the model path."""
    if tokenizer is not None:
        try:
            return ChatFormat.from_tokenizer(tokenizer)
        except ValueError as exc:
            logger.info("falling back to SGLang's chat template registry: %s", exc)
    from sglang.lang.chat_template import get_chat_template_by_model_path

    return ChatFormat.from_sglang(get_chat_template_by_model_path(model_path))


def _render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
