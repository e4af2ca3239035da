"""Where a dynamic route's extra CPU goes: cProfile over the data plane in this process.

    PYTHONPATH=src .venv/bin/python bench/routing_profile.py [--requests 2000] [--top 30]
The app of ``sluice serve`` runs in this process (the fast mock as the upstream, the stack of
bench/routing.py: authentication, a stored key, request logging on), driven through its ASGI
interface with no HTTP server, on uvloop; the profiler counts CPU time. The same requests as
bench/routing.py, ``compat`` then ``route``, each profiled on its own; prints, for each, the
functions with the most own time per request, and the functions whose time per request grows most
from ``compat`` to ``route``. ``--cpu ROUNDS``: no
profiler, alternating rounds of both, the CPU per request and the median difference (quick A/B of a
change; bench/routing.py is the measure of record).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # bench/profile.py shadows
import cProfile  # noqa: E402  (the standard library's, which imports its ``profile``)

sys.path.insert(0, str(HERE))
from compat import _free_port  # noqa: E402
from routing import ELEMENTS, MODEL, OPENAI, ROUTE  # noqa: E402
from run import GATEWAY, PY  # noqa: E402

Row = tuple[str, float, float]  # function, own µs, cumulative µs per request


async def _asgi(app: Any, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.Event().wait()  # never disconnects
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": raw, "raw_path": raw.encode(), "query_string": query.encode(),
             "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8787),
             "headers": [(k.lower().encode(), v.encode()) for k, v in
                         {**headers, "content-length": str(len(body))}.items()]}
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def _api(app: Any, token: str, path: str, payload: object) -> dict[str, Any]:
    status, answer = await _asgi(app, "POST", path, {"authorization": f"Bearer {token}",
                                                     "content-type": "application/json"},
                                 json.dumps(payload).encode())
    assert status == 200, answer
    return json.loads(answer)


def _rows(profile: cProfile.Profile, requests: int) -> dict[str, Row]:
    stats = pstats.Stats(profile)
    rows = {}
    for (file, line, name), (_, _, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        label = f"{Path(file).name}:{line}({name})"
        rows[label] = (label, own * 1e6 / requests, cumulative * 1e6 / requests)
    return rows


async def _warm(app: Any, path: str, headers: dict[str, str], body: bytes) -> None:
    for _ in range(200):
        status, answer = await _asgi(app, "POST", path, headers, body)
        assert status == 200, answer


async def _cpu_us(app: Any, path: str, headers: dict[str, str], body: bytes, requests: int,
                  concurrency: int) -> float:
    """This process's CPU µs per request (the request logs' writer thread included)."""
    before = time.process_time()

    async def worker(count: int) -> None:
        for _ in range(count):
            await _asgi(app, "POST", path, headers, body)

    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    await asyncio.sleep(1.0)  # the request logs of the batch are written
    return (time.process_time() - before) * 1e6 / requests


async def _cpu(app: Any, path: str, headers: dict[str, str], bodies: dict[str, bytes],
               args: argparse.Namespace) -> None:
    """No profiler: alternating rounds, CPU per request, the median difference."""
    rounds: list[tuple[float, float]] = []
    for i in range(args.cpu):
        compat = await _cpu_us(app, path, headers, bodies["compat"], args.requests, args.concurrency)
        route = await _cpu_us(app, path, headers, bodies["route"], args.requests, args.concurrency)
        rounds.append((compat, route))
        print(f"round {i + 1}: compat {compat:.1f}  route {route:.1f}  difference {route - compat:+.1f}",
              flush=True)
    print(f"median: compat {statistics.median(r[0] for r in rounds):.1f}  route "
          f"{statistics.median(r[1] for r in rounds):.1f}  difference "
          f"{statistics.median(r[1] - r[0] for r in rounds):+.1f} µs CPU per request")


async def _profile(app: Any, path: str, headers: dict[str, str], body: bytes,
                   requests: int) -> dict[str, Row]:
    profile = cProfile.Profile(time.process_time)  # CPU, not wall time: the machine is shared
    profile.enable()
    for _ in range(requests):
        await _asgi(app, "POST", path, headers, body)
    profile.disable()
    await asyncio.sleep(1.5)  # the request logs are written before the next variant
    return _rows(profile, requests)


async def _main(args: argparse.Namespace, data: Path) -> None:
    from sluice.app import create_app
    from sluice.settings import load_settings

    app = create_app(load_settings(data_dir=data))
    await app.startup()
    try:
        creds = json.loads((data.parent / "creds.json").read_text())
        account, admin = creds["account_id"], creds["api_token"]
        api = f"/client/v4/accounts/{account}"
        await _api(app, admin, f"{api}/ai-gateway/gateways", {"id": GATEWAY, "authentication": True,
                                                               "collect_logs": True})
        await _api(app, admin, f"{api}/ai-gateway/gateways/{GATEWAY}/provider_configs",
                   {"provider_slug": "openai", "alias": "default", "default_config": True,
                    "secret": "sk-bench-stored-key-0000000000000000", "rate_limit": 1_000_000_000,
                    "rate_limit_period": 60})
        await _api(app, admin, f"{api}/ai-gateway/gateways/{GATEWAY}/routes",
                   {"name": ROUTE, "elements": ELEMENTS})
        token = await _api(app, admin, f"{api}/tokens", {"name": "bench", "permissions": ["AI Gateway Run"]})
        headers = {"cf-aig-authorization": f"Bearer {token['result']['value']}",
                   "content-type": "application/json", "cf-aig-metadata": '{"plan": "paid", "team": "bench"}'}
        path = f"/v1/{account}/{GATEWAY}/compat/chat/completions"
        bodies = {name: json.dumps({**OPENAI, "model": model}).encode()
                  for name, model in (("compat", MODEL), ("route", f"dynamic/{ROUTE}"))}
        for body in bodies.values():
            await _warm(app, path, headers, body)
        if args.cpu:
            await _cpu(app, path, headers, bodies, args)
            return
        found = {name: await _profile(app, path, headers, body, args.requests)
                 for name, body in bodies.items()}
    finally:
        await app.shutdown()
    for name, rows in found.items():
        print(f"\n{name}: own µs per request (top {args.top})")
        for label, own, cumulative in sorted(rows.values(), key=lambda r: -r[1])[:args.top]:
            print(f"  {own:7.1f} own {cumulative:8.1f} cum  {label}")
    for column, kind in ((2, "cumulative"), (1, "own")):
        grown = [(label, row[column] - found["compat"].get(label, (label, 0.0, 0.0))[column])
                 for label, row in found["route"].items()]
        print(f"\nroute - compat: {kind} µs per request, largest growth (top {args.top})")
        for label, growth in sorted(grown, key=lambda r: -r[1])[:args.top]:
            print(f"  {growth:+8.1f}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--cpu", type=int, default=0, metavar="ROUNDS",
                        help="no profile: this many alternating rounds of CPU per request")
    parser.add_argument("--concurrency", type=int, default=1, help="requests at a time (with --cpu)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sluice-route-profile-"))
    port = _free_port()
    mock = subprocess.Popen([PY, str(HERE / "fast_mock.py"), "--port", str(port)], stdout=subprocess.PIPE,
                            text=True)
    try:
        mock.stdout.readline()  # type: ignore[union-attr]
        os.environ.update(SLUICE_UPSTREAM_OPENAI=f"http://127.0.0.1:{port}/v1", SLUICE_LOG_LEVEL="warning")
        data = tmp / "data"
        init = subprocess.run([PY, "-m", "sluice", "init", "--data-dir", str(data), "--json"],
                              capture_output=True, text=True, check=True)
        (tmp / "creds.json").write_text(init.stdout)
        uvloop.run(_main(args, data))  # the server's loop
    finally:
        mock.terminate()
        mock.wait(timeout=10)


if __name__ == "__main__":
    main()
