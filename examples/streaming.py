"""Stream a program: text chunks arrive per capture while it runs, forks included."""

from __future__ import annotations

from _common import budget

import apar_sgl as apar


@apar.function
def story(s, hero: str):
    s += apar.user(f"Write a two-part tiny story about {hero}.")
    s += apar.assistant_begin()
    s += "Title: " + apar.gen("title", max_tokens=budget(12), stop="\n") + "\n"
    with apar.fork(2) as parts:
        for i, p in enumerate(parts):
            p += f"Part {i + 1}: " + apar.gen("part", max_tokens=budget(40), stop="\n")
    s += apar.assistant_end()


if __name__ == "__main__":
    stream = story.stream(hero="a brave snail")
    for chunk in stream:
        print(f"[{chunk.label}] {chunk.text!r}")
    print("title:", stream.state["title"])
