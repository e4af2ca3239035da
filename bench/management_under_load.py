"""How long a management write takes while the data plane is busy (chat, c=64 by default, logs on).

    .venv/bin/python bench/management_under_load.py [--build NAME=SRC ...] [--writes 30] [--rounds 3]
                                                [--concurrency 64] [--requests 60000]

On SQLite every transaction takes the one writer lock, which the request-log batches also take;
such a batch may be running at idle CPU priority (docs/observability.md). Each build gets its own
stack (bench/run.py's ``Stack``: gateway on core 1, mock and load on core 0); while the load runs,
``--writes`` gateways are created and deleted one after another (a write each) and their wall
times are printed as p50 / p90 / max, per round, builds alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cpu  # noqa: E402
from run import Stack, _call  # noqa: E402


def writes(stack: Stack, count: int, stop: threading.Event) -> list[float]:
    took = []
    for n in range(count):
        if stop.is_set():
            break
        gateway = f"mgmt-{os.getpid()}-{time.monotonic_ns()}-{n}"
        started = time.perf_counter()
        _call("POST", f"{stack.api}/ai-gateway/gateways", stack.admin, {"id": gateway})
        took.append(time.perf_counter() - started)
        started = time.perf_counter()
        _call("DELETE", f"{stack.api}/ai-gateway/gateways/{gateway}", stack.admin)
        took.append(time.perf_counter() - started)
        time.sleep(0.05)
    return took


def round_of(stack: Stack, count: int, requests: int, concurrency: int) -> list[float]:
    host, port, request = cpu.build_request(f"{stack.gateway_base}/chat/completions",
                                            (HERE / "req_chat.json").read_bytes(), stack.headers)
    stop = threading.Event()
    result: list[float] = []

    def writer() -> None:
        time.sleep(1.0)  # the load is under way and the log buffer filling
        result.extend(writes(stack, count, stop))

    thread = threading.Thread(target=writer)
    thread.start()
    asyncio.run(cpu.load(host, port, request, requests, concurrency))
    stop.set()
    thread.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", default=[], metavar="NAME=SRC")
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=60000, help="chat requests of load per round")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--port", type=int, default=18870)
    args = parser.parse_args()
    if os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {0})
    builds = [spec.split("=", 1) for spec in args.build] or [["this", str(HERE.parent / "src")]]
    stacks = {}
    try:
        for n, (name, src) in enumerate(builds):
            stacks[name] = Stack(args.port + 2 * n + 1, args.port + 2 * n, "", src)
        print("| round | build | writes done | p50 ms | p90 ms | max ms |")
        print("|---|---|---|---|---|---|")
        for i in range(args.rounds):
            for name, stack in stacks.items():
                took = sorted(t * 1000 for t in round_of(stack, args.writes, args.requests, args.concurrency))
                if not took:
                    print(f"| {i + 1} | {name} | 0 | - | - | - |", flush=True)
                    continue
                p90 = took[min(len(took) - 1, int(len(took) * 0.9))]
                print(f"| {i + 1} | {name} | {len(took)} | {statistics.median(took):.1f} | {p90:.1f} "
                      f"| {took[-1]:.1f} |", flush=True)
    finally:
        for stack in stacks.values():
            stack.close()


if __name__ == "__main__":
    main()
