"""Live-work counters in SGLang's `/get_server_info` (`internal_states[i]["apar"]`).

APAR's live trees, branches and pending forks, and the scheduler's running and waiting
requests: after a load or fault run they prove nothing was left behind.
"""

from __future__ import annotations

STATE_KEY = "apar"


def add_internal_state(result, self, recv_req):
    """sglang.srt.managers.scheduler_components.internal_state.SchedulerInternalStateController.get_internal_state"""
    scheduler = self.scheduler
    runtime = getattr(scheduler, "apar", None)
    result.internal_state[STATE_KEY] = {
        "running_reqs": len(scheduler.running_batch.reqs),
        "waiting_reqs": len(scheduler.waiting_queue),
        **(counters(runtime) if runtime is not None else {}),
    }
    return result


def counters(runtime) -> dict[str, int]:
    trees = list(runtime.trees.values())
    return {
        "live_trees": len(trees),
        "live_branches": sum(1 for tree in trees for node in tree.nodes if not node.done),
        "pending_forks": sum(tree.pending_forks() for tree in trees),
    }
