"""The per-run metrics directory of ``sluice serve --workers N`` (observe/multiproc.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sluice.observe.multiproc import prepare_run_dir


def _finished_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_gets_an_empty_private_dir_and_finished_runs_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "metrics"
    finished, live = _finished_pid(), os.getppid()
    for pid in (finished, live):
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "counter_1.db").write_bytes(b"old")
    (root / "stray").mkdir()
    run = prepare_run_dir(tmp_path, os.getpid())
    assert run == root / str(os.getpid())
    assert list(run.iterdir()) == [] and run.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in root.iterdir()) == sorted([str(live), str(os.getpid())])  # a live run kept


def test_a_leftover_dir_of_this_pid_starts_empty(tmp_path: Path) -> None:
    stale = tmp_path / "metrics" / str(os.getpid())
    stale.mkdir(parents=True)
    (stale / "counter_7.db").write_bytes(b"a previous run with the same pid")
    assert list(prepare_run_dir(tmp_path, os.getpid()).iterdir()) == []
