"""ANPD's counters: per request-step, not per batch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class AnpdStats:
    """Counters of one drafter since start."""

    decode_steps: int = 0  # request-steps decoded under ANPD (verified or plain)
    drafting_steps: int = 0  # of those, the ones that verified at least one draft token
    plain_decode_batches: int = 0  # batch-steps with no drafts, run as plain decode (no verify)
    drafted_tokens: int = 0  # draft tokens verified
    accepted_tokens: int = 0  # draft tokens accepted
    cut_tokens: int = 0  # draft tokens the grammar rejected before verification
    inherited_tables: int = 0  # APAR children that started from their parent's table

    def record_step(self, drafted: int, accepted: int) -> None:
        """One request's decode step: `drafted` tokens verified, `accepted` of them kept."""
        self.decode_steps += 1
        self.drafting_steps += drafted > 0
        self.drafted_tokens += drafted
        self.accepted_tokens += accepted

    def as_dict(self) -> dict[str, float]:
        steps = self.decode_steps
        return {
            "decode_steps": steps,
            "drafting_steps": self.drafting_steps,
            "plain_decode_batches": self.plain_decode_batches,
            "drafted_tokens": self.drafted_tokens,
            "accepted_tokens": self.accepted_tokens,
            "cut_tokens": self.cut_tokens,
            "inherited_tables": self.inherited_tables,
            # tokens per decode step, the bonus token included (SGLang's spec_accept_length)
            "accept_length": (steps + self.accepted_tokens) / steps if steps else 0.0,
            # the same over the steps that carried drafts (the others are plain decode steps)
            "accept_length_when_drafting": (
                (self.drafting_steps + self.accepted_tokens) / self.drafting_steps
                if self.drafting_steps
                else 0.0
            ),
        }
