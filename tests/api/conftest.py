"""A whole demo hub per test: its own database, keyring and data directory, the real policy
engine, and the demo's source systems reached through real connectors (SQLite files and a REST
service over real HTTP on loopback)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opa_bindings import OpaEngine
from sqlmodel import Session, select

import policies
from hub.api.app import create_app, state_from_settings
from hub.api.state import HubState
from hub.bootstrap import initialise
from hub.config import Settings
from hub.demo.assertion import make_client_assertion
from hub.demo.builder import build_demo
from hub.demo.sources import SourceServer, rest_source_app
from hub.storage.models import DecisionRecord
from tests.ports import free_port

PANEL = "northtown"
POLICE = "northtown-police"
SOCIAL = "northtown-childrens-services"
SCHOOL = "northtown-academy"
YOUTH = "brightpath-youth"


@dataclass
class Hub:
    """A running demo hub and ways to act as its agencies and people."""

    settings: Settings
    state: HubState
    client: TestClient
    sources: SourceServer
    now: list[datetime] = field(default_factory=lambda: [datetime.now(UTC)])

    @property
    def clients(self) -> dict[str, dict[str, str]]:
        data = json.loads((self.settings.demo_dir / "clients.json").read_text())
        return {c["agency"]: c for c in data}

    @property
    def users(self) -> dict[str, dict[str, str]]:
        data = json.loads((self.settings.demo_dir / "users.json").read_text())
        return {u["username"]: u for u in data}

    def assertion(self, agency: str, **overrides: Any) -> str:
        client = self.clients[agency]
        args: dict[str, Any] = {
            "client_id": client["client_id"],
            "kid": client["kid"],
            "private_key_pem": client["private_key_pem"],
            "audience": self.settings.token_endpoint,
            "now": self.state.clock(),
        }
        args.update(overrides)
        return make_client_assertion(**args)

    def token_response(self, assertion: str) -> Any:
        return self.client.post(
            "/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )

    def agency_headers(self, agency: str) -> dict[str, str]:
        response = self.token_response(self.assertion(agency))
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def user_headers(self, username: str) -> dict[str, str]:
        user = self.users[username]
        response = self.client.post(
            "/v1/login", json={"username": username, "password": user["password"]}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def session(self) -> Session:
        return Session(self.state.engine, expire_on_commit=False)


@pytest.fixture
def hub_settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        master_key=base64.b64encode(os.urandom(32)).decode(),
        demo_sources_port=free_port(),
        connector_timeout_seconds=3.0,
    )


@pytest.fixture
def sources(hub_settings: Settings) -> Iterator[SourceServer]:
    """The demo's REST source systems, on a real loopback socket."""
    opened = initialise(hub_settings)
    with Session(opened.engine, expire_on_commit=False) as session:
        build_demo(
            settings=hub_settings, session=session, keyring=opened.keyring, now=datetime.now(UTC)
        )
    opened.engine.dispose()
    server = SourceServer(
        rest_source_app(hub_settings.demo_dir / "sources"),
        host="127.0.0.1",
        port=hub_settings.demo_sources_port,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def opa_oracle() -> Iterator[OpaEngine]:
    """The real OPA evaluator loaded with the same policy files and data as the hub."""
    engine = OpaEngine()
    for path, text in policies.policy_modules():
        engine.add_policy(path, text)
    engine.add_data(policies.policy_data())
    yield engine
    engine.close()


def assert_opa_agrees(hub: Hub, opa: OpaEngine) -> None:
    """Differential check: every decision this test's requests produced is decided again by
    real OPA from its stored input, and must come out identical."""
    with hub.session() as session:
        records = session.exec(select(DecisionRecord)).all()
    for record in records:
        output = {k: v for k, v in record.output.items() if k != "revision"}
        if [r["code"] for r in output["reasons"]] == ["policy_engine_error"]:
            continue  # the embedded engine was made to fail on purpose; no policy ran
        expected = opa.eval_document("hub.decision.result", record.input)
        assert output == expected, f"OPA and the embedded engine differ on {record.decision_id}"


@pytest.fixture
def make_hub(
    hub_settings: Settings, sources: SourceServer, opa_oracle: OpaEngine
) -> Iterator[Callable[..., Hub]]:
    made: list[Hub] = []

    def make(**state_overrides: Any) -> Hub:
        state = state_from_settings(hub_settings)
        holder: list[datetime] = [datetime.now(UTC)]
        for name, value in state_overrides.items():
            setattr(state, name, value)
        if "clock" not in state_overrides:
            state.clock = lambda: holder[0]
        client = TestClient(create_app(state), raise_server_exceptions=False)
        client.__enter__()
        hub = Hub(settings=hub_settings, state=state, client=client, sources=sources, now=holder)
        made.append(hub)
        return hub

    yield make
    try:
        for hub in made:
            assert_opa_agrees(hub, opa_oracle)
    finally:
        for hub in made:
            hub.client.__exit__(None, None, None)


@pytest.fixture
def hub(make_hub: Callable[..., Hub]) -> Hub:
    return make_hub()
