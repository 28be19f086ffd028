"""The access log names routes by their template: no case id, pseudonym or query string."""

from __future__ import annotations

import logging

import pytest

from tests.api.conftest import Hub
from tests.api.flows import case_in_assessment, disclose, record_consent


def test_access_lines_carry_route_templates_not_ids_or_queries(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    disclose(hub, case_id, categories=["education"])
    dpo = hub.user_headers("dpo")
    subject_ref = hub.client.get("/v1/oversight/disclosures", headers=dpo).json()["data"][0][
        "subject_ref"
    ]

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hub.access"):
        hub.client.get(f"/v1/oversight/subjects/{subject_ref}/disclosures", headers=dpo)
        hub.client.get("/v1/oversight/disclosures", headers=dpo, params={"agency": "x-secret"})
        disclose(hub, case_id, categories=["education"])
        hub.client.get("/no/such/Alex-Example-2011-03-14", headers=dpo)

    lines = [r.getMessage() for r in caplog.records if r.name == "hub.access"]
    # The last field is the duration.
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "GET /v1/oversight/subjects/{subject_ref}/disclosures 200",
        "GET /v1/oversight/disclosures 200",
        "POST /v1/token 200",
        "POST /v1/cases/{case_id}/disclosures 200",
        "GET (no route) 404",
    ]
    logged = "\n".join(lines)
    for secret in (subject_ref, case_id, "x-secret", "Alex"):
        assert secret not in logged
