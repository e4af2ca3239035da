"""Where the KEKs come from: ``SLUICE_MASTER_KEY`` or a 0600 key file in the data directory.

The key file holds one base64 key per line, the active key first. ``sluice master-key rotate``
prepends a new key; running servers re-read the file when they meet a key id they do not know.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from sluice.secrets.crypto import Keyring
from sluice.settings import Settings


def _read_file(path: Path) -> tuple[bytes, ...]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    keys = tuple(base64.b64decode(line, validate=True) for line in lines)
    if not keys or any(len(k) != 32 for k in keys):
        raise ValueError(f"{path}: expected base64 32-byte keys, one per line")
    return keys


def write_key_file(path: Path, keys: tuple[bytes, ...]) -> None:
    """Atomically replace the key file, created 0600 from the start (never world-readable)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(base64.b64encode(k).decode() + "\n" for k in keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def create_key_file(path: Path) -> None:
    if not path.exists():
        write_key_file(path, (os.urandom(32),))


def load_keyring(settings: Settings) -> Keyring:
    if settings.master_key:
        return Keyring(settings.master_key)
    path = settings.key_file
    if not path.exists():
        raise FileNotFoundError(f"master key file {path} does not exist; run `sluice init` or set "
                                "SLUICE_MASTER_KEY")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"master key file {path} has mode {mode:o}; it must be 0600")
    return Keyring(_read_file(path))
