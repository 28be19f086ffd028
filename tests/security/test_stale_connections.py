"""A pooled PostgreSQL connection the server dropped (a restart, an idle timeout) never turns
into a 500 or an answer without its checks: one idle for a while is replaced before use, and
one dropped within the idle window costs at most a clean 503, after which the pool recovers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from hub.storage.db import make_engine
from tests.api.conftest import SCHOOL, Hub
from tests.api.flows import case_in_assessment, record_consent
from tests.conftest import postgres_base_url

MakeHub = Callable[..., Hub]
BOTH = ["education", "social_care"]
POOL_SIZE = 4


def _hub_with_pool(make_hub: MakeHub, *, ping_after_idle: float) -> Hub:
    """A hub whose engine pings connections idle for `ping_after_idle` seconds or more."""
    first = make_hub()
    if first.state.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    engine = make_engine(
        first.settings.resolved_database_url,
        ping_after_idle=ping_after_idle,
        pool_size=POOL_SIZE,
        max_overflow=0,
    )
    return make_hub(engine=engine)


def _drop_pooled_connections(engine: Engine) -> int:
    """Fill `engine`'s pool with idle connections, then terminate their server side as a
    database restart would (the audit writer keeps its own); returns how many there were."""
    free = POOL_SIZE - engine.pool.checkedout()  # type: ignore[attr-defined]
    held = [engine.raw_connection() for _ in range(free)]
    pids = [conn.driver_connection.info.backend_pid for conn in held]  # type: ignore[union-attr]
    for pooled in held:
        pooled.close()  # back to the pool, alive as far as the pool knows
    admin = create_engine(postgres_base_url())
    try:
        with admin.connect() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": pids},
            ).scalar_one():
                assert time.monotonic() < deadline, "terminated backends did not exit"
                time.sleep(0.02)
                conn.rollback()
    finally:
        admin.dispose()
    return len(pids)


def _disclose(hub: Hub, case_id: str, headers: dict[str, str]) -> tuple[int, Any]:
    response = hub.client.post(
        f"/v1/cases/{case_id}/disclosures",
        headers=headers,
        json={"purpose": "risk_assessment", "categories": BOTH},
    )
    return response.status_code, response.json()


def test_a_connection_dropped_while_idle_is_replaced_before_use(make_hub: MakeHub) -> None:
    hub = _hub_with_pool(make_hub, ping_after_idle=0.05)
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    school = hub.agency_headers(SCHOOL)
    assert _disclose(hub, case_id, school)[0] == 200

    assert _drop_pooled_connections(hub.state.engine) > 0
    time.sleep(0.1)  # longer than the idle time after which a connection is pinged

    # Every checkout of the request (token check, then the handler) finds a dead connection;
    # each is pinged, found dead and replaced before anything runs on it.
    status, body = _disclose(hub, case_id, school)
    assert status == 200, body
    assert body["records"]["education"]


def test_a_connection_dropped_within_the_idle_window_costs_at_most_a_503(
    make_hub: MakeHub,
) -> None:
    # No connection idles long enough to be pinged: the dead ones are found by using them.
    hub = _hub_with_pool(make_hub, ping_after_idle=3600)
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    school = hub.agency_headers(SCHOOL)
    assert _disclose(hub, case_id, school)[0] == 200

    assert _drop_pooled_connections(hub.state.engine) > 0

    status, body = _disclose(hub, case_id, school)
    if status != 200:
        assert status == 503, body
        assert set(body) == {"error"}  # the one error shape, nothing disclosed
        assert body["error"]["code"] == "storage_unavailable"
    # The failure made the pool replace every connection opened before it: the next
    # requests, as many as the pool holds, all succeed.
    for _ in range(POOL_SIZE + 1):
        status, body = _disclose(hub, case_id, school)
        assert status == 200, body
