"""A list answer whose items are generated in parallel fork branches, then summarised."""

from __future__ import annotations

from _common import budget

import apar_sgl as apar


@apar.function
def tips(s, topic: str, items: list[str]):
    s += apar.system("You are a concise assistant.")
    s += apar.user(f"Give one short tip about {topic} for each of: {', '.join(items)}.")
    s += apar.assistant_begin()
    with apar.fork(items) as branches:  # one branch per item, sent as one batch
        for b in branches:
            # No space after the colon: SmolLM2 answers "evening: " with a newline, which
            # stop="\n" would cut to an empty tip; after "- Evening:" it writes the tip.
            b += f"- {b.item.capitalize()}:" + apar.gen("tip", max_tokens=budget(40), stop="\n")
    s += "\nIn short:" + apar.gen("summary", max_tokens=budget(30), stop="\n")
    s += apar.assistant_end()


if __name__ == "__main__":
    state = tips.run(topic="sleep", items=["evening", "bedroom", "morning"])
    for b in state.branches:
        cached = b.meta("tip")["cached_tokens"]
        print(f"[{b.item}] {b['tip'].strip()!r} (cached prompt tokens: {cached})")
    print("summary:", state["summary"].strip())
