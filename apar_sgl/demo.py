"""`python -m apar_sgl.demo` (`make demo`): the embedded default model served by apar-sgl.

Starts `python -m apar_sgl.launch_server` on SmolLM2-135M-Instruct, asks one question through
the OpenAI API, then sends three branches that share a prompt prefix at once and shows that
SGLang served their shared prefix from its radix cache.
"""

from __future__ import annotations

import concurrent.futures
import time

import requests

from apar_sgl.server_process import ServerProcess

QUESTION = "Give me three tips for staying focused while studying."
PLAN_REQUEST = "Plan one day in Lisbon: morning, afternoon and evening."
BRANCHES = ("Morning: ", "Afternoon: ", "Evening: ")


def main() -> None:
    from openai import OpenAI

    started = time.perf_counter()
    print("starting apar-sgl server on the embedded SmolLM2-135M-Instruct ...", flush=True)
    with ServerProcess(["--log-level", "warning"]) as server:
        print(f"server ready at {server.url} in {time.perf_counter() - started:.0f} s\n")
        client = OpenAI(base_url=server.url + "/v1", api_key="none")
        reply = client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=120,
            temperature=0,
        )
        print(f"Q: {QUESTION}\nA: {reply.choices[0].message.content}\n")

        tokenizer = requests.get(server.url + "/get_model_info", timeout=30).json()
        prefix = _chat_prefix(tokenizer["tokenizer_path"], PLAN_REQUEST)

        def branch(head: str) -> dict:
            body = {
                "text": prefix + head,
                "sampling_params": {"max_new_tokens": 30, "temperature": 0, "stop": "\n"},
            }
            return requests.post(server.url + "/generate", json=body, timeout=300).json()

        branch(BRANCHES[0])  # puts the shared prefix into the radix tree
        with concurrent.futures.ThreadPoolExecutor(len(BRANCHES)) as pool:
            outs = list(pool.map(branch, BRANCHES))
        for head, out in zip(BRANCHES, outs, strict=True):
            meta = out["meta_info"]
            print(
                f"{head}{out['text']}\n    (prompt {meta['prompt_tokens']} tokens, "
                f"{meta['cached_tokens']} served from the radix cache)"
            )
    print(f"\ndemo done in {time.perf_counter() - started:.0f} s")


def _chat_prefix(tokenizer_path: str, request: str) -> str:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": request}], tokenize=False, add_generation_prompt=True
    )


if __name__ == "__main__":
    main()
