"""Callers of every role, and real records of the demo panel, for the security suites."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from hub.services import admin, audit
from tests.api.conftest import SCHOOL, Hub
from tests.api.test_isolation import northtown_records

ADMIN_USER = "hub-admin"
ADMIN_PASSWORD = "hub-admin-password-1234"


def admin_headers(hub: Hub) -> dict[str, str]:
    """A hub administrator (no panel of their own); return their bearer headers."""
    with hub.session() as session:
        admin.ensure_user(
            session=session,
            username=ADMIN_USER,
            password=ADMIN_PASSWORD,
            role="admin",
            panel_id=None,
            now=datetime.now(UTC),
        )
        audit.commit(session=session)
    response = hub.client.post(
        "/v1/login", json={"username": ADMIN_USER, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def callers(hub: Hub) -> dict[str, dict[str, str]]:
    """Request headers for each role of the demo panel, and for nobody."""
    return {
        "anonymous": {},
        "agency": hub.agency_headers(SCHOOL),
        "coordinator": hub.user_headers("coordinator"),
        "dpo": hub.user_headers("dpo"),
        "admin": admin_headers(hub),
    }


def panel_records(hub: Hub) -> dict[str, str]:
    """One real record of the demo panel for every kind of path parameter."""
    return northtown_records(hub)


def app_of(hub: Hub) -> FastAPI:
    """The hub's FastAPI application behind its test client."""
    app = hub.client.app
    assert isinstance(app, FastAPI)
    return app
