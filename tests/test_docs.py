"""Docs stay true: every setting and CLI command is documented, and the README's commands exist."""

import re
from pathlib import Path

from sluice.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    missing = [f"SLUICE_{name.upper()}" for name, *_ in SETTINGS if f"`SLUICE_{name.upper()}`" not in text]
    assert missing == []


def test_readme_starts_with_run_and_test_commands() -> None:
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:6])
    assert "`make run`" in head and "`make test`" in head
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_cli_command_is_documented() -> None:
    from typer.main import get_command

    from sluice.cli import app

    text = (ROOT / "docs" / "cli.md").read_text()
    root = get_command(app)
    names = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        sub = getattr(command, "commands", None)
        names += [f"sluice {name} {s}" for s in sub] if sub else [f"sluice {name}"]
    assert [n for n in names if n not in text] == []
