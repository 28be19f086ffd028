"""When a part the hub depends on fails, the hub denies or answers partially and says so; it
never hands out data without the audit entry for it.

Covered elsewhere, not repeated here: a policy engine that raises
(tests/api/test_disclosures.py), an OPA server that is down (tests/api/test_remote_policy.py),
the disclosure's own audit entry failing, and a source system that is down
(tests/api/test_disclosures.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from jose import jwt
from sqlalchemy import create_engine, make_url
from sqlmodel import col, select

from hub.api.app import state_from_settings
from hub.policy import EmbeddedPolicyEngine, PolicyEngine, RemoteOpaPolicyEngine
from hub.services.sources import ConnectorRegistry
from hub.storage.db import make_engine
from hub.storage.models import Agency, AuditEntry
from keys import KeysError
from tests.api.conftest import SCHOOL, SOCIAL, Hub
from tests.api.flows import case_in_assessment, disclose, record_consent
from tests.security.servers import InFlight, serving, wait_until

MakeHub = Callable[..., Hub]
BOTH = ["education", "social_care"]


def entries(hub: Hub) -> list[AuditEntry]:
    with hub.session() as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())


def ready_case(hub: Hub) -> str:
    """A case the school may read education and social care of (consent on record)."""
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    return case_id


def assert_denied_for_engine_error(hub: Hub, response: Any, before: int) -> None:
    assert response.status_code == 403, response.text
    assert [r["code"] for r in response.json()["error"]["reasons"]] == ["policy_engine_error"]
    assert "records" not in response.text
    logged = entries(hub)[before:]
    assert [e.kind for e in logged] == ["denial"]


# ---------------------------------------------------------------------------------------------
# The policy decision point


def with_policy(make_hub: MakeHub, engine: PolicyEngine) -> Hub:
    """A hub deciding with `engine`; the engine it was built with is closed here, on this
    thread (the embedded engine's VM must not be dropped on another)."""
    hub = make_hub()
    built = hub.state.policy
    hub.state.policy = engine
    built.close()
    return hub


def test_a_policy_evaluation_over_its_time_limit_is_a_denial(make_hub: MakeHub) -> None:
    """The embedded engine throws away an answer that came too late, even an allow."""
    case_id = ready_case(make_hub())
    slow = with_policy(make_hub, EmbeddedPolicyEngine.from_policies(timeout=1e-9))
    before = len(entries(slow))

    assert_denied_for_engine_error(slow, disclose(slow, case_id), before)


def test_an_opa_server_that_does_not_answer_in_time_is_a_denial(make_hub: MakeHub) -> None:
    case_id = ready_case(make_hub())
    allow = json.dumps({"result": {"allow": True}}).encode()
    with serving(lambda: (200, "application/json", allow), delay=threading.Event()) as url:
        stalled = with_policy(make_hub, RemoteOpaPolicyEngine.from_url(url, timeout=0.2))
        before = len(entries(stalled))

        assert_denied_for_engine_error(stalled, disclose(stalled, case_id), before)


@pytest.mark.parametrize(
    "answer",
    [
        (200, "text/html", b"<html>maintenance</html>"),
        (200, "application/json", b'{"result": "yes"}'),
        (200, "application/json", b'{"result": {"allow": "true"}}'),
        (200, "application/json", b"{}"),
    ],
    ids=["html", "result-not-object", "allow-not-bool", "undefined"],
)
def test_an_opa_server_answering_garbage_is_a_denial(
    make_hub: MakeHub, answer: tuple[int, str, bytes]
) -> None:
    case_id = ready_case(make_hub())
    with serving(lambda: answer) as url:
        confused = with_policy(make_hub, RemoteOpaPolicyEngine.from_url(url, timeout=2))
        before = len(entries(confused))

        assert_denied_for_engine_error(confused, disclose(confused, case_id), before)


# ---------------------------------------------------------------------------------------------
# Source systems (connectors)


def point_source_at(
    hub: Hub, agency_id: str, base_url: str, *, read_timeout: float | None = None
) -> None:
    """Make the agency's REST connector talk to `base_url` instead of its real system."""
    with hub.session() as session:
        agency = session.get(Agency, agency_id)
        assert agency is not None and agency.connector_config is not None
        config = json.loads(json.dumps(agency.connector_config))
        assert config["source"]["kind"] == "rest"
        prefix = config["source"]["base_url"].rsplit("/", 1)[1]
        config["source"]["base_url"] = f"{base_url}/{prefix}"
        if read_timeout is not None:
            config["source"]["read_timeout"] = read_timeout
        agency.connector_config = config
        session.add(agency)
        session.commit()


def assert_partial(hub: Hub, response: Any, *, failed: str, status: str) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["complete"] is False
    assert body["sources"][SCHOOL]["status"] == "ok"
    assert body["sources"][failed]["status"] == status
    assert body["records"]["education"], "the source that answered is still used"
    assert body["records"]["social_care"] == []
    logged = json.loads(entries(hub)[-1].body)
    assert logged["decision_id"] == body["decision_id"]
    assert logged["sources"] == {SCHOOL: "ok", failed: status}


def test_a_source_that_stalls_is_marked_timed_out(make_hub: MakeHub) -> None:
    first = make_hub()
    case_id = ready_case(first)
    quick = first.settings.model_copy(update={"connector_timeout_seconds": 0.5})
    with serving(lambda: (200, "application/json", b"[]"), delay=threading.Event()) as url:
        point_source_at(first, SOCIAL, url)
        hub = make_hub(settings=quick)

        response = disclose(hub, case_id, categories=BOTH)

        assert_partial(hub, response, failed=SOCIAL, status="timed_out")


def test_a_stalled_source_holds_no_more_requests_than_its_limit(make_hub: MakeHub) -> None:
    first = make_hub()
    assert first.state.connectors.pool.max_in_flight == first.settings.connector_max_in_flight
    case_id = ready_case(first)
    tight = first.settings.model_copy(
        update={
            # Long enough for the school's quick source under load; the stall outlasts it.
            "connector_timeout_seconds": 2.0,
            "connector_max_in_flight": 2,
            "connector_max_threads": 6,
        }
    )
    release, at_source = threading.Event(), InFlight()
    with serving(lambda: (200, "application/json", b"[]"), delay=release, counter=at_source) as url:
        # The connector's own read timeout outlasts the test: only the stall's end frees it.
        point_source_at(first, SOCIAL, url, read_timeout=30)
        registry = ConnectorRegistry.from_settings(tight)
        hub = make_hub(settings=tight, connectors=registry)

        with ThreadPoolExecutor(max_workers=6) as callers:
            answers = list(callers.map(lambda _: disclose(hub, case_id, categories=BOTH), range(6)))
        wait_until(lambda: at_source.now == 2, "the two admitted fetches to reach the source")

        assert at_source.peak == 2 and at_source.received == 2
        social = sorted((a.json()["sources"][SOCIAL]["error"]) for a in answers)
        assert social == ["busy"] * 4 + ["deadline"] * 2
        logged = {json.loads(e.body).get("decision_id"): json.loads(e.body) for e in entries(hub)}
        for answer in answers:
            body = answer.json()
            assert answer.status_code == 200 and body["complete"] is False
            assert body["sources"][SCHOOL]["status"] == "ok" and body["records"]["education"]
            assert body["sources"][SOCIAL]["status"] == "timed_out"
            assert logged[body["decision_id"]]["sources"] == {SCHOOL: "ok", SOCIAL: "timed_out"}
        assert len(registry.pool.threads()) <= tight.connector_max_threads

        release.set()
        wait_until(lambda: registry.pool.in_flight(SOCIAL) == 0, "the stalled fetches to end")
        after = disclose(hub, case_id, categories=BOTH)

        assert after.json()["sources"][SOCIAL] == {"status": "ok", "error": None}
        assert len(registry.pool.threads()) <= tight.connector_max_threads


GARBAGE = {
    "html": (200, "text/html", b"<html><body>Service temporarily unavailable</body></html>"),
    "truncated-json": (200, "application/json", b'{"rows": [{"name": '),
    "json-of-wrong-shape": (200, "application/json", b'[1, "two", null]'),
    "server-error": (500, "application/json", b'{"detail": "boom"}'),
    # Valid JSON if read to the end, but larger than any one person's records can be.
    "oversized": (200, "application/json", b" " * (9 * 1024 * 1024) + b"{}"),
}


@pytest.mark.parametrize("garbage", sorted(GARBAGE))
def test_a_source_answering_garbage_is_marked_failed(make_hub: MakeHub, garbage: str) -> None:
    hub = make_hub()
    case_id = ready_case(hub)
    with serving(lambda: GARBAGE[garbage]) as url:
        point_source_at(hub, SOCIAL, url)

        response = disclose(hub, case_id, categories=BOTH)

        assert_partial(hub, response, failed=SOCIAL, status="failed")
        assert "boom" not in response.text and "Service temporarily" not in response.text


# ---------------------------------------------------------------------------------------------
# Storage: the database and the audit log


def read_only(url: str) -> Any:
    """An engine on the same database that can read but never write."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return create_engine(
            f"sqlite:///file:{parsed.database}?mode=ro&uri=true",
            connect_args={"check_same_thread": False},
        )
    options = f"{parsed.query.get('options', '')} -cdefault_transaction_read_only=on".strip()
    return create_engine(parsed.update_query_dict({"options": options}))


def test_a_read_only_database_gives_out_nothing(make_hub: MakeHub) -> None:
    writable = make_hub()
    case_id = ready_case(writable)
    school = writable.agency_headers(SCHOOL)
    coordinator = writable.user_headers("coordinator")
    before = len(entries(writable))
    hub = make_hub(engine=read_only(writable.settings.resolved_database_url))

    disclosure = hub.client.post(
        f"/v1/cases/{case_id}/disclosures",
        headers=school,
        json={"purpose": "risk_assessment", "categories": BOTH},
    )
    identity = hub.client.post(
        f"/v1/cases/{case_id}/reidentify",
        headers=coordinator,
        json={"reason_code": "safeguarding_action", "reason": "Needed to act today."},
    )
    token = hub.token_response(hub.assertion(SCHOOL))

    for response in (disclosure, identity, token):
        assert response.status_code in (401, 403, 503), response.text
        assert set(response.json()) == {"error"}
    assert "Alex" not in identity.text
    assert "access_token" not in token.text  # its jti could not be recorded, so no token
    assert len(entries(writable)) == before


def test_a_database_with_no_free_connection_answers_503_in_the_error_shape(
    make_hub: MakeHub,
) -> None:
    writable = make_hub()
    case_id = ready_case(writable)
    school = writable.agency_headers(SCHOOL)
    # One pooled connection, held by the test: every request waits for it, then gives up.
    engine = create_engine(
        writable.settings.resolved_database_url, pool_size=1, max_overflow=0, pool_timeout=0.2
    )
    hub = make_hub(engine=engine)
    held = engine.connect()
    try:
        response = hub.client.post(
            f"/v1/cases/{case_id}/disclosures",
            headers=school,
            json={"purpose": "risk_assessment", "categories": BOTH},
        )
    finally:
        held.close()

    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert "records" not in response.text


def refuse_audit_writes(hub: Hub) -> None:
    """Make the database itself refuse new audit entries, as a full or failing disk would."""
    with hub.state.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entry "
                "BEGIN SELECT RAISE(ABORT, 'audit store refuses writes'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'audit store refuses writes'; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entry "
                "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
            )


def test_no_audited_answer_leaves_when_the_audit_log_cannot_be_written(hub: Hub) -> None:
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)
    school = hub.agency_headers(SCHOOL)
    coordinator = hub.user_headers("coordinator")
    before = len(entries(hub))
    refuse_audit_writes(hub)

    answers = {
        "disclosure": hub.client.post(
            f"/v1/cases/{case_id}/disclosures",
            headers=school,
            json={"purpose": "risk_assessment", "categories": BOTH},
        ),
        "denial": hub.client.post(
            f"/v1/cases/{case_id}/disclosures",
            headers=school,
            json={"purpose": "risk_assessment", "categories": ["health"]},
        ),
        "break-glass": hub.client.post(
            f"/v1/cases/{case_id}/disclosures",
            headers=school,
            json={
                "purpose": "safeguarding_emergency",
                "categories": ["identity"],
                "break_glass": True,
                "justification": "Credible threat reported to the school this morning.",
            },
        ),
        "re-identification": hub.client.post(
            f"/v1/cases/{case_id}/reidentify",
            headers=coordinator,
            json={"reason_code": "safeguarding_action", "reason": "Needed to act today."},
        ),
        "consent receipt": hub.client.get(
            f"/v1/consents/{consent['id']}/receipt", headers=coordinator
        ),
    }

    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == dict.fromkeys(answers, 503)
    assert {r.json()["error"]["code"] for r in answers.values()} == {"audit_unavailable"}
    for response in answers.values():
        assert set(response.json()) == {"error"}
        assert "Alex" not in response.text and "2011-03-14" not in response.text
    assert len(entries(hub)) == before


# ---------------------------------------------------------------------------------------------
# The key store


@pytest.mark.parametrize("damage", ["garbage", "missing", "truncated"])
def test_a_hub_with_an_unreadable_key_store_does_not_start(hub: Hub, damage: str) -> None:
    path = hub.settings.keystore_path
    text = path.read_text()
    if damage == "garbage":
        path.write_text("not a keystore")
    elif damage == "missing":
        path.unlink()
    else:
        path.write_text(text[: len(text) // 2])

    with pytest.raises(KeysError):
        state_from_settings(hub.settings)


def test_an_unreadable_key_store_refuses_tokens_it_cannot_check(hub: Hub) -> None:
    """The running hub keeps the keys it loaded; a token naming any other key makes it look in
    the store again, and an unreadable store means the token is refused, not a crash."""
    case_id = ready_case(hub)
    school = hub.agency_headers(SCHOOL)
    claims = jwt.get_unverified_claims(school["Authorization"].removeprefix("Bearer "))
    # Signed with the hub's real key under a key id the hub has not loaded.
    stranger = jwt.encode(
        claims,
        hub.state.keyring.token_signing_private_pem().decode(),
        algorithm="ES256",
        headers={"kid": "tok-v9-deadbeef", "typ": "at+jwt"},
    )
    hub.settings.keystore_path.write_text("not a keystore")
    with pytest.raises(KeysError):
        hub.state.keyring.refresh(force=True)

    refused = hub.client.get(
        f"/v1/cases/{case_id}", headers={"Authorization": f"Bearer {stranger}"}
    )
    assert refused.status_code == 401, refused.text
    # Issuing a token needs the store: refused as unavailable, never a half-made token.
    token = hub.token_response(hub.assertion(SCHOOL))
    assert token.status_code == 503, token.text
    assert token.json()["error"]["code"] == "keys_unavailable"


def test_a_request_stuck_behind_a_database_lock_gives_up_with_503(make_hub: MakeHub) -> None:
    writable = make_hub()
    case_id = ready_case(writable)
    school = writable.agency_headers(SCHOOL)
    before = len(entries(writable))
    url = writable.settings.resolved_database_url
    hub = make_hub(engine=make_engine(url, statement_timeout=0.5))
    # Another session holds the write lock (SQLite) or the log's head row (PostgreSQL) and
    # never lets go while the request runs.
    holder = make_engine(url).connect()
    try:
        if holder.dialect.name == "sqlite":
            holder.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            holder.exec_driver_sql("BEGIN")
            holder.exec_driver_sql("SELECT size FROM audit_head FOR UPDATE")
        response = hub.client.post(
            f"/v1/cases/{case_id}/disclosures",
            headers=school,
            json={"purpose": "risk_assessment", "categories": BOTH},
        )
    finally:
        holder.rollback()
        holder.close()

    assert response.status_code == 503, response.text
    assert set(response.json()) == {"error"}
    assert "records" not in response.text
    assert len(entries(writable)) == before
