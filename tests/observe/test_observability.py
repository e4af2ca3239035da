"""The one Observer the data plane sees: fans out, never raises, stores only routed requests."""

from __future__ import annotations

from pathlib import Path

from sluice.observe.observer import Observability
from sluice.settings import load_settings
from tests.observe.support import ACCOUNT, exchange, suite_db


class Broken:
    def record(self, exchange):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")


async def test_fan_out_survives_a_broken_part_and_skips_unrouted(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "o.db", "gw")
    observability = Observability(load_settings({}, data_dir=tmp_path), db)
    observability._parts = (Broken(), *observability._parts)  # type: ignore[assignment]
    observability.record(exchange(config_id="c" * 32))
    observability.record(exchange("nope", provider="", status_code=404, success=False))
    assert observability.sink.pending == 1  # the unrouted one is not logged
    assert observability.activity.annotate({"id": "c" * 32, "created_at": None})["request_count"] == 1
    await observability.start()
    async with db.begin() as conn:
        await observability.on_gateway_delete(conn, ACCOUNT, "gw")  # drops buffered logs of the gateway
    await observability.close()
    assert observability.sink.dropped == {}
    await db.close()
