"""SQL for request logs, as plain async functions over a connection (like ``store/queries.py``)."""

from __future__ import annotations

import functools
import operator
import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Float,
    and_,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from sluice.logs import bodies
from sluice.logs.filters import NUMBER_KEYS, Filter
from sluice.store.log_tables import log_counts
from sluice.store.log_tables import request_logs as T

Row = dict[str, Any]

LIST_COLUMNS = ("id", "cached", "created_at", "duration", "model", "path", "provider", "success", "tokens_in",
                "tokens_out", "cost", "custom_cost", "metadata", "model_type", "request_content_type",
                "request_type", "response_content_type", "status_code", "step", "route", "route_version",
                "route_path")
SUMMARY = [*(T.c[name] for name in LIST_COLUMNS), T.c.feedback, T.c.score, T.c.event_id, T.c.alias]
ORDER_COLUMNS = ("created_at", "provider", "model", "model_type", "success", "cached")
DELETE_ORDER_COLUMNS = (*ORDER_COLUMNS, "cost", "tokens_in", "tokens_out", "duration", "feedback")

_TOTAL_TOKENS = func.coalesce(T.c.tokens_in, 0) + func.coalesce(T.c.tokens_out, 0)


def _column(key: str) -> Any:
    if key == "tokens":
        return _TOTAL_TOKENS
    if key in ("wholesale", "compatibilityMode"):
        return false()  # Sluice has no unified billing and logs compat requests as plain ones
    if key in ("authentication", "dlp_action"):
        return null()  # not recorded: "eq" matches nothing, "neq" everything
    return T.c[key]


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _json_scalar(value: Any) -> list[str]:
    """The ways a filter value can appear as a metadata value in canonical JSON text."""
    if value is None:
        return ["null"]
    text = str(value)
    forms = [orjson.dumps(text).decode()]
    if isinstance(value, bool) or text in ("true", "false"):
        forms.append(text.lower())
    else:
        try:
            number = float(text)
            forms.append(str(int(number)) if number.is_integer() else repr(number))
        except ValueError:
            pass
    return forms


def _metadata_condition(f: Filter) -> Any:
    # Canonical JSON has no spaces; inside strings '"' is always escaped, so '{"k":' / ',"k":' only
    # match a key and ':"v",' / ':"v"}' only match a whole value.
    col = T.c.metadata
    parts: list[ColumnElement[bool]] = []
    for value in f.values:
        if f.operator == "contains":
            parts.append(func.lower(col).like(_like(str(value)), escape="\\"))
        elif f.key == "metadata.key":
            quoted = orjson.dumps(str(value)).decode()
            parts.append(or_(col.like(f"%{{{_esc(quoted)}:%", escape="\\"),
                             col.like(f"%,{_esc(quoted)}:%", escape="\\")))
        else:
            parts += [or_(col.like(f"%:{_esc(form)},%", escape="\\"),
                          col.like(f"%:{_esc(form)}}}", escape="\\"))
                      for form in _json_scalar(value)]
    matched = or_(*parts)
    if f.operator == "neq":
        return or_(col.is_(None), ~matched)
    return and_(col.isnot(None), matched)


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _condition(f: Filter) -> Any:
    if f.key.startswith("metadata."):
        return _metadata_condition(f)
    col = _column(f.key)
    if f.key in NUMBER_KEYS:
        col = cast(col, Float)  # filter values are real numbers: 150.5 must not become 150
    values = list(f.values)
    if f.operator in ("lt", "gt", "le", "ge"):
        value = values[0]
        return {"lt": col < value, "gt": col > value, "le": col <= value, "ge": col >= value}[f.operator]
    if f.operator == "contains":
        return or_(*[func.lower(col).like(_like(str(v)), escape="\\") for v in values])
    present = [v for v in values if v is not None]
    if f.operator == "neq":  # a NULL column differs from every given value
        parts = [col.isnot(None)] if None in values else []
        if present:
            parts.append(col.notin_(present) if None in values else or_(col.is_(None), col.notin_(present)))
        return and_(*parts)
    return or_(*([col.in_(present)] if present else []), *([col.is_(None)] if None in values else []))


def where(account_id: str, gateway_id: str, filters: Sequence[Filter], search: str | None = None) -> Any:
    conditions = [T.c.account_id == account_id, T.c.gateway_id == gateway_id,
                  *[_condition(f) for f in filters]]
    if search:
        pattern = _like(search)
        conditions.append(or_(*[func.lower(func.coalesce(c, "")).like(pattern, escape="\\")
                                for c in (T.c.id, T.c.model, T.c.provider, T.c.path, T.c.metadata,
                                          T.c.event_id)]))
    return and_(*conditions)


def _order(order_by: str, descending: bool) -> list[Any]:
    column = T.c[order_by]
    return [column.desc(), T.c.id.desc()] if descending else [column.asc(), T.c.id.asc()]


# Rows per multi-row INSERT: 16, or fewer where the SQLite library's limit on bound parameters
# (32766 by default since 3.32, 999 before; 36 per row) demands. The sqlite3 module binds a
# statement's values holding the GIL: 128 rows held it ~0.5 ms at a time, and an event loop woken
# meanwhile waited (chat c=1 p99 +0.6 ms); 16 rows cost no more instructions per log (callgrind,
# docs/performance.md). A batch is cut into chunks of
# power-of-two sizes, so a batch uses few distinct statements. Preparing a multi-row INSERT costs
# about as much as running it (~9 µs a row, measured), so the batch connection keeps the last
# statement prepared (``cached_statements=1`` in ``Database.write_batch``) and every full chunk
# after the first reuses it. A cached statement keeps copies of its last bound values (the
# bodies), so ``insert_logs`` ends by evicting it: holding them once grew RSS by ~30 MiB a minute
# in a soak.
_SQLITE_VARIABLES = sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
# A bool is not an exact int, so the sqlite3 module looks for an adapter for each one it binds and,
# finding none, raises and formats an AttributeError inside before it binds it as 0/1 after all:
# ~2k instructions per bool, four per log row (callgrind: ~8k of a row's insert). With bool -> int
# registered the same 0/1 is bound straight away. Process-wide, and what sqlite3 stores anyway.
sqlite3.register_adapter(bool, int)
SQLITE_ROWS_PER_INSERT = 1 << min(4, (_SQLITE_VARIABLES // 40).bit_length() - 1)


def _chunk_sizes(count: int) -> list[int]:
    """``count`` as full chunks of SQLITE_ROWS_PER_INSERT, then the remainder's binary digits."""
    sizes = [SQLITE_ROWS_PER_INSERT] * (count // SQLITE_ROWS_PER_INSERT)
    rest = count % SQLITE_ROWS_PER_INSERT
    size = SQLITE_ROWS_PER_INSERT >> 1
    while rest:
        if rest >= size:
            sizes.append(size)
            rest -= size
        size >>= 1
    return sizes


@functools.lru_cache(maxsize=32)
def _multi_row_insert(columns: tuple[str, ...], count: int) -> str:
    one = f"({', '.join('?' * len(columns))})"
    return f"INSERT INTO {T.name} ({', '.join(columns)}) VALUES {', '.join([one] * count)}"


def insert_logs(conn: Connection, rows: list[Row]) -> None:
    """Insert rows whose bodies ``bodies.pack`` has prepared (synchronous: inside
    ``Database.write_batch``)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        # Multi-row INSERTs on the driver directly. Core's parameter processing cost ~5x more per
        # row, and the driver's executemany releases and re-takes the GIL once per row: with the
        # event loop busy serving requests each re-take waited up to the 5 ms switch interval, so
        # the writer fell behind under load (measured). One statement per many rows avoids both.
        driver = conn.connection.driver_connection
        assert driver is not None
        columns = tuple(rows[0])
        values = operator.itemgetter(*columns)  # one row's values in one C call
        start = 0
        for size in _chunk_sizes(len(rows)):
            chunk = rows[start:start + size]
            start += size
            params = tuple(chain.from_iterable(map(values, chunk)))
            driver.execute(_multi_row_insert(columns, size), params).close()
        driver.execute("SELECT 1").close()  # evicts the cached INSERT, freeing its copies of the bodies
        return
    conn.execute(insert(T), rows)  # executemany: one statement, many rows


async def list_logs(conn: AsyncConnection, condition: Any, order_by: str, descending: bool,
                    page: int, per_page: int) -> list[Row]:
    stmt = select(*SUMMARY).where(condition).order_by(*_order(order_by, descending))
    stmt = stmt.limit(per_page).offset((page - 1) * per_page)
    return [dict(r._mapping) for r in await conn.execute(stmt)]


async def aggregates(conn: AsyncConnection, condition: Any) -> Row:
    """total_count plus min_/max_ of cost, duration, tokens_in, tokens_out, total_tokens."""
    columns = [func.count().label("total_count")]
    for name, expr in (("cost", T.c.cost), ("duration", T.c.duration), ("tokens_in", T.c.tokens_in),
                       ("tokens_out", T.c.tokens_out), ("total_tokens", _TOTAL_TOKENS)):
        columns += [func.min(expr).label(f"min_{name}"), func.max(expr).label(f"max_{name}")]
    row = (await conn.execute(select(*columns).select_from(T).where(condition))).first()
    return dict(row._mapping)  # type: ignore[union-attr]


async def series(conn: AsyncConnection, condition: Any, prefix: int) -> dict[str, Row]:
    """Requests, errors, tokens and cost per bucket, a bucket being a created_at prefix (logs/series.py)."""
    bucket = func.substr(T.c.created_at, 1, prefix).label("bucket")
    stmt = select(bucket, func.count().label("requests"),
                  func.sum(case((T.c.success, 0), else_=1)).label("errors"),
                  func.sum(_TOTAL_TOKENS).label("tokens"),
                  func.sum(func.coalesce(T.c.cost, 0.0)).label("cost"),
                  ).where(condition).group_by(bucket)
    return {r.bucket: dict(r._mapping) for r in await conn.execute(stmt)}


async def get_log(conn: AsyncConnection, account_id: str, gateway_id: str, log_id: str) -> Row | None:
    stmt = select(T).where(T.c.account_id == account_id, T.c.gateway_id == gateway_id, T.c.id == log_id)
    found = (await conn.execute(stmt)).first()
    if found is None:
        return None
    row = dict(found._mapping)
    payload_collected = not bodies.omitted(row)
    return {**bodies.unpack(row), "payload_collected": payload_collected}


async def update_log(conn: AsyncConnection, account_id: str, gateway_id: str, log_id: str,
                     values: Row) -> None:
    await conn.execute(update(T).where(T.c.account_id == account_id, T.c.gateway_id == gateway_id,
                                       T.c.id == log_id).values(**values))


def _delete(condition: Any, order_by: str = "created_at", descending: bool = False,
            limit: int | None = None) -> Any:
    if limit is None:
        return delete(T).where(condition)
    chosen = select(T.c.id).where(condition).order_by(*_order(order_by, descending)).limit(limit)
    return delete(T).where(T.c.id.in_(chosen.scalar_subquery()))


async def delete_logs(conn: AsyncConnection, condition: Any, order_by: str = "created_at",
                      descending: bool = False,
                      limit: int | None = None) -> int:
    return int((await conn.execute(_delete(condition, order_by, descending, limit))).rowcount or 0)


def _count(account_id: str, gateway_id: str) -> Any:
    return select(func.count()).select_from(T).where(T.c.account_id == account_id,
                                                     T.c.gateway_id == gateway_id)


async def count_logs(conn: AsyncConnection, account_id: str, gateway_id: str) -> int:
    return int((await conn.execute(_count(account_id, gateway_id))).scalar_one())


def count_logs_sync(conn: Connection, account_id: str, gateway_id: str) -> int:
    return int(conn.execute(_count(account_id, gateway_id)).scalar_one())


def delete_oldest(conn: Connection, account_id: str, gateway_id: str, count: int) -> int:
    """Synchronous (inside ``Database.write_batch``): the gateway's ``count`` oldest logs."""
    condition = and_(T.c.account_id == account_id, T.c.gateway_id == gateway_id)
    return int(conn.execute(_delete(condition, limit=count)).rowcount or 0)


async def delete_gateway_logs(conn: AsyncConnection, account_id: str, gateway_id: str) -> int:
    await conn.execute(delete(log_counts).where(log_counts.c.account_id == account_id,
                                                log_counts.c.gateway_id == gateway_id))
    return await delete_logs(conn, and_(T.c.account_id == account_id, T.c.gateway_id == gateway_id))


LOG_WRITES_LOCK = 7466327  # pg_advisory_xact_lock(LOG_WRITES_LOCK, hashtext(account_id || '/' || gateway_id))


def lock_gateway_logs(conn: Connection, account_id: str, gateway_id: str) -> None:
    """Serialise one gateway's log writes across processes until the transaction ends, so the count
    the log_management check reads cannot change before the insert commits. PostgreSQL only: on
    SQLite, BEGIN IMMEDIATE already serialises every writer. Callers lock gateways in a fixed order."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({LOG_WRITES_LOCK}, hashtext(:key))"),
                     {"key": f"{account_id}/{gateway_id}"})


def stored_bound(conn: Connection, account_id: str, gateway_id: str) -> int | None:
    """The shared upper bound of the gateway's stored logs (``log_counts``), None when not known."""
    value = conn.execute(select(log_counts.c.stored).where(log_counts.c.account_id == account_id,
                                                           log_counts.c.gateway_id == gateway_id)).scalar()
    return None if value is None else int(value)


def set_stored_bound(conn: Connection, account_id: str, gateway_id: str, stored: int, *, known: bool) -> None:
    """Record the bound after a batch (``known``: a row already exists, so update it)."""
    if known:
        conn.execute(update(log_counts).where(log_counts.c.account_id == account_id,
                                              log_counts.c.gateway_id == gateway_id).values(stored=stored))
    else:
        conn.execute(insert(log_counts).values(account_id=account_id, gateway_id=gateway_id, stored=stored))

