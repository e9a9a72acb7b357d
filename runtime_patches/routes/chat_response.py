"""The one-choice `ChatCompletionResponse` both routes answer with."""

from __future__ import annotations

import time
import uuid
from typing import Any


def chat_response(
    request,
    content: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    metadata: dict[str, Any] | None = None,
):
    """An OpenAI chat completion of one assistant message, with its usage."""
    from sglang.srt.entrypoints.openai.protocol import (
        ChatCompletionResponse,
        ChatCompletionResponseChoice,
        ChatMessage,
        UsageInfo,
    )

    return ChatCompletionResponse(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=request.model,
        choices=[
            ChatCompletionResponseChoice(
                index=0,
                message=ChatMessage(role="assistant", content=content),
                finish_reason=finish_reason,
            )
        ],
        usage=UsageInfo(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        ),
        metadata=metadata,
    )
