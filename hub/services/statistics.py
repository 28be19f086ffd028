"""Statistics for a panel's data protection officer: disclosures and denials per ISO week by
agency and by purpose, break-glass use and the most frequent denial reasons.

Everything is counted from the decision records (one per policy decision, allow or deny), which
carry references and codes only, so no figure here can reveal a person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel
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


def panel_decisions(
    *,
    session: Session,
    panel_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Sequence[DecisionRecord]:
    """The panel's decision records in [since, until), oldest first."""
    query = (
        select(DecisionRecord)
        .join(Case, col(Case.id) == col(DecisionRecord.case_id))
        .where(Case.panel_id == panel_id)
    )
    if since is not None:
        query = query.where(col(DecisionRecord.at) >= since)
    if until is not None:
        query = query.where(col(DecisionRecord.at) < until)
    return session.exec(
        query.order_by(col(DecisionRecord.at), col(DecisionRecord.decision_id))
    ).all()


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


def request_purpose(row: DecisionRecord) -> str:
    return str(row.input.get("request", {}).get("purpose", ""))


def reason_codes(row: DecisionRecord) -> list[str]:
    return sorted({str(r.get("code")) for r in row.output.get("reasons", [])})


def is_break_glass(row: DecisionRecord) -> bool:
    return bool(row.input.get("request", {}).get("break_glass", False))


def _series(rows: Sequence[DecisionRecord], weeks: list[str], key: str) -> list[Series]:
    position = {week: i for i, week in enumerate(weeks)}
    table: dict[str, Series] = {}
    for row in rows:
        name = row.agency_id if key == "agency" else request_purpose(row)
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
            denial_reasons.update(reason_codes(row))
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
        break_glass_requests=sum(1 for row in rows if is_break_glass(row)),
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
