"""Issue 16: the retry schedule of a partner that fails as a whole is stored (table
``partner_backoff``), so `outbox --json` shows when a retrying message really goes next, and a
restarted hub waits for the stored time and counts the failures on instead of starting the
backoff afresh. Real hubs over mTLS; NZ stays down until the end."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime, timedelta

from hub.cli.main import main
from hub.store.schema import PartnerBackoff
from tests.conftest import Federation
from tests.test_delivery import aeo_requests, drained, fast_retries, submit_batch
from tests.test_exchange import eventually

# waits of 0.15, 0.45, 1.35, then 4 s: the fourth failure, about 2 s in, leaves 4 s to stop
# the hub, look at it from the command line and start it again before the next try is due
SCHEDULE = {
    "retry_initial_seconds": 0.15,
    "retry_multiplier": 3.0,
    "retry_max_seconds": 4.0,
    "retry_jitter": 0.0,
    "poll_seconds": 0.1,
}


def run_cli(*args: str) -> tuple[int, str, str]:
    """``customs-hub ARGS`` in this process (call it off the event loop)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_the_backoff_is_stored_shown_and_kept_across_a_restart(
    federation: Federation,
) -> None:
    fast_retries(federation, "CN", **SCHEDULE)
    cn = await federation.start("CN")  # NZ is down
    sent = await submit_batch(cn, aeo_requests(3))

    async def failed(times: int) -> PartnerBackoff | None:
        row = await cn.hub.store.outbox.backoff("NZ")
        return row if row is not None and row.failures >= times else None

    row = await eventually(lambda: failed(4))
    await federation.stop("CN")
    stored = await eventually(lambda: failed(4))  # read again: the hub may have failed once more
    assert stored.failures == row.failures or stored.failures == row.failures + 1
    assert stored.retry_at - stored.failed_at == timedelta(seconds=4.0)
    assert stored.last_error
    config = str(federation.configs["CN"].path)

    # 1. the listing shows the partner's wait, the attempts and the last error
    code, out, err = await asyncio.to_thread(run_cli, "outbox", "--config", config, "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["message_id"] for r in rows] == sent
    now = datetime.now(UTC)
    for r in rows:
        assert r["state"] in ("queued", "retrying")
        assert parse(r["next_attempt_at"]) > parse(r["created_at"])
        assert parse(r["next_attempt_at"]) > now
        assert abs(parse(r["next_attempt_at"]) - stored.retry_at) < timedelta(milliseconds=1)
    assert rows[0]["attempts"] >= 1 and rows[0]["last_error"]
    code, out, err = await asyncio.to_thread(run_cli, "outbox", "list", "--config", config)
    assert code == 0 and "next try in" in out, out + err
    code, out, err = await asyncio.to_thread(run_cli, "status", "--config", config, "--json")
    assert code == 0, err
    [nz] = [p for p in json.loads(out)["partners"] if p["partner"] == "NZ"]
    assert nz["failures"] == stored.failures
    assert abs(parse(nz["retry_at"]) - stored.retry_at) < timedelta(milliseconds=1)

    # 2. started again with NZ still down: nothing is tried before the stored time
    before = {e.id: e.attempts for e in await cn.hub.store.views.outbox()}
    cn = await federation.start("CN")
    margin = timedelta(seconds=0.3)
    assert datetime.now(UTC) < stored.retry_at - margin, "the restart took too long to tell"
    while datetime.now(UTC) < stored.retry_at - margin:
        assert {e.id: e.attempts for e in await cn.hub.store.views.outbox()} == before
        assert await cn.hub.store.outbox.backoff("NZ") == stored
        await asyncio.sleep(0.05)

    # 3. then tried, and the failures count on from the stored ones (not from 1)
    again = await eventually(lambda: failed(stored.failures + 1), timeout=10)
    assert again.failed_at >= stored.retry_at - timedelta(milliseconds=50)
    assert again.retry_at - again.failed_at == timedelta(seconds=4.0)  # not 0.15 s
    after = {e.id: e.attempts for e in await cn.hub.store.views.outbox()}
    assert any(after[i] > before[i] for i in before)

    # 4. NZ comes back: everything is delivered and the stored backoff is gone
    nz_hub = await federation.start("NZ")
    await eventually(lambda: drained(cn), timeout=20)
    assert [m.message_id for m in await nz_hub.hub.store.views.inbound()] == sent
    assert await cn.hub.store.outbox.backoff("NZ") is None
    code, out, err = await asyncio.to_thread(run_cli, "status", "--config", config, "--json")
    [nz] = [p for p in json.loads(out)["partners"] if p["partner"] == "NZ"]
    assert nz["retry_at"] is None and nz["failures"] == 0
