"""``sluice.asgi:app`` for uvicorn (and other ASGI servers): settings from the environment."""

import sys

# structlog imports ``rich`` (pulled in by the CLI's typer) for pretty tracebacks when it is
# installed: ~10 MiB of resident memory in every server process for output we never use (logs
# are plain text or JSON). Marking it absent makes structlog fall back to plain tracebacks.
sys.modules.setdefault("rich", None)  # type: ignore[arg-type]

from sluice.app import create_app  # noqa: E402
from sluice.logging import configure_logging  # noqa: E402
from sluice.settings import load_settings  # noqa: E402

_settings = load_settings()
configure_logging(_settings)
app = create_app(_settings)
