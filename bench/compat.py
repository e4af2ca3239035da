"""Server CPU per request: ``/compat`` against the provider path, for openai and anthropic.

    .venv/bin/python bench/compat.py [--mode chat|stream] [--requests 3000] [--rounds 5] [--concurrency 16]
The stack of bench/run.py (fast mock on core 0, Sluice on core 1, gateway authentication, stored keys,
request logging on); the load comes from this process (aiohttp, core 0). Each round sends the same
chat request four ways, in turn: the provider path to openai, ``/compat`` to openai (pass-through),
the provider path to anthropic (its native body), ``/compat`` to anthropic (translated both ways);
``--mode stream``: each streamed (17 text deltas and a usage chunk). It reads the server's CPU
seconds (utime + stime, /proc) before and after each batch: CPU time, not throughput, because on a
shared machine the CPU seconds a request costs is what stays put. Prints every round, the medians,
and the ratios the issue sets (≤ 1.2 × for pass-through, ≤ 2 × for anthropic).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import GATEWAY, Stack, _call, _cpu_seconds  # noqa: E402

OPENAI = json.loads((HERE / "req_chat.json").read_text())
SYSTEM, USER = (message["content"] for message in OPENAI["messages"])
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"
ANTHROPIC = {"model": ANTHROPIC_MODEL, "system": SYSTEM, "messages": [{"role": "user", "content": USER}],
             "max_tokens": OPENAI["max_tokens"], "temperature": OPENAI["temperature"]}
STREAM = {"stream": True, "stream_options": {"include_usage": True}}


def variants(stream: bool) -> dict[str, tuple[str, dict]]:
    """name -> (path after /v1/{account}/{gateway}/, body); streamed: the same 17-delta answer."""
    openai = {**OPENAI, **STREAM} if stream else OPENAI
    anthropic = {**ANTHROPIC, "stream": True} if stream else ANTHROPIC
    return {
        "provider openai": ("openai/chat/completions", openai),
        "compat openai": ("compat/chat/completions", {**openai, "model": f"openai/{OPENAI['model']}"}),
        "provider anthropic": ("anthropic/v1/messages", anthropic),
        "compat anthropic": ("compat/chat/completions", {**openai, "model": f"anthropic/{ANTHROPIC_MODEL}"}),
    }


def _check(name: str, answer: bytes, stream: bool) -> None:
    """The answer is what the variant should give (a translated one in OpenAI's shape)."""
    if not name.startswith("compat"):
        return
    if stream:
        assert answer.rstrip().endswith(b"data: [DONE]") and b'"prompt_tokens"' in answer, answer
    else:
        assert json.loads(answer)["choices"][0]["message"]["content"].startswith("Sluice relays"), answer


async def _load(url: str, body: bytes, headers: dict[str, str], requests: int, concurrency: int) -> bytes:
    """Send ``requests`` requests, ``concurrency`` at a time; the last answer."""
    left, last = requests, b""

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal left, last
        while left > 0:
            left -= 1
            async with session.post(url, data=body, headers=headers) as response:
                last = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status}")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return last


def _cpu_us(stack: Stack, url: str, body: bytes, headers: dict[str, str], requests: int,
            concurrency: int) -> float:
    before = _cpu_seconds(stack.server.pid)
    asyncio.run(_load(url, body, headers, requests, concurrency))
    time.sleep(1.5)  # the request logs of the batch are written (their CPU belongs to it)
    return (_cpu_seconds(stack.server.pid) - before) * 1e6 / requests


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def options(description: str) -> argparse.ArgumentParser:
    """The arguments every CPU-per-request benchmark on this stack takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--requests", type=int, default=3000, help="requests per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--port", type=int, default=0, help="Sluice's port (default: a free one)")
    parser.add_argument("--mock-port", type=int, default=0, help="the mock's port (default: a free one)")
    return parser


def start_stack(args: argparse.Namespace) -> Stack:
    """The stack of bench/run.py, the load (this process) pinned beside the mock on core 0."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})  # the load beside the mock; Sluice has core 1
    stack = Stack(args.mock_port or _free_port(), args.port or _free_port())
    if stack.mock.poll() is not None:
        sys.exit("the mock did not start (its port is taken?)")
    return stack


def measure(stack: Stack, bodies: dict[str, tuple[str, bytes]], headers: dict[str, str],
            args: argparse.Namespace, check: Callable[[str, bytes], None], title: str) -> dict[str, float]:
    """Warm every variant up (until it answers 200 and ``check`` accepts its answer), then run
    ``args.rounds`` rounds of every variant in turn; prints each round and returns the medians
    (server CPU µs per request)."""
    for name, (url, body) in bodies.items():  # warm-up (and the stored keys have reached the data plane)
        for attempt in range(50):
            try:
                check(name, asyncio.run(_load(url, body, headers, 300, args.concurrency)))
                break
            except RuntimeError:
                if attempt == 49:
                    raise
                time.sleep(0.2)
    results: dict[str, list[float]] = {name: [] for name in bodies}
    print(f"{title}:\n| round | " + " | ".join(bodies) + " |\n|---|" + "---|" * len(bodies))
    for i in range(args.rounds):
        for name, (url, body) in bodies.items():
            results[name].append(_cpu_us(stack, url, body, headers, args.requests, args.concurrency))
        print(f"| {i + 1} | " + " | ".join(f"{results[n][-1]:.0f}" for n in bodies) + " |", flush=True)
    median = {name: statistics.median(values) for name, values in results.items()}
    print("| median | " + " | ".join(f"**{median[n]:.0f}**" for n in bodies) + " |")
    print(f"\nCPU µs per request, median of {args.rounds} rounds of {args.requests} "
          f"(c={args.concurrency}).")
    return median


def main() -> None:
    parser = options(__doc__.splitlines()[0])
    parser.add_argument("--mode", default="chat", choices=("chat", "stream"))
    args = parser.parse_args()
    stack = start_stack(args)
    try:
        _call("POST", f"{stack.api}/ai-gateway/gateways/{GATEWAY}/provider_configs", stack.admin,
              {"provider_slug": "anthropic", "alias": "default", "default_config": True,
               "secret": "sk-ant-bench-stored-key-00000000000000", "rate_limit": 1_000_000_000,
               "rate_limit_period": 60})
        base = f"{stack.url}/v1/{stack.account}/{GATEWAY}"
        token = stack.headers[0].split(": ", 1)[1]
        headers = {"cf-aig-authorization": token, "content-type": "application/json"}
        stream = args.mode == "stream"
        bodies = {name: (f"{base}/{path}", json.dumps(body).encode())
                  for name, (path, body) in variants(stream).items()}
        median = measure(stack, bodies, headers, args, lambda name, answer: _check(name, answer, stream),
                         args.mode)
        for (over, under), goal in ((("compat openai", "provider openai"), " (goal ≤ 1.2)"),
                                    (("compat anthropic", "provider anthropic"), " (goal ≤ 2)"),
                                    (("compat anthropic", "provider openai"), "")):
            print(f"{over} / {under} = {median[over] / median[under]:.2f}{goal}")
    finally:
        stack.close()

if __name__ == "__main__":
    main()
