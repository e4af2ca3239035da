"""Slow-client stress: idle and partial-header connections must not stall Sluice.

    .venv/bin/python bench/slow_clients.py [--idle 1000] [--partial 1000] [--header-timeout 10]

Starts its own mock provider and ``sluice serve`` (a fresh data dir, loopback only), records the
server's idle RSS, then opens ``--idle`` connections that send nothing and ``--partial`` connections
that send a request line and half a header and then stall. While they are open it times ``/healthz``
and a data-plane chat request (each must answer within 1 s) and reads the server's RSS (must stay
within 50 MiB of idle). Then it waits out the header timeout and checks that every attacking
connection was closed by the server. Prints one JSON summary; exits 1 when a check fails.
Bounded: at most 5,000 connections, to 127.0.0.1 only; the soft open-files limit is raised to fit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PY = sys.executable
HOST = "127.0.0.1"  # loopback only, never configurable
MAX_CONNECTIONS = 5000
LATENCY_BOUND_S = 1.0
RSS_BOUND_MIB = 50.0
PARTIAL_HEAD = b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            raise SystemExit(f"the open-files hard limit ({hard}) is below the {needed} this run needs")


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not become healthy")


def start_mock() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([PY, "-m", "sluice.testing.mock_upstream", "--host", HOST, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    if not line.startswith("READY"):
        raise SystemExit(f"mock upstream failed to start: {line}")
    return proc, f"http://{HOST}:{int(line.split()[1])}"


def start_server(data: Path, port: int, mock_url: str, header_timeout: float) -> tuple[subprocess.Popen, dict]:
    env = {**os.environ, "SLUICE_UPSTREAM_OPENAI": mock_url, "SLUICE_LOG_LEVEL": "warning",
           "SLUICE_HEADER_TIMEOUT_S": str(header_timeout)}
    creds = json.loads(subprocess.run([PY, "-m", "sluice", "init", "--data-dir", str(data), "--json"], env=env,
                                      capture_output=True, text=True, check=True).stdout)
    proc = subprocess.Popen([PY, "-m", "sluice", "serve", "--data-dir", str(data), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return proc, creds


def set_up_gateway(base: str, creds: dict) -> str:
    """A gateway (authentication off) with a stored OpenAI key; returns the chat completions URL."""
    api = f"{base}/client/v4/accounts/{creds['account_id']}"
    auth = {"Authorization": f"Bearer {creds['api_token']}"}
    gateway = f"slow-{secrets.token_hex(3)}"
    httpx.post(f"{api}/ai-gateway/gateways", headers=auth, json={"id": gateway, "authentication": False},
               timeout=10).raise_for_status()
    httpx.post(f"{api}/ai-gateway/gateways/{gateway}/provider_configs", headers=auth, timeout=10,
               json={"provider_slug": "openai", "alias": "default", "default_config": True,
                     "secret": "sk-slow-clients-" + secrets.token_hex(12)}).raise_for_status()
    return f"{base}/v1/{creds['account_id']}/{gateway}/openai/chat/completions"


def open_connections(port: int, count: int, head: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((HOST, port), timeout=5)
        if head:
            sock.sendall(head)
        sockets.append(sock)
    return sockets


def timed(call: Any) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def probe(client: httpx.Client, base: str, chat_url: str, rounds: int) -> dict[str, float]:
    """Slowest of ``rounds`` /healthz and data-plane calls, each on a new connection (``client`` keeps
    none alive), as a load balancer's health check makes them."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    def healthz() -> None:
        assert client.get(f"{base}/healthz").status_code == 200

    def chat() -> None:
        response = client.post(chat_url, json=body)
        assert response.status_code == 200, response.text

    return {"healthz_max_s": max(timed(healthz) for _ in range(rounds)),
            "data_plane_max_s": max(timed(chat) for _ in range(rounds))}


def closed_by_server(sock: socket.socket, wait_s: float) -> bool:
    sock.settimeout(wait_s)
    try:
        while sock.recv(4096):
            pass  # a 408 response, then EOF
        return True
    except OSError:  # a timeout (still open) or a reset
        return False


def run(idle: int, partial: int, header_timeout: float, rounds: int) -> dict[str, Any]:
    if idle + partial > MAX_CONNECTIONS:
        raise SystemExit(f"at most {MAX_CONNECTIONS} connections")
    raise_fd_limit(idle + partial + 256)
    data = Path(tempfile.mkdtemp(prefix="sluice-slow-clients-")) / "data"
    port = free_port()
    base = f"http://{HOST}:{port}"
    mock, mock_url = start_mock()
    server, creds = start_server(data, port, mock_url, header_timeout)
    attack: list[socket.socket] = []
    client = httpx.Client(timeout=LATENCY_BOUND_S * 5, limits=httpx.Limits(max_keepalive_connections=0))
    try:
        wait_healthy(base, server)
        chat_url = set_up_gateway(base, creds)
        before = probe(client, base, chat_url, rounds)  # also warms up: the management app and upstream pool exist before "idle"
        idle_rss = rss_mib(server.pid)
        started = time.monotonic()
        attack = open_connections(port, idle, b"") + open_connections(port, partial, PARTIAL_HEAD)
        opened_s = time.monotonic() - started
        during = probe(client, base, chat_url, rounds)
        attack_rss = rss_mib(server.pid)
        measured_s = time.monotonic() - started
        remaining = max(0.0, header_timeout - (time.monotonic() - started)) + 2.0
        deadline = time.monotonic() + remaining
        still_open = sum(not closed_by_server(s, max(0.05, deadline - time.monotonic())) for s in attack)
        result = {
            "idle_connections": idle, "partial_header_connections": partial, "opened_in_s": round(opened_s, 3),
            "measured_within_s": round(measured_s, 3), **{k: round(v, 4) for k, v in during.items()},
            "before_attack": {k: round(v, 4) for k, v in before.items()},
            "idle_rss_mib": round(idle_rss, 1), "attack_rss_mib": round(attack_rss, 1),
            "header_timeout_s": header_timeout, "still_open_after_header_timeout": still_open,
        }
        result["passed"] = (during["healthz_max_s"] < LATENCY_BOUND_S and during["data_plane_max_s"] < LATENCY_BOUND_S
                            and attack_rss - idle_rss < RSS_BOUND_MIB and still_open == 0
                            and measured_s < header_timeout)  # measured while every connection was open
        return result
    finally:
        client.close()
        for sock in attack:
            sock.close()
        server.terminate()
        mock.terminate()
        server.wait(timeout=15)
        mock.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=1000, help="connections that send nothing")
    parser.add_argument("--partial", type=int, default=1000, help="connections that stall in their headers")
    parser.add_argument("--header-timeout", type=float, default=10.0, help="SLUICE_HEADER_TIMEOUT_S of the server")
    parser.add_argument("--rounds", type=int, default=10, help="timed /healthz and data-plane calls each")
    args = parser.parse_args()
    result = run(args.idle, args.partial, args.header_timeout, args.rounds)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
