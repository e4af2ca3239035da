"""Wheel smoke test: build the wheel, install it into a clean virtualenv, serve one request, find its log.

Why: tests run the source tree, so a file the wheel leaves out (a price table, the provider catalogue,
a migration) goes unnoticed until someone installs Sluice. This builds the wheel with ``python -m
build``, installs it (not editable) into a throwaway virtualenv, runs ``sluice serve`` from there on a
temporary data dir against the mock upstream (run from this interpreter: it needs the test extra),
sends one data-plane request with a stored key, and waits for that request's log in the Logs API.
It also checks the installed server imports Sluice from the virtualenv and runs without aiohttp.

Run: ``python scripts/wheel_smoke.py [--keep]`` (``make check`` runs it); exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import venv
import zipfile
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
LOG_DEADLINE_S = 20.0
START_DEADLINE_S = 30.0


class SmokeFailure(Exception):
    """The installed wheel did not serve and log a request."""


def step(message: str) -> None:
    print(f"wheel-smoke: {message}", flush=True)


def run(*argv: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SmokeFailure(f"{' '.join(map(str, argv))} exited {result.returncode}:\n"
                           f"{result.stdout[-4000:]}{result.stderr[-4000:]}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    """The environment for the installed Sluice: nothing that points back into the source tree."""
    dropped = ("PYTHONPATH", "VIRTUAL_ENV", "COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("SLUICE_")}
    env["SLUICE_LOG_LEVEL"] = "info"
    return env


def build_wheel(work: Path) -> Path:
    step("building the wheel")
    dist = work / "dist"
    run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT)
    wheels = list(dist.glob("sluice-*.whl"))
    if len(wheels) != 1:
        raise SmokeFailure(f"expected one wheel in {dist}, found {wheels}")
    check_contents(wheels[0])
    return wheels[0]


def package_files() -> set[str]:
    """Every file of the package in the source tree (git's list when there is one), as wheel paths."""
    listed = subprocess.run(["git", "ls-files", "src/sluice"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout.strip():
        names = [Path(line) for line in listed.stdout.splitlines()]
    else:
        names = [p.relative_to(ROOT) for p in (ROOT / "src" / "sluice").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts]
    return {name.relative_to("src").as_posix() for name in names}


def check_contents(wheel: Path) -> None:
    """The wheel holds every file of the package: data files (price table, catalogue) included."""
    with zipfile.ZipFile(wheel) as archive:
        missing = sorted(package_files() - set(archive.namelist()))
    if missing:
        raise SmokeFailure(f"the wheel leaves out {len(missing)} package file(s): {', '.join(missing)}")


def install(wheel: Path, work: Path) -> Path:
    step(f"installing {wheel.name} into a clean virtualenv")
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel, env=clean_env())
    probe = ("import importlib.util, json, sluice; "
             "print(json.dumps([sluice.__file__, importlib.util.find_spec('aiohttp') is not None]))")
    where, has_aiohttp = json.loads(run(python, "-c", probe, cwd=work, env=clean_env()).stdout)
    if not Path(where).is_relative_to(env_dir):
        raise SmokeFailure(f"the virtualenv imports sluice from {where}, not from the installed wheel")
    if has_aiohttp:  # the served request below then proves nothing about running without it
        raise SmokeFailure("the wheel pulls in aiohttp: only the test mock needs it (extra `test`)")
    return env_dir / "bin"


class Process:
    """A child process whose output goes to a file, stopped with SIGTERM like a service manager does."""

    def __init__(self, argv: list[str | Path], log: Path, **kwargs: Any) -> None:
        self.log = log
        self._out = open(log, "wb")  # closed in stop()
        self.proc = subprocess.Popen([str(a) for a in argv], stdout=self._out, stderr=subprocess.STDOUT,
                                     **kwargs)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def start_mock(work: Path) -> tuple[subprocess.Popen[str], str]:
    step("starting the mock upstream (from this interpreter)")
    proc = subprocess.Popen([sys.executable, "-m", "sluice.testing.mock_upstream", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise SmokeFailure(f"mock upstream failed to start: {line}{proc.stdout.read()}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def wait_healthy(url: str, server: Process) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SmokeFailure(f"installed server exited with {server.proc.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SmokeFailure(f"installed server did not become healthy:\n{server.output()}")


def ok(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise SmokeFailure(f"{response.request.method} {response.request.url} -> {response.status_code}: "
                           f"{response.text}")
    return response.json()["result"]


def check_console(url: str) -> None:
    """The console's files are package data: the installed wheel must serve them."""
    step("checking that /console/ serves its page and scripts")
    for path in ("/console/", "/console/js/app.js", "/console/vendor/uPlot.iife.min.js"):
        response = httpx.get(f"{url}{path}", timeout=10)
        if response.status_code != 200 or not response.content:
            raise SmokeFailure(f"GET {path} -> {response.status_code}: the wheel lacks the console's files")


def exercise(url: str, creds: dict[str, Any], server: Process) -> None:
    """One gateway, one stored key, one chat request; its log must reach the Logs API."""
    account = creds["account_id"]
    gateway = f"smoke-{secrets.token_hex(3)}"
    api = httpx.Client(base_url=f"{url}/client/v4/accounts/{account}/ai-gateway", timeout=30,
                       headers={"Authorization": f"Bearer {creds['api_token']}"})
    with api:
        ok(api.post("/gateways", json={"id": gateway, "authentication": False}))
        ok(api.post(f"/gateways/{gateway}/provider_configs",
                    json={"provider_slug": "openai", "alias": "default", "default_config": True,
                          "secret": f"sk-smoke-{secrets.token_hex(8)}"}))
        step("sending one chat completion through the data plane with the stored key")
        response = httpx.post(f"{url}/v1/{account}/{gateway}/openai/chat/completions", timeout=30,
                              json={"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]})
        if response.status_code != 200:
            raise SmokeFailure(f"data-plane request -> {response.status_code}: {response.text}")
        log_id = response.headers["cf-aig-log-id"]
        step(f"waiting for log {log_id} in the Logs API")
        deadline = time.monotonic() + LOG_DEADLINE_S
        while True:
            found = api.get(f"/gateways/{gateway}/logs/{log_id}")
            if found.status_code == 200:
                log = found.json()["result"]
                if (log["provider"], log["status_code"]) != ("openai", 200):
                    raise SmokeFailure(f"unexpected log: {log}")
                return
            if time.monotonic() > deadline:
                raise SmokeFailure(f"log {log_id} was never stored (last answer {found.status_code}); "
                                   f"server output:\n{server.output()[-6000:]}")
            time.sleep(0.1)


def smoke(work: Path) -> None:
    bin_dir = install(build_wheel(work), work)
    data_dir = work / "data"
    env = clean_env()
    init = run(bin_dir / "sluice", "init", "--data-dir", data_dir, "--json", env=env, cwd=work)
    creds = json.loads(init.stdout)
    mock, mock_url = start_mock(work)
    try:
        env["SLUICE_UPSTREAM_OPENAI"] = f"{mock_url}/openai"
        port = free_port()
        step(f"starting the installed `sluice serve` on port {port}")
        server = Process([bin_dir / "sluice", "serve", "--data-dir", data_dir, "--port", str(port)],
                         work / "server.log", env=env, cwd=work)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, server)
            check_console(url)
            exercise(url, creds, server)
        finally:
            server.stop()
    finally:
        mock.send_signal(signal.SIGTERM)
        mock.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sluice-wheel-smoke-"))
    try:
        smoke(work)
    except SmokeFailure as exc:
        print(f"wheel-smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            step(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    step("OK: the installed wheel served a request and stored its log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
