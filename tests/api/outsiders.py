"""An agency of another panel, for the tests that prove panels cannot see each other."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.demo.builder import _new_client, public_jwks
from hub.services import admin, audit
from tests.api.conftest import Hub

OUTSIDER = "southtown-police"


def add_outsider_agency(hub: Hub) -> dict[str, str]:
    """Register Southtown's police on a Southtown panel; return its bearer headers."""
    now = datetime.now(UTC)
    client = _new_client(OUTSIDER)
    with hub.session() as session:
        admin.ensure_panel(session=session, panel_id="southtown", name="Southtown", now=now)
        admin.ensure_agency(
            session=session,
            agency_id=OUTSIDER,
            name="Southtown Police",
            kind="police",
            panel_id="southtown",
            connector_config=None,
            now=now,
        )
        admin.ensure_client(
            session=session,
            client_id=client["client_id"],
            agency_id=OUTSIDER,
            jwks=public_jwks(client),
            now=now,
        )
        audit.commit(session=session)
    from hub.demo.assertion import make_client_assertion

    assertion = make_client_assertion(
        client_id=client["client_id"],
        kid=client["kid"],
        private_key_pem=client["private_key_pem"],
        audience=hub.settings.token_endpoint,
        now=hub.state.clock(),
    )
    response = hub.token_response(assertion)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def add_outsider_user(hub: Hub, role: str) -> dict[str, str]:
    """A coordinator or DPO of the Southtown panel; return their bearer headers."""
    now = datetime.now(UTC)
    username = f"southtown-{role}"
    password = "southtown-" + role + "-password-1234"
    with hub.session() as session:
        admin.ensure_panel(session=session, panel_id="southtown", name="Southtown", now=now)
        admin.ensure_user(
            session=session,
            username=username,
            password=password,
            role=role,
            panel_id="southtown",
            now=now,
        )
        audit.commit(session=session)
    response = hub.client.post("/v1/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
