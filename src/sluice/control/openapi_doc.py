"""Builds the OpenAPI 3.1 document (filled in fully by a later change)."""

from __future__ import annotations

from typing import Any


def build_document() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "Sluice management API", "version": "0.1.0"}, "paths": {}}
