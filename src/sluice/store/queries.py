"""SQL as plain async functions over a connection; rows come back as dicts.

Every write that the data plane must see also appends to ``changes`` (see ``record_change``), which
is how other processes and instances learn to refresh their in-memory state. An insert that breaks a
unique key raises the domain's ``Conflict`` (409), never the driver's exception (see ``_insert``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, insert, literal_column, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.clock import now, rfc3339
from sluice.errors import Conflict
from sluice.store.schema import (
    account_members,
    accounts,
    changes,
    custom_providers,
    gateways,
    provider_configs,
    secrets,
    stores,
    tokens,
    users,
)

Row = dict[str, Any]


def _rows(result: Any) -> list[Row]:
    return [dict(r._mapping) for r in result]


def _one(result: Any) -> Row | None:
    row = result.first()
    return dict(row._mapping) if row is not None else None


def _page(stmt: Any, page: int, per_page: int) -> Any:
    return stmt.limit(per_page).offset((page - 1) * per_page)


async def _insert(conn: AsyncConnection, table: Any, row: Row, conflict: str) -> None:
    """Insert one row; a row the keys already hold (also one a concurrent transaction just wrote)
    is ``Conflict(conflict)``, so no handler needs to know the driver's exception."""
    try:
        await conn.execute(insert(table).values(**row))
    except IntegrityError:
        raise Conflict(conflict) from None


def _contains(search: str, *columns: Any) -> Any:
    """``search`` as a literal substring of any of the columns (LIKE wildcards escaped)."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(*(column.like(f"%{escaped}%", escape="\\") for column in columns))


async def _count(conn: AsyncConnection, table: Any, where: Any) -> int:
    return int((await conn.execute(select(func.count()).select_from(table).where(where))).scalar_one())


async def _paged(conn: AsyncConnection, stmt: Any, table: Any, where: Any, page: int,
                 per_page: int) -> tuple[list[Row], int]:
    """One page of ``stmt``'s rows and the total. A page that came back short ends the list, so the
    total is known without a count (a reload reads whole lists: one statement fewer per table)."""
    rows = _rows(await conn.execute(_page(stmt, page, per_page)))
    if len(rows) < per_page and (rows or page == 1):
        return rows, (page - 1) * per_page + len(rows)
    return rows, await _count(conn, table, where)


# -- change feed -----------------------------------------------------------------------------------

CHANGES_CHANNEL = "sluice_changes"  # PostgreSQL NOTIFY channel: "the feed has a new row", sent at commit


async def record_change(conn: AsyncConnection, account_id: str, kind: str) -> None:
    values: dict[str, Any] = {"account_id": account_id, "kind": kind, "created_at": rfc3339(now())}
    if conn.dialect.name != "postgresql":
        await conn.execute(insert(changes).values(**values))
        return
    await conn.execute(insert(changes).values(**values,
                                              xid=literal_column("pg_current_xact_id()::text::bigint")))
    # Delivered when (and only if) this transaction commits: the listeners poll the feed at once.
    await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANGES_CHANNEL})


async def feed_horizon(conn: AsyncConnection) -> int:
    """A point below which every writer has ended, taken before reading the feed.

    PostgreSQL: the xmin of the current snapshot -- every transaction with a lower id has committed
    or rolled back, so its rows are visible to any later read. SQLite: writers hold the one write
    lock from BEGIN IMMEDIATE to commit, so rows commit in ``seq`` order and the next ``seq`` is the
    point (a row's "xid" is its ``seq`` there, see ``changes_from``).
    """
    if conn.dialect.name == "postgresql":
        query = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        return int((await conn.execute(query)).scalar_one())
    return int((await conn.execute(select(func.coalesce(func.max(changes.c.seq), 0)))).scalar_one()) + 1


async def changes_from(conn: AsyncConnection, horizon: int) -> list[Row]:
    """Every feed row written by a transaction at or above ``horizon`` (from ``feed_horizon``),
    oldest first; each row has ``seq``, ``account_id``, ``kind`` and ``xid``."""
    if conn.dialect.name == "postgresql":
        stmt = select(changes.c.seq, changes.c.account_id, changes.c.kind, changes.c.xid) \
            .where(changes.c.xid >= horizon)
    else:
        stmt = select(changes.c.seq, changes.c.account_id, changes.c.kind, changes.c.seq.label("xid")) \
            .where(changes.c.seq >= horizon)
    return _rows(await conn.execute(stmt.order_by(changes.c.seq)))


async def account_changes_from(conn: AsyncConnection, account_id: str, horizon: int) -> dict[int, int]:
    """``seq`` -> ``xid`` of one account's feed rows at or above ``horizon``, kek rows left out."""
    xid = changes.c.xid if conn.dialect.name == "postgresql" else changes.c.seq
    stmt = select(changes.c.seq, xid).where(changes.c.account_id == account_id, xid >= horizon,
                                            changes.c.kind != "kek")
    return {int(seq): int(x) for seq, x in (await conn.execute(stmt)).all()}


async def prune_changes(conn: AsyncConnection, before: str) -> int:
    """Delete feed rows created before ``before`` (RFC 3339). The newest row always stays: SQLite
    reuses the highest rowid once it is gone, and a reused ``seq`` could hide behind a horizon."""
    newest = select(func.max(changes.c.seq)).scalar_subquery()
    result = await conn.execute(delete(changes).where(changes.c.created_at < before, changes.c.seq < newest))
    return int(result.rowcount or 0)


# -- accounts and users ----------------------------------------------------------------------------

async def insert_account(conn: AsyncConnection, account_id: str, name: str) -> Row:
    row = {"id": account_id, "name": name, "created_at": rfc3339(now())}
    await _insert(conn, accounts, row, f"an account with id {account_id!r} already exists")
    return row


async def list_accounts(conn: AsyncConnection) -> list[Row]:
    return _rows(await conn.execute(select(accounts).order_by(accounts.c.created_at, accounts.c.id)))


async def get_account(conn: AsyncConnection, account_id: str) -> Row | None:
    return _one(await conn.execute(select(accounts).where(accounts.c.id == account_id)))


BOOTSTRAP_LOCK = 7466326  # pg_advisory_xact_lock(BOOTSTRAP_LOCK): the first start of a shared database


async def lock_bootstrap(conn: AsyncConnection) -> None:
    """Serialise ``initialise()`` across processes until the transaction ends: several instances
    starting at once on a fresh shared database must not all see "no account" and all insert one.
    PostgreSQL only: on SQLite, BEGIN IMMEDIATE already serialises every writer."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SELECT pg_advisory_xact_lock({BOOTSTRAP_LOCK})"))


async def count_accounts(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(accounts))).scalar_one())


async def insert_user(conn: AsyncConnection, user_id: str, email: str, api_key_hash: str) -> None:
    await _insert(conn, users, {"id": user_id, "email": email, "api_key_hash": api_key_hash,
                                "created_at": rfc3339(now())}, "a user with this email already exists")


async def add_member(conn: AsyncConnection, account_id: str, user_id: str) -> None:
    await conn.execute(insert(account_members).values(account_id=account_id, user_id=user_id))


async def user_accounts(conn: AsyncConnection, email: str, api_key_hash: str) -> list[str] | None:
    """Account ids of the user with this email and key hash; None when no such user."""
    user = _one(await conn.execute(select(users).where(users.c.email == email)))
    if user is None or user["api_key_hash"] != api_key_hash:
        return None
    members = account_members.c
    result = await conn.execute(select(members.account_id).where(members.user_id == user["id"]))
    return [r[0] for r in result]


# -- tokens ----------------------------------------------------------------------------------------

async def insert_token(conn: AsyncConnection, row: Row) -> Row:
    await _insert(conn, tokens, row, "a token with this id or value already exists")
    return row


async def token_by_hash(conn: AsyncConnection, value_hash: str) -> Row | None:
    return _one(await conn.execute(select(tokens).where(tokens.c.value_hash == value_hash)))


async def list_tokens(conn: AsyncConnection, account_id: str | None, page: int = 1,
                      per_page: int = 1000) -> tuple[list[Row], int]:
    where = tokens.c.account_id == account_id if account_id else tokens.c.id.isnot(None)
    stmt = select(tokens).where(where).order_by(tokens.c.issued_on, tokens.c.id)
    return await _paged(conn, stmt, tokens, where, page, per_page)


async def get_token(conn: AsyncConnection, account_id: str, token_id: str) -> Row | None:
    return _one(await conn.execute(select(tokens).where(tokens.c.account_id == account_id,
                                                        tokens.c.id == token_id)))


async def update_token(conn: AsyncConnection, token_id: str, values: Row) -> None:
    await conn.execute(update(tokens).where(tokens.c.id == token_id).values(**values))


async def delete_token(conn: AsyncConnection, token_id: str) -> int:
    return (await conn.execute(delete(tokens).where(tokens.c.id == token_id))).rowcount


async def touch_tokens(conn: AsyncConnection, token_ids: Iterable[str], at: str) -> None:
    ids = list(token_ids)
    if ids:
        await conn.execute(update(tokens).where(tokens.c.id.in_(ids)).values(last_used_on=at))


# -- gateways --------------------------------------------------------------------------------------

def _gateway_row(row: Row | None) -> Row | None:
    if row is None:
        return None
    body = orjson.loads(row["body"])
    return {"id": row["id"], "account_id": row["account_id"], "created_at": row["created_at"],
            "modified_at": row["modified_at"], **body}


async def insert_gateway(conn: AsyncConnection, account_id: str, gateway_id: str, body: Row) -> Row:
    stamp = rfc3339(now())
    row = {"account_id": account_id, "id": gateway_id, "body": orjson.dumps(body).decode(),
           "created_at": stamp, "modified_at": stamp}
    await _insert(conn, gateways, row, f"a gateway with id {gateway_id!r} already exists")
    return _gateway_row(row)  # type: ignore[return-value]


def _gateway(account_id: str, gateway_id: str) -> Any:
    return select(gateways).where(gateways.c.account_id == account_id, gateways.c.id == gateway_id)


async def get_gateway(conn: AsyncConnection, account_id: str, gateway_id: str) -> Row | None:
    return _gateway_row(_one(await conn.execute(_gateway(account_id, gateway_id))))


def get_gateway_sync(conn: Connection, account_id: str, gateway_id: str) -> Row | None:
    """``get_gateway`` for synchronous batch work (``Database.write_batch``)."""
    return _gateway_row(_one(conn.execute(_gateway(account_id, gateway_id))))


async def list_gateways(conn: AsyncConnection, account_id: str | None, search: str | None = None,
                        page: int = 1, per_page: int = 100000) -> tuple[list[Row], int]:
    where = gateways.c.account_id == account_id if account_id else gateways.c.id.isnot(None)
    if search:
        where = and_(where, _contains(search, gateways.c.id))
    stmt = select(gateways).where(where).order_by(gateways.c.created_at, gateways.c.id)
    rows, total = await _paged(conn, stmt, gateways, where, page, per_page)
    return [_gateway_row(r) for r in rows], total  # type: ignore[misc]


async def update_gateway(conn: AsyncConnection, account_id: str, gateway_id: str, body: Row) -> Row | None:
    stamp = rfc3339(now())
    await conn.execute(
        update(gateways).where(gateways.c.account_id == account_id, gateways.c.id == gateway_id)
        .values(body=orjson.dumps(body).decode(), modified_at=stamp)
    )
    return await get_gateway(conn, account_id, gateway_id)


async def delete_gateway(conn: AsyncConnection, account_id: str, gateway_id: str) -> None:
    """Delete a gateway, its provider configs and the secrets those configs created."""
    config_ids = select(provider_configs.c.id).where(
        provider_configs.c.account_id == account_id, provider_configs.c.gateway_id == gateway_id
    )
    await conn.execute(delete(secrets).where(secrets.c.account_id == account_id,
                                             secrets.c.created_by.in_(config_ids)))
    await conn.execute(delete(provider_configs).where(
        provider_configs.c.account_id == account_id, provider_configs.c.gateway_id == gateway_id))
    await conn.execute(delete(gateways).where(gateways.c.account_id == account_id,
                                              gateways.c.id == gateway_id))


# -- secrets store ---------------------------------------------------------------------------------

async def insert_store(conn: AsyncConnection, row: Row) -> Row:
    await _insert(conn, stores, row, f"a store named {row['name']!r} already exists")
    return row


async def get_store(conn: AsyncConnection, account_id: str, store_id: str) -> Row | None:
    return _one(await conn.execute(select(stores).where(stores.c.account_id == account_id,
                                                        stores.c.id == store_id)))


async def store_by_name(conn: AsyncConnection, account_id: str, name: str) -> Row | None:
    return _one(await conn.execute(select(stores).where(stores.c.account_id == account_id,
                                                        stores.c.name == name)))


async def list_stores(conn: AsyncConnection, account_id: str, order: str, descending: bool,
                      page: int, per_page: int) -> tuple[list[Row], int]:
    column = {"name": stores.c.name, "created": stores.c.created, "modified": stores.c.modified}[order]
    where = stores.c.account_id == account_id
    stmt = select(stores).where(where).order_by(column.desc() if descending else column, stores.c.id)
    return await _paged(conn, stmt, stores, where, page, per_page)


async def delete_store(conn: AsyncConnection, store_id: str) -> None:
    """Delete a store, its secrets, and the provider configs that used them (no dangling keys); custom
    providers whose extra headers it held keep going, without those headers."""
    in_store = select(secrets.c.id).where(secrets.c.store_id == store_id)
    await conn.execute(delete(provider_configs).where(provider_configs.c.secret_id.in_(in_store)))
    await conn.execute(update(custom_providers).where(custom_providers.c.headers_secret_id.in_(in_store))
                       .values(headers_secret_id=None, header_names=None))
    await conn.execute(delete(secrets).where(secrets.c.store_id == store_id))
    await conn.execute(delete(stores).where(stores.c.id == store_id))


SECRET_PUBLIC = [secrets.c[name] for name in ("id", "account_id", "store_id", "name", "scopes", "comment",
                                               "status", "preview", "created_by", "created", "modified")]


async def count_secrets(conn: AsyncConnection, *, store_id: str | None = None,
                        account_id: str | None = None) -> int:
    where = secrets.c.store_id == store_id if store_id else secrets.c.account_id == account_id
    return await _count(conn, secrets, where)


async def insert_secret(conn: AsyncConnection, row: Row) -> None:
    await _insert(conn, secrets, row, f"a secret named {row['name']!r} already exists in this store")


async def get_secret(conn: AsyncConnection, account_id: str, secret_id: str, *,
                     sealed: bool = False) -> Row | None:
    columns = [secrets] if sealed else SECRET_PUBLIC
    result = await conn.execute(select(*columns).where(secrets.c.account_id == account_id,
                                                       secrets.c.id == secret_id))
    return _one(result)


async def store_secrets(conn: AsyncConnection, store_id: str, secret_ids: Iterable[str]) -> list[Row]:
    """Those of the given secrets that are in the store (any order)."""
    stmt = select(*SECRET_PUBLIC).where(secrets.c.store_id == store_id, secrets.c.id.in_(list(secret_ids)))
    return _rows(await conn.execute(stmt))


async def secret_by_name(conn: AsyncConnection, store_id: str, name: str) -> Row | None:
    return _one(await conn.execute(select(*SECRET_PUBLIC).where(secrets.c.store_id == store_id,
                                                                secrets.c.name == name)))


async def list_secrets(conn: AsyncConnection, store_id: str, *, search: str | None, scopes: list[str] | None,
                       order: str, descending: bool, page: int, per_page: int) -> tuple[list[Row], int]:
    where: Any = secrets.c.store_id == store_id
    if search:
        where = and_(where, _contains(search, secrets.c.name, secrets.c.comment))
    for scope in scopes or []:
        where = and_(where, secrets.c.scopes.like(f'%"{scope}"%'))
    column = {"name": secrets.c.name, "comment": secrets.c.comment, "created": secrets.c.created,
              "modified": secrets.c.modified, "status": secrets.c.status}[order]
    stmt = select(*SECRET_PUBLIC).where(where).order_by(column.desc() if descending else column, secrets.c.id)
    return await _paged(conn, stmt, secrets, where, page, per_page)


async def update_secret(conn: AsyncConnection, secret_id: str, values: Row) -> None:
    await conn.execute(update(secrets).where(secrets.c.id == secret_id).values(**values))


async def delete_secret(conn: AsyncConnection, secret_id: str) -> None:
    await conn.execute(delete(secrets).where(secrets.c.id == secret_id))


async def delete_secrets(conn: AsyncConnection, secret_ids: Iterable[str]) -> None:
    await conn.execute(delete(secrets).where(secrets.c.id.in_(list(secret_ids))))


async def sealed_secrets(conn: AsyncConnection, secret_ids: Iterable[str] | None = None) -> list[Row]:
    stmt = select(secrets.c.id, secrets.c.account_id, secrets.c.store_id, secrets.c.kek_id,
                  secrets.c.wrapped_key, secrets.c.ciphertext)
    if secret_ids is not None:
        stmt = stmt.where(secrets.c.id.in_(list(secret_ids)))
    return _rows(await conn.execute(stmt))


async def kek_usage(conn: AsyncConnection) -> dict[str, int]:
    result = await conn.execute(select(secrets.c.kek_id, func.count()).group_by(secrets.c.kek_id))
    return {r[0]: int(r[1]) for r in result}


# -- provider configs ------------------------------------------------------------------------------

CONFIG_WITH_PREVIEW = [*provider_configs.c, secrets.c.preview.label("secret_preview")]


def _configs_select() -> Any:
    return select(*CONFIG_WITH_PREVIEW).select_from(
        provider_configs.outerjoin(secrets, secrets.c.id == provider_configs.c.secret_id)
    )


async def insert_config(conn: AsyncConnection, row: Row) -> None:
    await _insert(conn, provider_configs, row,
                  f"alias {row['alias']!r} already exists for provider {row['provider_slug']!r}")


async def get_config(conn: AsyncConnection, account_id: str, gateway_id: str, config_id: str) -> Row | None:
    stmt = _configs_select().where(provider_configs.c.account_id == account_id,
                                   provider_configs.c.gateway_id == gateway_id,
                                   provider_configs.c.id == config_id)
    return _one(await conn.execute(stmt))


async def config_by_alias(conn: AsyncConnection, account_id: str, gateway_id: str, slug: str,
                          alias: str) -> Row | None:
    stmt = select(provider_configs).where(
        provider_configs.c.account_id == account_id, provider_configs.c.gateway_id == gateway_id,
        provider_configs.c.provider_slug == slug, provider_configs.c.alias == alias)
    return _one(await conn.execute(stmt))


async def list_configs(conn: AsyncConnection, account_id: str, gateway_id: str | None,
                       page: int = 1, per_page: int = 1000000) -> tuple[list[Row], int]:
    where: Any = provider_configs.c.account_id == account_id
    if gateway_id is not None:
        where = and_(where, provider_configs.c.gateway_id == gateway_id)
    stmt = _configs_select().where(where).order_by(provider_configs.c.created_at, provider_configs.c.id)
    return await _paged(conn, stmt, provider_configs, where, page, per_page)


KEY_WRITES_LOCK = 7466325  # pg_advisory_xact_lock(KEY_WRITES_LOCK, hashtext(account_id))


async def lock_key_writes(conn: AsyncConnection, account_id: str) -> None:
    """Serialise one account's provider-config writes, Secrets Store writes and gateway deletes until
    the transaction ends, so check-then-act stays race-free: alias, conventional secret and default
    store on create, default demotion, the secrets quota and names, a secret deleted while a config
    is created to use it, a config created on a gateway being deleted.
    PostgreSQL only: on SQLite, BEGIN IMMEDIATE already serialises every writer."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SELECT pg_advisory_xact_lock({KEY_WRITES_LOCK}, hashtext(:account_id))"),
                           {"account_id": account_id})


async def demote_defaults(conn: AsyncConnection, account_id: str, gateway_id: str, slug: str,
                          keep_id: str) -> None:
    await conn.execute(
        update(provider_configs)
        .where(provider_configs.c.account_id == account_id, provider_configs.c.gateway_id == gateway_id,
               provider_configs.c.provider_slug == slug, provider_configs.c.id != keep_id,
               provider_configs.c.default_config.is_(True))
        .values(default_config=False, modified_at=rfc3339(now()))
    )


async def update_config(conn: AsyncConnection, config_id: str, values: Row) -> None:
    await conn.execute(update(provider_configs).where(provider_configs.c.id == config_id).values(**values))


async def delete_config(conn: AsyncConnection, config_id: str) -> None:
    await conn.execute(delete(provider_configs).where(provider_configs.c.id == config_id))


async def secret_references(conn: AsyncConnection, secret_id: str) -> int:
    """How many provider configs and custom providers (their extra headers) use the secret."""
    return (await _count(conn, provider_configs, provider_configs.c.secret_id == secret_id)
            + await _count(conn, custom_providers, custom_providers.c.headers_secret_id == secret_id))


async def secrets_references(conn: AsyncConnection, secret_ids: Iterable[str]) -> dict[str, int]:
    """How many provider configs and custom providers use each of the secrets (unused ones left out)."""
    ids = list(secret_ids)
    used: dict[str, int] = {}
    for column in (provider_configs.c.secret_id, custom_providers.c.headers_secret_id):
        stmt = select(column, func.count()).where(column.in_(ids)).group_by(column)
        for secret_id, count in await conn.execute(stmt):
            used[secret_id] = used.get(secret_id, 0) + int(count)
    return used


async def configs_using_provider(conn: AsyncConnection, account_id: str, provider_slug: str) -> int:
    return await _count(conn, provider_configs, and_(provider_configs.c.account_id == account_id,
                                                     provider_configs.c.provider_slug == provider_slug))


# -- custom providers ------------------------------------------------------------------------------

def _slug_taken(slug: str) -> str:
    return f"a custom provider with slug {slug!r} already exists in this account"


async def insert_custom_provider(conn: AsyncConnection, row: Row) -> None:
    await _insert(conn, custom_providers, row, _slug_taken(row["slug"]))


async def get_custom_provider(conn: AsyncConnection, account_id: str, provider_id: str) -> Row | None:
    return _one(await conn.execute(select(custom_providers).where(
        custom_providers.c.account_id == account_id, custom_providers.c.id == provider_id)))


async def custom_provider_by_slug(conn: AsyncConnection, account_id: str, slug: str) -> Row | None:
    return _one(await conn.execute(select(custom_providers).where(
        custom_providers.c.account_id == account_id, custom_providers.c.slug == slug)))


async def list_custom_providers(conn: AsyncConnection, account_id: str, *, beta: bool | None = None,
                                enable: bool | None = None, search: str | None = None, page: int = 1,
                                per_page: int = 1000000) -> tuple[list[Row], int]:
    """Ordered by position, then name (as Cloudflare lists them), then id."""
    where: Any = custom_providers.c.account_id == account_id
    if beta is not None:
        where = and_(where, custom_providers.c.beta.is_(beta))
    if enable is not None:
        where = and_(where, custom_providers.c.enable.is_(enable))
    if search:
        where = and_(where, _contains(search, custom_providers.c.id, custom_providers.c.name,
                                      custom_providers.c.slug))
    stmt = select(custom_providers).where(where).order_by(
        custom_providers.c.position, custom_providers.c.name, custom_providers.c.id)
    return await _paged(conn, stmt, custom_providers, where, page, per_page)


async def update_custom_provider(conn: AsyncConnection, provider_id: str, values: Row) -> None:
    try:
        await conn.execute(update(custom_providers).where(custom_providers.c.id == provider_id)
                           .values(**values))
    except IntegrityError:
        raise Conflict(_slug_taken(values.get("slug", ""))) from None


async def delete_custom_provider(conn: AsyncConnection, provider_id: str) -> None:
    await conn.execute(delete(custom_providers).where(custom_providers.c.id == provider_id))
