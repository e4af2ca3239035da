"""Data-plane fixtures: the session mock is cleared before every test that uses ``upstream``."""

from __future__ import annotations

import pytest

from tests.support.server import MockUpstream


@pytest.fixture()
def upstream(mock_upstream: MockUpstream) -> MockUpstream:
    mock_upstream.clear()
    return mock_upstream
