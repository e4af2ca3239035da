"""Profile Sluice under load: py-spy samples the server while wrk drives chat c=64.

    .venv/bin/python bench/profile.py [--seconds 10] [--mode chat|stream]
Prints the functions with the most samples (self and inclusive); writes the collapsed stacks to
bench/results/profile.txt (flamegraph input).
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import Stack, wrk  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--mode", default="chat", choices=("chat", "stream"))
    args = parser.parse_args()
    out = HERE / "results" / "profile.txt"
    out.parent.mkdir(exist_ok=True)
    stack = Stack(18791, 18790)
    try:
        body = HERE / ("req_chat_stream.json" if args.mode == "stream" else "req_chat.json")
        load = threading.Thread(target=wrk,
                                args=(f"{stack.gateway_base}/chat/completions", body, stack.headers, 64,
                                                  args.seconds + 3))
        load.start()
        subprocess.run([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(stack.server.pid),
                        "--duration", str(args.seconds), "--format", "raw", "--output", str(out),
                        "--nonblocking",
                        "--rate", "500"], check=True, capture_output=True)
        load.join()
    finally:
        stack.close()
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        names = frames.split(";")
        self_time[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    print(f"{total} samples\n-- self --")
    for name, n in self_time.most_common(25):
        print(f"{n / total * 100:5.1f}%  {name}")
    print("-- inclusive --")
    for name, n in inclusive.most_common(45):
        print(f"{n / total * 100:5.1f}%  {name}")


if __name__ == "__main__":
    main()
