"""Fixtures for several Sluice processes on one PostgreSQL database."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest

from tests.support import backend as test_backend


@pytest.fixture()
def fresh_pg_url() -> Iterator[str]:
    """A NEW, empty PostgreSQL database for this one test (dropped afterwards); fails when unreachable."""
    url = test_backend.create_database("sluice_cluster_")
    yield url
    test_backend.drop_database(url)


@pytest.fixture()
def cluster_master_key() -> str:
    """One master key shared by every process of a cluster (as a real deployment sets it)."""
    return base64.b64encode(os.urandom(32)).decode()
