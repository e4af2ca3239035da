"""Pure modules import light: a cache key can be computed without the database, metrics or data plane."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "prometheus_client", "sluice.proxy", "sluice.store", "sluice.observe", "zstandard",
         "starlette", "uvicorn")


@pytest.mark.parametrize("module", ["sluice.cache.keys", "sluice.cache.rules", "sluice.ratelimit.local",
                                    "sluice.exchange", "sluice.proxy.retry"])
def test_pure_module_loads_nothing_heavy(module: str) -> None:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    own = {module.rsplit(".", n)[0] for n in range(module.count("."))}  # the module and its packages
    heavy = [name for name in loaded if name.startswith(HEAVY) and name not in own]
    assert heavy == [], f"importing {module} loaded {heavy}"
