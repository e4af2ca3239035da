"""``sluice.asgi:app`` for uvicorn (and other ASGI servers): settings from the environment."""

from sluice.app import create_app
from sluice.logging import configure_logging
from sluice.settings import load_settings

_settings = load_settings()
configure_logging(_settings)
app = create_app(_settings)
