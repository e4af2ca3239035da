"""Start-up guard: a process never runs with a master key that cannot open the stored secrets.

A lost key file used to be replaced by a fresh key at start-up: the server reported ready and
answered 401 for every stored key, and new secrets were sealed under the new key. Now:
* no key is ever generated for an initialised database (one holding an account, hence tokens or
  secrets);
* start-up stops when a stored secret is wrapped by a key id the loaded keyring does not hold.
Both raise ``MasterKeyError`` with one line naming ``SLUICE_MASTER_KEY`` or the key file path.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.errors import MasterKeyError
from sluice.secrets.crypto import Keyring
from sluice.settings import Settings
from sluice.store import queries


def key_source(settings: Settings) -> str:
    """Where the keys come from, as an operator would fix it."""
    if settings.master_key:
        return "SLUICE_MASTER_KEY"
    return f"the key file {settings.key_file} (or SLUICE_MASTER_KEY)"


def missing_key_file(settings: Settings) -> MasterKeyError:
    return MasterKeyError(
        f"the master key file {settings.key_file} is missing but the database already holds data sealed under "
        "a master key; restore that file (mode 0600) or set SLUICE_MASTER_KEY to the key; a new key is never "
        "generated for an initialised database")


def unloaded(usage: dict[str, int], keyring: Keyring) -> dict[str, int]:
    """Secrets per key id that the keyring cannot unwrap."""
    loaded = set(keyring.ids)
    return {kek_id: count for kek_id, count in sorted(usage.items()) if kek_id not in loaded}


async def check_keyring(conn: AsyncConnection, keyring: Keyring, settings: Settings) -> None:
    """Raise ``MasterKeyError`` when a stored secret is wrapped by a key that is not loaded."""
    missing = unloaded(await queries.kek_usage(conn), keyring)
    if missing:
        ids = ", ".join(f"{kek_id} ({count} secret{'s' if count != 1 else ''})" for kek_id, count in missing.items())
        raise MasterKeyError(
            f"stored secrets are wrapped by master key id(s) that are not loaded: {ids}; loaded: "
            f"{', '.join(keyring.ids)}; add the key(s) they were sealed with to {key_source(settings)}")
