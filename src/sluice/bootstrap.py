"""``sluice init``: data dir (0700), master key file (0600), database, first account/user/token."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.clock import new_id
from sluice.control.tokens import token_row
from sluice.identity.credentials import hash_value, new_global_key, new_token
from sluice.identity.permissions import ALL_GROUPS
from sluice.secrets.keycheck import check_keyring, missing_key_file
from sluice.secrets.keyfile import create_key_file, load_keyring
from sluice.settings import Settings
from sluice.startup import data_dir_errors, database_errors
from sluice.store import queries
from sluice.store.database import open_database


@dataclass(frozen=True)
class Bootstrap:
    account_id: str
    api_token: str
    email: str
    api_key: str

    def __repr__(self) -> str:  # never print credentials by accident
        return f"Bootstrap(account_id={self.account_id!r}, email={self.email!r})"


async def initialise(settings: Settings, email: str = "admin@example.com") -> Bootstrap | None:
    """Initialise once; returns the credentials, or None when the data dir was already initialised.

    Raises ``MasterKeyError`` when the master key is missing for an initialised database or does
    not open its stored secrets (``secrets/keycheck.py``): never a silently generated new key. A data
    dir or database that cannot be used raises ``StartupError`` naming the path or URL.
    """
    with data_dir_errors(settings.data_dir):  # a start-up error names the path, not a traceback
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings.data_dir.chmod(0o700)
    with database_errors(settings.database_url):
        db = await open_database(settings.database_url)
        try:
            async with db.begin() as conn:
                initialised = await queries.count_accounts(conn) > 0
            if not settings.master_key and not settings.key_file.exists():
                if initialised:
                    raise missing_key_file(settings)
                with data_dir_errors(settings.data_dir):
                    create_key_file(settings.key_file)
            async with db.begin() as conn:
                # Several processes may start at once on a fresh shared database: one at a time
                # from here, so exactly one creates the first account (and the key check value).
                await queries.lock_bootstrap(conn)
                await check_keyring(conn, load_keyring(settings), settings)
                if initialised or await queries.count_accounts(conn):
                    return None
                account_id, user_id = new_id(), new_id()
                token = settings.bootstrap_token or new_token()
                key = new_global_key()
                await queries.insert_account(conn, account_id, "default")
                await queries.insert_user(conn, user_id, email, hash_value(key))
                await queries.add_member(conn, account_id, user_id)
                await queries.insert_token(conn,
                                           token_row(account_id, "bootstrap admin", token, list(ALL_GROUPS)))
                return Bootstrap(account_id, token, email, key)
        finally:
            await db.close()
