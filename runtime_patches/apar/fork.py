"""APAR in SGLang's scheduler: a model-emitted fork token starts a child request on the radix tree.

Per scheduler iteration:
1. `run_batch`: requests get their APAR role (`req.apar`); the fork policy
   (`--apar-fork-policy`, `apar_sgl.fork_policy`) decides once per tree, at its first
   decode batch's size, from the step times measured here; a branch past a limit or denied
   by the policy gets its fork token masked out (a -inf entry in the batch's logit-bias row,
   written only when a row's permission changes) so the model goes on serially. The decode
   step is timed.
2. `process_batch_result`, after SGLang's own processing, only for the trees with a branch in
   this batch (or waiting to start a child): new fork tokens are found; once the
   parent's KV covers one, the parent is checkpointed into the radix tree and a child
   `prompt + parent[:fork] + [child token]` (rid `{parent}-fork{n}`) is queued through the
   normal admission path, so it matches the shared prefix instead of recomputing it. Then
   the tree's answer advances by what is new (`AparTree.joined`, a `JoinCursor`) and is
   streamed (`apar.stream`).

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
import time
from array import array
from http import HTTPStatus

from apar_sgl.runtime_patches.apar.faults import fail_tree
from apar_sgl.runtime_patches.apar.state import AparNode, AparRuntime, AparTree
from apar_sgl.runtime_patches.apar.stream import reply_request, send_reply

from apar_sgl import env
from apar_sgl.config import apar_args_of

logger = logging.getLogger(__name__)


def scheduler_init(result, self, *args, **kwargs):
    """sglang.srt.managers.scheduler.Scheduler.__init__

    Resolves the control tokens at start; `--apar-mode on` without them fails here, and so
    does a scheduler process in which SGLang did not apply every apar hook. A speculative
    worker with an `on_apar_fork(parent_rid, child_rid)` method hears of every child.
    """
    from apar_sgl.runtime_patches import check_hooks_applied

    check_hooks_applied()
    self.apar = (
        AparRuntime.from_tokenizer(apar_args_of(self.server_args), self.tokenizer)
        if self.is_generation
        else None
    )
    listener = getattr(getattr(self, "draft_worker", None), "on_apar_fork", None)
    if self.apar is not None and listener is not None:
        self.apar.on_spawn.append(listener)
    return result


def run_batch(original, self, batch, *args, **kwargs):
    """sglang.srt.managers.scheduler.Scheduler.run_batch"""
    runtime: AparRuntime | None = getattr(self, "apar", None)
    if runtime is None or not batch.reqs:
        return original(self, batch, *args, **kwargs)
    for req in batch.reqs:
        if not hasattr(req, "apar"):
            _adopt(self, runtime, req)
    decode = batch.forward_mode.is_decode()
    if decode:
        _decide_forks(runtime, batch)
    _mask_fork_token(runtime, batch)
    started = time.perf_counter()
    out = original(self, batch, *args, **kwargs)
    if decode:  # a CPU step is synchronous; on a GPU with overlap this is the launch time
        runtime.step_times.observe(len(batch.reqs), time.perf_counter() - started)
    return out


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
    _send_replies(self, runtime, list(runtime.trees.values()))
    return out


def send_abort_output(original, self, abort_req, req):
    """sglang.srt.managers.scheduler.Scheduler.send_abort_output

    A branch dropped from the waiting queue is reported through its tree's answer.
    """
    runtime: AparRuntime | None = getattr(self, "apar", None)
    if runtime is None or getattr(req, "apar", None) is None:
        return original(self, abort_req, req)
    from sglang.srt.managers.schedule_batch import FINISH_ABORT

    if req.finished_reason is None:
        req.finished_reason = FINISH_ABORT()
    tree = req.apar.tree
    runtime.revisit[tree.root.req.rid] = tree
    return None


def _adopt(scheduler, runtime: AparRuntime, req) -> None:
    """Make `req` the root of a fork tree, or mark it as a plain request (`req.apar = None`).

    A request apar cannot adopt fails alone, with an error its client sees.
    """
    req.apar = None
    if not _apar_wanted(req):
        return
    try:
        runtime.start_tree(req, reply_request(scheduler, req))
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


def _decide_forks(runtime: AparRuntime, batch) -> None:
    """Give each tree its fork verdict once, at its first decode step, at this batch's size.

    A verdict that changed mid-answer would leave the model a context it was never trained on
    (some items forked, the next one's fork token masked), so an answer is either the model's
    whole tree or its serial answer. Each tree counts the steps its verdict allowed or masked.
    """
    decision = None
    seen: set[int] = set()
    for req in batch.reqs:
        node = req.apar
        if node is None or id(node.tree) in seen:
            continue
        tree = node.tree
        seen.add(id(tree))
        if tree.fork_decision is None:
            decision = decision or runtime.decide_forks(len(batch.reqs))
            tree.fork_decision = decision
        tree.fork_steps[0 if tree.fork_decision.allow else 1] += 1


def _mask_fork_token(runtime: AparRuntime, batch) -> None:
    """Set each row's fork-token logit bias: -inf where the branch may not fork now.

    The bias tensor is only touched when a row's permission changed: `runtime.bias_written`
    remembers the tensor last written and its blocked rows (SGLang makes a new tensor when
    the batch's rows change, so the same tensor means the same rows).
    """
    info = batch.sampling_info
    if info is None:
        return
    allowed: dict[int, bool] = {}  # the tree-wide part of may_fork, once per tree
    blocked = tuple(
        i
        for i, req in enumerate(batch.reqs)
        if req.apar is not None and not req.finished() and not _may_fork(runtime, req, allowed)
    )
    bias = info.logit_bias
    if bias is None and not blocked:
        return
    written = runtime.bias_written
    if written is not None and written[0] is bias and written[1] == blocked:
        return
    import torch

    fork = runtime.fork_id
    target = [_own_bias(req, fork) for req in batch.reqs]
    for i in blocked:
        target[i] = float("-inf")
    if bias is None:
        bias = torch.zeros(len(batch.reqs), info.vocab_size, device=info.device)
    elif bias[:, fork].tolist() == target:  # a new tensor: read its column once
        runtime.bias_written = (bias, blocked)
        return
    else:
        bias = bias.clone()  # an in-flight forward may still read the old tensor
    bias[:, fork] = torch.tensor(target, dtype=bias.dtype).to(bias.device)
    info.logit_bias = bias
    runtime.bias_written = (bias, blocked)


def _may_fork(runtime: AparRuntime, req, allowed: dict[int, bool]) -> bool:
    node, tree = req.apar, req.apar.tree
    if node.depth >= tree.limits.max_depth:
        return False
    if id(tree) not in allowed:
        allowed[id(tree)] = runtime.tree_may_fork(tree)
    return allowed[id(tree)]


def _own_bias(req, token: int) -> float:
    user = req.sampling_params.logit_bias
    return float(user.get(str(token), user.get(token, 0.0))) if user else 0.0


def _advance_trees(scheduler, runtime: AparRuntime, batch) -> None:
    """Visit the trees with a branch in this batch, plus those asking for a revisit."""
    stepped = {id(r.apar.tree): r.apar.tree for r in batch.reqs if getattr(r, "apar", None)}
    if batch.forward_mode.is_decode() or batch.forward_mode.is_extend():
        for tree in stepped.values():
            tree.record_step()
    for tree in runtime.revisit.values():
        stepped.setdefault(id(tree), tree)
    runtime.revisit.clear()
    visited = []
    for tree in stepped.values():
        rid = tree.root.req.rid
        if runtime.trees.get(rid) is not tree:
            continue  # answered or failed already
        try:
            _find_forks(runtime, tree)
            for node in list(tree.nodes):
                _spawn_ready(scheduler, runtime, node)
            _enforce_budget(tree)
            if tree.pending_forks():
                runtime.revisit[rid] = tree
            visited.append(tree)
        except Exception as exc:
            logger.exception("apar: fork tree of request %s failed", rid)
            fail_tree(scheduler, runtime, tree, f"apar internal error: {exc!r}")
    _send_replies(scheduler, runtime, visited)


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
    scheduler.init_req_max_new_tokens(child)
    error = validate_input_length(
        child, scheduler.max_req_input_len, get_serving().allow_auto_truncate
    )
    if env.test_fault() == "reject":
        error = "child rejected by APAR_TEST_FAULT=reject"
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


def _send_replies(scheduler, runtime: AparRuntime, trees: list[AparTree]) -> None:
    for tree in trees:
        rid = tree.root.req.rid
        try:
            if send_reply(scheduler, runtime, tree):
                del runtime.trees[rid]
                runtime.revisit.pop(rid, None)
        except Exception as exc:
            logger.exception("apar: answer of request %s failed", rid)
            fail_tree(scheduler, runtime, tree, f"apar internal error: {exc!r}")
