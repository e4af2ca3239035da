"""What the HTTP server itself costs per request: a fixed answer served by each candidate server.

    .venv/bin/python bench/servers.py [--duration 10] [--rounds 2]

The app reads the request body and answers the mock's 971-byte chat completion; nothing else. So
the CPU per request measured here is the server's own share of a gateway's request (parsing, the
interface to the app, writing the answer), the most that a change of server could save. Servers:

* ``uvicorn``: uvicorn + httptools + uvloop (ASGI), as the aiohttp floor's peers run it;
* ``uvicorn-sluice``: the same with ``sluice.protocol:LimitedHttpToolsProtocol`` (what
  ``sluice serve`` runs: header, timeout and connection limits);
* ``granian-asgi`` / ``granian-rsgi``: granian's Rust server with its ASGI and its own RSGI
  interface, when granian is installed (it is not a Sluice dependency: ``pip install granian``).

Pinning as bench/run.py: wrk on core 0, the server on core 1; chat request body, c=64, keep-alive.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import _cpu_seconds, _pin, _rss_mib, wrk  # noqa: E402

ANSWER = HERE.parent.parent / "shared" / "bench" / "mock" / "chat_completion.json"

APPS = '''
BODY = open({answer!r}, "rb").read()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({{"type": message["type"] + ".complete"}})
            if message["type"] == "lifespan.shutdown":
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({{"type": "http.response.start", "status": 200, "headers": HEADERS}})
    await send({{"type": "http.response.body", "body": BODY}})


RSGI_HEADERS = [("content-type", "application/json")]


async def rsgi(scope, protocol):
    await protocol()
    protocol.response_bytes(200, RSGI_HEADERS, BODY)
'''


def servers(port: int) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    uvicorn = [sys.executable, "-m", "uvicorn", "--port", str(port), "--loop", "uvloop", "--no-access-log",
               "--log-level", "warning"]
    found = {"uvicorn": [*uvicorn, "--http", "httptools", "apps:asgi"],
             "uvicorn-sluice": [*uvicorn, "--http", "sluice.protocol:LimitedHttpToolsProtocol", "apps:asgi"]}
    if importlib.util.find_spec("granian") is not None:
        granian = [str(bin_dir / "granian"), "--port", str(port), "--loop", "uvloop", "--no-ws",
                   "--log-level", "warning", "--no-access-log"]
        found["granian-asgi"] = [*granian, "--interface", "asgi", "apps:asgi"]
        found["granian-rsgi"] = [*granian, "--interface", "rsgi", "apps:rsgi"]
    return found


def measure(argv: list[str], workdir: Path, port: int, duration: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(workdir), str(HERE.parent / "src")]),
           "SLUICE_DATA_DIR": str(workdir / "data")}
    server = subprocess.Popen(_pin("1", argv), cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    body = HERE / "req_chat.json"
    try:
        for _ in range(100):
            try:
                wrk(url, body, [], 1, 1)
                break
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        wrk(url, body, [], 64, 2)  # warm-up
        before = _cpu_seconds(server.pid)
        result = wrk(url, body, [], 64, duration)
        cpu = _cpu_seconds(server.pid) - before
        return {"rps": result["rps"], "cpu_us": cpu * 1e6 / result["requests"],
                "p99_ms": result["p99_us"] / 1000, "rss": _rss_mib(server.pid)}
    finally:
        server.terminate()
        server.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="rounds alternate between the servers")
    parser.add_argument("--port", type=int, default=18300)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sluice-bench-servers-"))
    (workdir / "apps.py").write_text(APPS.format(answer=str(ANSWER)))
    candidates = servers(args.port)
    if "granian-asgi" not in candidates:
        print("granian is not installed: measuring uvicorn only (pip install granian)", file=sys.stderr)
    results: dict[str, list[dict]] = {name: [] for name in candidates}
    for round_ in range(1, args.rounds + 1):
        for name, argv in candidates.items():
            found = measure(argv, workdir, args.port, args.duration)
            results[name].append(found)
            print(f"round {round_} {name}: {found['rps']:,.0f} RPS, {found['cpu_us']:.1f} CPU µs/req, "
                  f"p99 {found['p99_ms']:.2f} ms, {found['rss']:.0f} MiB", flush=True)
    print("| server | RPS, median | CPU µs/req, median (range) | RSS MiB |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        cpu = [r["cpu_us"] for r in runs]
        print(f"| {name} | {statistics.median(r['rps'] for r in runs):,.0f} | {statistics.median(cpu):.1f} "
              f"({min(cpu):.1f}–{max(cpu):.1f}) | {max(r['rss'] for r in runs):.0f} |")


if __name__ == "__main__":
    main()
