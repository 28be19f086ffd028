"""Consent notifications: when a consent is withdrawn or expires, the agencies that hold an
active grant or had a recent disclosure on the case are told by a signed webhook, delivered to a
real HTTP receiver on loopback, retried with back-off, and shown to the coordinator when it
fails for good."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlmodel import col, select
from typer.testing import CliRunner

from hub.api.routes import notifications as notification_routes
from hub.cli import app as cli_app
from hub.demo.sources import SourceServer
from hub.errors import BadRequest
from hub.services import admin, audit, notifications, webhooks
from hub.services.notifications import MAX_ATTEMPTS, DeliveryCounts, deliver_due, retry_delay
from hub.storage.models import AgencyWebhook, AuditEntry, ConsentNotification
from tests.api.conftest import POLICE, SCHOOL, SOCIAL, YOUTH, Hub
from tests.api.flows import (
    ALEX,
    case_in_assessment,
    disclose,
    grant,
    later,
    record_consent,
    use_hub_env,
)

IDENTIFYING = (ALEX["given_name"], ALEX["family_name"], ALEX["date_of_birth"], ALEX["local_id"])


@dataclass
class Receiver:
    """A small agency endpoint: records every request; can fail the first N, or always."""

    fail_first: int = 0
    always_fail: bool = False
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{agency}")
        async def hook(agency: str, request: Request) -> Response:
            self.requests.append((agency, dict(request.headers), await request.body()))
            if self.always_fail or len(self.requests) <= self.fail_first:
                return Response(status_code=503)
            return Response(status_code=204)

        return app

    def for_agency(self, agency: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for a, h, b in self.requests if a == agency]


@dataclass
class Endpoints:
    receiver: Receiver
    server: SourceServer
    secrets: dict[str, str]


def make_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's check, written from the Standard Webhooks spec, not from the hub."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(value, expected)
        for version, _, value in (s.partition(",") for s in headers["webhook-signature"].split())
    )


def set_webhook(hub: Hub, agency: str, url: str, secret: str) -> None:
    with hub.session() as session:
        admin.set_agency_webhook(
            session=session,
            keyring=hub.state.keyring,
            agency_id=agency,
            url=url,
            secret=secret,
            now=hub.now[0],
        )
        audit.commit(session=session)


@pytest.fixture
def endpoints(hub: Hub) -> Iterator[Endpoints]:
    """Every demo agency has a webhook on one loopback receiver, each with its own secret; the
    notifications router is mounted on the test's hub."""
    app = cast(FastAPI, hub.client.app)
    if not any(getattr(r, "path", None) == "/v1/notifications" for r in app.routes):
        app.include_router(notification_routes.router)
    receiver = Receiver()
    with SourceServer(receiver.app(), host="127.0.0.1", port=0) as server:
        secrets = {agency: make_secret() for agency in (SCHOOL, SOCIAL, POLICE, YOUTH)}
        for agency, secret in secrets.items():
            set_webhook(hub, agency, f"{server.url}/hooks/{agency}", secret)
        yield Endpoints(receiver=receiver, server=server, secrets=secrets)


def deliver(hub: Hub) -> DeliveryCounts:
    with hub.session() as session:
        return deliver_due(session=session, keyring=hub.state.keyring, now=hub.now[0])


def withdraw(hub: Hub, consent_id: str) -> None:
    response = hub.client.post(
        f"/v1/consents/{consent_id}/withdraw",
        headers=hub.user_headers("coordinator"),
        json={"reason": "the parent withdrew at the meeting"},
    )
    assert response.status_code == 200, response.text


def listed(hub: Hub, **params: str) -> list[dict[str, Any]]:
    response = hub.client.get(
        "/v1/notifications", headers=hub.user_headers("coordinator"), params=params
    )
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def rows(hub: Hub) -> list[ConsentNotification]:
    with hub.session() as session:
        return list(session.exec(select(ConsentNotification)).all())


def audit_kinds(hub: Hub) -> list[str]:
    with hub.session() as session:
        return [e.kind for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))]


def case_with_grant_and_disclosure(hub: Hub) -> tuple[str, dict[str, Any]]:
    """The school got a disclosure on consent; children's services holds an active grant;
    the police asked and were denied; the youth service never touched the case."""
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)
    assert disclose(hub, case_id).status_code == 200
    grant(hub, case_id, agency=SOCIAL, expires_at=hub.now[0] + timedelta(days=7))
    assert disclose(hub, case_id, agency=POLICE).status_code == 403
    return case_id, consent


def test_withdrawal_tells_the_grant_holder_and_the_discloser_and_no_one_else(
    hub: Hub, endpoints: Endpoints
) -> None:
    case_id, consent = case_with_grant_and_disclosure(hub)

    withdraw(hub, consent["id"])
    counts = deliver(hub)

    assert counts == DeliveryCounts(delivered=2)
    assert sorted(a for a, _, _ in endpoints.receiver.requests) == sorted([SOCIAL, SCHOOL])
    [(headers, body)] = endpoints.receiver.for_agency(SCHOOL)
    payload = json.loads(body)
    assert payload["type"] == "consent.withdrawn"
    assert payload["data"]["case_id"] == case_id
    assert payload["data"]["consent_id"] == consent["id"]
    assert "stop using data disclosed" in payload["data"]["meaning"]
    # The agency's own pseudonym, the one its case view shows: nothing else names the person.
    own_view = hub.client.get(f"/v1/cases/{case_id}", headers=hub.agency_headers(SCHOOL))
    assert payload["data"]["subject"] == own_view.json()["subject"]
    [(_, social_body)] = endpoints.receiver.for_agency(SOCIAL)
    assert json.loads(social_body)["data"]["subject"] != payload["data"]["subject"]
    for _, _, sent in endpoints.receiver.requests:
        for value in IDENTIFYING:
            assert value not in sent.decode()
    assert headers["content-type"] == "application/json"
    assert headers["webhook-timestamp"] == str(int(hub.now[0].timestamp()))
    assert {n["agency"]: n["status"] for n in listed(hub)} == {
        SCHOOL: "delivered",
        SOCIAL: "delivered",
    }
    kinds = audit_kinds(hub)
    assert kinds.count("notification_queued") == kinds.count("notification_delivered") == 2
    assert kinds.index("consent_withdrawn") < kinds.index("notification_queued")


def test_the_signature_verifies_with_the_agencys_secret_and_not_with_another(
    hub: Hub, endpoints: Endpoints
) -> None:
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)
    assert disclose(hub, case_id).status_code == 200
    withdraw(hub, consent["id"])
    deliver(hub)

    [(headers, body)] = endpoints.receiver.for_agency(SCHOOL)

    assert headers["webhook-signature"].startswith("v1,")
    assert verify(endpoints.secrets[SCHOOL], headers, body)
    assert not verify(endpoints.secrets[SOCIAL], headers, body)
    assert not verify(make_secret(), headers, body)
    assert not verify(endpoints.secrets[SCHOOL], headers, body.replace(b"withdrawn", b"expired"))
    tampered = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 600)}
    assert not verify(endpoints.secrets[SCHOOL], tampered, body)
    [notice] = listed(hub)
    assert headers["webhook-id"] == notice["id"]
    assert "body" not in notice and "secret" not in json.dumps(notice)


def test_a_receiver_that_fails_first_is_retried_after_the_back_off(
    hub: Hub, endpoints: Endpoints
) -> None:
    endpoints.receiver.fail_first = 1
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)
    assert disclose(hub, case_id).status_code == 200
    withdraw(hub, consent["id"])

    first = deliver(hub)
    [pending] = rows(hub)
    too_soon = deliver(hub)
    later(hub, retry_delay(1))
    second = deliver(hub)

    assert first == DeliveryCounts(retrying=1)
    assert (pending.status, pending.attempts, pending.last_error) == ("pending", 1, "http_503")
    assert pending.next_attempt_at == pending.last_attempt_at + retry_delay(1)  # type: ignore[operator]
    assert too_soon == DeliveryCounts()
    assert second == DeliveryCounts(delivered=1)
    [(h1, b1), (h2, b2)] = endpoints.receiver.for_agency(SCHOOL)
    # The same message (idempotency key and bytes), freshly timestamped and signed.
    assert h1["webhook-id"] == h2["webhook-id"] and b1 == b2
    assert int(h2["webhook-timestamp"]) == int(h1["webhook-timestamp"]) + 1
    assert verify(endpoints.secrets[SCHOOL], h2, b2)
    [done] = rows(hub)
    assert (done.status, done.attempts, done.last_error) == ("delivered", 2, None)


def test_a_receiver_that_always_fails_ends_failed_and_the_coordinator_sees_it(
    hub: Hub, endpoints: Endpoints
) -> None:
    endpoints.receiver.always_fail = True
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)
    assert disclose(hub, case_id).status_code == 200
    withdraw(hub, consent["id"])

    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        deliver(hub)
        [row] = rows(hub)
        if row.next_attempt_at is not None:
            waits.append(row.next_attempt_at - hub.now[0])
            later(hub, retry_delay(attempt))

    assert waits == [timedelta(seconds=s) for s in (1, 2, 4, 8, 16)]
    assert len(endpoints.receiver.requests) == MAX_ATTEMPTS
    [failed] = listed(hub, status="failed")
    assert (failed["agency"], failed["case_id"]) == (SCHOOL, case_id)
    assert (failed["attempts"], failed["last_error"]) == (MAX_ATTEMPTS, "http_503")
    assert listed(hub, status="pending") == listed(hub, status="delivered") == []
    assert "notification_failed" in audit_kinds(hub)
    assert deliver(hub) == DeliveryCounts()  # failed for good: no more attempts
    # Only a coordinator sees the list.
    as_agency = hub.client.get("/v1/notifications", headers=hub.agency_headers(SCHOOL))
    assert as_agency.status_code == 403

    # Once the agency's endpoint works again, the coordinator sends it again.
    endpoints.receiver.always_fail = False
    retried = hub.client.post(
        f"/v1/notifications/{failed['id']}/retry", headers=hub.user_headers("coordinator")
    )
    assert retried.status_code == 200, retried.text
    assert deliver(hub) == DeliveryCounts(delivered=1)
    again = hub.client.post(
        f"/v1/notifications/{failed['id']}/retry", headers=hub.user_headers("coordinator")
    )
    assert again.status_code == 409


def test_an_agency_without_a_webhook_is_shown_as_not_told(hub: Hub, endpoints: Endpoints) -> None:
    with hub.session() as session:
        hook = session.get(AgencyWebhook, SOCIAL)
        session.delete(hook)
        session.commit()
    _case_id, consent = case_with_grant_and_disclosure(hub)
    withdraw(hub, consent["id"])

    for attempt in range(1, MAX_ATTEMPTS + 1):
        deliver(hub)
        later(hub, retry_delay(attempt))

    [failed] = listed(hub, status="failed")
    assert (failed["agency"], failed["last_error"]) == (SOCIAL, "no_webhook")
    assert [n["agency"] for n in listed(hub, status="delivered")] == [SCHOOL]


def test_expiry_tells_the_agencies_too(hub: Hub, endpoints: Endpoints) -> None:
    case_id = case_in_assessment(hub)
    until = hub.now[0] + timedelta(hours=1)
    consent = record_consent(hub, case_id, valid_until=until.isoformat())
    assert disclose(hub, case_id).status_code == 200

    later(hub, timedelta(hours=2))
    response = hub.client.get(
        f"/v1/cases/{case_id}/consents", headers=hub.user_headers("coordinator")
    )
    assert response.json()["data"][0]["state"] == "expired"
    deliver(hub)

    [(headers, body)] = endpoints.receiver.for_agency(SCHOOL)
    payload = json.loads(body)
    assert payload["type"] == "consent.expired"
    assert payload["data"]["consent_id"] == consent["id"]
    assert payload["data"]["effective_at"] == audit.rfc3339(until)
    assert verify(endpoints.secrets[SCHOOL], headers, body)
    for value in IDENTIFYING:
        assert value not in body.decode()
    assert [a for a, _, _ in endpoints.receiver.requests] == [SCHOOL]


def test_the_background_worker_delivers(hub: Hub, endpoints: Endpoints) -> None:
    case_id = case_in_assessment(hub)
    consent = record_consent(hub, case_id)
    assert disclose(hub, case_id).status_code == 200

    worker = notifications.start_delivery_worker(hub.state, interval_seconds=0.05)
    try:
        withdraw(hub, consent["id"])
        deadline = time.monotonic() + 10
        while not endpoints.receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()

    assert [a for a, _, _ in endpoints.receiver.requests] == [SCHOOL]
    [row] = rows(hub)
    assert row.status == "delivered"


runner = CliRunner()


def test_an_operator_sets_a_webhook_with_the_secret_on_stdin(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_hub_env(hub, monkeypatch)
    secret = make_secret()
    url = "https://police.example.org/hub/notify?token=abc"

    ok = runner.invoke(
        cli_app, ["agency", "webhook", "--id", POLICE, "--url", url], input=secret + "\n"
    )
    plain_http = runner.invoke(
        cli_app,
        ["agency", "webhook", "--id", POLICE, "--url", "http://police.example.org/"],
        input=secret + "\n",
    )
    short = runner.invoke(
        cli_app, ["agency", "webhook", "--id", POLICE, "--url", url], input="whsec_c2hvcnQ=\n"
    )
    unknown = runner.invoke(
        cli_app, ["agency", "webhook", "--id", "nobody", "--url", url], input=secret + "\n"
    )
    generated = runner.invoke(
        cli_app, ["agency", "webhook", "--id", YOUTH, "--url", url, "--generate"]
    )

    assert ok.exit_code == 0, ok.output
    assert secret not in ok.output
    assert plain_http.exit_code == 1 and "https" in plain_http.output
    assert short.exit_code == 1 and "24 to 64 bytes" in short.output
    assert unknown.exit_code == 1 and "agency not found" in unknown.output
    assert generated.exit_code == 0, generated.output
    printed = generated.stdout.strip()
    assert printed.startswith("whsec_") and len(base64.b64decode(printed[6:])) == 32
    with hub.session() as session:
        hook = session.get(AgencyWebhook, POLICE)
        assert hook is not None and hook.url == url
        assert secret not in hook.secret_ciphertext
        stored = hub.state.keyring.decrypt(
            hook.secret_ciphertext, associated_data=f"agency/{POLICE}/webhook_secret".encode()
        )
        assert stored.decode() == secret
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.kind == "agency_webhook_set")
        ).all()
    # The log names where notifications go, not the path or query (which may carry a token).
    assert json.loads(entries[0].body) == {"agency": POLICE, "origin": "https://police.example.org"}


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "must start with whsec_"),
        ("whsec_not base64!", "must be base64"),
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), "24 to 64 bytes, got 23"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes, got 65"),
    ],
)
def test_a_secret_not_of_the_standard_form_is_refused(secret: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        webhooks.secret_key(secret)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://agency.example.org/hook", "must use https"),
        ("ftp://agency.example.org/hook", "absolute http"),
        ("/relative/hook", "absolute http"),
        ("https://user:pw@agency.example.org/hook", "must not carry credentials"),
        ("https://agency.example.org/" + "x" * 2000, "at most 2000"),
    ],
)
def test_a_webhook_url_the_hub_must_not_post_to_is_refused(url: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        webhooks.check_url(url)


def test_loopback_may_use_plain_http() -> None:
    for url in ("http://127.0.0.1:8080/h", "http://[::1]:8080/h", "http://localhost/h"):
        assert webhooks.check_url(url) == url


def test_an_unreachable_endpoint_is_an_outcome_not_an_exception() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def gone(request: httpx.Request) -> httpx.Response:
        return httpx.Response(410)

    outcomes = []
    for handler in (refuse, slow, gone):
        with webhooks.new_client(httpx.MockTransport(handler)) as client:
            outcomes.append(
                webhooks.post(
                    client,
                    url="https://agency.example.org/hook",
                    key=b"k" * 32,
                    msg_id="m",
                    now=datetime.now(UTC),
                    body=b"{}",
                )
            )

    assert [o.error for o in outcomes] == ["connect_error", "timeout", "http_410"]
    assert [o.permanent for o in outcomes] == [False, False, True]
