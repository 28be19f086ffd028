"""Every break-glass window is a DPO review item that stays open until a DPO of the panel
marks it justified or not; both the opening and the review are audited."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from hub.storage.models import AuditEntry
from tests.api.conftest import POLICE, Hub
from tests.api.flows import disclose, refer_alex
from tests.api.outsiders import add_outsider_user


def open_window(hub: Hub, case_id: str) -> None:
    response = disclose(
        hub,
        case_id,
        agency=POLICE,
        purpose="safeguarding_emergency",
        categories=["identity", "contact"],
        break_glass=True,
        justification="Credible threat of imminent self-harm reported to the control room.",
    )
    assert response.status_code == 200, response.text


def queue(hub: Hub, headers: dict[str, str], status: str | None = "open") -> Any:
    params = {"status": status} if status else {}
    return hub.client.get("/v1/break-glass", headers=headers, params=params)


def review(hub: Hub, window_id: str, headers: dict[str, str], **body: Any) -> Any:
    payload = {"justified": True, "note": "Control room log confirms the threat.", **body}
    return hub.client.post(f"/v1/break-glass/{window_id}/review", headers=headers, json=payload)


def test_review_flow(hub: Hub) -> None:
    dpo = hub.user_headers("dpo")
    case_id = refer_alex(hub)["id"]
    assert queue(hub, dpo).json() == {"data": [], "count": 0}
    open_window(hub, case_id)
    open_window(hub, case_id)  # the same window, not a second one

    [item] = queue(hub, dpo).json()["data"]
    assert item["case_id"] == case_id and item["agency"] == POLICE
    assert item["status"] == "open" and item["justified"] is None
    assert item["expires_at"] > item["opened_at"]

    done = review(hub, item["id"], dpo, justified=False, note="No threat was on record.")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "reviewed"
    assert done.json()["justified"] is False
    assert done.json()["reviewed_by"] == "user:dpo"
    assert queue(hub, dpo).json()["count"] == 0
    [reviewed] = queue(hub, dpo, "reviewed").json()["data"]
    assert reviewed["note"] == "No threat was on record."
    assert queue(hub, dpo, None).json()["count"] == 1

    again = review(hub, item["id"], dpo)
    assert again.status_code == 409
    with hub.session() as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
    reviewed_entries = [r for r in rows if r.kind == "break_glass_reviewed"]
    assert len(reviewed_entries) == 1
    assert "No threat" not in reviewed_entries[0].body
    assert '"justified":false' in reviewed_entries[0].body.replace(" ", "")


def test_only_the_panels_dpo_reviews(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    open_window(hub, case_id)
    [item] = queue(hub, hub.user_headers("dpo")).json()["data"]

    coordinator = hub.user_headers("coordinator")
    assert queue(hub, coordinator).status_code == 403
    assert review(hub, item["id"], coordinator).status_code == 403
    assert queue(hub, hub.agency_headers(POLICE)).status_code == 403
    assert review(hub, item["id"], hub.agency_headers(POLICE)).status_code == 403

    other_dpo = add_outsider_user(hub, "dpo")
    assert queue(hub, other_dpo).json()["count"] == 0
    hidden = review(hub, item["id"], other_dpo)
    assert hidden.status_code == 404
    assert review(hub, "no-such-window", hub.user_headers("dpo")).status_code == 404
    # Nothing above closed the item.
    assert queue(hub, hub.user_headers("dpo")).json()["count"] == 1


def test_bad_review_and_status_are_refused(hub: Hub) -> None:
    case_id = refer_alex(hub)["id"]
    open_window(hub, case_id)
    dpo = hub.user_headers("dpo")
    [item] = queue(hub, dpo).json()["data"]
    assert review(hub, item["id"], dpo, note="").status_code == 422
    assert review(hub, item["id"], dpo, justified="maybe").status_code == 422
    assert queue(hub, dpo, "pending").status_code == 422
