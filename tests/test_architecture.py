"""docs/architecture.md's layer drawing and the import-linter contract in pyproject.toml say the same."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return [layer.replace("sluice.", "") for layer in layers]


def drawn_layers() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index("## Layers"):]
    block = section[section.index("```\n") + 4:section.index("\n```", section.index("```\n") + 4)]
    # each line: a label in the first 19 columns, then the layer's modules, then an optional note
    return [re.split(r"\s{2,}", line[19:].strip())[0] for line in block.splitlines() if line.strip()]


def test_drawing_lists_exactly_the_contract_layers_in_order() -> None:
    assert drawn_layers() == contract_layers()
