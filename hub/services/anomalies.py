"""Anomalies a panel's data protection officer should look at, each with the decisions behind it.

The rules, stated once (the oversight guide repeats them):

- volume: an agency's requests in one ISO week are at least `VOLUME_MIN` and more than
  `VOLUME_FACTOR` times the median of its previous `BASELINE_WEEKS` weeks (weeks without
  requests count as 0, weeks before the agency's first request do not count; an agency's first
  week has no baseline and is never flagged);
- outside a window: a denial of a request whose purpose a grant of that agency covers, but the
  request came before the grant's `not_before` or at or after its `expires_at`; a disclosure
  that rests on a grant (`covered_by_grant`) while no grant in its input was valid at the time;
  and a denial because the agency's break-glass window had expired;
- denial burst: at least `BURST_DENIALS` denials for one agency within `BURST_MINUTES` minutes
  (overlapping bursts are merged);
- break-glass: every break-glass window, reviewed or not, with every break-glass request of
  that agency on that case.

Everything is computed from the decision records, which hold references and codes only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any, Literal

from pydantic import BaseModel
from sqlmodel import Session, col, select

from hub.services.principals import Principal
from hub.services.statistics import DecisionRow, dpo_panel, iso_week, panel_decisions, week_start
from hub.storage.models import BreakGlass, Case, DecisionRecord

VOLUME_FACTOR = 3
VOLUME_MIN = 10
BASELINE_WEEKS = 8
BURST_DENIALS = 5
BURST_MINUTES = 10

Kind = Literal["volume", "outside_window", "denial_burst", "break_glass"]


class AnomalyEntry(BaseModel):
    """One decision behind an anomaly."""

    decision_id: str
    at: datetime
    agency: str
    case_id: str
    decision: Literal["allow", "deny"]
    purpose: str
    reasons: list[str]


class AnomalyPublic(BaseModel):
    kind: Kind
    agency: str
    at: datetime  # when it started
    summary: str  # codes and counts only
    break_glass_id: str | None = None
    reviewed: bool | None = None
    entries: list[AnomalyEntry]


class AnomaliesPublic(BaseModel):
    data: list[AnomalyPublic]
    count: int
    rules: dict[str, int]


def _entry(row: DecisionRow) -> AnomalyEntry:
    return AnomalyEntry(
        decision_id=row.decision_id,
        at=row.at,
        agency=row.agency_id,
        case_id=row.case_id,
        decision="allow" if row.allow else "deny",
        purpose=row.purpose,
        reasons=list(row.reasons),
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def volume_spikes(rows: Sequence[DecisionRow]) -> list[AnomalyPublic]:
    by_agency: dict[str, list[DecisionRow]] = defaultdict(list)
    for row in rows:
        by_agency[row.agency_id].append(row)
    found = []
    for agency, agency_rows in sorted(by_agency.items()):
        per_week: dict[datetime, list[DecisionRow]] = defaultdict(list)
        for row in agency_rows:
            per_week[week_start(row.at)].append(row)
        first, last = min(per_week), max(per_week)
        weeks = [first + timedelta(days=7 * i) for i in range((last - first).days // 7 + 1)]
        counts = [len(per_week.get(week, [])) for week in weeks]
        for i, week in enumerate(weeks):
            baseline = counts[max(0, i - BASELINE_WEEKS) : i]
            if not baseline or counts[i] < VOLUME_MIN:
                continue
            typical = median(baseline)
            if counts[i] > VOLUME_FACTOR * typical:
                found.append(
                    AnomalyPublic(
                        kind="volume",
                        agency=agency,
                        at=week,
                        summary=(
                            f"{counts[i]} requests in {iso_week(week)}; "
                            f"median of the {len(baseline)} weeks before: {typical:g}"
                        ),
                        entries=[_entry(row) for row in per_week[week]],
                    )
                )
    return found


def _grant_windows(row: DecisionRow) -> tuple[int, int]:
    """How many of the agency's grants for the request's purpose were valid at the time, and
    how many were not (not yet valid, or expired)."""
    now = _parse_time(row.now)
    valid = invalid = 0
    for grant in row.grants:
        if grant.get("agency") != row.agency_id or row.purpose not in grant.get("purposes", []):
            continue
        not_before, expires_at = (
            _parse_time(grant.get("not_before")),
            _parse_time(grant.get("expires_at")),
        )
        if now is None or not_before is None or expires_at is None:
            invalid += 1
        elif not_before <= now < expires_at:
            valid += 1
        else:
            invalid += 1
    return valid, invalid


def outside_windows(rows: Sequence[DecisionRow]) -> list[AnomalyPublic]:
    found = []
    for row in rows:
        codes = row.reasons
        valid, invalid = _grant_windows(row)
        summary = None
        if not row.allow and "break_glass_expired" in codes:
            summary = "request after the agency's break-glass window expired"
        elif not row.allow and invalid and not valid:
            summary = "request under a grant that was expired or not yet valid"
        elif row.allow and "covered_by_grant" in codes and not valid:
            summary = "disclosure resting on a grant that was not valid at the time"
        if summary is not None:
            found.append(
                AnomalyPublic(
                    kind="outside_window",
                    agency=row.agency_id,
                    at=row.at,
                    summary=summary,
                    entries=[_entry(row)],
                )
            )
    return found


def denial_bursts(rows: Sequence[DecisionRow]) -> list[AnomalyPublic]:
    denials: dict[str, list[DecisionRow]] = defaultdict(list)
    for row in rows:
        if not row.allow:
            denials[row.agency_id].append(row)
    span = timedelta(minutes=BURST_MINUTES)
    found = []
    for agency, agency_rows in sorted(denials.items()):
        # Mark every denial that sits in some window of BURST_DENIALS within `span`, then
        # merge consecutive marked denials that overlap into one burst.
        bursts: list[list[DecisionRow]] = []
        start = 0
        for end, row in enumerate(agency_rows):
            while row.at - agency_rows[start].at > span:
                start += 1
            if end - start + 1 < BURST_DENIALS:
                continue
            window = agency_rows[start : end + 1]
            if bursts and bursts[-1][-1].at >= window[0].at:
                known = {r.decision_id for r in bursts[-1]}
                bursts[-1].extend(r for r in window if r.decision_id not in known)
            else:
                bursts.append(list(window))
        for burst in bursts:
            found.append(
                AnomalyPublic(
                    kind="denial_burst",
                    agency=agency,
                    at=burst[0].at,
                    summary=(
                        f"{len(burst)} denials between {burst[0].at:%Y-%m-%d %H:%M} and "
                        f"{burst[-1].at:%H:%M} UTC"
                    ),
                    entries=[_entry(row) for row in burst],
                )
            )
    return found


def break_glass_uses(
    *, session: Session, panel_id: str, rows: Sequence[DecisionRow]
) -> list[AnomalyPublic]:
    windows = session.exec(
        select(BreakGlass)
        .join(Case, col(Case.id) == col(BreakGlass.case_id))
        .where(Case.panel_id == panel_id)
        .order_by(col(BreakGlass.opened_at))
    ).all()
    requests: dict[tuple[str, str], list[DecisionRow]] = defaultdict(list)
    for row in rows:
        if row.break_glass:
            requests[(row.case_id, row.agency_id)].append(row)
    return [
        AnomalyPublic(
            kind="break_glass",
            agency=window.agency_id,
            at=window.opened_at,
            summary=(
                f"break-glass window opened; {len(requests[(window.case_id, window.agency_id)])} "
                "break-glass request(s) on the case"
            ),
            break_glass_id=window.id,
            reviewed=window.reviewed_at is not None,
            entries=[_entry(row) for row in requests[(window.case_id, window.agency_id)]],
        )
        for window in windows
    ]


def find_anomalies(
    *, session: Session, principal: Principal, kind: Kind | None = None
) -> AnomaliesPublic:
    """Every anomaly in the DPO's panel's whole history, newest first.

    Raises Forbidden for anyone but a DPO of a panel.
    """
    panel_id = dpo_panel(principal)
    rows = panel_decisions(session=session, panel_id=panel_id, with_grants=True)
    found = [
        *volume_spikes(rows),
        *outside_windows(rows),
        *denial_bursts(rows),
        *break_glass_uses(session=session, panel_id=panel_id, rows=rows),
    ]
    if kind is not None:
        found = [anomaly for anomaly in found if anomaly.kind == kind]
    found.sort(key=lambda anomaly: anomaly.at, reverse=True)
    return AnomaliesPublic(
        data=found,
        count=len(found),
        rules={
            "volume_factor": VOLUME_FACTOR,
            "volume_min": VOLUME_MIN,
            "baseline_weeks": BASELINE_WEEKS,
            "burst_denials": BURST_DENIALS,
            "burst_minutes": BURST_MINUTES,
        },
    )


def break_glass_justifications(*, session: Session, principal: Principal) -> dict[str, str]:
    """Each break-glass window of the DPO's panel (by id) with the requester's written
    justification from the request that opened it. Raises Forbidden."""
    panel_id = dpo_panel(principal)
    rows = session.exec(
        select(BreakGlass, DecisionRecord)
        .join(Case, col(Case.id) == col(BreakGlass.case_id))
        .join(DecisionRecord, col(DecisionRecord.decision_id) == col(BreakGlass.decision_id))
        .where(Case.panel_id == panel_id)
    ).all()
    return {
        window.id: str(record.input.get("request", {}).get("justification") or "")
        for window, record in rows
    }
