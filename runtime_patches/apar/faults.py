"""Fault isolation for apar's scheduler hooks: our bug fails its own requests, never the server.

SGLang kills the whole server when its scheduler loop raises. Every scheduler-side AROUND hook
is registered through `isolate`: an exception raised by apar's code (not by SGLang's original
function, which propagates unchanged) is logged once with the request ids it concerns, those
requests' fork trees end with an error finish reason the client sees, and the loop goes on.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus

logger = logging.getLogger(__name__)


def isolate(hook: Callable) -> Callable:
    """`hook(original, self, *args)` with its own exceptions contained (see the module doc)."""

    @functools.wraps(hook)
    def isolated(original, self, *args, **kwargs):
        calls: list = []  # [result] once the original returned
        upstream_error: list[BaseException] = []

        def tracked(*a, **kw):
            try:
                result = original(*a, **kw)
            except BaseException as exc:
                upstream_error.append(exc)
                raise
            calls.append(result)
            return result

        try:
            return hook(tracked, self, *args, **kwargs)
        except Exception as exc:
            if upstream_error and exc is upstream_error[0]:
                raise
            _contain(self, hook.__name__, args, exc)
            return calls[0] if calls else original(self, *args, **kwargs)

    return isolated


def _contain(owner, hook_name: str, args: tuple, exc: Exception) -> None:
    scheduler = owner if hasattr(owner, "apar") else getattr(owner, "scheduler", None)
    runtime = getattr(scheduler, "apar", None)
    trees = {id(t): t for t in _trees_of(args)}
    logger.error(
        "apar: %s raised %r for requests %s; they end with an error, the server goes on",
        hook_name,
        exc,
        sorted(t.root.req.rid for t in trees.values()) or "(none)",
        exc_info=exc,
    )
    if runtime is None:
        return
    for tree in trees.values():
        fail_tree(scheduler, runtime, tree, f"apar internal error in {hook_name}: {exc!r}")


def fail_tree(scheduler, runtime, tree, message: str) -> None:
    """End every branch of `tree` and send its client an error; apar forgets the tree."""
    from sglang.srt.managers.io_struct import AbortReq
    from sglang.srt.managers.schedule_batch import FINISH_ABORT

    rid = tree.root.req.rid
    if runtime.trees.pop(rid, None) is None:
        return  # already failed or answered
    tree.aborted = True
    for node in tree.nodes:
        node.pending.clear()
    reply = tree.reply
    reply.finished_reason = FINISH_ABORT(
        message, HTTPStatus.INTERNAL_SERVER_ERROR, "InternalServerError"
    )
    reply.finished_len = len(reply.output_ids)
    for step in (
        # SGLang's own abort path drops queued branches and finishes running ones.
        lambda: scheduler.abort_request(AbortReq(rid=rid)),
        lambda: scheduler.output_streamer.stream_output([reply], False),
    ):
        try:
            step()
        except Exception:
            logger.exception("apar: could not finish failed request %s cleanly", rid)


def _trees_of(args: Iterable) -> list:
    """The fork trees of the requests among a hook's arguments (a batch, a list, a request)."""
    reqs: list = []
    for arg in args:
        if hasattr(arg, "reqs") and isinstance(arg.reqs, list):
            reqs += arg.reqs
        elif isinstance(arg, list):
            reqs += [r for r in arg if hasattr(r, "rid")]
        elif hasattr(arg, "rid") and hasattr(arg, "sampling_params"):
            reqs.append(arg)
    return [r.apar.tree for r in reqs if getattr(r, "apar", None) is not None]
