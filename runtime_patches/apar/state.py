"""Per-scheduler APAR state: the control-token ids, the live fork trees and their limits.

Attached as `scheduler.apar` (an `AparRuntime`); each request of a tree carries its
`AparNode` as `req.apar`, and a request APAR does not handle carries `req.apar = None`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from apar_sgl.config import AparArgs
from apar_sgl.fork_policy import ForkDecision, StepTimes, decide
from apar_sgl.held_kv import HeldSpan, unique_kv_tokens
from apar_sgl.request_params import parse_custom_params
from apar_sgl.tree import Branch, BranchView, JoinCursor, tree_stats

logger = logging.getLogger(__name__)


class AparTokenError(RuntimeError):
    """APAR mode is on but the tokenizer lacks a control token."""


class AparLimits(NamedTuple):
    max_branches: int
    max_depth: int
    max_concurrent_children: int

    @classmethod
    def of(cls, args: AparArgs, custom_params: dict | None) -> AparLimits:
        """The server's limits, lowered by the request's `custom_params["apar_max_*"]`."""
        lowered = parse_custom_params(custom_params).limits
        return cls(
            *(
                min(getattr(args, f"apar_{name}"), lowered.get(f"apar_{name}", 1 << 30))
                for name in cls._fields
            )
        )


@dataclass(slots=True)
class AparNode:
    """One branch of a fork tree: the SGLang request decoding it and its place in the tree."""

    req: Any
    tree: AparTree
    depth: int
    parent: AparNode | None = None
    fork_pos: int = -1  # position of the fork token in the parent's output
    children: list[AparNode] = field(default_factory=list)
    scanned: int = 0  # output positions already scanned for fork tokens
    pending: list[int] = field(default_factory=list)  # fork positions awaiting their child
    final: list[int] | None = None  # output() once done; set by output()

    @property
    def done(self) -> bool:
        return self.req.finished()

    def output(self) -> list[int]:
        """Tokens this branch contributes to the answer (rules: the docstring of `apar.fork`).

        A child's final stop token is left out and its stop string trimmed; while it runs, its
        last tokens that a stop string could still trim are held back.
        """
        if self.final is not None:
            return self.final
        ids = list(self.req.output_ids_through_stop)
        if self.parent is not None:  # the root's stop string is trimmed by SGLang's detokenizer
            ids = self._child_output(ids)
        if self.done:
            self.final = ids
        return ids

    def view(self, path: str = "") -> BranchView:
        """This branch as the answer's join cursor reads it; no copy while it runs."""
        if self.done:
            final = self.output()
            return BranchView(final, len(final), True, self.children)
        ids = self.req.output_ids_through_stop
        return BranchView(ids, self._stable_len(len(ids)), False, self.children)

    def _keep_from(self) -> int:
        """Output positions up to the last fork with a child (spawned or pending) are final."""
        last = self.children[-1].fork_pos if self.children else -1
        return max([last, *self.pending]) + 1

    def _stable_len(self, length: int) -> int:
        """A running branch's tokens that no stop string can trim any more."""
        if self.parent is None:
            return length
        held = max((len(s) for s in self.req.sampling_params.stop_strs or ()), default=1) - 1
        return max(length - held, self._keep_from())

    def _child_output(self, ids: list[int]) -> list[int]:
        req = self.req
        keep_from = self._keep_from()
        if not self.done:
            return ids[: self._stable_len(len(ids))]
        if ids and _ended_on_token(req):
            return ids[:-1]
        matched = getattr(req.finished_reason, "matched", None)
        if isinstance(matched, str):
            keep = req.sampling_params.no_stop_trim
            return trim_stop_str(ids, matched, req.tokenizer, keep_stop=keep, keep_from=keep_from)
        return ids


@dataclass(slots=True)
class AparTree:
    """The fork tree of one client request; `reply` is the request the client is sent."""

    root: AparNode = field(init=False)  # set by AparRuntime.start_tree
    joined: JoinCursor = field(init=False)  # the answer's stable prefix; set by start_tree
    reply: Any  # a Req never scheduled, only streamed: the joined answer under the client's rid
    max_new_tokens: int
    limits: AparLimits
    forks: int = 0  # children spawned so far
    steps: int = 0  # scheduler iterations in which some branch generated a token
    peak_kv_tokens: int = 0
    peak_live_children: int = 0  # most children decoding (or queued) at once
    aborted: bool = False
    truncated: bool = False  # the answer budget (max_new_tokens) ran out
    nodes: list[AparNode] = field(default_factory=list)  # pre-order of creation
    fork_steps: list[int] = field(default_factory=lambda: [0, 0])  # policy: [allowed, masked]
    fork_decision: ForkDecision | None = None  # the policy's verdict, kept for the whole tree

    def live_children(self) -> int:
        return sum(1 for n in self.nodes if n.parent is not None and not n.done)

    def pending_forks(self) -> int:
        return sum(len(n.pending) for n in self.nodes)

    def generated(self) -> int:
        return sum(len(n.req.output_ids_through_stop) for n in self.nodes)

    def branch(self, node: AparNode | None = None) -> Branch[int]:
        node = node or self.root
        return Branch(node.output(), [self.branch(c) for c in node.children])

    def stable_answer(self) -> tuple[list[int], bool]:
        """The answer's stable prefix (extended by what is new since the last call; capped at
        `max_new_tokens` by the caller) and whether it is final."""
        joined = self.joined.advance()
        if self.aborted or self.truncated:
            # Children that never started contribute nothing: the answer ends before them.
            complete = all(n.done for n in self.nodes)
        else:
            complete = joined and not self.pending_forks()
        return self.joined.items, complete

    def record_step(self) -> None:
        self.steps += 1
        root = self.root
        if len(self.nodes) == 1:  # no fork yet: the root holds its own context
            if not root.done:
                held = len(root.req.origin_input_ids) + len(root.req.output_ids)
                self.peak_kv_tokens = max(self.peak_kv_tokens, held)
            return
        index = {id(n): i for i, n in enumerate(self.nodes)}
        spans = [
            HeldSpan(
                None if n.parent is None else index[id(n.parent)],
                n.fork_pos + 1,
                len(n.req.output_ids) + (n.parent is not None),
            )
            for n in self.nodes
        ]
        held = unique_kv_tokens(
            len(root.req.origin_input_ids), spans, [not n.done for n in self.nodes]
        )
        self.peak_kv_tokens = max(self.peak_kv_tokens, held)
        self.peak_live_children = max(self.peak_live_children, self.live_children())

    def stats(self, runtime: AparRuntime) -> dict[str, Any]:
        """The `meta_info["apar"]` record of a finished tree."""
        shape = tree_stats(self.branch(), runtime.fork_id, allow_missing=True)
        return {
            "branches": shape.branches,
            "max_depth": shape.max_depth,
            "total_tokens": self.generated(),
            "critical_path_steps": self.steps,
            "branch_tokens": [len(n.req.output_ids_through_stop) for n in self._preorder()],
            "peak_kv_tokens": self.peak_kv_tokens,
            "peak_live_children": self.peak_live_children,
            "branch_cached_tokens": [
                [len(n.req.origin_input_ids), n.req.cached_tokens] for n in self._preorder()
            ],
            "fork_policy": {
                "policy": runtime.args.apar_fork_policy,
                "allowed_steps": self.fork_steps[0],
                "masked_steps": self.fork_steps[1],
                "decision": None if self.fork_decision is None else self.fork_decision.as_dict(),
                "step_ms": runtime.step_times.as_ms(),
            },
        }

    def _preorder(self, node: AparNode | None = None):
        node = node or self.root
        yield node
        for child in node.children:
            yield from self._preorder(child)


@dataclass(slots=True)
class AparRuntime:
    """APAR settings and live trees of one scheduler process."""

    args: AparArgs
    fork_id: int
    child_id: int
    trees: dict[str, AparTree] = field(default_factory=dict)  # by root rid
    # Trees to visit next iteration though no branch of theirs runs (children waiting to start,
    # a branch dropped from the queue); the others are visited only when a branch stepped.
    revisit: dict[str, AparTree] = field(default_factory=dict)
    # Called as listener(parent_rid, child_rid) when a child is added, before it is queued
    # (a speculative worker that keeps per-request state registers here, e.g. ANPD's tables).
    on_spawn: list[Callable[[str, str], object]] = field(default_factory=list)
    step_times: StepTimes = field(default_factory=StepTimes)  # decode steps, by batch rows
    bias_written: tuple[Any, tuple[int, ...]] | None = None  # see fork._mask_fork_token

    @classmethod
    def from_tokenizer(cls, args: AparArgs, tokenizer) -> AparRuntime | None:
        """The runtime for this tokenizer, or None when APAR is off for this model."""
        if args.apar_mode == "off":
            return None
        ids = {t: _token_id(tokenizer, t) for t in (args.apar_fork_token, args.apar_child_token)}
        missing = [t for t, i in ids.items() if i is None]
        if missing:
            if args.apar_mode == "on":
                raise AparTokenError(
                    f"--apar-mode on, but the tokenizer has no single token for {missing}; "
                    "set --apar-fork-token/--apar-child-token to the model's control tokens "
                    "or use --apar-mode auto"
                )
            logger.info("APAR off: tokenizer lacks %s", missing)
            return None
        return cls(args, ids[args.apar_fork_token], ids[args.apar_child_token])

    def start_tree(self, req, reply) -> AparTree:
        limits = AparLimits.of(self.args, req.sampling_params.custom_params)
        tree = AparTree(reply, req.sampling_params.max_new_tokens, limits)
        tree.root = self.add_node(tree, req, parent=None, fork_pos=-1)
        tree.joined = JoinCursor(tree.root, self.fork_id, AparNode.view)
        self.trees[req.rid] = tree
        return tree

    def add_node(self, tree: AparTree, req, parent: AparNode | None, fork_pos: int) -> AparNode:
        depth = 0 if parent is None else parent.depth + 1
        node = AparNode(req, tree, depth, parent, fork_pos)
        req.apar = node
        tree.nodes.append(node)
        if parent is not None:
            parent.children.append(node)
            tree.forks += 1
            for listener in self.on_spawn:
                listener(parent.req.rid, req.rid)
        return node

    def decide_forks(self, rows: int) -> ForkDecision:
        """The fork policy for a decode batch of `rows` rows (`apar_sgl.fork_policy`)."""
        return decide(self.args.apar_fork_policy, rows, self.step_times)

    def tree_may_fork(self, tree: AparTree) -> bool:
        """Whether the branches of `tree` may emit a fork token now (else it is masked out);
        a branch at the depth limit may not either."""
        limits = tree.limits
        return (
            (tree.fork_decision is None or tree.fork_decision.allow)
            and not (tree.aborted or tree.truncated)
            and tree.forks + tree.pending_forks() < limits.max_branches
            and limits.max_concurrent_children > 0
        )

    def may_spawn(self, node: AparNode) -> bool:
        """Whether a fork token already sampled may start its child now (else it waits).

        The concurrency limit defers children instead of suppressing forks, so the tree and
        its answer are those of the unlimited run; only the critical path grows.
        """
        return node.tree.live_children() < max(node.tree.limits.max_concurrent_children, 1)


def trim_stop_str(
    ids: list[int], stop: str, tokenizer, keep_stop: bool = False, keep_from: int = 0
) -> list[int]:
    """`ids` cut where their text first contains `stop`, as SGLang's detokenizer cuts text.

    The text is cut before the stop string (after it with `keep_stop`); a token that the cut
    splits is replaced by the encoding of its kept text. `ids[:keep_from]` are always kept.
    """
    text = tokenizer.decode(ids)
    pos = text.find(stop)
    if pos < 0:
        return ids
    end = pos + len(stop) if keep_stop else pos
    k = len(ids)  # the stop ends in the last tokens, so search from the end
    while k > keep_from:
        head = tokenizer.decode(ids[:k])
        if len(head) <= end and text.startswith(head):
            break
        k -= 1
    head = tokenizer.decode(ids[:k])
    rest = text[len(head) : end] if len(head) < end else ""
    return ids[:k] + (tokenizer.encode(rest, add_special_tokens=False) if rest else [])


def _token_id(tokenizer, token: str) -> int | None:
    if tokenizer is None:
        return None
    ids = tokenizer.encode(token, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def _ended_on_token(req) -> bool:
    reason = req.finished_reason
    return reason is not None and isinstance(getattr(reason, "matched", None), int)
