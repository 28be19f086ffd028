"""With `HUB_OPA_URL` set, the hub asks an OPA server for every decision, and fails closed
when that server is down. The server here is the OPA-compatible test server
(tests/policies/opa_server.py), backed by the real OPA evaluator."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hub.api.app import policy_engine
from hub.demo.sources import SourceServer
from hub.policy import RemoteOpaPolicyEngine
from tests.api.conftest import Hub
from tests.api.flows import case_in_assessment, disclose, record_consent
from tests.policies.opa_server import opa_server_app


@pytest.fixture
def opa_url() -> Iterator[str]:
    with SourceServer(opa_server_app(), host="127.0.0.1", port=0) as server:
        yield server.url


def test_hub_uses_the_opa_server_when_configured(
    make_hub: Callable[..., Hub], opa_url: str
) -> None:
    local = make_hub()
    settings = local.settings.model_copy(update={"opa_url": opa_url})
    engine = policy_engine(settings)
    assert isinstance(engine, RemoteOpaPolicyEngine)
    hub = make_hub(policy=engine)
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)

    allowed = disclose(hub, case_id, categories=["education"])
    denied = disclose(hub, case_id, categories=["police_contact"])

    assert allowed.status_code == 200, allowed.text
    assert denied.status_code == 403
    assert "category_not_covered" in {r["code"] for r in denied.json()["error"]["reasons"]}


def test_hub_fails_closed_when_the_opa_server_is_down(make_hub: Callable[..., Hub]) -> None:
    local = make_hub()
    case_id = case_in_assessment(local)
    record_consent(local, case_id)
    settings = local.settings.model_copy(
        update={"opa_url": "http://127.0.0.1:9", "opa_timeout_seconds": 0.2}
    )
    hub = make_hub(policy=policy_engine(settings))

    response = disclose(hub, case_id, categories=["education"])

    assert response.status_code == 403
    assert [r["code"] for r in response.json()["error"]["reasons"]] == ["policy_engine_error"]
    assert "records" not in response.text
