"""Gateway CPU per request, A/B between builds: steady on a shared, noisy machine.

    .venv/bin/python bench/cpu.py [--build NAME=SRC ...] [--requests 20000] [--rounds 5]
                                  [--concurrency 64] [--mode chat|stream|anthropic] [--redis URL]
                                  [--profile DIR]

Throughput on a loaded 2-core machine moves by ±30 % between runs; the CPU the gateway process
spends on a fixed number of requests (utime + stime of every thread, from /proc, after the log
writer has caught up) moves by a few per cent. Each build (``NAME=SRC``: a Sluice ``src`` directory,
same venv; default: this checkout) gets its own stack (bench/run.py's ``Stack``: authentication,
a stored key with a per-key limit, request logging on; with ``--redis`` also a sliding gateway
limit, so every request runs the Redis script); rounds alternate between the builds and the
median µs per request is printed. Load comes from a small keep-alive client built here (no wrk
needed), pinned to core 0; the gateway is on core 1.

``--profile DIR`` runs each build's server under cProfile instead and writes DIR/NAME.pstats
(slower, for attribution only; read with ``python -m pstats``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httptools

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import Stack, _cpu_seconds, _thread_cpu  # noqa: E402


class _Conn(asyncio.Protocol):
    """One keep-alive connection sending the same request again as soon as each answer ends."""

    def __init__(self, request: bytes, budget: list[int], done: asyncio.Future) -> None:
        self.request = request
        self.budget = budget  # shared: requests left to send
        self.done = done
        self.parser = httptools.HttpResponseParser(self)
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._next()

    def _next(self) -> None:
        if self.budget[0] <= 0:
            if not self.done.done():
                self.done.set_result(None)
            self.transport.close()  # type: ignore[attr-defined]
            return
        self.budget[0] -= 1
        self.transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() != 200:
            self.errors += 1
        self._next()


async def load(host: str, port: int, request: bytes, total: int, concurrency: int) -> int:
    """Send ``total`` requests over ``concurrency`` connections; returns the non-200 answers."""
    loop = asyncio.get_running_loop()
    budget = [total]
    conns = []
    for _ in range(concurrency):
        done = loop.create_future()
        _, conn = await loop.create_connection(lambda d=done: _Conn(request, budget, d), host, port)
        conns.append(conn)
    await asyncio.gather(*(c.done for c in conns))
    return sum(c.errors for c in conns)


def build_request(url: str, body: bytes, headers: list[str]) -> tuple[str, int, bytes]:
    rest = url.split("://", 1)[1]
    hostport, path = rest.split("/", 1)
    host, port = hostport.split(":")
    lines = [f"POST /{path} HTTP/1.1", f"Host: {hostport}", "Content-Type: application/json",
             "Accept: application/json, text/event-stream", f"Content-Length: {len(body)}", *headers]
    return host, int(port), ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# mode -> (request body in bench/, path under the gateway's OpenAI base, extra headers). Anthropic's
# wire format is sent through the OpenAI route, as the shared harness does with an extra target.
MODES = {
    "chat": ("req_chat.json", "chat/completions", ()),
    "stream": ("req_chat_stream.json", "chat/completions", ()),
    "anthropic": ("req_anthropic.json", "messages", ("anthropic-version: 2023-06-01",)),
}


def measure(stack: Stack, mode: str, total: int, concurrency: int,
            counter: Counter) -> tuple[float, float, int]:
    """(per request: the whole process's cost, the event-loop thread's (CPU only), errors)."""
    name, path, headers = MODES[mode]
    body = (HERE / name).read_bytes()
    host, port, request = build_request(f"{stack.gateway_base}/{path}", body, [*stack.headers, *headers])
    counter.start(stack.server.pid)
    errors = asyncio.run(load(host, port, request, total, concurrency))
    time.sleep(counter.settle_s)  # the last batch of logs is written
    whole, on_loop = counter.stop(stack.server.pid)
    return whole / total, on_loop / total, errors


class Counter:
    """CPU µs of the server process (all threads) and of its event-loop thread, from /proc."""

    settle_s = 1.2

    def start(self, pid: int) -> None:
        self._before, self._loop = _cpu_seconds(pid), sum(_thread_cpu(pid)["event loop"])

    def stop(self, pid: int) -> tuple[float, float]:
        return ((_cpu_seconds(pid) - self._before) * 1e6,
                (sum(_thread_cpu(pid)["event loop"]) - self._loop) * 1e6)


class Instructions(Counter):
    """Instructions the server executes (callgrind's Ir, every thread): repeatable on a loaded
    machine, ~50 × slower. The server runs with instrumentation off until ``start``.

    Timers (the change-feed poll, the connection watchdog, the log writer's tick) cost instructions
    per second, not per request, and under callgrind a request takes ~50 × longer, by a factor that
    moves with the machine's load. So: the server's idle rate is measured once it is quiet (before
    the first round), a round lasts until the server is back at that rate (the log writer has
    written the round's logs), and the idle rate times the round's length is taken off (printed)."""

    settle_s = 0.0
    window_s = 2.0

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.rate: float | None = None  # idle instructions per second
        self.idle_share: list[float] = []

    def _quiet_rate(self, pid: int) -> float:
        """Windows until two in a row agree within 10 %: the idle rate."""
        last = self._window(pid)
        while True:
            rate = self._window(pid)
            if abs(rate - last) <= 0.1 * max(rate, last):
                return min(rate, last)
            last = rate

    def _window(self, pid: int) -> float:
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
        began = time.monotonic()
        time.sleep(self.window_s)
        return self._dump(pid) / (time.monotonic() - began)

    def start(self, pid: int) -> None:
        subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True)
        if self.rate is None:
            self.rate = self._quiet_rate(pid)
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
        self._began = time.monotonic()

    def stop(self, pid: int) -> tuple[float, float]:
        assert self.rate is not None
        total = self._dump(pid)
        for _ in range(60):  # until back at the idle rate (at most two minutes)
            began = time.monotonic()
            time.sleep(self.window_s)
            part = self._dump(pid)
            total += part
            if part / (time.monotonic() - began) <= 1.3 * self.rate:
                break
        idle = self.rate * (time.monotonic() - self._began)
        self.idle_share.append(idle / total)
        return total - idle, 0.0

    def _dump(self, pid: int) -> float:
        before = set(self.out_dir.iterdir())
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
        new: list[Path] = []
        for _ in range(100):
            new = [p for p in set(self.out_dir.iterdir()) - before if p.stat().st_size]
            if new:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        text = max(new, key=lambda p: p.stat().st_mtime).read_text(errors="replace")
        return float(next(int(line.split()[1]) for line in text.splitlines()
                          if line.startswith(("summary:", "totals:"))))


def under_tool(tool: str, out: str, argv: list[str]) -> None:
    """Run ``python -m sluice serve …`` whose exec of uvicorn goes through cProfile (pstats to
    ``out``) or callgrind (instruction counts; dumped on request with ``callgrind_control``)."""
    import runpy

    real_execv = os.execv

    def execv(path: str, args: list[str]) -> None:  # args: python -m uvicorn …
        if tool == "cprofile":
            real_execv(path, [args[0], __file__, "--profiled-module", out, *args[2:]])
        valgrind = shutil.which("valgrind") or "valgrind"
        real_execv(valgrind, [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
                              "--instr-atstart=no", *args])

    os.execv = execv  # type: ignore[assignment]
    sys.argv = ["sluice", *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


def profiled_module(out: str, module: str, argv: list[str]) -> None:
    """``python -m module argv…`` under cProfile; the stats are written when it returns. uvicorn
    re-raises SIGTERM after its graceful shutdown, which would kill the process before that."""
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # bench/profile.py
    import cProfile
    import runpy
    import signal

    signal.raise_signal = lambda _sig: None  # type: ignore[assignment]
    sys.argv = [module, *argv]
    profile = cProfile.Profile()
    profile.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profile.disable()
        profile.dump_stats(out)


def main() -> None:
    if sys.argv[1:2] == ["--profiled-module"]:
        profiled_module(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    if sys.argv[1:2] == ["--under"]:
        under_tool(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", default=[], metavar="NAME=SRC")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--mode", default="chat", choices=tuple(MODES))
    parser.add_argument("--redis", default="")
    parser.add_argument("--profile", default="", metavar="DIR", help="cProfile each server: DIR/NAME.pstats")
    parser.add_argument("--instructions", default="", metavar="DIR",
                        help="count instructions (callgrind) instead of CPU time; dumps go to DIR")
    parser.add_argument("--port", type=int, default=18890)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stops the servers and mocks too (finally)
    if os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {0})  # the load generator shares core 0 with the mock
    builds = [spec.split("=", 1) for spec in args.build] or [["this", str(HERE.parent / "src")]]
    stacks: dict[str, Stack] = {}
    counters: dict[str, Counter] = {}
    unit = "instructions" if args.instructions else "CPU µs"
    try:
        for n, (name, src) in enumerate(builds):
            wrap: tuple[str, ...] = ()
            if args.profile:
                Path(args.profile).mkdir(parents=True, exist_ok=True)
                wrap = (sys.executable, __file__, "--under", "cprofile",
                        str(Path(args.profile).resolve() / f"{name}.pstats"))
            if args.instructions:
                (Path(args.instructions) / name).mkdir(parents=True, exist_ok=True)
                wrap = (sys.executable, __file__, "--under", "callgrind",
                        str(Path(args.instructions).resolve() / name / "callgrind.out"))
            stacks[name] = Stack(args.port + 2 * n + 1, args.port + 2 * n, args.redis, src, wrap,
                                 start_s=300 if args.instructions else 30)
            counters[name] = Instructions(Path(args.instructions) / name) if args.instructions else Counter()
            warm_up = min(2000, args.requests)
            measure(stacks[name], args.mode, warm_up, args.concurrency, counters[name])
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in stacks}
        for i in range(args.rounds):
            for name, stack in stacks.items():
                counter = counters[name]
                total, on_loop, errors = measure(stack, args.mode, args.requests, args.concurrency, counter)
                results[name].append((total, on_loop))
                idle = (f", idle {counter.idle_share[-1]:.0%} taken off"
                        if isinstance(counter, Instructions) else f" ({on_loop:.1f} on the event loop)")
                print(f"round {i + 1} {name}: {total:,.1f} {unit}/req{idle}, {errors} errors", flush=True)
        print(f"| build | {args.mode} c={args.concurrency} {unit}/req, median (range) | event loop µs/req |")
        print("|---|---|---|")
        for name, rows in results.items():
            totals, loops = [r[0] for r in rows], [r[1] for r in rows]
            print(f"| {name} | {statistics.median(totals):,.1f} ({min(totals):,.0f}–{max(totals):,.0f}) "
                  f"| {statistics.median(loops):.1f} |")
    finally:
        for stack in stacks.values():
            stack.close()


if __name__ == "__main__":
    main()
