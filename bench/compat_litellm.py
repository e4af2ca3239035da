"""Our anthropic translation against litellm's, on the same sample: CPU per call, import cost.

litellm is NOT a dependency: run this with a throwaway virtualenv that has litellm and orjson,
never the project's:

    python3 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install litellm orjson
    PYTHONPATH=src /tmp/litellm-venv/bin/python bench/compat_litellm.py [--rounds 5000]

Request: the OpenAI body's bytes -> the Anthropic Messages body's bytes. Answer: the Anthropic
message's bytes -> the OpenAI chat.completion's bytes. Ours is ``sluice.compat.anthropic``;
litellm's is ``AnthropicConfig`` (``map_openai_params`` + ``transform_request``, and
``transform_parsed_response`` + ``ModelResponse.model_dump_json``), the functions its proxy runs
for the same job, without its logging and HTTP layers. Import cost: CPU seconds and peak RSS of a
fresh interpreter that imports each translator (median of 3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

OPENAI = json.dumps({"model": "anthropic/claude-x", "max_tokens": 64, "temperature": 0.2, "messages": [
    {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello in one sentence."}]
}).encode()
ANSWER = json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                     "content": [{"type": "text", "text": "Hello from the Sluice mock upstream."}],
                     "stop_reason": "end_turn", "stop_sequence": None,
                     "usage": {"input_tokens": 13, "output_tokens": 9}}).encode()
# litellm fetches a model price list from GitHub at import unless told to use its bundled copy
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
IMPORTS = {"sluice": "import sluice.compat.anthropic",
           "litellm": "from litellm.llms.anthropic.chat.transformation import AnthropicConfig"}


def ours() -> tuple[Callable[[], bytes], Callable[[], bytes]]:
    import orjson

    from sluice.compat import anthropic, chat

    def request() -> bytes:
        body = chat.parse_body(OPENAI)
        return orjson.dumps(anthropic.request(body, chat.split_model(body)[1]))

    def answer() -> bytes:
        return orjson.dumps(anthropic.response(orjson.loads(ANSWER), 0))

    return request, answer


def theirs() -> tuple[Callable[[], bytes], Callable[[], bytes]]:
    import httpx
    import litellm
    from litellm.llms.anthropic.chat.transformation import AnthropicConfig
    from litellm.types.utils import ModelResponse

    litellm.suppress_debug_info = True  # else it prints a banner of provider links
    config = AnthropicConfig()
    raw = httpx.Response(200, content=ANSWER, headers={"content-type": "application/json"})

    def request() -> bytes:
        body = json.loads(OPENAI)
        model = body.pop("model").partition("/")[2]
        messages = body.pop("messages")
        optional = config.map_openai_params(non_default_params=body, optional_params={}, model=model,
                                            drop_params=False)
        return json.dumps(config.transform_request(model, messages, optional, {}, {})).encode()

    def answer() -> bytes:
        response = config.transform_parsed_response(completion_response=json.loads(ANSWER), raw_response=raw,
                                                    model_response=ModelResponse())
        return response.model_dump_json().encode()

    return request, answer


def cpu_us(work: Callable[[], bytes], rounds: int) -> float:
    work()
    started = time.process_time()
    for _ in range(rounds):
        work()
    return (time.process_time() - started) / rounds * 1e6


def import_cost(name: str) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of a fresh interpreter importing the translator, median of 3."""
    code = (f"import resource, time; {IMPORTS[name]}; u = resource.getrusage(resource.RUSAGE_SELF); "
            "print(u.ru_utime + u.ru_stime, u.ru_maxrss / 1024)")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            .stdout.split() for _ in range(3)]
    return statistics.median(float(r[0]) for r in runs), statistics.median(float(r[1]) for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    rounds = parser.parse_args().rounds
    bare = float(subprocess.run([sys.executable, "-c", "import resource; u = resource.getrusage("
                                 "resource.RUSAGE_SELF); print(u.ru_utime + u.ru_stime)"],
                                capture_output=True, text=True, check=True).stdout)
    print(f"(a bare interpreter: {bare:.2f} s CPU, counted in both import costs below)")
    print("| translator | request µs CPU | answer µs CPU | import s CPU | import peak RSS MiB |\n"
          "|---|---|---|---|---|")
    for name, make in (("sluice", ours), ("litellm", theirs)):
        request, answer = make()
        seconds, rss = import_cost(name)
        print(f"| {name} | {cpu_us(request, rounds):.1f} | {cpu_us(answer, rounds):.1f} | {seconds:.2f} "
              f"| {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
