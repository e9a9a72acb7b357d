"""ANPD in SGLang: `--speculative-algorithm ANPD`, drafts from `apar_sgl.ngram.drafter`.

SGLang seams: `SpeculativeAlgorithm.register("ANPD", ...)` (`spec_registry`) with a worker
that subclasses `NGRAMWorker` and feeds its verify path (pinned by
tests/contract/test_ngram_worker.py), and AFTER hooks: one adds the drafter's counters to
the scheduler's internal state, two free the tables of requests that finished or were aborted.
"""

from __future__ import annotations

from apar_sgl.runtime_patches import Hook


def hooks() -> list[Hook]:
    from apar_sgl.runtime_patches.anpd import worker

    target = (
        "sglang.srt.managers.scheduler_components.internal_state"
        ".SchedulerInternalStateController._add_speculative"
    )
    return [
        Hook(target, "AFTER", worker.add_speculative_state),
        Hook(
            "sglang.srt.managers.scheduler.Scheduler.process_batch_result",
            "AFTER",
            worker.release_finished,
        ),
        Hook(
            "sglang.srt.managers.scheduler.Scheduler.abort_request", "AFTER", worker.release_aborted
        ),
    ]
