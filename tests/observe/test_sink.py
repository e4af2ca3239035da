"""LogSink: record() only buffers; flush() writes in batches; limits and strategies; durability."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import deque
from pathlib import Path
from typing import ClassVar

from sluice.exchange import Exchange
from sluice.logs.retention import DELETE_OLDEST, STOP_INSERTING
from sluice.observe.sink import LogSink
from sluice.store import logs as logstore
from sluice.store.database import Database, open_database
from tests.observe.support import ACCOUNT, exchange, suite_db


async def stored_ids(db: Database, gateway_id: str = "gw", limit: int = 50) -> list[str]:
    async with db.begin() as conn:
        rows = await logstore.list_logs(conn, logstore.where(ACCOUNT, gateway_id, []), "created_at", False, 1,
                                        limit)
    return [r["id"] for r in rows]


def counting_transactions(db: Database) -> list[bool]:
    """Patch db.write_batch to count transactions (one per batch is the contract); each entry says
    whether it was written in the background."""
    calls: list[bool] = []
    original = db.write_batch

    async def write_batch(work, *, background=False):  # type: ignore[no-untyped-def]
        calls.append(background)
        return await original(work, background=background)

    db.write_batch = write_batch  # type: ignore[method-assign]
    return calls


def limited(gateway_id: str, limit: int, strategy: str) -> tuple[str, dict]:
    return gateway_id, {"collect_logs": True, "log_management": limit, "log_management_strategy": strategy}


async def sink_holding(tmp_path: Path, count: int) -> tuple[Database, LogSink, list[Exchange]]:
    """A sink in batches of 2 that will not flush by itself, with ``count`` logs recorded."""
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024, batch_size=2)
    records = [exchange(started_at=1_700_000_000 + i) for i in range(count)]
    for item in records:
        sink.record(item)
    return db, sink, records


async def test_record_buffers_and_flush_writes_in_batches(tmp_path: Path) -> None:
    db, sink, records = await sink_holding(tmp_path, 5)
    assert await stored_ids(db) == [] and sink.pending == 5  # nothing written on the request path
    transactions = counting_transactions(db)
    await sink.flush()
    assert len(transactions) == 3  # 2 + 2 + 1
    assert await stored_ids(db) == [e.log_id for e in records] and sink.pending == 0
    await db.close()


async def test_flush_writes_what_was_buffered_when_it_started(tmp_path: Path) -> None:
    db, sink, before = await sink_holding(tmp_path, 3)
    arrivals = [exchange(started_at=1_700_000_100 + i) for i in range(2)]
    original = db.write_batch

    async def write_batch(work, **options):  # type: ignore[no-untyped-def]
        if arrivals:
            sink.record(arrivals.pop(0))  # a request finishes while the batch is written
        return await original(work, **options)

    db.write_batch = write_batch  # type: ignore[method-assign]
    await sink.flush()
    assert await stored_ids(db) == [e.log_id for e in before]  # all three, in two batches ...
    assert sink.pending == 2  # ... and the late arrivals wait for the next tick
    db.write_batch = original  # type: ignore[method-assign]
    await sink.flush()
    assert len(await stored_ids(db)) == 5 and sink.pending == 0
    await db.close()


async def test_a_quarter_full_buffer_starts_a_batch_before_the_tick(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=4096, buffer_max_bytes=16_000)
    await sink.start()
    sink.record(exchange(request_body=b"x" * 900))
    sink.record(exchange(request_body=b"x" * 900))  # 2 x 1,955 bytes buffered: below a quarter
    await asyncio.sleep(0.05)
    assert sink.pending == 2
    sink.record(exchange(request_body=b"x" * 900))  # crosses 16,000 / 4: the writer wakes
    async with asyncio.timeout(10):  # a guard, not a measurement: the tick is an hour away
        while len(await stored_ids(db)) < 3:
            await asyncio.sleep(0.01)
    assert sink.pending == 0 and sink.dropped == {}
    await sink.close()
    await db.close()


async def test_a_batch_is_written_in_the_background_until_logs_pile_up(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024, buffer_max_logs=400)
    transactions = counting_transactions(db)
    for i in range(199):  # below half of 400 logs
        sink.record(exchange(started_at=1_700_000_000 + i))
    await sink.flush()
    for i in range(200):  # half
        sink.record(exchange(started_at=1_700_001_000 + i))
    await sink.flush()
    assert transactions == [True, False]
    assert len(await stored_ids(db, limit=500)) == 399 and sink.pending == 0
    await db.close()


async def test_logs_piling_up_hurry_the_batch_in_flight(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024, buffer_max_logs=8)
    hurried: list[int] = []
    db.hurry_batch = lambda: hurried.append(sink.pending)  # type: ignore[method-assign]
    for i in range(3):
        sink.record(exchange(started_at=1_700_000_000 + i))
    assert hurried == []
    sink.record(exchange(started_at=1_700_000_003))  # 4 of 8 logs: half
    sink.record(exchange(started_at=1_700_000_004))
    assert hurried == [4, 5]
    await db.close()


async def test_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    drops: list[tuple[str, int]] = []
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024, buffer_max_logs=3,
                   on_drop=lambda reason, n: drops.append((reason, n)))
    for i in range(5):
        sink.record(exchange(started_at=1_700_000_000 + i))
    assert sink.pending == 3 and sink.dropped == {"buffer_full": 2} and drops == [("buffer_full", 1)] * 2
    small = LogSink(db, interval_s=3600, body_max_bytes=10_000, buffer_max_bytes=5000)
    small.record(exchange(request_body=os.urandom(6000)))  # bytes bound too (incompressible)
    assert small.pending == 0 and small.dropped == {"buffer_full": 1}
    await sink.flush()
    assert len(await stored_ids(db)) == 3
    await db.close()


async def test_the_row_is_built_when_recorded_and_not_for_a_log_that_is_shed(tmp_path: Path,
                                                                             monkeypatch) -> None:
    """The row is built by record (so a flush builds none on the event loop), and a full buffer
    sheds a log before spending the work of its row."""
    from sluice.observe import sink as module

    built: list[str] = []
    real = module.log_row
    monkeypatch.setattr(module, "log_row", lambda e: built.append(e.log_id) or real(e))
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024, buffer_max_logs=2)
    records = [exchange(started_at=1_700_000_000 + i) for i in range(3)]
    for item in records:
        sink.record(item)
    assert built == [records[0].log_id, records[1].log_id] and sink.dropped == {"buffer_full": 1}
    await sink.flush()
    assert len(built) == 2 and await stored_ids(db) == [records[0].log_id, records[1].log_id]
    await db.close()


async def test_collect_log_false_and_body_cap(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=8)
    sink.record(exchange(collect_log=False))
    kept = exchange(request_body=b"0123456789abcdef", request_size=16)
    sink.record(kept)
    await sink.flush()
    assert await stored_ids(db) == [kept.log_id]
    async with db.begin() as conn:
        row = await logstore.get_log(conn, ACCOUNT, "gw", kept.log_id)
    assert (row["request_body"], row["request_size"]) == (b"01234567", 16)  # type: ignore[index]
    await db.close()


async def test_stop_inserting_keeps_the_first_and_drops_the_rest(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", limited("gw", 3, STOP_INSERTING))
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024)
    first = [exchange(started_at=1_700_000_000 + i) for i in range(2)]
    for item in first:
        sink.record(item)
    await sink.flush()
    later = [exchange(started_at=1_700_000_100 + i) for i in range(3)]
    for item in later:
        sink.record(item)
    await sink.flush()
    assert await stored_ids(db) == [e.log_id for e in first + later[:1]]
    assert sink.dropped == {"log_limit": 2}
    await db.close()


async def test_delete_oldest_makes_room(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", limited("gw", 3, DELETE_OLDEST),
                        limited("other", 3, DELETE_OLDEST))
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024)
    records = [exchange(started_at=1_700_000_000 + i) for i in range(3)]
    other = exchange("other", started_at=1_600_000_000)
    for item in [*records, other]:
        sink.record(item)
    await sink.flush()
    newer = [exchange(started_at=1_700_000_100 + i) for i in range(2)]
    for item in newer:
        sink.record(item)
    await sink.flush()
    assert await stored_ids(db) == [records[2].log_id, newer[0].log_id, newer[1].log_id]
    assert await stored_ids(db, "other") == [other.log_id]  # limits are per gateway
    assert sink.dropped == {}
    await db.close()


async def test_logs_of_a_deleted_gateway_are_dropped(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024)
    sink.record(exchange("gone"))
    sink.record(exchange("gw"))
    await sink.flush()
    assert len(await stored_ids(db)) == 1 and sink.dropped == {"gateway_deleted": 1}
    await db.close()


async def test_a_failing_batch_is_counted_not_retried_forever(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024)
    twice = exchange()
    sink.record(twice)
    sink.record(twice)  # duplicate id: the batch cannot be written
    await sink.flush()
    assert sink.pending == 0 and sink.dropped == {"write_failed": 2}
    sink.record(exchange())
    await sink.flush()  # the sink still works afterwards
    assert len(await stored_ids(db)) == 1
    await db.close()


async def test_close_flushes(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024)
    await sink.start()
    sink.record(exchange())
    await sink.close()
    assert len(await stored_ids(db)) == 1
    await db.close()


CHILD = textwrap.dedent("""
    import asyncio, sys, time
    from sluice.observe.sink import LogSink
    from tests.observe.support import exchange, sqlite_db

    async def main():
        db = await sqlite_db(sys.argv[1], "gw")
        sink = LogSink(db, interval_s=3600, body_max_bytes=1024)
        for i in range(20):
            sink.record(exchange(started_at=1_700_000_000 + i))
        await sink.flush()
        print("FLUSHED", flush=True)
        sink.record(exchange(started_at=1_800_000_000))  # never flushed: lost with the process
        time.sleep(60)

    asyncio.run(main())
""")


async def test_flushed_logs_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        line = child.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "FLUSHED", line
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    db = await open_database(f"sqlite:///{path}")
    assert len(await stored_ids(db)) == 20
    await db.close()


async def test_a_large_response_is_buffered_redacted_and_compressed_and_stored_whole(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=64 * 1024)
    canary = b"sk-proj-CANARYcanaryCANARYcanary0123456789"
    events = b"".join(b'data: {"choices":[{"delta":{"content":"word %d"}}]}\n\n' % i for i in range(200))
    body = events + b'data: {"error":"bad key ' + canary + b'"}\n\n'
    item = exchange(response_body=body, response_size=len(body))
    sink.record(item)
    buffered = sink._buffer[0]["response_body"]
    assert canary not in buffered and len(buffered) < 1024  # redacted and compressed when recorded
    assert sink._bytes < 2048  # the buffer holds the compressed form (OVERHEAD + ~300 bytes)
    await sink.flush()
    async with db.begin() as conn:
        stored = await logstore.get_log(conn, ACCOUNT, "gw", item.log_id)
    assert stored is not None
    assert stored["response_body"] == body.replace(canary, b"[REDACTED]")
    assert stored["response_size"] == len(body)
    await db.close()


async def test_a_response_over_the_cap_is_cut_before_it_is_compressed(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=3000)
    body = bytes(range(256)) * 40  # 10,240 bytes
    item = exchange(response_body=body, response_size=len(body))
    sink.record(item)
    await sink.flush()
    async with db.begin() as conn:
        stored = await logstore.get_log(conn, ACCOUNT, "gw", item.log_id)
    assert stored is not None
    assert stored["response_body"] == body[:3000] and stored["response_size"] == len(body)
    await db.close()


async def test_freed_memory_is_handed_back_after_enough_is_written(tmp_path: Path, monkeypatch) -> None:
    from sluice.observe import sink as module

    calls: list[int] = []
    monkeypatch.setattr(module, "release_free_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(module, "TRIM_AFTER_BYTES", 50_000)
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=64 * 1024)
    sink.record(exchange(request_body=b"x" * 1000))
    await sink.flush()
    assert calls == []  # ~2 KB written: not yet
    for _ in range(30):
        sink.record(exchange(request_body=b"x" * 2000))
    await sink.flush()
    assert calls == [1]
    for _ in range(30):
        sink.record(exchange(request_body=b"x" * 2000))
    await sink.flush()
    assert calls == [1]  # at most every TRIM_INTERVAL_S
    await db.close()


async def test_a_database_outage_keeps_the_batch_for_the_next_flush(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024)
    original = db.write_batch
    failures = [ConnectionRefusedError(111, "Connect call failed")]

    async def flaky(work, **options):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return await original(work, **options)

    db.write_batch = flaky  # type: ignore[method-assign]
    kept = [exchange(started_at=1_700_000_000 + i) for i in range(3)]
    for item in kept:
        sink.record(item)
    await sink.flush()
    assert (sink.pending, sink.dropped) == (3, {})
    await sink.flush()
    assert await stored_ids(db) == [e.log_id for e in kept]
    assert (sink.pending, sink.dropped) == (0, {})
    await db.close()


async def test_a_write_failure_that_is_no_outage_drops_the_batch_and_counts_it(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024)

    async def broken(work, **options):  # type: ignore[no-untyped-def]
        raise ValueError("a bug")

    db.write_batch = broken  # type: ignore[method-assign]
    sink.record(exchange())
    await sink.flush()
    assert (sink.pending, sink.dropped) == (0, {"write_failed": 1})


async def test_a_log_with_nul_in_its_text_is_stored_and_does_not_lose_its_batch(tmp_path: Path) -> None:
    """PostgreSQL text cannot hold U+0000: one such log (a model name is the client's to choose)
    failed the whole batch there, losing other clients' logs with it."""
    db = await suite_db(tmp_path / "s.db", "gw")
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024)
    records = [exchange(started_at=1_700_000_000, model="before"),
               exchange(started_at=1_700_000_001, model="x\x00y", path="chat/\x00completions",
                        error="upstream said \x00"),
               exchange(started_at=1_700_000_002, model="after")]
    for item in records:
        sink.record(item)
    await sink.flush()
    assert sink.dropped == {}
    assert await stored_ids(db) == [e.log_id for e in records]
    async with db.begin() as conn:
        row = await logstore.get_log(conn, ACCOUNT, "gw", records[1].log_id)
    assert row is not None
    assert (row["model"], row["path"], row["error"]) == ("x\ufffdy", "chat/\ufffdcompletions",
                                                         "upstream said \ufffd")
    await db.close()


class _Tracked:
    """Records the thread it is freed in."""

    freed_in: ClassVar[list[int]] = []

    def __del__(self) -> None:
        _Tracked.freed_in.append(threading.get_ident())


async def test_a_written_batch_is_freed_off_the_event_loop() -> None:
    """Freeing ~1,000 rows is ~1 ms of C code holding the GIL; on the event loop it stalled requests
    every flush (bench/log_stalls.py). ``_release_soon`` frees them in a worker thread, a chunk at
    a time."""
    from sluice.observe import sink as sink_module

    _Tracked.freed_in.clear()
    rows: deque = deque({"value": _Tracked()} for _ in range(3 * sink_module.RELEASE_CHUNK + 5))
    sink_module._release_soon(rows)
    async with asyncio.timeout(5):
        while len(_Tracked.freed_in) < 3 * sink_module.RELEASE_CHUNK + 5:
            await asyncio.sleep(0.01)
    assert not rows
    assert threading.get_ident() not in _Tracked.freed_in


async def test_a_batch_of_the_whole_buffer_takes_it_as_it_is(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'take.db'}")
    sink = LogSink(db, interval_s=60, body_max_bytes=4096)
    try:
        for _ in range(5):
            sink.record(exchange())
        buffered, held = sink._buffer, sink._bytes
        batch = sink._take_batch(len(buffered))
        assert batch is buffered and len(batch) == 5
        assert (sink._bytes, sink._writing, len(sink._buffer)) == (0, held, 0)
    finally:
        await db.close()


def test_rows_are_freed_at_once_where_no_event_loop_can_take_them() -> None:
    """At shutdown, with the loop's executor gone, ``_release_soon`` frees the rows itself."""
    from sluice.observe import sink as sink_module

    _Tracked.freed_in.clear()
    rows = [{"value": _Tracked()} for _ in range(3)]
    sink_module._release_soon(rows)  # no running loop here
    assert rows == [] and _Tracked.freed_in == [threading.get_ident()] * 3
