"""Where a request waits while request logs are written: event-loop stalls at c=1, by cause.

    .venv/bin/python bench/log_stalls.py [--duration 20] [--mode chat|stream] [--rounds 2]

The bench stack of ``bench/run.py`` (mock on core 0, Sluice on core 1), with a probe loaded into
the server (a ``sitecustomize`` on its PYTHONPATH; the product has no probe code): a task on the
event loop sleeps 1 ms again and again and records each wake-up later than 1 ms, with the event
loop thread's own CPU time over that sleep, and whether the log writer was building rows on the
loop (``LogSink._rows``) or writing in the batch thread (``Database.write_batch``) meanwhile.
A stall whose loop CPU is about its length was work on the loop; one with little loop CPU was the
loop waiting — for the GIL (while a batch is written in the thread) or for the core (the OS).
wrk drives c=1 through the gateway with logging on, then off, alternating; per window it prints
stalls ≥ 1 ms by cause, and the writer's time per batch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import Stack, _body, wrk  # noqa: E402

PROBE = r'''
import asyncio, atexit, json, os, threading, time
from sluice.observe import sink as _sink
from sluice.store import database as _db

_OUT = os.environ["SLUICE_STALL_PROBE"]
if os.environ.get("SLUICE_STALL_SWITCH_S"):  # an experiment: the GIL's switch interval
    import sys
    sys.setswitchinterval(float(os.environ["SLUICE_STALL_SWITCH_S"]))
if os.environ.get("SLUICE_STALL_WRITER_NICE"):  # an experiment: the batch thread's OS priority
    import concurrent.futures

    def _lower():
        nice = int(os.environ["SLUICE_STALL_WRITER_NICE"])
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)

    class _Nice(concurrent.futures.ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, initializer=_lower, **kwargs)
    _db.ThreadPoolExecutor = _Nice
_flag = {"rows": False, "write": False}
_epoch = {"rows": 0, "write": 0}
_stalls = []  # [wall time, lag s, loop cpu s, rows active, write active]
_batches = []  # [wall time, logs, rows s on the loop, write s in the thread, thread cpu s]
_wakes = [0]


def _enter(name):
    _flag[name] = True
    _epoch[name] += 1


def _leave(name):
    _flag[name] = False
    _epoch[name] += 1


async def _probe():
    clock = time.perf_counter
    while True:
        start = {k: (_flag[k], _epoch[k]) for k in _flag}
        t0, c0 = clock(), time.thread_time()
        await asyncio.sleep(0.001)
        lag = clock() - t0 - 0.001
        _wakes[0] += 1
        if lag >= 0.001:
            active = [start[k][0] or _flag[k] or start[k][1] != _epoch[k] for k in ("rows", "write")]
            _stalls.append([time.time(), lag, time.thread_time() - c0, *active])


_rows = getattr(_sink.LogSink, "_rows", None)  # rows built in the batch (before issue 20)
_write, _start, _record = _sink.LogSink._write, _sink.LogSink.start, _sink.LogSink.record
_recorded = [0, 0.0]  # logs, seconds in LogSink.record


def record(self, exchange):
    t0 = time.perf_counter()
    _record(self, exchange)
    _recorded[0] += 1
    _recorded[1] += time.perf_counter() - t0
_timing = threading.local()
_cpu = [0.0]


async def rows(self, batch):
    _enter("rows")
    t0 = time.perf_counter()
    try:
        return await _rows(self, batch)
    finally:
        _timing.rows = (len(batch), time.perf_counter() - t0)
        _leave("rows")


async def write(self, rows):
    _enter("write")
    t0 = time.perf_counter()
    groups = self._write_groups

    def timed(conn, by_gateway):
        c0 = time.thread_time()
        try:
            return groups(conn, by_gateway)
        finally:
            _cpu[0] = time.thread_time() - c0  # in the batch thread
    self._write_groups = timed
    try:
        return await _write(self, rows)
    finally:
        del self._write_groups
        n, rows_s = getattr(_timing, "rows", (0, 0.0))
        n = n or len(rows)
        _batches.append([time.time(), n, rows_s, time.perf_counter() - t0, _cpu[0], *_recorded])
        _timing.rows = (0, 0.0)
        _leave("write")


async def start(self):
    await _start(self)
    self._stall_probe = asyncio.get_running_loop().create_task(_probe())


def _dump():
    with open(_OUT, "w") as f:
        json.dump({"stalls": _stalls, "batches": _batches, "wakes": _wakes[0]}, f)


if _rows is not None:
    _sink.LogSink._rows = rows
_sink.LogSink._write, _sink.LogSink.start, _sink.LogSink.record = write, start, record
_close = _sink.LogSink.close


async def close(self):
    await _close(self)
    _dump()
_sink.LogSink.close = close
'''


def summarise(name: str, window: tuple[float, float], data: dict, result: dict) -> None:
    lo, hi = window
    stalls = [s for s in data["stalls"] if lo <= s[0] <= hi]
    batches = [b for b in data["batches"] if lo <= b[0] <= hi]
    causes = {"on the loop (rows being built)": [], "on the loop (other)": [],
              "waiting, batch in the thread (GIL?)": [], "waiting, no batch (OS)": []}
    for _, lag, cpu, rows, writing in stalls:
        busy = cpu >= 0.5 * lag
        key = ("on the loop (rows being built)" if rows else "on the loop (other)") if busy else (
            "waiting, batch in the thread (GIL?)" if writing else "waiting, no batch (OS)")
        causes[key].append(lag)
    seconds = hi - lo
    print(f"\n{name}: {result['rps']:,.0f} RPS, p50 {result['p50_us'] / 1000:.3f} ms, "
          f"p99 {result['p99_us'] / 1000:.3f} ms, p99.9 {result['p999_us'] / 1000:.3f} ms; "
          f"{len(stalls)} stalls ≥ 1 ms in {seconds:.0f} s")
    for cause, lags in causes.items():
        if lags:
            lags.sort()
            print(f"  {cause}: {len(lags)} ({len(lags) / seconds:.1f}/s), "
                  f"median {lags[len(lags) // 2] * 1000:.1f} ms, "
                  f"max {lags[-1] * 1000:.1f} ms, {sum(lags) / seconds * 100:.2f} % of the time")
    if len(batches) > 1:
        n = sum(b[1] for b in batches)
        recorded = (batches[-1][6] - batches[0][6]) / max(1, batches[-1][5] - batches[0][5])
        print(f"  {len(batches)} batches, {n / len(batches):.0f} logs each; per log: LogSink.record "
              f"{recorded * 1e6:.1f} µs, rows built in the batch "
              f"{sum(b[2] for b in batches) / n * 1e6:.1f} µs, "
              f"thread hop {sum(b[3] for b in batches) / n * 1e6:.1f} µs wall "
              f"({sum(b[4] for b in batches) / n * 1e6:.1f} µs thread CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mode", default="chat", choices=("chat", "stream"))
    parser.add_argument("--port", type=int, default=19490)
    args = parser.parse_args()
    probe_dir = Path(tempfile.mkdtemp(prefix="sluice-stall-probe-"))
    (probe_dir / "sitecustomize.py").write_text(PROBE)
    out = probe_dir / "stalls.json"
    os.environ["SLUICE_STALL_PROBE"] = str(out)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(probe_dir), os.environ.get("PYTHONPATH")]))
    stack = Stack(args.port + 1, args.port)
    body = _body(args.mode)
    windows = []
    try:
        targets = (("logs on", stack.gateway_base), ("logs off", stack.gateway_base_no_logs))
        for _, base in targets:
            wrk(f"{base}/chat/completions", body, stack.headers, 1, 2)
        for i in range(args.rounds):
            for name, base in targets:
                start = time.time()
                result = wrk(f"{base}/chat/completions", body, stack.headers, 1, args.duration)
                time.sleep(0.5)
                windows.append((f"round {i + 1}, {args.mode} c=1, {name}", (start, time.time()), result))
    finally:
        stack.close()
    data = json.loads(out.read_text())
    for name, window, result in windows:
        summarise(name, window, data, result)


if __name__ == "__main__":
    main()
