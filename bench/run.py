"""Measure Sluice against a local mock provider: RPS, p50/p99, ratio to a direct call, CPU, RSS.

    make bench      # or: .venv/bin/python bench/run.py [--duration 10] [--cells chat:1,chat:64,stream:64]
    make soak                       # 10 minutes at c=64: RSS and p99 per minute
    make soak-stream                # the same with streamed answers (--soak 600 --mode stream)
    make bench-latency              # c=1: added p50/p90/p99/p99.9 over direct, logging on and off
    .venv/bin/python bench/run.py --compare-logging [--mode stream]   # request logging on vs off, same run
    .venv/bin/python bench/run.py --redis redis://127.0.0.1:6379/0   # limits decided in Redis

Pinning (2 cores): core 0 runs wrk and the mock (bench/fast_mock.py), core 1 runs Sluice. Sluice is
configured as a real deployment is: gateway authentication on (cf-aig-authorization), a stored key
injected, a per-key rate limit (high enough never to reject), request logging on. With ``--redis``
the limits are decided in Redis (SLUICE_REDIS_URL) and the gateway also has a sliding limit, so
every request runs one Redis script for both limits. Needs `wrk`
(Debian package `wrk`) and `taskset`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
GATEWAY = "bench"
GATEWAY_NO_LOGS = "bench-nologs"  # identical but collect_logs: false (logging cost comparison)


def _pin(cpus: str, argv: list[str]) -> list[str]:
    several = shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1
    return ["taskset", "-c", cpus, *argv] if several else argv


def _call(method: str, url: str, token: str, body: object | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:  # noqa: BLE001 — not up yet, whatever the error
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _cpu_seconds(pid: int) -> float:
    """utime+stime of the process and its children (uvicorn workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid] + [int(p) for p in (Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                                      if Path(f"/proc/{pid}/task/{pid}/children").exists() else [])]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (FileNotFoundError, IndexError):
            pass
    return total


def _thread_cpu(pid: int) -> dict[str, tuple[float, float]]:
    """(user, system) seconds per thread of the process: the main thread runs the event loop."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        label = "event loop" if task.name == str(pid) else f"thread {task.name}"
        found[label] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return found


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def logs_dropped(base_url: str) -> int:
    """Request logs the server has shed so far (``sluice_request_logs_dropped_total``, all reasons):
    a throughput figure only counts if the logs kept up."""
    text = urllib.request.urlopen(f"{base_url}/metrics", timeout=10).read().decode()
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("sluice_request_logs_dropped_total")))


def wrk(url: str, body: Path, headers: list[str], conns: int, seconds: int) -> dict:
    argv = _pin("0", ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s",
                      "-s", str(HERE / "post.lua"), url, "--", str(body), *headers])
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next(row for row in out.splitlines() if row.startswith("WRKJSON "))
    return json.loads(line[len("WRKJSON "):])


PEER = HERE.parent.parent / "shared" / "bench" / "peers" / "pyproxy_aiohttp.py"


class Peer:
    """The thinnest Python pass-through (aiohttp + uvloop, no features) from the shared harness, on
    core 1 like Sluice: the floor a Python gateway is compared with in the same run."""

    def __init__(self, path: Path, mock_url: str, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(_pin("1", [PY, str(path), "--port", str(port), "--upstream", mock_url]),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(f"{self.url}/health")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Stack:
    """The mock on core 0 and Sluice on core 1, configured like a real deployment."""

    def __init__(self, mock_port: int, port: int, redis_url: str = "", src: str = "",
                 wrap: tuple[str, ...] = (), start_s: float = 30) -> None:
        """``src``: another Sluice source tree's ``src`` directory to run (same venv); ``wrap``: a
        command the server runs under (e.g. ``python -m cProfile -o FILE``)."""
        self.tmp = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
        self.mock_url = f"http://127.0.0.1:{mock_port}"
        self.mock = subprocess.Popen(_pin("0", [PY, str(HERE / "fast_mock.py"), "--port", str(mock_port)]),
                                     stdout=subprocess.PIPE, text=True)
        self.mock.stdout.readline()  # type: ignore[union-attr]
        env = {**os.environ, "SLUICE_UPSTREAM_OPENAI": f"{self.mock_url}/v1",
               "SLUICE_UPSTREAM_ANTHROPIC": self.mock_url, "SLUICE_LOG_LEVEL": "warning"}
        if src:
            env["PYTHONPATH"] = str(Path(src).resolve())
        if redis_url:  # its own key prefix, so a run never meets another run's counts
            env.update(SLUICE_REDIS_URL=redis_url, SLUICE_REDIS_KEY_PREFIX=f"sluice-bench-{os.getpid()}:")
        data = self.tmp / "data"
        creds = json.loads(subprocess.run([PY, "-m", "sluice", "init", "--data-dir", str(data), "--json"],
                                          capture_output=True, text=True, check=True, env=env).stdout)
        self.url = f"http://127.0.0.1:{port}"
        self.server = subprocess.Popen(
            _pin("1", [*(wrap or (PY,)), "-m", "sluice", "serve", "--data-dir", str(data),
                       "--port", str(port)]),
            env=env, stdout=open(self.tmp / "server.log", "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        _wait(f"{self.url}/healthz", start_s)
        account, admin = creds["account_id"], creds["api_token"]
        api = f"{self.url}/client/v4/accounts/{account}"
        self.account, self.api, self.admin = account, api, admin  # for benchmarks that add configs
        for gateway_id, logs in ((GATEWAY, True), (GATEWAY_NO_LOGS, False)):
            gateway_limit = {"rate_limiting_limit": 1_000_000_000, "rate_limiting_interval": 60,
                             "rate_limiting_technique": "sliding"} if redis_url else {}
            _call("POST", f"{api}/ai-gateway/gateways", admin,
                  {"id": gateway_id, "authentication": True, "collect_logs": logs, **gateway_limit})
            _call("POST", f"{api}/ai-gateway/gateways/{gateway_id}/provider_configs", admin,
                  {"provider_slug": "openai", "alias": "default", "default_config": True,
                   "secret": "sk-bench-stored-key-0000000000000000", "rate_limit": 1_000_000_000,
                   "rate_limit_period": 60})
        run = _call("POST", f"{api}/tokens", admin, {"name": "bench", "permissions": ["AI Gateway Run"]})
        self.gateway_base = f"{self.url}/v1/{account}/{GATEWAY}/openai"
        self.gateway_base_no_logs = f"{self.url}/v1/{account}/{GATEWAY_NO_LOGS}/openai"
        self.headers = [f"cf-aig-authorization: Bearer {run['result']['value']}"]

    def close(self) -> None:
        for proc in (self.server, self.mock):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM) if proc is self.server else proc.terminate()
                proc.wait(timeout=15)
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_cells(stack: Stack, cells: list[tuple[str, int]], duration: int,
              peer: Peer | None = None) -> list[dict]:
    rows = []
    for mode, conns in cells:
        body = HERE / ("req_chat_stream.json" if mode == "stream" else "req_chat.json")
        wrk(f"{stack.gateway_base}/chat/completions", body, stack.headers, min(conns, 8), 2)  # warm-up
        direct = wrk(f"{stack.mock_url}/v1/chat/completions", body, ["Authorization: Bearer sk-direct"],
                     conns, duration)
        cpu0, dropped0 = _cpu_seconds(stack.server.pid), logs_dropped(stack.url)
        gw = wrk(f"{stack.gateway_base}/chat/completions", body, stack.headers, conns, duration)
        cpu = _cpu_seconds(stack.server.pid) - cpu0
        dropped = logs_dropped(stack.url) - dropped0
        floor = None
        if peer is not None:
            wrk(f"{peer.url}/v1/chat/completions", body, ["Authorization: Bearer sk-direct"], min(conns, 8),
                2)
            floor = wrk(f"{peer.url}/v1/chat/completions", body, ["Authorization: Bearer sk-direct"], conns,
                        duration)
        rows.append({"cell": f"{mode} c={conns}", "direct": direct, "sluice": gw, "peer": floor,
                     "ratio": gw["rps"] / direct["rps"] if direct["rps"] else 0.0,
                     "added_p50_ms": (gw["p50_us"] - direct["p50_us"]) / 1000,
                     "cpu_us_per_req": cpu * 1e6 / max(gw["requests"], 1),
                     "rss_mib": _rss_mib(stack.server.pid),
                     "logs_dropped": dropped})
    return rows


def print_table(rows: list[dict]) -> None:
    print("| cell | direct RPS | py-aiohttp floor RPS | Sluice RPS | Sluice / direct | Sluice / floor "
          "| Sluice p50 ms (added) | Sluice p99 ms | CPU µs/req | RSS MiB | errors | logs dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s, d, f = r["sluice"], r["direct"], r["peer"]
        floor = f"{f['rps']:,.0f}" if f else "-"
        vs_floor = f"{s['rps'] / f['rps']:.2f}" if f and f["rps"] else "-"
        print(f"| {r['cell']} | {d['rps']:,.0f} | {floor} | {s['rps']:,.0f} | {r['ratio']:.3f} | {vs_floor} "
              f"| {s['p50_us']/1000:.2f} (+{r['added_p50_ms']:.2f}) | {s['p99_us']/1000:.2f} "
              f"| {r['cpu_us_per_req']:.0f} | {r['rss_mib']:.0f} | {s['errors']} | {r['logs_dropped']} |")


def compare_logging(stack: Stack, duration: int, mode: str = "chat", rounds: int = 3) -> None:
    """c=64 through two gateways that differ only in collect_logs, alternating, same run; with the
    CPU each of the server's threads spent per request (user + system µs)."""
    body = _body(mode)
    results: dict[str, list[float]] = {"logs on": [], "logs off": []}
    for base in (stack.gateway_base, stack.gateway_base_no_logs):
        wrk(f"{base}/chat/completions", body, stack.headers, 8, 2)  # warm-up
    print(f"| round | gateway | {mode} c=64 RPS | logs dropped "
          "| CPU µs per request by thread (user + system) |\n|---|---|---|---|---|")
    for i in range(rounds):
        for name, base in (("logs on", stack.gateway_base), ("logs off", stack.gateway_base_no_logs)):
            before, dropped = _thread_cpu(stack.server.pid), logs_dropped(stack.url)
            r = wrk(f"{base}/chat/completions", body, stack.headers, 64, duration)
            time.sleep(1.5)  # the last batch of logs is written
            after, dropped = _thread_cpu(stack.server.pid), logs_dropped(stack.url) - dropped
            results[name].append(r["rps"])
            count = max(1.0, r["rps"] * duration)
            threads = []
            for label, (user, system) in after.items():
                user -= before.get(label, (0.0, 0.0))[0]
                system -= before.get(label, (0.0, 0.0))[1]
                if (user + system) * 1e6 / count >= 1:
                    threads.append(f"{label} {user * 1e6 / count:.0f} + {system * 1e6 / count:.0f}")
            print(f"| {i + 1} | {name} | {r['rps']:,.0f} | {dropped} | {'; '.join(threads)} |", flush=True)
    on, off = sorted(results["logs on"])[rounds // 2], sorted(results["logs off"])[rounds // 2]
    print(f"median RPS: logs on {on:,.0f}, logs off {off:,.0f}; logging on / off = {on / off:.3f}")


def soak(stack: Stack, seconds: int, mode: str = "chat", slice_s: int = 60) -> None:
    """c=64 for ``seconds`` (the gateway's core saturated): RPS, p50/p99, RSS and logs shed per minute,
    then RSS growth after minute 1 (the first minute fills caches and the log buffer) and all logs
    shed."""
    body = _body(mode)
    print(f"{mode} c=64 soak\n| minute | RPS | p50 ms | p99 ms | RSS MiB | errors | logs dropped |\n"
          "|---|---|---|---|---|---|---|")
    start_rss = _rss_mib(stack.server.pid)
    after_first = start_rss
    for i in range(max(1, seconds // slice_s)):
        dropped = logs_dropped(stack.url)
        r = wrk(f"{stack.gateway_base}/chat/completions", body, stack.headers, 64, slice_s)
        rss = _rss_mib(stack.server.pid)
        after_first = rss if i == 0 else after_first
        print(f"| {i + 1} | {r['rps']:,.0f} | {r['p50_us']/1000:.2f} | {r['p99_us']/1000:.2f} "
              f"| {rss:.0f} | {r['errors']} | {logs_dropped(stack.url) - dropped} |",
              flush=True)
    time.sleep(2)  # the last batches are written (or shed) before the final count
    shed = logs_dropped(stack.url)
    rss = _rss_mib(stack.server.pid)
    print(f"RSS growth over the soak: {(rss / start_rss - 1) * 100:+.1f}% (from {start_rss:.0f} MiB); "
          f"after minute 1: {(rss / after_first - 1) * 100:+.1f}% ({after_first:.0f} → {rss:.0f} MiB); "
          f"logs shed in all: {shed}")


LATENCY_COLUMNS = (("p50", "p50_us"), ("p90", "p90_us"), ("p99", "p99_us"), ("p99.9", "p999_us"))


def latency(stack: Stack, duration: int, mode: str = "chat", rounds: int = 3) -> None:
    """c=1, one request at a time: the latency Sluice adds over a direct call to the mock at
    p50/p90/p99/p99.9, request logging on and off (two gateways differing only in collect_logs).
    Each round runs direct, logs on, logs off in turn; "added" is against the same round's direct run,
    and the summary is the median over rounds."""
    body = _body(mode)
    targets = (("direct", f"{stack.mock_url}/v1/chat/completions", ["Authorization: Bearer sk-direct"]),
               ("logs on", f"{stack.gateway_base}/chat/completions", stack.headers),
               ("logs off", f"{stack.gateway_base_no_logs}/chat/completions", stack.headers))
    for _, url, headers in targets:
        wrk(url, body, headers, 1, 2)  # warm-up
    names = " | ".join(f"{name} ms (added)" for name, _ in LATENCY_COLUMNS)
    print(f"{mode} c=1, {duration} s per run\n| round | target | RPS | {names} | max ms | errors |\n"
          f"|---|---|---|{'---|' * len(LATENCY_COLUMNS)}---|---|")
    added: dict[str, dict[str, list[float]]] = {"logs on": {}, "logs off": {}}
    for i in range(rounds):
        direct: dict = {}
        for name, url, headers in targets:
            r = wrk(url, body, headers, 1, duration)
            direct = r if name == "direct" else direct
            cells = []
            for label, key in LATENCY_COLUMNS:
                extra = (r[key] - direct[key]) / 1000
                if name != "direct":
                    added[name].setdefault(label, []).append(extra)
                cells.append(f"{r[key] / 1000:.3f}" + ("" if name == "direct" else f" (+{extra:.3f})"))
            print(f"| {i + 1} | {name} | {r['rps']:,.0f} | {' | '.join(cells)} | {r['max_us'] / 1000:.1f} "
                  f"| {r['errors']} |", flush=True)
            time.sleep(1)  # the logs of this run are written before the next run starts
    for name, by_label in added.items():
        medians = ", ".join(f"{label} {sorted(v)[len(v) // 2]:.3f}" for label, v in by_label.items())
        print(f"median added latency over {rounds} rounds, {name}: {medians} ms")


def _body(mode: str) -> Path:
    return HERE / ("req_chat_stream.json" if mode == "stream" else "req_chat.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="chat:1,chat:64,stream:64",
                        help="MODE:CONCURRENCY list (chat, stream)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured cell")
    parser.add_argument("--soak", type=int, default=0, help="instead of cells: soak at c=64 for N seconds")
    parser.add_argument("--latency", action="store_true",
                        help="instead of cells: c=1 added latency p50/p90/p99/p99.9, logging on and off")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --latency / --compare-logging")
    parser.add_argument("--compare-logging", action="store_true",
                        help="instead of cells: logging on vs off (two gateways, alternating rounds)")
    parser.add_argument("--mode", default="chat", choices=("chat", "stream"),
                        help="what --compare-logging, --latency and --soak send")
    parser.add_argument("--redis", default="", help="Redis URL: rate limits (per key + a sliding gateway "
                        "limit) decided by the shared Redis limiter on every request")
    parser.add_argument("--port", type=int, default=18790)
    parser.add_argument("--mock-port", type=int, default=18791)
    parser.add_argument("--peer", default=str(PEER), help="aiohttp pass-through to compare with ('' to skip)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench needs wrk: apt-get install wrk")
    stack = Stack(args.mock_port, args.port, args.redis)
    try:
        if args.soak:
            soak(stack, args.soak, args.mode)
        elif args.latency:
            latency(stack, args.duration, args.mode, args.rounds)
        elif args.compare_logging:
            compare_logging(stack, args.duration, args.mode, args.rounds)
        else:
            cells = [(m, int(c)) for m, c in (cell.split(":") for cell in args.cells.split(","))]
            has_peer = args.peer and Path(args.peer).exists()
            peer = Peer(Path(args.peer), stack.mock_url, args.port + 2) if has_peer else None
            try:
                print_table(run_cells(stack, cells, args.duration, peer))
            finally:
                if peer is not None:
                    peer.close()
    finally:
        stack.close()


if __name__ == "__main__":
    main()
