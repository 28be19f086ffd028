"""The authorisation matrix: every API route x every role x own panel / another panel.

The routes are read from the application itself (`app.routes`, walked through included
routers), so a new route under /v1 or /.well-known without a row in `EXPECTED` fails
`test_every_api_route_has_a_matrix_row`. Routes outside the API are named in `NOT_API` with
the reason they are left out: the web UI's pages (/sign-in, /sign-out, /, /panel, /dpo and their
assets) are covered by the web UI's own tests; the API documentation is public.

Each cell is what the caller learns about the request:
  allowed        authorisation let it through: 2xx, or a 409/422 about the record's state, or a
                 policy denial (403 `denied`, which is a decision about data, logged as such)
  forbidden      403 `forbidden`: authenticated, but this role may not do this
  hidden         404 `not_found`: the record is not visible to the caller
  unauthenticated  401
A 5xx anywhere fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlmodel import select
from starlette.routing import BaseRoute, Mount, Route

from hub.storage.models import Case, PossibleMatch
from tests.api.conftest import PANEL, SCHOOL, Hub
from tests.api.outsiders import add_outsider_agency, add_outsider_user
from tests.security.roles import app_of, callers, panel_records

Route_ = tuple[str, str]  # (method, path template)

# Routes that are not part of the API, and why they are not in the matrix.
NOT_API: dict[str, str] = {
    "/sign-in": "web UI (its own tests)",
    "/sign-out": "web UI (its own tests)",
    "/panel": "web UI (its own tests)",
    "/dpo": "web UI (its own tests)",
    "/static": "web UI assets",
    "/vendor": "web UI assets",
    "/docs": "public API documentation",
    "/openapi.json": "public API documentation",
    "/healthz": "public liveness probe, says nothing but ok",
}
NOT_API_EXACT = {"/": "web UI start page (its own tests)"}

OWN = ("anonymous", "agency", "coordinator", "dpo", "admin")
OTHER = ("other-agency", "other-coordinator", "other-dpo")


@dataclass(frozen=True)
class Call:
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    form: Callable[[Hub], dict[str, str]] | None = None
    ids: dict[str, str] = field(default_factory=dict)  # records named differently per route


def _token_form(hub: Hub) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": hub.assertion(SCHOOL),
    }


CALLS: dict[Route_, Call] = {
    ("post", "/v1/token"): Call(form=_token_form),
    ("post", "/v1/login"): Call(json={"username": "coordinator", "password": "<coordinator>"}),
    ("post", "/v1/referrals"): Call(
        json={
            "panel": PANEL,
            "subject": {
                "given_name": "Sam",
                "family_name": "Sample",
                "date_of_birth": "2010-01-02",
            },
            "channel": "agency",
            "indicators": ["withdrawal_from_peers"],
        }
    ),
    ("get", "/v1/cases/{case_id}"): Call(),
    ("post", "/v1/cases/{case_id}/transitions"): Call(json={"to": "screening", "reason": "x"}),
    ("post", "/v1/cases/{case_id}/consents"): Call(
        json={
            "given_by": "parent",
            "recipients": [SCHOOL],
            "purposes": ["risk_assessment"],
            "categories": ["education"],
        }
    ),
    ("get", "/v1/cases/{case_id}/consents"): Call(),
    ("post", "/v1/consents/{consent_id}/withdraw"): Call(json={"reason": "x"}),
    ("get", "/v1/consents/{consent_id}/receipt"): Call(),
    ("post", "/v1/cases/{case_id}/grants"): Call(
        json={
            "agency": SCHOOL,
            "purposes": ["risk_assessment"],
            "categories": ["education"],
            "expires_at": "2099-01-01T00:00:00Z",
        }
    ),
    ("post", "/v1/grants/{grant_id}/revoke"): Call(json={"reason": "x"}),
    ("post", "/v1/cases/{case_id}/disclosures"): Call(
        json={"purpose": "risk_assessment", "categories": ["education"]}
    ),
    ("get", "/v1/audit/verify"): Call(),
    ("get", "/v1/audit/checkpoint"): Call(),
    ("get", "/v1/audit/proofs/inclusion"): Call(params={"index": 0, "tree_size": 1}),
    ("get", "/v1/audit/proofs/consistency"): Call(params={"first": 1, "second": 1}),
    ("get", "/v1/audit/key"): Call(),
    ("get", "/.well-known/jwks.json"): Call(),
    ("get", "/v1/notifications"): Call(),
    ("post", "/v1/notifications/{notification_id}/retry"): Call(),
    ("post", "/v1/cases/{case_id}/access-requests"): Call(
        json={"purpose": "risk_assessment", "categories": ["education"], "justification": "x"}
    ),
    ("get", "/v1/cases/{case_id}/access-requests"): Call(),
    ("post", "/v1/access-requests/{request_id}/decision"): Call(
        json={"decision": "refuse", "reason": "x"}
    ),
    ("get", "/v1/break-glass"): Call(),
    ("post", "/v1/break-glass/{window_id}/review"): Call(json={"justified": True, "note": "x"}),
    ("post", "/v1/panels/{panel_id}/services"): Call(
        json={"name": "Youth club", "kind": "youth_work", "contact": "desk"}
    ),
    ("get", "/v1/panels/{panel_id}/services"): Call(),
    ("post", "/v1/cases/{case_id}/screening"): Call(
        json={"checklist": {}, "outcome": "assessment"}
    ),
    ("post", "/v1/cases/{case_id}/assessments"): Call(
        json={
            "dimensions": {},
            "agencies_present": [SCHOOL],
            "threshold_met": True,
            "decision": "intervention",
        }
    ),
    ("post", "/v1/cases/{case_id}/interventions"): Call(
        json={
            "lead_agency": SCHOOL,
            "provider": "x",
            "review_dates": ["2099-01-01"],
            "consent_id": "x",
        }
    ),
    ("get", "/v1/pseudonyms/{pseudonym}/current"): Call(),
    ("post", "/v1/cases/{case_id}/reidentify"): Call(
        json={"reason_code": "safeguarding_action", "reason": "x"}
    ),
    ("post", "/v1/reidentifications/{request_id}/approve"): Call(
        ids={"request_id": "reidentification_id"}
    ),
    ("get", "/v1/cases/{case_id}/possible-matches"): Call(),
    ("post", "/v1/possible-matches/{match_id}"): Call(json={"decision": "rejected"}),
    ("get", "/v1/oversight/disclosures"): Call(),
    ("get", "/v1/oversight/subjects/{subject_ref}/disclosures"): Call(),
}

A, F, H, U = "allowed", "forbidden", "hidden", "unauthenticated"


def _row(own: str, *, other: str | None = None) -> dict[str, str]:
    """One route's cells from a compact spelling: five letters for anonymous, agency,
    coordinator, DPO, admin of the panel; three for another panel's agency, coordinator, DPO
    (default: all hidden)."""
    letters = {"A": A, "F": F, "H": H, "U": U}
    cells = dict(zip(OWN, (letters[c] for c in own), strict=True))
    cells |= dict(zip(OTHER, (letters[c] for c in (other or "HHH")), strict=True))
    return cells


EXPECTED: dict[Route_, dict[str, str]] = {
    # _row("<anonymous agency coordinator dpo admin>", other="<agency coordinator dpo>")
    # Audit proofs and checkpoints carry hashes only and serve every authenticated caller;
    # lists (notifications, break-glass, oversight) answer another panel with its own, empty.
    ("get", "/.well-known/jwks.json"): _row("AAAAA", other="AAA"),
    ("get", "/v1/audit/checkpoint"): _row("UAAAA", other="AAA"),
    ("get", "/v1/audit/key"): _row("AAAAA", other="AAA"),
    ("get", "/v1/audit/proofs/consistency"): _row("UAAAA", other="AAA"),
    ("get", "/v1/audit/proofs/inclusion"): _row("UAAAA", other="AAA"),
    ("get", "/v1/audit/verify"): _row("UFFAF", other="FFA"),
    ("get", "/v1/break-glass"): _row("UFFAF", other="FFA"),
    ("get", "/v1/cases/{case_id}"): _row("UAAAH"),
    ("get", "/v1/cases/{case_id}/access-requests"): _row("UAAAH"),
    ("get", "/v1/cases/{case_id}/consents"): _row("UAAFH"),
    ("get", "/v1/cases/{case_id}/possible-matches"): _row("UFAFH"),
    ("get", "/v1/consents/{consent_id}/receipt"): _row("UFAFH"),
    ("get", "/v1/notifications"): _row("UFAFF", other="FAF"),
    ("get", "/v1/oversight/disclosures"): _row("UFFAF", other="FFA"),
    ("get", "/v1/oversight/subjects/{subject_ref}/disclosures"): _row("UHHAH"),
    ("get", "/v1/panels/{panel_id}/services"): _row("UAAAA"),
    ("get", "/v1/pseudonyms/{pseudonym}/current"): _row("UAHHH"),
    ("post", "/v1/access-requests/{request_id}/decision"): _row("UFAFH"),
    ("post", "/v1/break-glass/{window_id}/review"): _row("UFFAH"),
    ("post", "/v1/cases/{case_id}/access-requests"): _row("UAFFH"),
    ("post", "/v1/cases/{case_id}/assessments"): _row("UFAFH"),
    ("post", "/v1/cases/{case_id}/consents"): _row("UAAFH"),
    ("post", "/v1/cases/{case_id}/disclosures"): _row("UAFFH"),
    ("post", "/v1/cases/{case_id}/grants"): _row("UFAFH"),
    ("post", "/v1/cases/{case_id}/interventions"): _row("UFAFH"),
    ("post", "/v1/cases/{case_id}/reidentify"): _row("UFAAH"),
    ("post", "/v1/cases/{case_id}/screening"): _row("UFAFH"),
    ("post", "/v1/cases/{case_id}/transitions"): _row("UFAFH"),
    ("post", "/v1/consents/{consent_id}/withdraw"): _row("UFAFH"),
    ("post", "/v1/grants/{grant_id}/revoke"): _row("UFAFH"),
    ("post", "/v1/login"): _row("AAAAA", other="AAA"),
    ("post", "/v1/notifications/{notification_id}/retry"): _row("UFAFH"),
    ("post", "/v1/panels/{panel_id}/services"): _row("UFAFA"),
    ("post", "/v1/possible-matches/{match_id}"): _row("UFAFH"),
    ("post", "/v1/referrals"): _row("UAAFH"),
    ("post", "/v1/reidentifications/{request_id}/approve"): _row("UFAAH"),
    ("post", "/v1/token"): _row("AAAAA", other="AAA"),
}


def iter_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every endpoint, walking into included routers and mounts."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context_prefix = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            yield from iter_routes(included.routes, prefix + context_prefix)
        elif isinstance(route, Mount):
            yield "mount", prefix + route.path
        elif isinstance(route, APIRoute | Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield method.lower(), prefix + route.path


def api_routes(app: FastAPI) -> tuple[list[Route_], list[Route_]]:
    """(routes in scope, routes neither in scope nor named in NOT_API)."""
    scope, unknown = [], []
    for method, path in iter_routes(app.router.routes):
        if path.startswith(("/v1/", "/.well-known/")):
            scope.append((method, path))
        elif path in NOT_API_EXACT or path.startswith(tuple(NOT_API)):
            continue
        else:
            unknown.append((method, path))
    return sorted(scope), sorted(unknown)


def test_every_api_route_has_a_matrix_row(hub: Hub) -> None:
    scope, unknown = api_routes(app_of(hub))
    assert unknown == [], "a route outside /v1 that is neither API nor named in NOT_API"
    assert len(scope) > 30
    missing = [route for route in scope if route not in EXPECTED or route not in CALLS]
    assert missing == [], "add these routes to CALLS and EXPECTED"
    assert sorted(EXPECTED) == sorted(CALLS) == scope, "rows for routes that no longer exist"


def matrix_records(hub: Hub) -> dict[str, str]:
    """Real records of the demo panel for every path parameter of every route."""
    records = dict(panel_records(hub))
    dpo = hub.user_headers("dpo")
    if "pseudonym" not in records:
        school = hub.agency_headers(SCHOOL)
        case = hub.client.get(f"/v1/cases/{records['case_id']}", headers=school).json()
        records["pseudonym"] = case["subject"]
    if "reidentification_id" not in records:
        pending = hub.client.post(
            f"/v1/cases/{records['case_id']}/reidentify",
            headers=dpo,
            json={"reason_code": "safeguarding_action", "reason": "Court asked who this is."},
        )
        assert pending.status_code == 202, pending.text
        records["reidentification_id"] = pending.json()["request_id"]
    if "match_id" not in records:
        with hub.session() as session:
            row = session.exec(select(Case).where(Case.id == records["case_id"])).one()
            match = PossibleMatch(
                case_id=row.id, candidate_subject_id=row.subject_id, differing_field="given_name"
            )
            session.add(match)
            session.commit()
            records["match_id"] = match.id
    decisions = hub.client.get("/v1/oversight/disclosures", headers=dpo).json()["data"]
    records["subject_ref"] = decisions[0]["subject_ref"]
    return records


def classify(response: Any) -> str:
    status = response.status_code
    assert status < 500, response.text
    if status == 401:
        return U
    if status == 404:
        assert response.json()["error"]["code"] == "not_found"
        return H
    if status == 403 and response.json()["error"]["code"] == "forbidden":
        return F
    return A


def observe(hub: Hub) -> dict[Route_, dict[str, str]]:
    records = matrix_records(hub)
    who = callers(hub)
    who |= {
        "other-agency": add_outsider_agency(hub),
        "other-coordinator": add_outsider_user(hub, "coordinator"),
        "other-dpo": add_outsider_user(hub, "dpo"),
    }
    password = hub.users["coordinator"]["password"]
    observed: dict[Route_, dict[str, str]] = {}
    # Those most likely to change a record go last, so the others meet it as it was made.
    order = ("anonymous", *OTHER, "dpo", "admin", "agency", "coordinator")
    for method, template in sorted(CALLS):
        call = CALLS[(method, template)]
        ids = records | {name: records[source] for name, source in call.ids.items()}
        path = template.format_map(ids)
        row = {}
        for caller in order:
            body = call.json
            if isinstance(body, dict) and body.get("password") == "<coordinator>":
                body = {**body, "password": password}
            response = hub.client.request(
                method.upper(),
                path,
                headers=who[caller],
                json=body,
                params=call.params or None,
                data=call.form(hub) if call.form else None,
            )
            row[caller] = classify(response)
        observed[(method, template)] = row
    return observed


def test_every_route_answers_every_role_as_the_matrix_says(hub: Hub) -> None:
    observed = observe(hub)
    expected = {route: EXPECTED.get(route, {}) for route in observed}
    differences = {
        f"{method.upper()} {path} as {caller}": f"expected {expected[(method, path)].get(caller)}"
        f", got {got}"
        for (method, path), cells in observed.items()
        for caller, got in cells.items()
        if expected[(method, path)].get(caller) != got
    }
    assert differences == {}, "\n".join(f"{k}: {v}" for k, v in sorted(differences.items()))
