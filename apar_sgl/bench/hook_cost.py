"""Per-step cost of the APAR scheduler hooks' own work, without a model.

`python -m apar_sgl.bench.hook_cost` builds real SGLang requests (`Req`) in APAR trees and runs
`run_batch` and `process_batch_result` the way the scheduler does, with SGLang's own part of
each hook replaced by a no-op, so the time measured is apar's alone. Each step appends one
token to every branch of the batch. Scenarios at each batch size B: B plain trees (one branch
each, no forks) and B/4 forking trees (a root and 3 children, all decoding), each beside
`--idle` trees that wait without a branch in the batch. Given `--step-ms B=ms,...` (decode
step times measured on a real run; `meta_info["apar"]["fork_policy"]["step_ms"]` reports the
runtime's), it also prints the hooks' share of a step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

VOCAB = 49152
FORK, CHILD, TOKEN = 49150, 49151, 42


class _Streamer:
    """Stands in for SGLang's output streamer: counts what would go to the detokenizer."""

    def __init__(self) -> None:
        self.sent = 0

    def stream_output(self, reqs, return_logprob, skip_req=None) -> None:
        self.sent += len(reqs)


def _req(rid: str, prompt_len: int, max_new_tokens: int):
    from sglang.srt.managers.schedule_batch import Req
    from sglang.srt.sampling.sampling_params import SamplingParams

    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    req = Req(rid, "", list(range(1, prompt_len + 1)), params, vocab_size=VOCAB)
    req.tokenizer = None
    return req


def _scheduler():
    from apar_sgl.config import AparArgs
    from apar_sgl.runtime_patches.apar.state import AparRuntime

    runtime = AparRuntime(AparArgs(apar_max_branches=1 << 20), FORK, CHILD)
    return SimpleNamespace(
        apar=runtime,
        output_streamer=_Streamer(),
        model_config=SimpleNamespace(hf_eos_token_id={2}, vocab_size=VOCAB),
    )


def _tree(scheduler, rid: str, children: int, max_new_tokens: int) -> list:
    """A tree whose root forked `children` times at its start; returns its branches' requests."""
    from apar_sgl.runtime_patches.apar.fork import _adopt

    root = _req(rid, 64, max_new_tokens)
    _adopt(scheduler, scheduler.apar, root)
    reqs = [root]
    for k in range(children):
        root.output_ids.append(FORK)
        child = _req(f"{rid}-fork{k}", 64 + k + 2, max_new_tokens)
        scheduler.apar.add_node(root.apar.tree, child, parent=root.apar, fork_pos=k)
        reqs.append(child)
    root.apar.scanned = children
    return reqs


def measure(batch_size: int, forking: bool, idle: int, steps: int) -> float:
    """Mean microseconds of apar's work per scheduler step (run_batch + process_batch_result).

    Measured as this thread's CPU time, so time the machine gives other processes (it is
    shared) is not counted.
    """
    from sglang.srt.model_executor.forward_batch_info import ForwardMode

    from apar_sgl.runtime_patches.apar import fork as apar_fork

    scheduler = _scheduler()
    width = 4 if forking else 1
    budget = 1 << 20
    rows = []
    for t in range(max(1, batch_size // width)):
        rows += _tree(scheduler, f"t{t}", width - 1, budget)
    for t in range(idle):
        _tree(scheduler, f"idle{t}", 0, budget)
    info = SimpleNamespace(logit_bias=None, vocab_size=VOCAB, device="cpu")
    batch = SimpleNamespace(reqs=rows, forward_mode=ForwardMode.DECODE, sampling_info=info)

    def noop(*args, **kwargs):
        return None

    times = []
    for _ in range(steps):
        for req in rows:
            req.output_ids.append(TOKEN)
        started = time.thread_time()
        apar_fork.run_batch(noop, scheduler, batch)
        apar_fork.process_batch_result(noop, scheduler, batch, None)
        times.append(time.thread_time() - started)
    return 1e6 * statistics.fmean(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1,16,64", help="batch sizes (rows)")
    parser.add_argument("--steps", type=int, default=256, help="decode steps per scenario")
    parser.add_argument("--idle", type=int, default=0, help="extra trees with no branch in batch")
    parser.add_argument("--step-ms", default="", help="measured step times: B=ms,B=ms")
    args = parser.parse_args(argv)
    step_ms = {int(k): float(v) for k, v in (p.split("=") for p in args.step_ms.split(",") if p)}
    print(f"steps={args.steps} idle_trees={args.idle}; microseconds of apar work per step")
    print(f"{'batch':>5} {'trees':>8} {'us/step':>9} {'share':>8}")
    for batch_size in (int(b) for b in args.batch.split(",")):
        for forking in (False, True):
            us = measure(batch_size, forking, args.idle, args.steps)
            share = f"{us / 10 / step_ms[batch_size]:.2f}%" if batch_size in step_ms else "-"
            kind = "forking" if forking else "plain"
            print(f"{batch_size:>5} {kind:>8} {us:>9.1f} {share:>8}")


if __name__ == "__main__":
    main()
