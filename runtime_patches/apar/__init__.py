"""APAR: model-emitted forks in SGLang's scheduler, one joined answer per request.

SGLang seams: hooks on `Scheduler` (`__init__`, `run_batch`, `process_batch_result`, the abort
paths; `fork`), on `SchedulerOutputStreamer` and `TokenizerManager.update_request_meta_info`
(`stream`), on the OpenAI serving classes (`openai_api`), where client input enters
(`request_checks`), and on the scheduler's internal state (`counters`). A child is a normal
request queued through the scheduler's own admission path, so its prefix hits the radix tree.
"""

from __future__ import annotations

from apar_sgl.runtime_patches import Hook

_SCHEDULER = "sglang.srt.managers.scheduler.Scheduler"
_STREAMER = "sglang.srt.managers.scheduler_components.output_streamer.SchedulerOutputStreamer"
_TOKENIZER_MANAGER = "sglang.srt.managers.tokenizer_manager.TokenizerManager"
_CHAT = "sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat"
_COMPLETION = "sglang.srt.entrypoints.openai.serving_completions.OpenAIServingCompletion"


def hooks() -> list[Hook]:
    return _request_hooks() + _runtime_hooks()


def _request_hooks() -> list[Hook]:
    """Client input checked where it enters: apar's request fields, control tokens as text."""
    from apar_sgl.runtime_patches.apar import request_checks

    return [
        Hook(
            f"{_TOKENIZER_MANAGER}._create_tokenized_object",
            "AROUND",
            request_checks.create_tokenized_object,
        ),
        Hook(f"{_CHAT}._process_messages", "AROUND", request_checks.process_messages),
    ]


def _runtime_hooks() -> list[Hook]:
    """Forks in the scheduler, one joined answer per request."""
    from apar_sgl.runtime_patches.apar import counters, fork, openai_api, stream

    return [
        Hook(f"{_SCHEDULER}.__init__", "AFTER", fork.scheduler_init),
        Hook(f"{_SCHEDULER}.run_batch", "AROUND", fork.run_batch, isolated=True),
        Hook(
            f"{_SCHEDULER}.process_batch_result",
            "AROUND",
            fork.process_batch_result,
            isolated=True,
        ),
        Hook(f"{_SCHEDULER}.abort_request", "AROUND", fork.abort_request, isolated=True),
        Hook(f"{_SCHEDULER}.send_abort_output", "AROUND", fork.send_abort_output, isolated=True),
        Hook(
            f"{_STREAMER}._stream_output_generation",
            "AROUND",
            stream.stream_output_generation,
            isolated=True,
        ),
        Hook(
            f"{_STREAMER}.is_request_level_customized_info_key",
            "AROUND",
            stream.is_request_level_customized_info_key,
        ),
        Hook(
            f"{_TOKENIZER_MANAGER}.update_request_meta_info",
            "AROUND",
            stream.update_request_meta_info,
        ),
        Hook(
            f"{_COMPLETION}._build_completion_response",
            "AFTER",
            openai_api.build_completion_response,
        ),
        Hook(f"{_CHAT}._build_chat_response", "AFTER", openai_api.build_chat_response),
        Hook(
            f"{_COMPLETION}._generate_completion_stream",
            "AROUND",
            openai_api.generate_completion_stream,
        ),
        Hook(f"{_CHAT}._generate_chat_stream", "AROUND", openai_api.generate_chat_stream),
        Hook(
            "sglang.srt.managers.scheduler_components.internal_state"
            ".SchedulerInternalStateController.get_internal_state",
            "AFTER",
            counters.add_internal_state,
        ),
    ]
