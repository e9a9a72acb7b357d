"""What the client of an APAR request receives: one answer, the in-order join of its tree.

The branches of a tree (root included) never reach the detokenizer themselves. Each tree owns
a `reply` request: a `Req` that is never scheduled, only streamed, with the client's rid;
its `output_ids` are the stable prefix of the join (control tokens removed), so a stream
only ever grows in final order. It finishes when the whole tree has.
"""

from __future__ import annotations

import logging

from apar_sgl.runtime_patches.apar.state import AparRuntime, AparTree

logger = logging.getLogger(__name__)

APAR_INFO_KEY = "apar"


def stream_output_generation(
    original, self, reqs, return_logprob, skip_req=None, is_idle_batch=False
):
    """sglang.srt.managers.scheduler_components.output_streamer.SchedulerOutputStreamer._stream_output_generation

    Keeps the branches of APAR trees out of the stream; their answers are sent by
    `send_reply`.
    """
    keep = [r for r in reqs if getattr(r, "apar", None) is None]
    if len(keep) == len(reqs):
        return original(self, reqs, return_logprob, skip_req, is_idle_batch)
    for req in reqs:
        if getattr(req, "apar", None) is not None and req.finished() and not req.finished_output:
            req.finished_output = True  # as the streamer marks a request it has reported
            if req.finished_len is None:
                req.finished_len = len(req.output_ids)
    if not keep and not is_idle_batch:
        return None
    return original(self, keep, return_logprob, skip_req, is_idle_batch)


def is_request_level_customized_info_key(original, self, key):
    """sglang.srt.managers.scheduler_components.output_streamer.SchedulerOutputStreamer.is_request_level_customized_info_key"""
    return key == APAR_INFO_KEY or original(self, key)


def update_request_meta_info(original, self, meta_info, state, customized_info, index, *args):
    """sglang.srt.managers.tokenizer_manager.TokenizerManager.update_request_meta_info

    Turns the accumulated one-element list of APAR stats into the stats record itself.
    """
    out = original(self, meta_info, state, customized_info, index, *args)
    stats = meta_info.get(APAR_INFO_KEY)
    if isinstance(stats, list) and stats:
        meta_info[APAR_INFO_KEY] = stats[-1]
    return out


def reply_request(scheduler, root):
    """The request that carries the joined answer of the tree rooted at `root` to the client."""
    from sglang.srt.managers.schedule_batch import Req

    reply = Req(
        root.rid,
        "",
        root.origin_input_ids,
        root.sampling_params,
        stream=root.stream,
        origin_input_ids_unpadded=root.origin_input_ids_unpadded,
        eos_token_ids=scheduler.model_config.hf_eos_token_id,
        vocab_size=scheduler.model_config.vocab_size,
        http_worker_ipc=root.http_worker_ipc,
    )
    reply.tokenizer = root.tokenizer
    reply.time_stats = root.time_stats
    reply.apar = None  # streamed as a plain request
    return reply


def send_reply(scheduler, runtime: AparRuntime, tree: AparTree) -> bool:
    """Send the answer's newly stable tokens; return True once the final reply went out."""
    items, complete = tree.stable_answer()
    reply, root = tree.reply, tree.root.req
    new = items[len(reply.output_ids) : tree.max_new_tokens]
    if not complete and not (reply.stream and new):
        return False
    reply.output_ids.extend(new)
    reply.cached_tokens = root.cached_tokens
    if complete:
        reply.finished_reason = _reply_reason(tree, min(len(items), tree.max_new_tokens))
        reply.finished_len = len(reply.output_ids)
        reply.customized_info = {APAR_INFO_KEY: [tree.stats(runtime)]}
        # Request-level info goes out with a finished non-stream request or a stream's
        # first chunk only; the client's stream mode lives in the tokenizer manager.
        reply.stream = False
    scheduler.output_streamer.stream_output([reply], False)
    return complete


def _reply_reason(tree: AparTree, length: int):
    from sglang.srt.managers.schedule_batch import FINISH_ABORT, FINISH_LENGTH

    root_reason = tree.root.req.finished_reason
    if tree.aborted:
        return root_reason if isinstance(root_reason, FINISH_ABORT) else FINISH_ABORT()
    if tree.truncated and length >= tree.max_new_tokens:
        return FINISH_LENGTH(length=tree.max_new_tokens)
    # A child SGLang rejected or aborted leaves a hole in the answer: say so, don't hide it.
    child_abort = next(
        (
            n.req.finished_reason
            for n in tree.nodes
            if n.parent is not None and isinstance(n.req.finished_reason, FINISH_ABORT)
        ),
        None,
    )
    return child_abort or root_reason
