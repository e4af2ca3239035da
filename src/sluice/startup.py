"""Start-up failures a person has to fix (the data dir, the database), told in one line that names
the path or URL, instead of a traceback. ``sluice init`` and ``sluice serve`` print it and exit 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from sluice.errors import MasterKeyError, SluiceError


class StartupError(SluiceError):
    """The message names what is wrong and where; it never holds a password."""


def display_url(url: str) -> str:
    """The database URL with any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 — unparseable: say which kind, show nothing of it
        return url.split(":", 1)[0] + "://…"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    elif isinstance(exc, TimeoutError):
        text = "timed out"
    else:
        text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200] if text.strip() else type(exc).__name__


@contextmanager
def data_dir_errors(path: Path) -> Iterator[None]:
    if path.exists() and not path.is_dir():
        raise StartupError(f"data dir {path}: exists and is not a directory "
                           "(set SLUICE_DATA_DIR or --data-dir)")
    try:
        yield
    except OSError as exc:
        raise StartupError(f"data dir {exc.filename or path}: {_reason(exc)}") from None


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    try:
        yield
    except (StartupError, MasterKeyError):  # a key that cannot open the database says so itself
        raise
    except Exception as exc:  # noqa: BLE001 — any failure to open or migrate: the database is unusable
        raise StartupError(f"database {display_url(url)}: {_reason(exc)}") from None
