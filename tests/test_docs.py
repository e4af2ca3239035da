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


def test_ci_runs_the_suite_on_sqlite_and_on_postgresql() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^test-pg:.*\n\t(.*)$", makefile, re.M)
    assert target and "SLUICE_TEST_BACKEND=postgres" in target.group(1) and "pytest" in target.group(1)
    assert "-rs" in target.group(1), "tests not run on PostgreSQL must be reported with their reason"
    ci = [line.split("#")[0].strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert ci.index("make test") < ci.index("make test-pg")
    assert "## Testing on PostgreSQL and Redis" in (ROOT / "docs" / "scale-out.md").read_text()


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


SOURCES = ("src", "tests", "docs", "bench", "scripts")
TEXT_SUFFIXES = (".py", ".md", ".toml", ".sh")


def _texts() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    for top in SOURCES:
        files += [p for p in (ROOT / top).rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES]
    return files


def test_nothing_cites_documents_outside_the_repo() -> None:
    """The project cites its own docs (docs/*.md), never a specification or research notes kept elsewhere."""
    pattern = re.compile(r"\bSPEC\b|SPEC\.md|research §|research cf-|cf-aigateway-spec")
    found = [f"{p.relative_to(ROOT)}:{n}" for p in _texts() if p.name != "test_docs.py"
             for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if pattern.search(line)]
    assert found == []


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_docs_resolve() -> None:
    """Every relative link in README.md and docs/*.md names a file that exists, and an anchor in it."""
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked here
            path, _, anchor = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            if not linked.exists():
                broken.append(f"{doc.name}: {target}")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{doc.name}: {target}")
    assert broken == []
