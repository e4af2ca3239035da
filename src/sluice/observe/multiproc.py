"""The metrics directory of ``sluice serve --workers N``: prometheus-client's multiprocess mode keeps
each worker's counters in memory-mapped files there, and a scrape answered by any worker sums them.

One directory per run, ``<data dir>/metrics/<pid of the serving process>``, created empty at start.
Directories of runs whose process is gone are removed then, so they neither grow without bound nor
leak into a later run's sums; a running instance sharing the data dir keeps its own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client itself when it is imported


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_run_dir(data_dir: Path, pid: int) -> Path:
    """Create this run's empty metrics directory (0700) and remove those of finished runs."""
    root = data_dir / "metrics"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for entry in root.iterdir():
        finished = not entry.name.isdigit() or int(entry.name) == pid or not _alive(int(entry.name))
        if entry.is_dir() and finished:
            shutil.rmtree(entry, ignore_errors=True)
    run = root / str(pid)
    run.mkdir(mode=0o700)
    return run
