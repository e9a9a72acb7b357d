"""Every piece of SGLang's `NGRAMWorker` that `AnpdWorker` (runtime_patches/anpd/worker.py)
relies on, pinned in the pinned SGLang.

`AnpdWorker` skips `NGRAMWorker.__init__` (it would build the C++ corpus) and sets the
attributes upstream's methods read itself, overrides the draft step and inherits the verify
step. An SGLang upgrade that adds an attribute, renames a method or changes a helper's
parameters must fail here, not in the scheduler. When SGLang is upgraded on purpose, check
`AnpdWorker` against the new `ngram_worker.py` before updating what is recorded.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
from pathlib import Path

import pytest

WORKER_SOURCE = Path(__file__).parents[2] / "runtime_patches" / "anpd" / "worker.py"

# NGRAMWorker methods AnpdWorker overrides or inherits and calls, with their parameters.
RECORDED_METHODS: dict[str, tuple[str, ...]] = {
    "__init__": ("self", "server_args", "gpu_id", "nccl_port", "target_worker"),
    "forward_batch_generation": ("self", "batch", "on_publish", "pp_proxy_tensors"),
    "_prepare_for_speculative_decoding": ("self", "batch"),
    "_update_ngram_corpus": ("self", "batch"),
    "add_external_corpus": ("self", "corpus_id", "token_chunks"),
    "clear_cache_pool": ("self",),
    "alloc_memory_pool": ("self", "kwargs"),
}

# Everything NGRAMWorker.__init__ sets; AnpdWorker.__init__ must set each one itself.
RECORDED_INIT_ATTRIBUTES = {
    "server_args",
    "enable_overlap",
    "_target_worker",
    "model_runner",
    "page_size",
    "draft_token_num",
    "max_trie_depth",
    "speculative_num_draft_tokens",
    "topk",
    "speculative_num_steps",
    "device",
    "adaptive_controller",
    "_prev_decode_rids",
    "grammar_tree_host",
    "ngram_corpus",
}

# The upstream methods AnpdWorker inherits and runs (verify, cache reset).
INHERITED = ("forward_batch_generation", "clear_cache_pool")


def _ngram_worker():
    from sglang.srt.speculative.ngram_worker import NGRAMWorker

    return NGRAMWorker


def _source(fn) -> str:
    return textwrap.dedent(inspect.getsource(fn))


def _self_assignments(source: str) -> set[str]:
    return set(re.findall(r"self\.(\w+)\s*(?::[^=\n]+)?=(?!=)", source))


def _anpd_class(name: str) -> ast.ClassDef:
    tree = ast.parse(WORKER_SOURCE.read_text())
    return next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name)


def _anpd_init_attributes() -> set[str]:
    init = next(n for n in _anpd_class("AnpdWorker").body if getattr(n, "name", "") == "__init__")
    return _self_assignments(ast.unparse(init))


@pytest.mark.parametrize("name", sorted(RECORDED_METHODS))
def test_ngram_worker_method_is_unchanged(name):
    params = tuple(inspect.signature(getattr(_ngram_worker(), name)).parameters)
    assert params == RECORDED_METHODS[name], f"NGRAMWorker.{name} now takes {params}"


def test_ngram_worker_init_sets_the_recorded_attributes():
    assert _self_assignments(_source(_ngram_worker().__init__)) == RECORDED_INIT_ATTRIBUTES


def test_anpd_worker_init_sets_every_upstream_attribute():
    assert RECORDED_INIT_ATTRIBUTES - _anpd_init_attributes() == set()


def test_inherited_methods_read_only_what_anpd_worker_provides():
    """Every `self.x` upstream's verify step reads exists on an AnpdWorker."""
    cls = _ngram_worker()
    read = set().union(*(re.findall(r"self\.(\w+)", _source(getattr(cls, m))) for m in INHERITED))
    allocated = _self_assignments(_source(cls.alloc_memory_pool))
    provided = _anpd_init_attributes() | allocated | set(dir(cls))
    assert read - provided == set()


def test_inherited_methods_call_only_what_the_corpus_facade_has():
    cls = _ngram_worker()
    called = set().union(
        *(re.findall(r"self\.ngram_corpus\.(\w+)\(", _source(getattr(cls, m))) for m in INHERITED)
    )
    facade = {n.name for n in _anpd_class("_CorpusFacade").body if isinstance(n, ast.FunctionDef)}
    assert called and called <= facade


def test_base_spec_worker_init_and_target_worker():
    from sglang.srt.speculative.base_spec_worker import BaseSpecWorker

    assert tuple(inspect.signature(BaseSpecWorker.__init__).parameters) == ("self",)
    assert isinstance(inspect.getattr_static(BaseSpecWorker, "target_worker"), property)


def test_verify_helpers_take_what_the_worker_passes():
    from sglang.kernels.ops.speculative.cache_locs import assign_extend_cache_locs_func
    from sglang.kernels.ops.speculative.reconstruct_tree import (
        reconstruct_indices_from_tree_mask_func,
    )
    from sglang.srt.managers.overlap_utils import FutureMap
    from sglang.srt.speculative.spec_utils import prepare_mamba_track_for_verify

    def params(fn) -> tuple[str, ...]:
        return tuple(inspect.signature(fn).parameters)

    assert params(assign_extend_cache_locs_func) == (
        "req_pool_indices",
        "req_to_token",
        "start_offset",
        "end_offset",
        "batch_size",
        "draft_token_num",
        "device",
    )
    assert params(reconstruct_indices_from_tree_mask_func) == (
        "tree_mask",
        "verified_seq_len",
        "positions",
        "retrieve_index",
        "retrieve_next_token",
        "retrieve_next_sibling",
        "batch_size",
        "draft_token_num",
    )
    assert params(prepare_mamba_track_for_verify) == ("batch",)
    assert params(FutureMap) == (
        "device",
        "spec_algo",
        "req_to_token_pool",
        "needs_cpu_seq_lens",
        "needs_confidence_relay",
    )


def test_verify_input_and_batch_result_have_the_fields_the_worker_sets():
    from sglang.srt.managers.scheduler import GenerationBatchResult
    from sglang.srt.speculative.ngram_info import NgramVerifyInput

    verify_fields = set(inspect.signature(NgramVerifyInput).parameters)
    assert {
        "draft_token",
        "custom_mask",
        "positions",
        "retrieve_index",
        "retrieve_next_token",
        "retrieve_next_sibling",
        "draft_token_num",
        "new_seq_lens",
        "accept_tokens",
        "accept_lens",
    } <= verify_fields
    result_fields = {f.name for f in dataclasses.fields(GenerationBatchResult)}
    assert {
        "accept_lens",
        "new_seq_lens",
        "speculative_num_draft_tokens",
        "next_token_ids",
        "next_draft_input",
    } <= result_fields


def test_schedule_batch_has_what_the_plain_decode_step_touches():
    from sglang.srt.managers.schedule_batch import ScheduleBatch

    fields = {f.name for f in dataclasses.fields(ScheduleBatch)}
    touched = {
        "reqs",
        "forward_mode",
        "spec_info",
        "input_ids",
        "out_cache_loc",
        "seq_lens",
        "seq_lens_cpu",
        "orig_seq_lens",
        "seq_lens_sum",
        "req_to_token_pool",
        "req_pool_indices",
        "return_logprob",
    }
    assert touched - fields == set()
    assert hasattr(ScheduleBatch, "has_grammar")


def test_custom_spec_algo_has_the_methods_anpd_overrides():
    """SGLang calls these on the algorithm object; AnpdSpecAlgo overrides them."""
    from sglang.srt.speculative.spec_registry import CustomSpecAlgo

    for name in ("is_ngram", "has_draft_kv", "handle_server_args"):
        assert name in CustomSpecAlgo.__dict__, name
    assert len(inspect.signature(CustomSpecAlgo.handle_server_args).parameters) == 2  # self, args
