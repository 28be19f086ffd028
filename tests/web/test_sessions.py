"""People's web sessions, without a browser: what is stored, the cookie's flags, lockout, idle
timeout, CSRF, roles, and a service's refusal shown as a page. Runs on every database backend."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlmodel import col, select

from hub.config import Settings
from hub.storage.models import AuditEntry, WebSession
from tests.api.conftest import Hub
from tests.api.flows import refer_alex

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(page: httpx.Response) -> str:
    found = TOKEN.search(page.text)
    assert found, "the page has no form token"
    return found.group(1)


def sign_in(hub: Hub, username: str, password: str | None = None) -> httpx.Response:
    token = form_token(hub.client.get("/sign-in"))
    response: httpx.Response = hub.client.post(
        "/sign-in",
        data={
            "username": username,
            "password": password if password is not None else hub.users[username]["password"],
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    return response


def audit_kinds(hub: Hub) -> list[str]:
    with hub.session() as session:
        return list(session.exec(select(AuditEntry.kind).order_by(col(AuditEntry.seq))).all())


def test_only_a_hash_of_the_session_id_is_stored_and_the_cookie_is_locked_down(hub: Hub) -> None:
    signed_in = sign_in(hub, "coordinator")

    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    cookie = next(h for h in signed_in.headers.get_list("set-cookie") if "hub_session=" in h)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    value = hub.client.cookies["hub_session"]
    with hub.session() as session:
        stored = session.exec(select(WebSession)).all()
    assert [row.id_hash for row in stored] == [hashlib.sha256(value.encode()).hexdigest()]
    assert value not in {row.id_hash for row in stored}
    assert audit_kinds(hub)[-1] == "web_signed_in"


def test_the_cookie_is_secure_when_the_setting_says_so(
    make_hub: Callable[..., Hub], hub_settings: Settings
) -> None:
    settings = hub_settings.model_copy(update={"cookie_secure": True})
    hub = make_hub(settings=settings)
    # A Secure cookie only comes back over HTTPS.
    hub.client.base_url = httpx.URL("https://testserver")

    signed_in = sign_in(hub, "coordinator")

    cookie = next(h for h in signed_in.headers.get_list("set-cookie") if "hub_session=" in h)
    assert cookie.startswith("__Host-hub_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_sign_out_ends_the_session_on_the_server_and_is_audited(hub: Hub) -> None:
    sign_in(hub, "coordinator")
    old_cookie = hub.client.cookies["hub_session"]
    page = hub.client.get("/panel/")
    assert page.status_code == 200

    signed_out = hub.client.post(
        "/sign-out", data={"csrf_token": form_token(page)}, follow_redirects=False
    )

    assert signed_out.status_code == 303
    assert audit_kinds(hub)[-1] == "web_signed_out"
    # Replaying the old cookie does not bring the session back.
    hub.client.cookies.set("hub_session", old_cookie)
    again = hub.client.get("/panel/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/sign-in")


def test_five_failures_lock_the_account_with_the_wrong_password_message(hub: Hub) -> None:
    for _ in range(5):
        failed = sign_in(hub, "coordinator", "certainly-not-the-password")
        assert failed.status_code == 401
        assert "The username or password is wrong." in failed.text

    locked = sign_in(hub, "coordinator")

    assert locked.status_code == 401
    assert "The username or password is wrong." in locked.text
    assert "hub_session" not in hub.client.cookies
    assert sign_in(hub, "dpo").status_code == 303  # other accounts are unaffected
    # After the lockout window the right password works again.
    hub.now[0] += timedelta(seconds=hub.settings.sign_in_lockout_seconds + 1)
    assert sign_in(hub, "coordinator").status_code == 303


def test_four_failures_then_success_resets_the_count(hub: Hub) -> None:
    for _ in range(4):
        assert sign_in(hub, "coordinator", "certainly-not-the-password").status_code == 401
    assert sign_in(hub, "coordinator").status_code == 303
    for _ in range(4):
        assert sign_in(hub, "coordinator", "certainly-not-the-password").status_code == 401

    assert sign_in(hub, "coordinator").status_code == 303


def test_an_idle_session_ends_and_the_end_is_audited(hub: Hub) -> None:
    sign_in(hub, "coordinator")
    assert hub.client.get("/panel/").status_code == 200
    hub.now[0] += timedelta(seconds=hub.settings.web_idle_timeout_seconds - 5)
    assert hub.client.get("/panel/").status_code == 200  # activity keeps it alive
    hub.now[0] += timedelta(seconds=hub.settings.web_idle_timeout_seconds + 1)

    ended = hub.client.get("/panel/", follow_redirects=False)

    assert ended.status_code == 303
    assert ended.headers["location"] == "/sign-in?ended=idle&next=%2Fpanel%2F"
    with hub.session() as session:
        row = session.exec(select(WebSession)).one()
        last = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc())).first()
    assert row.ended_at is not None
    assert last is not None and last.kind == "web_signed_out" and '"reason":"idle"' in last.body


def test_forms_without_the_right_token_are_refused_before_anything_changes(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    sign_in(hub, "coordinator")
    before = audit_kinds(hub)

    for token in (None, "", "f" * 64):
        data = {"to": "screening", "reason": "eligible"}
        if token is not None:
            data["csrf_token"] = token
        refused = hub.client.post(f"/panel/cases/{case_id}/stage", data=data)
        assert refused.status_code == 403
        assert "security token is missing or wrong" in refused.text

    assert audit_kinds(hub) == before
    page = hub.client.get(f"/panel/cases/{case_id}")
    assert "The case has not moved since it was referred." in page.text


def test_the_sign_in_form_needs_its_own_token(hub: Hub) -> None:
    hub.client.get("/sign-in")
    refused = hub.client.post(
        "/sign-in",
        data={"username": "coordinator", "password": hub.users["coordinator"]["password"]},
        follow_redirects=False,
    )

    assert refused.status_code == 403
    assert "hub_session" not in hub.client.cookies


def test_pages_of_another_role_look_like_pages_that_do_not_exist(hub: Hub) -> None:
    anonymous = hub.client.get("/panel/", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/sign-in?next=%2Fpanel%2F"

    sign_in(hub, "dpo")
    for path in ("/panel/", "/panel/cases/whatever"):
        wrong_role = hub.client.get(path)
        missing = hub.client.get("/panel/no-such-page")
        assert wrong_role.status_code == missing.status_code == 404
        assert "Page not found" in wrong_role.text


def test_a_refused_change_shows_the_service_message_with_a_4xx(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    sign_in(hub, "coordinator")
    token = form_token(hub.client.get(f"/panel/cases/{case_id}"))

    refused = hub.client.post(
        f"/panel/cases/{case_id}/stage",
        data={"to": "intervention", "reason": "skip ahead", "csrf_token": token},
    )

    assert refused.status_code == 409
    assert "Not done:" in refused.text
    assert "The case has not moved since it was referred." in refused.text
    invalid = hub.client.post(
        f"/panel/cases/{case_id}/grants",
        data={"agency": "northtown-academy", "expires_at": "soon", "csrf_token": token},
    )
    assert invalid.status_code == 422
    assert "A field is not valid" in invalid.text


def test_sign_in_never_redirects_off_the_hub(hub: Hub) -> None:
    token = form_token(hub.client.get("/sign-in?next=//elsewhere.example/x"))
    signed_in = hub.client.post(
        "/sign-in",
        data={
            "username": "coordinator",
            "password": hub.users["coordinator"]["password"],
            "csrf_token": token,
            "next": "//elsewhere.example/x",
        },
        follow_redirects=False,
    )

    assert signed_in.headers["location"] == "/"


def test_pages_carry_a_csp_without_inline_script_or_style(hub: Hub) -> None:
    page = hub.client.get("/sign-in")

    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy


def test_front_end_libraries_are_served_by_the_hub_itself(hub: Hub) -> None:
    chart = hub.client.get("/vendor/chart.umd.js")
    assert chart.status_code == 200
    assert chart.headers["content-type"].startswith("text/javascript")
    assert b"Chart" in chart.content[:2000]
    assert hub.client.get("/vendor/../package.json").status_code == 404
    assert hub.client.get("/vendor/left-pad.js").status_code == 404
    assert hub.client.get("/static/hub.css").status_code == 200
