"""Statistics for a panel's data protection officer: disclosures and denials per ISO week by
agency and by purpose, break-glass use and the most frequent denial reasons.

Everything is counted from the decision records (one per policy decision, allow or deny), which
carry references and codes only, so no figure here can reveal a person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from hub.errors import BadRequest, Forbidden
from hub.services.principals import DPO, Principal
from hub.storage.models import BreakGlass, Case, DecisionRecord, PanelMembership

# How many ISO weeks the dashboard shows when no range is given.
DEFAULT_WEEKS = 12
# The longest range one request may ask for, so a page never counts years week by week.
MAX_WEEKS = 260
TOP_REASONS = 10


class Series(BaseModel):
    """One agency's (or purpose's) allowed and denied requests, one number per week."""

    name: str
    allowed: list[int]
    denied: list[int]


class ReasonCount(BaseModel):
    code: str
    count: int


class StatisticsPublic(BaseModel):
    weeks: list[str]  # ISO weeks, oldest first, e.g. "2026-W48"
    since: datetime
    until: datetime
    allowed: int
    denied: int
    break_glass_requests: int
    break_glass_windows: int
    by_agency: list[Series]
    by_purpose: list[Series]
    top_denial_reasons: list[ReasonCount]


def dpo_panel(principal: Principal) -> str:
    """The panel whose oversight this DPO does. Raises Forbidden for anyone else."""
    if principal.kind != "user" or not principal.has_role(DPO) or principal.panel_id is None:
        raise Forbidden("only a data protection officer of a panel may see oversight figures")
    return principal.panel_id


@dataclass(frozen=True)
class DecisionRow:
    """What oversight counts of one decision record, read without loading its whole input and
    output documents (a dashboard reads tens of thousands of them)."""

    decision_id: str
    at: datetime
    case_id: str
    agency_id: str
    allow: bool
    purpose: str
    break_glass: bool
    reasons: tuple[str, ...]  # the distinct reason codes, sorted
    # Only with `with_grants`: the grants in the policy input and its `now`.
    grants: tuple[dict[str, Any], ...] = ()
    now: str | None = None


def _codes(reasons: Any) -> tuple[str, ...]:
    if not isinstance(reasons, list):
        return ()
    return tuple(sorted({str(r.get("code")) for r in reasons if isinstance(r, dict)}))


def panel_decisions(
    *,
    session: Session,
    panel_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    with_grants: bool = False,
) -> list[DecisionRow]:
    """The panel's decisions in [since, until), oldest first."""
    record = DecisionRecord.__table__.c  # type: ignore[attr-defined]
    columns = [
        record.decision_id,
        record.at,
        record.case_id,
        record.agency_id,
        record.allow,
        record.input[("request", "purpose")].as_string(),
        record.input[("request", "break_glass")].as_boolean(),
        record.output["reasons"],
    ]
    if with_grants:
        columns += [record.input["grants"], record.input["now"].as_string()]
    query = (
        sa_select(*columns)
        .join(Case.__table__, Case.__table__.c.id == record.case_id)  # type: ignore[attr-defined]
        .where(Case.__table__.c.panel_id == panel_id)  # type: ignore[attr-defined]
    )
    if since is not None:
        query = query.where(record.at >= since)
    if until is not None:
        query = query.where(record.at < until)
    rows = session.connection().execute(query.order_by(record.at, record.decision_id)).all()
    return [
        DecisionRow(
            decision_id=row[0],
            at=row[1],
            case_id=row[2],
            agency_id=row[3],
            allow=bool(row[4]),
            purpose=row[5] or "",
            break_glass=bool(row[6]),
            reasons=_codes(row[7]),
            grants=tuple(g for g in (row[8] or []) if isinstance(g, dict)) if with_grants else (),
            now=row[9] if with_grants else None,
        )
        for row in rows
    ]


def iso_week(at: datetime | date) -> str:
    day = at.astimezone(UTC).date() if isinstance(at, datetime) else at
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_start(at: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week holding `at`."""
    day = at.astimezone(UTC).date()
    monday = day - timedelta(days=day.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def weeks_between(since: datetime, until: datetime) -> list[str]:
    """Every ISO week that overlaps [since, until), oldest first."""
    weeks, start = [], week_start(since)
    while start < until:
        weeks.append(iso_week(start))
        start += timedelta(days=7)
    return weeks


def default_range(now: datetime) -> tuple[datetime, datetime]:
    """The last `DEFAULT_WEEKS` ISO weeks, the current one included."""
    until = week_start(now) + timedelta(days=7)
    return until - timedelta(days=7 * DEFAULT_WEEKS), until


def _series(rows: Sequence[DecisionRow], weeks: list[str], key: str) -> list[Series]:
    position = {week: i for i, week in enumerate(weeks)}
    table: dict[str, Series] = {}
    for row in rows:
        name = row.agency_id if key == "agency" else row.purpose
        series = table.setdefault(
            name, Series(name=name, allowed=[0] * len(weeks), denied=[0] * len(weeks))
        )
        counts = series.allowed if row.allow else series.denied
        counts[position[iso_week(row.at)]] += 1
    return [table[name] for name in sorted(table)]


def panel_statistics(
    *,
    session: Session,
    principal: Principal,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StatisticsPublic:
    """The DPO's panel's figures for [since, until), by default the last `DEFAULT_WEEKS` weeks.

    Raises Forbidden (not a DPO of a panel) or BadRequest (an empty or too long range).
    """
    panel_id = dpo_panel(principal)
    default_since, default_until = default_range(now)
    since = default_since if since is None else since
    until = default_until if until is None else until
    if since.tzinfo is None or until.tzinfo is None:
        raise BadRequest("since and until must carry a time zone")
    if until <= since:
        raise BadRequest("until must be after since")
    weeks = weeks_between(since, until)
    if len(weeks) > MAX_WEEKS:
        raise BadRequest(f"a range may cover at most {MAX_WEEKS} weeks")
    rows = panel_decisions(session=session, panel_id=panel_id, since=since, until=until)
    denial_reasons: Counter[str] = Counter()
    for row in rows:
        if not row.allow:
            denial_reasons.update(row.reasons)
    windows = session.exec(
        select(BreakGlass)
        .join(Case, col(Case.id) == col(BreakGlass.case_id))
        .where(
            Case.panel_id == panel_id,
            col(BreakGlass.opened_at) >= since,
            col(BreakGlass.opened_at) < until,
        )
    ).all()
    allowed = sum(1 for row in rows if row.allow)
    return StatisticsPublic(
        weeks=weeks,
        since=since,
        until=until,
        allowed=allowed,
        denied=len(rows) - allowed,
        break_glass_requests=sum(1 for row in rows if row.break_glass),
        break_glass_windows=len(windows),
        by_agency=_series(rows, weeks, "agency"),
        by_purpose=_series(rows, weeks, "purpose"),
        top_denial_reasons=[
            ReasonCount(code=code, count=count)
            for code, count in sorted(denial_reasons.items(), key=lambda kv: (-kv[1], kv[0]))[
                :TOP_REASONS
            ]
        ],
    )


def panel_agencies(*, session: Session, principal: Principal) -> list[str]:
    """The DPO's panel's member agencies, for search filters. Raises Forbidden."""
    panel_id = dpo_panel(principal)
    return sorted(
        session.exec(
            select(PanelMembership.agency_id).where(PanelMembership.panel_id == panel_id)
        ).all()
    )
