"""`--speculative-algorithm ANPD`: SGLang's NGRAM verify path with our adaptive n-gram drafter.

ANPD replaces only the drafter. `AnpdWorker` subclasses SGLang's `NGRAMWorker` and keeps its
verify (tree mask, `eagle_sample`, KV moves, grammar bitmask over the draft tree), so a GPU host
runs SGLang's own kernels and a CPU host our platform's stand-ins. Differences from NGRAM:
- drafts come from a per-request `NgramTable` (seeded from the prompt, fed accepted tokens),
  not a corpus shared by all requests;
- the verify width follows the batch: 1 + the longest draft this step, which a per-request
  `DraftLengthController`, a batch token budget and (by default) the measured cost of decode
  and verify steps keep short under load or low acceptance. Results are padded back to the
  configured width, so SGLang's scheduler sees NGRAM's fixed row stride;
- a step where no request drafts runs SGLang's plain decode forward instead of a width-1
  verify (when the model runs eagerly and no request wants logprobs), so not drafting costs
  what plain decoding costs.
`AnpdWorker.on_apar_fork(parent_rid, child_rid)`, which the APAR runtime calls for each child
it spawns (`AparRuntime.on_spawn`), gives the child its parent's table (and its siblings'
family table). With an xgrammar grammar (SGLang's default backend), drafts the request's matcher
rejects are cut before verification; other backends keep them (verify masks them anyway).
`add_speculative_state` reports the drafter's counters in `Engine.get_server_info()
["internal_states"][0]["anpd"]`.
"""

from __future__ import annotations

import logging
import time

import torch

from apar_sgl import env
from apar_sgl.config import apar_args_of
from apar_sgl.ngram.drafter import AnpdDrafter, BatchDraft
from apar_sgl.ngram.settings import AnpdSettings

logger = logging.getLogger(__name__)

ALGORITHM = "ANPD"
STATE_KEY = "anpd"
DEFAULT_WIDTH = 8  # root + 7 drafts; measured acceptance on chat text rarely passes 6
DEFAULT_MAX_RUNNING_REQUESTS = 48  # as SGLang sets for NGRAM


def add_speculative_state(result, self, state):
    """sglang.srt.managers.scheduler_components.internal_state.SchedulerInternalStateController._add_speculative

    Adds the ANPD drafter's counters and step times (`AnpdDrafter.report`) to the
    scheduler's internal state.
    """
    worker = getattr(self.scheduler, "draft_worker", None)
    drafter = getattr(worker, "drafter", None)
    if isinstance(drafter, AnpdDrafter):
        state[STATE_KEY] = drafter.report()
    return result


def release_finished(result, self, batch, *args, **kwargs):
    """sglang.srt.managers.scheduler.Scheduler.process_batch_result

    Frees the n-gram tables of the requests that finished in this step (the worker itself
    only sees a request leave at the next decode batch, which an idle server never runs).
    Bookkeeping only: a failure here is logged, never raised into the scheduler loop.
    """
    drafter = getattr(getattr(self, "draft_worker", None), "drafter", None)
    if isinstance(drafter, AnpdDrafter) and batch is not None:
        try:
            drafter.release([r.rid for r in batch.reqs if r.finished()])
        except Exception:
            logger.exception("anpd: releasing the tables of finished requests failed")
    return result


def release_aborted(result, self, recv_req, *args, **kwargs):
    """sglang.srt.managers.scheduler.Scheduler.abort_request

    Frees the tables of aborted requests, APAR children still queued among them (they got
    their parent's table at the fork and never reach a decode batch). Bookkeeping only.
    """
    drafter = getattr(getattr(self, "draft_worker", None), "drafter", None)
    if isinstance(drafter, AnpdDrafter):
        try:
            everything, prefix = getattr(recv_req, "abort_all", False), recv_req.rid or ""
            drafter.release(
                [rid for rid in drafter.tables.rids() if everything or rid.startswith(prefix)]
            )
        except Exception:
            logger.exception("anpd: releasing the tables of aborted requests failed")
    return result


def register_algorithm() -> None:
    """Register ANPD with SGLang's speculative registry (idempotent; every SGLang process)."""
    from sglang.srt.speculative.spec_info import SpeculativeAlgorithm
    from sglang.srt.speculative.spec_registry import get_spec

    if get_spec(ALGORITHM) is not None:
        return
    SpeculativeAlgorithm.register(ALGORITHM, spec_class=_spec_class())(_worker_class)


def _worker_class(server_args) -> type:
    return _make_worker_class()


def _spec_class() -> type:
    from sglang.srt.speculative.spec_registry import CustomSpecAlgo

    class AnpdSpecAlgo(CustomSpecAlgo):
        """NGRAM-shaped for SGLang's scheduler: no draft model, no draft KV, tree verify."""

        def is_ngram(self) -> bool:
            return True

        def has_draft_kv(self) -> bool:
            return False

        # SGLang 0.5.23 calls these on every algorithm but CustomSpecAlgo lacks them.
        def carries_draft_hidden_states(self) -> bool:
            return False

        def need_topk(self) -> bool:
            return False

        def get_platform_worker_cls(self):
            return None

        def create_future_map(
            self, device, req_to_token_pool, needs_cpu_seq_lens=True, needs_confidence_relay=False
        ):
            from sglang.srt.managers.overlap_utils import FutureMap

            return FutureMap(
                device, self, req_to_token_pool, needs_cpu_seq_lens, needs_confidence_relay
            )

        def handle_server_args(self, cfg) -> None:
            # The drafter reads req.output_ids, complete only without the overlap scheduler.
            cfg.disable_overlap_schedule = True
            cfg.enable_mixed_chunk = False
            if cfg.max_running_requests is None:
                cfg.max_running_requests = DEFAULT_MAX_RUNNING_REQUESTS
            if cfg.speculative_num_draft_tokens is None:
                cfg.speculative_num_draft_tokens = DEFAULT_WIDTH
            # KV reserved per decode step is max(steps * topk, draft tokens): the full width.
            cfg.speculative_eagle_topk = 1
            cfg.speculative_num_steps = cfg.speculative_num_draft_tokens - 1

    return AnpdSpecAlgo


def _make_worker_class() -> type:
    from sglang.kernels.ops.speculative.cache_locs import assign_extend_cache_locs_func
    from sglang.kernels.ops.speculative.reconstruct_tree import (
        reconstruct_indices_from_tree_mask_func,
    )
    from sglang.srt.model_executor.forward_batch_info import ForwardMode
    from sglang.srt.runtime_context import get_device, get_schedule, get_spec
    from sglang.srt.speculative.base_spec_worker import BaseSpecWorker
    from sglang.srt.speculative.ngram_info import NgramVerifyInput
    from sglang.srt.speculative.ngram_worker import NGRAMWorker
    from sglang.srt.speculative.spec_utils import prepare_mamba_track_for_verify
    from sglang.srt.utils import is_cpu as _is_cpu

    class AnpdWorker(NGRAMWorker):
        """NGRAMWorker with the corpus swapped for `AnpdDrafter` and a per-batch verify width."""

        def __init__(self, server_args, gpu_id, nccl_port, target_worker) -> None:
            BaseSpecWorker.__init__(self)
            spec = get_spec()
            self.server_args = server_args
            self.enable_overlap = False
            self._target_worker = target_worker
            self.model_runner = target_worker.model_runner
            self.page_size = get_schedule().page_size
            self.device = get_device().device
            self.max_width = spec.speculative_num_draft_tokens
            self.draft_token_num = self.max_width  # this step's width, read by NGRAM's verify
            self.speculative_num_draft_tokens = self.max_width
            self.max_trie_depth = 0
            self.topk = spec.speculative_eagle_topk
            self.speculative_num_steps = spec.speculative_num_steps
            self.adaptive_controller = None
            self.grammar_tree_host = None
            self._prev_decode_rids: set = set()
            settings = AnpdSettings.from_args(apar_args_of(server_args), self.max_width)
            self.drafter = AnpdDrafter(settings)
            self.ngram_corpus = _CorpusFacade(self.drafter)
            self._decoded_rids: list[str] = []
            self._fail_drafting = env.test_fault() == "draft"  # read once, not every step

        def on_apar_fork(self, parent_rid: str, child_rid: str) -> bool:
            """Start an APAR child's n-gram table as a copy of its parent's; False if none."""
            return self.drafter.inherit(parent_rid, child_rid)

        def forward_batch_generation(self, batch, on_publish=None, pp_proxy_tensors=None):
            self._decoded_rids = []
            self._draft = self._draft_batch(batch) if batch.forward_mode.is_decode() else None
            plain = self._draft is not None and self._draft.width == 1 and self._runs_plainly(batch)
            started = time.perf_counter()
            if plain:
                result = self._decode_without_drafts(batch, on_publish)
            else:
                result = super().forward_batch_generation(batch, on_publish, pp_proxy_tensors)
            if self._decoded_rids:
                accepted = (result.accept_lens - 1).tolist()  # waits for the forward pass
                self._learn(plain, accepted, time.perf_counter() - started)
                self._pad_to_max_width(result, len(self._decoded_rids))
            self.draft_token_num = self.max_width
            return result

        def _draft_batch(self, batch) -> BatchDraft:
            """The batch's drafts; if our drafting code fails, a step with no drafts (the
            requests decode on, their tables start over), never an error in the scheduler."""
            reqs = batch.reqs
            self._decoded_rids = [r.rid for r in reqs]
            prompts = [r.origin_input_ids_unpadded for r in reqs]
            outputs = [r.output_ids for r in reqs]
            try:
                if self._fail_drafting:
                    raise RuntimeError("fault injected by APAR_TEST_FAULT=draft")
                return self.drafter.draft_batch(
                    self._decoded_rids,
                    prompts,
                    outputs,
                    [_grammar_cursor(r.grammar) for r in reqs] if batch.has_grammar else None,
                )
            except Exception:
                self._forget_after_error("drafting")
                return self.drafter.plain_draft(prompts, outputs)

        def _learn(self, plain: bool, accepted: list[int], seconds: float) -> None:
            """Feed the step's outcome to the drafter (acceptance, step cost), contained."""
            try:
                self.drafter.observe_step(
                    verified=not plain, tokens=len(accepted) * self._draft.width, seconds=seconds
                )
                self.drafter.record(self._decoded_rids, accepted)
            except Exception:
                self._forget_after_error("recording a step")

        def _forget_after_error(self, what: str) -> None:
            logger.exception(
                "anpd: %s failed for requests %s; their n-gram tables start over",
                what,
                self._decoded_rids,
            )
            self.drafter.release(self._decoded_rids)

        def _runs_plainly(self, batch) -> bool:
            """A no-draft step may skip verify: eager forward only (a captured graph is
            verify-shaped) and no logprobs (SGLang reads those in verify's layout)."""
            return not self.model_runner.decode_cuda_graph_runner and not batch.return_logprob

        def _decode_without_drafts(self, batch, on_publish):
            """SGLang's plain decode forward for a batch with no drafts, in NGRAM's result
            shape (one accepted token per request). The scheduler restores the batch after."""
            start = batch.seq_lens
            batch.forward_mode = ForwardMode.DECODE
            batch.spec_info = None
            batch.input_ids = torch.from_numpy(self._draft.tokens).to(self.device)
            batch.out_cache_loc = batch.req_to_token_pool.req_to_token[
                batch.req_pool_indices, start
            ].to(torch.int64)
            batch.seq_lens = start + 1
            if batch.seq_lens_cpu is not None:
                batch.seq_lens_cpu = batch.seq_lens_cpu + 1
            if batch.orig_seq_lens is not None:
                batch.orig_seq_lens = batch.orig_seq_lens + 1
            batch.seq_lens_sum = None
            result = self.target_worker.forward_batch_generation(batch)
            self.drafter.stats.plain_decode_batches += 1
            bs = len(batch.reqs)
            result.accept_lens = torch.ones(bs, dtype=torch.int32, device=self.device)
            result.new_seq_lens = batch.seq_lens
            result.speculative_num_draft_tokens = self.max_width
            self.draft_token_num = 1  # the row width _pad_to_max_width pads from
            if on_publish is not None:
                on_publish(result.new_seq_lens)
            self._release_departed(batch)
            return result

        def _release_departed(self, batch) -> None:
            """Forget requests that left the decode batch (NGRAMWorker does this after verify)."""
            current = {r.rid for r in batch.reqs}
            if departed := self._prev_decode_rids - current:
                self.drafter.release(departed)
            self._prev_decode_rids = current

        def _prepare_for_speculative_decoding(self, batch) -> None:
            if not batch.forward_mode.is_decode():
                return
            draft = self._draft
            bs = len(batch.reqs)
            width = self.draft_token_num = draft.width
            tree_mask = torch.from_numpy(draft.mask).to(self.device)
            draft_tokens = torch.from_numpy(draft.tokens).to(self.device)
            positions = torch.empty(bs * width, dtype=torch.int64, device=self.device)
            links = [torch.empty((bs, width), dtype=torch.int64, device=self.device) for _ in "irs"]
            self.grammar_tree_host = (draft.mask, draft.tokens) if batch.has_grammar else None
            reconstruct_indices_from_tree_mask_func(
                tree_mask, batch.seq_lens, positions, *links, bs, width
            )
            batch.forward_mode = ForwardMode.TARGET_VERIFY
            batch.input_ids = draft_tokens
            batch.out_cache_loc = assign_extend_cache_locs_func(
                req_pool_indices=batch.req_pool_indices,
                req_to_token=batch.req_to_token_pool.req_to_token,
                start_offset=batch.seq_lens,
                end_offset=batch.seq_lens + width,
                batch_size=bs,
                draft_token_num=width,
                device=self.device,
            )
            prepare_mamba_track_for_verify(batch)
            batch.spec_info = NgramVerifyInput(
                draft_token=draft_tokens,
                custom_mask=tree_mask
                if _is_cpu()
                else _full_mask(tree_mask, batch.seq_lens, bs, width),
                positions=positions,
                retrieve_index=links[0],
                retrieve_next_token=links[1],
                retrieve_next_sibling=links[2],
                draft_token_num=width,
            )

        def _update_ngram_corpus(self, batch) -> None:
            """Tables are fed at draft time, from req.output_ids (complete without overlap)."""

        def _pad_to_max_width(self, result, bs: int) -> None:
            width = self.draft_token_num
            if width == self.max_width:
                return
            padded = result.next_token_ids.new_zeros((bs, self.max_width))
            padded[:, :width] = result.next_token_ids.view(bs, width)
            result.next_token_ids = padded.flatten()
            result.next_draft_input = NgramVerifyInput(
                draft_token_num=self.max_width,
                new_seq_lens=result.new_seq_lens,
                accept_tokens=result.next_token_ids,
                accept_lens=result.accept_lens,
            )

        def add_external_corpus(self, corpus_id, token_chunks) -> int:
            raise NotImplementedError("ANPD drafts from per-request tables; no external corpus")

    return AnpdWorker


def _full_mask(tree_mask: torch.Tensor, seq_lens: torch.Tensor, bs: int, width: int):
    """SGLang's verify mask: per request, width rows of [all prefix columns | tree columns]."""
    lens = seq_lens.to(torch.int64)
    tree = tree_mask.view(bs, width, width)
    longest = int(lens.max()) if bs else 0
    prefix = torch.arange(longest, device=tree.device)[None, None, :] < lens[:, None, None]
    rows = torch.cat([prefix.expand(bs, width, longest), tree], dim=2)
    keep = torch.cat(
        [prefix.expand(bs, width, longest), torch.ones_like(tree, dtype=torch.bool)], dim=2
    )
    return rows[keep]


class _XGrammarCursor:
    """`TokenMatcher` over an xgrammar matcher: a rejected or post-termination token is refused."""

    __slots__ = ("_matcher",)

    def __init__(self, matcher) -> None:
        self._matcher = matcher

    def accept_token(self, token: int) -> bool:
        return not self._matcher.is_terminated() and self._matcher.accept_token(token)

    def rollback(self, num_tokens: int) -> None:
        self._matcher.rollback(num_tokens)


def _grammar_cursor(grammar) -> _XGrammarCursor | None:
    """A cursor on the request's own matcher (it is rolled back after use); None: no cut."""
    from sglang.srt.constrained.xgrammar_backend import XGrammarGrammar

    if isinstance(grammar, XGrammarGrammar) and not grammar.finished:
        return _XGrammarCursor(grammar.matcher)
    return None


class _CorpusFacade:
    """What NGRAMWorker.forward_batch_generation calls on its corpus, mapped to the drafter."""

    def __init__(self, drafter: AnpdDrafter) -> None:
        self._drafter = drafter

    def synchronize(self) -> None:
        return None

    def erase_match_state(self, rids) -> None:
        self._drafter.release(rids)

    def reset(self) -> None:
        self._drafter.reset()
