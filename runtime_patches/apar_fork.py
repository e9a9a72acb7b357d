"""APAR in SGLang's scheduler: a model-emitted fork token starts a child request on the radix tree.

Per scheduler iteration:
1. `run_batch`: requests get their APAR role (`req.apar`); a branch past a limit gets its fork
   token masked out (a -inf entry in the batch's logit-bias row) so the model goes on serially.
2. `process_batch_result`, after SGLang's own processing: new fork tokens are found; once the
   parent's KV covers one, the parent is checkpointed into the radix tree and a child
   `prompt + parent[:fork] + [child token]` (rid `{parent}-fork{n}`) is queued through the
   normal admission path, so it matches the shared prefix instead of recomputing it. Then
   the answer of each tree advances (`apar_stream`).

Rules:
- APAR applies to a request when the model has both control tokens and the request does not
  opt out (`sampling_params.custom_params = {"apar": false}`; OpenAI clients send
  `extra_body={"custom_params": {"apar": False}}`) and asks for nothing tied to one sequence:
  logprobs, hidden states, constrained decoding (regex/JSON/EBNF), a custom logit processor,
  beam search. Such requests run exactly as in plain SGLang.
- Sampling parameters apply per branch: each child copies its parent's.
- `max_new_tokens` bounds the tokens the whole tree generates (fork tokens included, forced
  child tokens not): a child starts with the budget left at its fork; when the tree's total
  reaches it, every live branch is finished (one in flight may add a token) and the joined
  answer is cut to `max_new_tokens` tokens, finish reason `length`.
- A stop string or stop token ends the branch it occurs in. A child's final stop token is left
  out of the answer and its stop string trimmed from its text (`trim_stop_str`: cut where
  SGLang's detokenizer cuts a request's text, kept with `no_stop_trim`); the root's is trimmed
  by the detokenizer as for any request, and its stop tokens stay in `output_ids`.
- Limits `--apar-max-branches/-depth` mask the fork token; one sampled anyway (the overlap
  scheduler masks one step late) still forks, so no text is lost.
  `--apar-max-concurrent-children` defers a child's start until a running child of its tree
  finishes (the answer is unchanged; 0 masks forks like the other limits).
- Aborting the client request aborts every branch (their rids share its prefix) and frees KV.
"""

from __future__ import annotations

import copy
import logging
from array import array
from http import HTTPStatus

from apar_sgl.runtime_patches import anpd_worker
from apar_sgl.runtime_patches.apar_faults import fail_tree
from apar_sgl.runtime_patches.apar_state import AparNode, AparRuntime, AparTree
from apar_sgl.runtime_patches.apar_stream import answer_request, emit_answer

from apar_sgl import env
from apar_sgl.config import apar_args_of

logger = logging.getLogger(__name__)


def scheduler_init(result, self, *args, **kwargs):
    """sglang.srt.managers.scheduler.Scheduler.__init__

    Resolves the control tokens at start; `--apar-mode on` without them fails here, and so
    does a scheduler process in which SGLang did not apply every apar hook.
    """
    from apar_sgl.runtime_patches import check_hooks_applied

    check_hooks_applied()
    self.apar = (
        AparRuntime.from_tokenizer(apar_args_of(self.server_args), self.tokenizer)
        if self.is_generation
        else None
    )
    return result


def run_batch(original, self, batch, *args, **kwargs):
    """sglang.srt.managers.scheduler.Scheduler.run_batch"""
    runtime: AparRuntime | None = getattr(self, "apar", None)
    if runtime is not None and batch.reqs:
        for req in batch.reqs:
            if not hasattr(req, "apar"):
                _adopt(self, runtime, req)
        _mask_fork_token(runtime, batch)
    return original(self, batch, *args, **kwargs)


def process_batch_result(original, self, batch, result):
    """sglang.srt.managers.scheduler.Scheduler.process_batch_result"""
    out = original(self, batch, result)
    runtime: AparRuntime | None = getattr(self, "apar", None)
    if runtime is not None and runtime.trees:
        _advance_trees(self, runtime, batch)
    return out


def abort_request(original, self, recv_req):
    """sglang.srt.managers.scheduler.Scheduler.abort_request

    SGLang aborts the branches (their rids start with the root's); a root that already
    finished is held by us, so the tree is marked aborted and its answer sent once all
    branches have stopped.
    """
    out = original(self, recv_req)
    runtime: AparRuntime | None = getattr(self, "apar", None)
    if runtime is None:
        return out
    from sglang.srt.managers.schedule_batch import FINISH_ABORT

    for rid, tree in list(runtime.trees.items()):
        if recv_req.abort_all or rid.startswith(recv_req.rid):
            tree.aborted = True
            for node in tree.nodes:
                node.pending.clear()
                if not node.done and node.req.to_finish is None:
                    node.req.to_finish = FINISH_ABORT()
    _emit_answers(self, runtime)
    return out


def send_abort_output(original, self, abort_req, req):
    """sglang.srt.managers.scheduler.Scheduler.send_abort_output

    A branch dropped from the waiting queue is reported through its tree's answer.
    """
    if getattr(req, "apar", None) is None:
        return original(self, abort_req, req)
    from sglang.srt.managers.schedule_batch import FINISH_ABORT

    if req.finished_reason is None:
        req.finished_reason = FINISH_ABORT()
    return None


def _adopt(scheduler, runtime: AparRuntime, req) -> None:
    """Make `req` the root of a fork tree, or mark it as a plain request (`req.apar = None`).

    A request apar cannot adopt fails alone, with an error its client sees.
    """
    req.apar = None
    if not _apar_wanted(req):
        return
    try:
        runtime.start_tree(req, answer_request(scheduler, req))
    except Exception as exc:
        logger.exception("apar: could not start the fork tree of request %s", req.rid)
        runtime.trees.pop(req.rid, None)
        from sglang.srt.managers.schedule_batch import FINISH_ABORT

        req.apar = None  # streamed as a plain request that ends after this step
        req.to_finish = FINISH_ABORT(
            f"apar could not start this request: {exc!r}",
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "InternalServerError",
        )


def _apar_wanted(req) -> bool:
    sp = req.sampling_params
    params = sp.custom_params if isinstance(sp.custom_params, dict) else {}
    return not (
        params.get("apar") is False
        or req.finished()
        or req.return_logprob
        or req.return_hidden_states
        or req.grammar is not None
        or sp.json_schema is not None
        or sp.regex is not None
        or sp.ebnf is not None
        or req.custom_logit_processor is not None
        or req.beam_group is not None
        or not sp.max_new_tokens
    )


def _mask_fork_token(runtime: AparRuntime, batch) -> None:
    """Set each row's fork-token logit bias: -inf where the branch may not fork now."""
    import torch

    info = batch.sampling_info
    if info is None:
        return
    blocked = [
        i
        for i, req in enumerate(batch.reqs)
        if req.apar is not None and not req.finished() and not runtime.may_fork(req.apar)
    ]
    bias = info.logit_bias
    if bias is None and not blocked:
        return
    fork = runtime.fork_id
    target = torch.tensor([_own_bias(req, fork) for req in batch.reqs], dtype=torch.float32)
    target[blocked] = float("-inf")
    if bias is None:
        bias = torch.zeros(len(batch.reqs), info.vocab_size, device=info.device)
    elif torch.equal(bias[:, fork].cpu().float(), target):
        return
    bias = bias.clone()  # an in-flight forward may still read the old tensor
    bias[:, fork] = target.to(bias.device, bias.dtype)
    info.logit_bias = bias


def _own_bias(req, token: int) -> float:
    user = req.sampling_params.logit_bias
    return float(user.get(str(token), user.get(token, 0.0))) if user else 0.0


def _advance_trees(scheduler, runtime: AparRuntime, batch) -> None:
    stepped = {id(r.apar.tree): r.apar.tree for r in batch.reqs if getattr(r, "apar", None)}
    if batch.forward_mode.is_decode() or batch.forward_mode.is_extend():
        for tree in stepped.values():
            tree.record_step()
    for tree in list(runtime.trees.values()):
        try:
            _find_forks(runtime, tree)
            for node in list(tree.nodes):
                _spawn_ready(scheduler, runtime, node)
            _enforce_budget(tree)
        except Exception as exc:
            logger.exception("apar: fork tree of request %s failed", tree.root.req.rid)
            fail_tree(scheduler, runtime, tree, f"apar internal error: {exc!r}")
    _emit_answers(scheduler, runtime)


def _find_forks(runtime: AparRuntime, tree: AparTree) -> None:
    for node in tree.nodes:
        out = node.req.output_ids_through_stop
        if tree.aborted or tree.truncated:
            node.scanned = len(out)
            continue
        node.pending.extend(p for p in range(node.scanned, len(out)) if out[p] == runtime.fork_id)
        node.scanned = len(out)


def _spawn_ready(scheduler, runtime: AparRuntime, node: AparNode) -> None:
    """Start the children whose fork token the parent's KV already covers."""
    req = node.req
    while node.pending:
        p = node.pending[0]
        kv_ready = req.kv.kv_committed_len >= len(req.origin_input_ids) + p + 1
        if not (kv_ready or req.finished()) or not runtime.may_spawn(node):
            return
        node.pending.pop(0)
        _spawn_child(scheduler, runtime, node, p)


def _spawn_child(scheduler, runtime: AparRuntime, node: AparNode, p: int) -> None:
    from sglang.srt.managers.schedule_batch import Req
    from sglang.srt.managers.utils import validate_input_length
    from sglang.srt.runtime_context import get_serving

    parent, tree = node.req, node.tree
    if env.test_fault() == "spawn":
        raise RuntimeError("fault injected by APAR_TEST_FAULT=spawn")
    if not parent.finished():
        _checkpoint(scheduler, parent)  # a finished parent's KV is already in the tree
    ids = array("q", parent.origin_input_ids)
    ids.extend(parent.output_ids[: p + 1])
    ids.append(runtime.child_id)
    params = copy.copy(parent.sampling_params)
    params.max_new_tokens = max(tree.max_new_tokens - tree.generated(), 1)
    child = Req(
        f"{parent.rid}-fork{len(node.children)}",
        "",
        ids,
        params,
        eos_token_ids=scheduler.model_config.hf_eos_token_id,
        vocab_size=scheduler.model_config.vocab_size,
        http_worker_ipc=parent.http_worker_ipc,
        lora_id=parent.lora_id,
        extra_key=parent.extra_key,
        priority=parent.priority,
    )
    child.tokenizer = scheduler.tokenizer
    child.logprob_start_len = -1  # what the normal path sets without return_logprob
    runtime.add_node(tree, child, parent=node, fork_pos=p)
    anpd_worker.inherit_table(parent.rid, child.rid)  # no-op unless ANPD drafts
    scheduler.init_req_max_new_tokens(child)
    error = validate_input_length(
        child, scheduler.max_req_input_len, get_serving().allow_auto_truncate
    )
    if error:
        logger.warning("APAR child %s rejected: %s", child.rid, error)
        child.set_finish_with_abort(error)
    if error or not scheduler.grammar_manager.process_req_with_grammar(child):
        scheduler._add_request_to_queue(child)


def _checkpoint(scheduler, req) -> None:
    """Insert the parent's computed tokens into the radix tree (as chunked prefill does)."""
    if getattr(req, "skip_radix_cache_insert", False):
        return
    req.refresh_fill_ids()
    up_to = min(req.kv.kv_committed_len, len(req.full_untruncated_fill_ids))
    if up_to > req.kv.cache_protected_len:
        scheduler.tree_cache.checkpoint(req, up_to=up_to)


def _enforce_budget(tree: AparTree) -> None:
    if tree.truncated or tree.generated() < tree.max_new_tokens:
        return
    from sglang.srt.managers.schedule_batch import FINISH_LENGTH

    tree.truncated = True
    for node in tree.nodes:
        node.pending.clear()
        if not node.done and node.req.to_finish is None:
            node.req.to_finish = FINISH_LENGTH(length=len(node.req.output_ids))


def _emit_answers(scheduler, runtime: AparRuntime) -> None:
    for rid, tree in list(runtime.trees.items()):
        try:
            if emit_answer(scheduler, runtime, tree):
                del runtime.trees[rid]
        except Exception as exc:
            logger.exception("apar: answer of request %s failed", rid)
            fail_tree(scheduler, runtime, tree, f"apar internal error: {exc!r}")
