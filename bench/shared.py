"""Run the shared peer harness (../shared/bench/run.sh) with Sluice added as a target.

    .venv/bin/python bench/shared.py [--harness DIR] [--compare NAME=SRC ...] [-- extra run.sh args]

Prepares a data dir (gateway with authentication on, a stored OpenAI key with a per-key rate limit
far above the load, request logging on, a token with AI Gateway Run), then runs the harness with
Sluice as `--extra sluice`. The harness's default `Authorization: Bearer sk-…` header is replaced by
the Sluice token, so every request authenticates to the gateway and gets the stored key injected.

``--redis URL`` adds a target ``sluice-redis``: the same build with its rate limits (per key, plus a
sliding gateway limit) decided in Redis on every request.

``--workers N`` (with ``--redis``) adds a target ``sluice-wN``: ``sluice serve --workers N`` sharing its
limits in that Redis, pinned to cores 0 and 1 (the harness's ``--extra-cpus``; core 0 also runs wrk and
the mock, so on a 2-core machine the workers get what those leave).

``--granian`` adds a target ``sluice-granian``: the same app (``sluice.asgi:app``) served by granian's
ASGI interface instead of uvicorn (granian is not a dependency: ``pip install granian``). A measurement
only: ``sluice serve``'s header, timeout and connection limits (``sluice.protocol``) are uvicorn's.

``--compare before=/path/to/other/checkout/src`` adds another Sluice build as one more target of the
same run (its ``src`` first on ``PYTHONPATH``, same venv): a change measured against the code it
replaces, on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from run import GATEWAY, _call, _wait  # noqa: E402

PY = sys.executable


def prepare(data: Path, port: int, env: dict[str, str] | None = None,
            gateway_limit: bool = False) -> tuple[str, str]:
    """A data dir with the benchmark's gateway, stored key and token; ``gateway_limit`` adds a sliding
    gateway limit far above the load (with the Redis limiter, every request then runs its script)."""
    env = env or dict(os.environ)
    creds = json.loads(subprocess.run([PY, "-m", "sluice", "init", "--data-dir", str(data), "--json"],
                                      capture_output=True, text=True, check=True, env=env).stdout)
    server = subprocess.Popen([PY, "-m", "sluice", "serve", "--data-dir", str(data), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait(f"http://127.0.0.1:{port}/healthz")
        api = f"http://127.0.0.1:{port}/client/v4/accounts/{creds['account_id']}"
        admin = creds["api_token"]
        limit = {"rate_limiting_limit": 1_000_000_000, "rate_limiting_interval": 60,
                 "rate_limiting_technique": "sliding"} if gateway_limit else {}
        _call("POST", f"{api}/ai-gateway/gateways", admin,
              {"id": GATEWAY, "authentication": True, "collect_logs": True, **limit})
        _call("POST", f"{api}/ai-gateway/gateways/{GATEWAY}/provider_configs", admin,
              {"provider_slug": "openai", "alias": "default", "default_config": True,
               "secret": "sk-bench-stored-key-0000000000000000", "rate_limit": 1_000_000_000,
               "rate_limit_period": 60})
        token = _call("POST", f"{api}/tokens", admin, {"name": "bench", "permissions": ["AI Gateway Run"]})
    finally:
        server.terminate()
        server.wait(timeout=15)
    return creds["account_id"], token["result"]["value"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--harness", default=str(ROOT.parent / "shared" / "bench"))
    parser.add_argument("--port", type=int, default=18190)
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=SRC",
                        help="another Sluice source tree (its src/ directory) as one more target")
    parser.add_argument("--redis", default="", metavar="URL",
                        help="also run target sluice-redis: limits decided in this Redis on every request")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="with --redis: also run target sluice-wN, N worker processes on cores 0,1")
    parser.add_argument("--granian", action="store_true",
                        help="also run target sluice-granian: the app under granian (ASGI)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to run.sh (after --)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="sluice-shared-bench-")) / "data"
    account, token = prepare(data, args.port)
    base = f"http://127.0.0.1:{args.port}/v1/{account}/{GATEWAY}/openai"
    command = (f"SLUICE_UPSTREAM_OPENAI={{mock_base_url}} SLUICE_LOG_LEVEL=warning "
               f"exec {PY} -m sluice serve --data-dir {data} --port {{port}}")
    rest = [a for a in args.rest if a != "--"]
    argv = ["./run.sh", "--extra", "sluice", base, command,
            "--extra-header", "sluice", f"Authorization: Bearer {token}"]
    for n, spec in enumerate(args.compare, start=1):
        name, src = spec.split("=", 1)
        env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
        other = Path(tempfile.mkdtemp(prefix=f"sluice-shared-bench-{name}-")) / "data"
        other_account, other_token = prepare(other, args.port + n, env)
        argv += ["--extra", name, f"http://127.0.0.1:{args.port + n}/v1/{other_account}/{GATEWAY}/openai",
                 f"PYTHONPATH={env['PYTHONPATH']} " + command.replace(str(data), str(other)),
                 "--extra-header", name, f"Authorization: Bearer {other_token}"]
    if args.redis:
        port = args.port + len(args.compare) + 1
        prefix = f"sluice-bench-{os.getpid()}:"
        env = {**os.environ, "SLUICE_REDIS_URL": args.redis, "SLUICE_REDIS_KEY_PREFIX": prefix}
        other = Path(tempfile.mkdtemp(prefix="sluice-shared-bench-redis-")) / "data"
        other_account, other_token = prepare(other, port, env, gateway_limit=True)
        argv += ["--extra", "sluice-redis", f"http://127.0.0.1:{port}/v1/{other_account}/{GATEWAY}/openai",
                 f"SLUICE_REDIS_URL={args.redis} SLUICE_REDIS_KEY_PREFIX={prefix} "
                 + command.replace(str(data), str(other)),
                 "--extra-header", "sluice-redis", f"Authorization: Bearer {other_token}"]
    if args.workers > 1:
        if not args.redis:
            parser.error("--workers needs --redis (workers share their rate limits there)")
        port = args.port + len(args.compare) + 2
        prefix = f"sluice-bench-{os.getpid()}-w:"
        env = {**os.environ, "SLUICE_REDIS_URL": args.redis, "SLUICE_REDIS_KEY_PREFIX": prefix}
        other = Path(tempfile.mkdtemp(prefix="sluice-shared-bench-workers-")) / "data"
        other_account, other_token = prepare(other, port, env, gateway_limit=True)
        name = f"sluice-w{args.workers}"
        serve = command.replace(str(data), str(other)) + f" --workers {args.workers}"
        argv += ["--extra", name, f"http://127.0.0.1:{port}/v1/{other_account}/{GATEWAY}/openai",
                 f"SLUICE_REDIS_URL={args.redis} SLUICE_REDIS_KEY_PREFIX={prefix} " + serve,
                 "--extra-header", name, f"Authorization: Bearer {other_token}",
                 "--extra-cpus", name, "0,1"]
    if args.granian:
        port = args.port + len(args.compare) + 3
        other = Path(tempfile.mkdtemp(prefix="sluice-shared-bench-granian-")) / "data"
        other_account, other_token = prepare(other, port)
        granian = Path(PY).parent / "granian"
        argv += ["--extra", "sluice-granian", f"http://127.0.0.1:{port}/v1/{other_account}/{GATEWAY}/openai",
                 f"SLUICE_DATA_DIR={other} SLUICE_UPSTREAM_OPENAI={{mock_base_url}} SLUICE_LOG_LEVEL=warning "
                 f"exec {granian} --interface asgi --loop uvloop --port {{port}} --no-ws --log-level warning "
                 "--no-access-log sluice.asgi:app",
                 "--extra-header", "sluice-granian", f"Authorization: Bearer {other_token}"]
    argv += rest
    os.chdir(args.harness)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
