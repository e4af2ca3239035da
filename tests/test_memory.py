"""``sluice.memory``: freed heap pages go back to the OS (glibc's malloc_trim)."""

from __future__ import annotations

import os
import platform

from sluice.memory import release_free_memory


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024


def test_release_hands_freed_pages_back() -> None:
    if platform.libc_ver()[0] != "glibc":  # nothing to call elsewhere: it must say so, not pretend
        assert release_free_memory() is False
        return
    assert release_free_memory() is True  # CI (Debian) is glibc: the call must be found
    kept = []
    junk = [os.urandom(64) * (40 + i % 100) for i in range(12_000)]  # ~50 MB of 2.5-9 KB blocks
    kept.append(junk[::97])  # a few survivors pin the heap's top, as long-lived objects do
    del junk
    before = rss_mib()
    release_free_memory()
    assert rss_mib() < before - 10, "freed blocks stayed resident"
    assert kept
