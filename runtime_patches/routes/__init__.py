"""Request routes on /v1/chat/completions that apar serves itself, through the DSL.

SGLang seam: AROUND hooks on `OpenAIServingChat.handle_request`. SGLang's HookRegistry chains
AROUND hooks (the later registered runs outside); each route serves the requests that opted in
(`"apar_parallel_json": true`: `parallel_json`; `"apar_mode": "skeleton"`: `skeleton`) and
passes every other request inward, unchanged.
"""

from __future__ import annotations

from apar_sgl.runtime_patches import Hook

_HANDLE_REQUEST = "sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat.handle_request"


def hooks() -> list[Hook]:
    from apar_sgl.runtime_patches.routes import parallel_json, skeleton

    return [
        Hook(_HANDLE_REQUEST, "AROUND", parallel_json.handle_chat_request),
        Hook(_HANDLE_REQUEST, "AROUND", skeleton.handle_chat_request),
    ]
