"""Use a running server with the openai package (start one first, or let this script do it).

    python -m apar_sgl.launch_server --port 30000
    python examples/openai_client.py http://127.0.0.1:30000

The same server also runs DSL programs: ``prog.run(..., backend="http://127.0.0.1:30000")``.
"""

from __future__ import annotations

import sys

from _common import budget
from openai import OpenAI

import apar_sgl as apar


@apar.function
def two_names(s):
    s += apar.user("Name two colors.")
    s += apar.assistant_begin()
    with apar.fork(2) as branches:
        for b in branches:
            b += "- " + apar.gen("color", max_tokens=budget(8), stop="\n")
    s += apar.assistant_end()


def main(url: str) -> None:
    client = OpenAI(base_url=url + "/v1", api_key="none")
    reply = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Say hello in three words."}],
        max_tokens=budget(16),
        temperature=0,
    )
    print("openai:", reply.choices[0].message.content)
    state = two_names.run(backend=url)
    print("dsl over HTTP:", [b["color"] for b in state.branches])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        from apar_sgl.server_process import ServerProcess

        server = ServerProcess(["--apar-mode", "off"])
        try:
            main(server.url)
        finally:
            server.stop()
