"""Pages for the panel's data protection officer (DPO) under /dpo: dashboard, disclosure search
and detail, a person's history (subject access), anomalies, break-glass review and policy.

Handlers parse the query or form, call one service and render; every POST carries the CSRF
token. Filters arrive from plain GET forms, where an empty field means "any".
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, cast, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hub.api.deps import KeyRingDep, NowDep, PolicyDep, SessionDep, SettingsDep
from hub.errors import BadRequest
from hub.schemas import BreakGlassReview, OversightDecisionPublic
from hub.services import anomalies, breakglass, log_integrity, oversight, replay_reports, statistics
from hub.vocabulary import PURPOSES
from hub.web.auth import CsrfChecked, DpoPerson
from hub.web.templating import render

router = APIRouter(prefix="/dpo", include_in_schema=False)

PAGE_SIZE = 20
ANOMALY_KINDS: tuple[str, ...] = get_args(anomalies.Kind)
CSV_COLUMNS = (
    "at",
    "decision_id",
    "decision",
    "agency",
    "case_id",
    "purpose",
    "categories_requested",
    "categories_permitted",
    "legal_basis",
    "reasons",
    "break_glass",
    "policy_revision",
)


def _text(value: str | None, *, limit: int = 64) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > limit:
        raise BadRequest(f"a filter may be at most {limit} characters")
    return value


def _day(value: str | None, name: str) -> date | None:
    value = _text(value, limit=10)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{name} must be a date like 2026-11-28") from exc


def _start_of(day: date | None) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


def _decision(value: str | None) -> Literal["allow", "deny"] | None:
    if value == "allow":
        return "allow"
    return "deny" if value == "deny" else None


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    value = _text(value)
    if value is not None and value not in allowed:
        raise BadRequest(f"{name} must be one of: {', '.join(allowed)}")
    return value


# --- dashboard and log integrity ----------------------------------------------------------


def _chart_data(stats: statistics.StatisticsPublic) -> dict[str, Any]:
    def sets(series: list[statistics.Series]) -> list[dict[str, Any]]:
        return [{"name": s.name, "allowed": s.allowed, "denied": s.denied} for s in series]

    return {
        "weeks": stats.weeks,
        "by_agency": sets(stats.by_agency),
        "by_purpose": sets(stats.by_purpose),
        "reasons": [{"code": r.code, "count": r.count} for r in stats.top_denial_reasons],
    }


def _dashboard(
    request: Request,
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    now: datetime,
    since: str | None,
    until: str | None,
    verified: log_integrity.VerifyOutcome | None = None,
) -> Response:
    since_day, until_day = _day(since, "from"), _day(until, "to")
    stats = statistics.panel_statistics(
        session=session,
        principal=person.principal,
        now=now,
        since=_start_of(since_day),
        until=_start_of(until_day + timedelta(days=1)) if until_day else None,
    )
    # Anomalies are not counted here: they scan the panel's whole history (their own page).
    waiting = breakglass.list_windows(
        session=session, keyring=keyring, principal=person.principal, status="open"
    )
    return render(
        request,
        "dpo/dashboard.html",
        {
            "stats": stats,
            "chart_data": _chart_data(stats),
            "log": log_integrity.status(session=session),
            "verified": verified,
            "open_break_glass": waiting.count,
            "since": since_day.isoformat() if since_day else "",
            "until": until_day.isoformat() if until_day else "",
        },
    )


@router.get("/")
def dashboard(
    request: Request,
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    return _dashboard(request, person, session, keyring, now, since, until)


@router.post("/verify")
def verify_log(
    request: Request,
    person: DpoPerson,
    _form: CsrfChecked,
    session: SessionDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    outcome = log_integrity.verify_now(
        session=session, keyring=keyring, settings=settings, principal=person.principal
    )
    return _dashboard(request, person, session, keyring, now, None, None, verified=outcome)


# --- disclosure search and detail ------------------------------------------------------------


@router.get("/disclosures")
def search(
    request: Request,
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    agency: str | None = None,
    purpose: str | None = None,
    case_id: str | None = None,
    decision: str | None = None,
    since: str | None = None,
    until: str | None = None,
    page: int = 1,
) -> Response:
    if page < 1:
        raise BadRequest("page must be 1 or more")
    filters = {
        "agency": _text(agency),
        "purpose": _choice(purpose, PURPOSES, "purpose"),
        "case_id": _text(case_id, limit=36),
        "decision": _choice(decision, ("allow", "deny"), "decision"),
    }
    since_day, until_day = _day(since, "from"), _day(until, "to")
    found = oversight.list_decisions(
        session=session,
        keyring=keyring,
        principal=person.principal,
        agency=filters["agency"],
        purpose=filters["purpose"],
        case_id=filters["case_id"],
        decision=_decision(filters["decision"]),
        since=_start_of(since_day),
        until=_start_of(until_day + timedelta(days=1)) if until_day else None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    query = {k: v for k, v in filters.items() if v is not None}
    if since_day:
        query["since"] = since_day.isoformat()
    if until_day:
        query["until"] = until_day.isoformat()
    pages = max(1, -(-found.count // PAGE_SIZE))
    return render(
        request,
        "dpo/disclosures.html",
        {
            "found": found,
            "filters": {k: v or "" for k, v in filters.items()},
            "since": query.get("since", ""),
            "until": query.get("until", ""),
            "agencies": statistics.panel_agencies(session=session, principal=person.principal),
            "purposes": PURPOSES,
            "page": page,
            "pages": pages,
            "prev_url": f"?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
            "next_url": f"?{urlencode({**query, 'page': page + 1})}" if page < pages else None,
        },
    )


def _detail(
    request: Request,
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    now: datetime,
    decision_id: str,
    inclusion: log_integrity.InclusionOutcome | None = None,
) -> Response:
    detail = log_integrity.decision_detail(
        session=session,
        keyring=keyring,
        settings=settings,
        principal=person.principal,
        decision_id=decision_id,
        now=now,
    )
    return render(
        request,
        "dpo/disclosure.html",
        {"detail": detail, "d": detail.summary, "inclusion": inclusion},
    )


@router.get("/disclosures/{decision_id}")
def disclosure(
    request: Request,
    decision_id: str,
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    return _detail(request, person, session, keyring, settings, now, decision_id)


@router.post("/disclosures/{decision_id}/inclusion")
def check_inclusion(
    request: Request,
    decision_id: str,
    person: DpoPerson,
    _form: CsrfChecked,
    session: SessionDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    outcome = log_integrity.decision_inclusion(
        session=session,
        keyring=keyring,
        settings=settings,
        principal=person.principal,
        decision_id=decision_id,
        now=now,
    )
    return _detail(request, person, session, keyring, settings, now, decision_id, outcome)


# --- a person's history ---------------------------------------------------------------------


def _history(
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    case_id: str | None,
    subject_ref: str | None,
) -> tuple[str | None, list[OversightDecisionPublic]]:
    case_id, subject_ref = _text(case_id, limit=36), _text(subject_ref, limit=200)
    if case_id is not None:
        subject_ref = oversight.subject_ref_of_case(
            session=session, keyring=keyring, principal=person.principal, case_id=case_id
        )
    if subject_ref is None:
        return None, []
    found = oversight.subject_history(
        session=session, keyring=keyring, principal=person.principal, subject_ref=subject_ref
    )
    return subject_ref, found.data


@router.get("/history")
def history(
    request: Request,
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    case_id: str | None = None,
    subject_ref: str | None = None,
) -> Response:
    ref, items = _history(person, session, keyring, case_id, subject_ref)
    return render(
        request,
        "dpo/history.html",
        {
            "subject_ref": ref,
            "items": items,
            "case_id": case_id or "",
            "typed_ref": subject_ref or "",
            "export_query": urlencode({"subject_ref": ref}) if ref else "",
        },
    )


@router.get("/history/print")
def history_print(
    request: Request,
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
    subject_ref: str | None = None,
) -> Response:
    ref, items = _history(person, session, keyring, None, subject_ref)
    if ref is None:
        raise BadRequest("name the person by their audit pseudonym")
    return render(
        request,
        "dpo/history_print.html",
        {"subject_ref": ref, "items": items, "made_at": now, "panel": person.panel_id},
    )


def history_csv(items: list[OversightDecisionPublic]) -> str:
    """One row per decision; lists are joined with spaces so each cell stays one value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        row = item.model_dump(mode="json")
        writer.writerow(
            [
                " ".join(row[c]) if isinstance(row[c], list) else ("" if row[c] is None else row[c])
                for c in CSV_COLUMNS
            ]
        )
    return out.getvalue()


@router.get("/history.csv")
def history_export(
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    subject_ref: str | None = None,
) -> Response:
    ref, items = _history(person, session, keyring, None, subject_ref)
    if ref is None:
        raise BadRequest("name the person by their audit pseudonym")
    return Response(
        history_csv(items),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="disclosure-history.csv"'},
    )


# --- anomalies, break-glass, policy ---------------------------------------------------------


@router.get("/anomalies")
def anomaly_list(
    request: Request, person: DpoPerson, session: SessionDep, kind: str | None = None
) -> Response:
    chosen = _choice(kind, ANOMALY_KINDS, "kind")
    found = anomalies.find_anomalies(
        session=session,
        principal=person.principal,
        kind=None if chosen is None else cast(anomalies.Kind, chosen),
    )
    return render(
        request,
        "dpo/anomalies.html",
        {"found": found, "kind": chosen or "", "kinds": ANOMALY_KINDS},
    )


def _queue(
    request: Request,
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    *,
    reviewed: str | None = None,
) -> Response:
    windows = breakglass.list_windows(
        session=session, keyring=keyring, principal=person.principal, status=None
    )
    return render(
        request,
        "dpo/break_glass.html",
        {
            "open": [w for w in windows.data if w.status == "open"],
            "done": [w for w in windows.data if w.status == "reviewed"],
            "justifications": anomalies.break_glass_justifications(
                session=session, principal=person.principal
            ),
            "reviewed": reviewed,
        },
    )


@router.get("/break-glass")
def break_glass_queue(
    request: Request,
    person: DpoPerson,
    session: SessionDep,
    keyring: KeyRingDep,
    reviewed: str | None = None,
) -> Response:
    return _queue(request, person, session, keyring, reviewed=_text(reviewed, limit=36))


@router.post("/break-glass/{window_id}/review")
def review_break_glass(
    window_id: str,
    person: DpoPerson,
    _form: CsrfChecked,
    session: SessionDep,
    keyring: KeyRingDep,
    now: NowDep,
    justified: Annotated[str, Form()],
    note: Annotated[str, Form(min_length=1, max_length=1000)],
) -> Response:
    if justified not in ("yes", "no"):
        raise BadRequest("say whether the break-glass use was justified")
    if not note.strip():
        raise BadRequest("write a note on the review")
    breakglass.review_window(
        session=session,
        keyring=keyring,
        principal=person.principal,
        window_id=window_id,
        review=BreakGlassReview(justified=justified == "yes", note=note.strip()),
        now=now,
    )
    # Post/redirect/get: reloading the queue does not post the review again.
    return RedirectResponse(
        f"/dpo/break-glass?{urlencode({'reviewed': window_id})}", status_code=303
    )


@router.get("/policy")
def policy_page(
    request: Request, person: DpoPerson, settings: SettingsDep, policy: PolicyDep
) -> Response:
    return render(
        request,
        "dpo/policy.html",
        {
            "revision": policy.revision,
            "report": replay_reports.load_latest(settings=settings),
            "panel": person.panel_id,
        },
    )
