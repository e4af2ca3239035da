"""CPU per rate-limit decision, in-process vs Redis: what the shared limiter adds to each request.

    .venv/bin/python bench/limiter.py [--redis redis://127.0.0.1:6379/0] [--requests 20000] [--concurrency 64]

Each request is decided as the data plane decides one with a gateway limit (sliding) and a stored
key limit (fixed): one ``admit`` call. ``concurrency`` requests are in flight at once on one uvloop
event loop, as under load. Reports this process's CPU (user + system) per request, and wall time.
Redis's own CPU is not included (it runs elsewhere). Keys are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

import uvloop

from sluice.ratelimit.base import Check, RateLimiter
from sluice.ratelimit.local import LocalRateLimiter
from sluice.ratelimit.redis import RedisRateLimiter


async def measure(limiter: RateLimiter, requests: int, concurrency: int) -> tuple[float, float]:
    checks = [Check("gw:bench", 10**9, 3600, "sliding"), Check("key:bench", 10**9, 60, "fixed")]

    async def worker(count: int) -> None:
        for _ in range(count):
            decision = await limiter.admit(checks)
            assert decision.refused is None

    await asyncio.gather(*(worker(200) for _ in range(concurrency)))  # warm-up: connections, script
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    done = requests // concurrency * concurrency
    return (time.process_time() - cpu) * 1e6 / done, (time.perf_counter() - wall) * 1e6 / done


async def main(url: str, requests: int, concurrency: int) -> None:
    prefix = f"sluice-bench-{secrets.token_hex(4)}:"
    redis_limiter = RedisRateLimiter(url, timeout_s=5.0, prefix=prefix)
    await redis_limiter.start()
    try:
        print(f"| limiter | CPU µs per request (this process) | wall µs per request | c={concurrency} |")
        print("|---|---|---|---|")
        for name, limiter in (("in-process", LocalRateLimiter()), ("redis", redis_limiter)):
            cpu, wall = await measure(limiter, requests, concurrency)
            print(f"| {name} | {cpu:.1f} | {wall:.1f} | |", flush=True)
    finally:
        keys = [k async for k in redis_limiter._client.scan_iter(f"{prefix}*")]
        if keys:
            await redis_limiter._client.delete(*keys)
        await redis_limiter.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    uvloop.run(main(args.redis, args.requests, args.concurrency))
