"""Consent receipts: a signed JWT (Kantara consent receipt fields, signed with the hub's
token key, verifiable with `/.well-known/jwks.json`) and a plain-language page for the person."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from jose import jwt
from sqlmodel import Session

from hub.errors import NotFound
from hub.services import audit, subjects
from hub.services.consents import managed_consent
from hub.services.principals import Principal
from hub.storage.models import Agency, Case, Consent, Panel
from keys import KeyRing

RECEIPT_VERSION = "hub-consent-receipt/1"
RECEIPT_TYPE = "consent-receipt+jwt"

PURPOSE_WORDS = {
    "screening": "deciding whether the panel can help",
    "risk_assessment": "understanding the situation and the risks",
    "intervention_planning": "planning and giving support",
    "safeguarding_emergency": "keeping someone safe in an emergency",
    "oversight": "checking that the panel follows the rules",
    "statistics": "counting cases, without names",
}
CATEGORY_WORDS = {
    "identity": "your name and date of birth",
    "contact": "how to contact you",
    "behavioural_indicators": "the worries that were raised",
    "protective_factors": "what is going well for you",
    "education": "school records",
    "social_care": "social care records",
    "police_contact": "contact with the police",
    "health": "health information",
    "intervention_history": "support you have had before",
}


def _claims(
    session: Session, keyring: KeyRing, row: Consent, *, issuer: str, now: datetime
) -> dict[str, Any]:
    case_panel = session.get(Panel, _panel_of(session, row))
    if case_panel is None:
        raise NotFound("consent not found")
    recipients = [session.get(Agency, a) for a in row.recipients]
    return {
        "iss": issuer,
        "iat": int(now.timestamp()),
        "version": RECEIPT_VERSION,
        "consentReceiptID": f"{row.id}:{row.version}",
        "consentTimestamp": int(row.given_at.timestamp()),
        "collectionMethod": row.method,
        "noticeVersion": row.notice_version,
        # The person appears only as a pseudonym of the panel's domain, never by name.
        "piiPrincipalId": subjects.pseudonym_for(
            keyring, domain=subjects.panel_domain(case_panel.id), subject_id=row.subject_id
        ),
        "givenBy": row.given_by,
        "piiControllers": [{"piiController": case_panel.name, "id": case_panel.id}],
        "recipients": [{"id": a.id, "name": a.name} for a in recipients if a is not None],
        "purposes": list(row.purposes),
        "piiCategories": list(row.categories),
        "explicit": row.explicit,
        "validFrom": int(row.valid_from.timestamp()),
        "validUntil": int(row.valid_until.timestamp()) if row.valid_until else None,
        "state": row.state,
    }


def _panel_of(session: Session, row: Consent) -> str:
    case = session.get(Case, row.case_id)
    if case is None:
        raise NotFound("consent not found")
    return case.panel_id


def issue_receipt(
    *,
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    consent_id: str,
    issuer: str,
    now: datetime,
) -> tuple[str, dict[str, Any]]:
    """The signed receipt and its claims. Raises NotFound or Forbidden."""
    row = managed_consent(session, principal, consent_id)
    claims = _claims(session, keyring, row, issuer=issuer, now=now)
    signing_kid, signing_pem = keyring.token_signing_key()
    token: str = jwt.encode(
        claims,
        signing_pem.decode(),
        algorithm="ES256",
        headers={"kid": signing_kid, "typ": RECEIPT_TYPE},
    )
    audit.append(
        session=session,
        kind="consent_receipt_issued",
        body={"actor": principal.actor, "consent": row.id, "version": row.version},
        now=now,
    )
    audit.commit(session=session)
    return token, claims


def _date(epoch: int | None) -> str:
    if epoch is None:
        return "until you withdraw it"
    return datetime.fromtimestamp(epoch, UTC).strftime("%d %B %Y")


def receipt_page(claims: dict[str, Any], token: str) -> str:
    """A printable page in plain words: what is shared, with whom, why, until when, how to stop."""
    e = html.escape
    panel = claims["piiControllers"][0]["piiController"]
    who = "".join(f"<li>{e(r['name'])}</li>" for r in claims["recipients"])
    what = "".join(f"<li>{e(CATEGORY_WORDS.get(c, c))}</li>" for c in claims["piiCategories"])
    why = "".join(f"<li>{e(PURPOSE_WORDS.get(p, p))}</li>" for p in claims["purposes"])
    state = {
        "active": "in force",
        "withdrawn": "withdrawn",
        "expired": "ended",
        "superseded": "replaced by a newer one",
        "refused": "refused",
    }.get(claims["state"], claims["state"])
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Your consent receipt</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;line-height:1.5}}
code{{word-break:break-all;font-size:.7em}}@media print{{.noprint{{display:none}}}}</style></head>
<body>
<h1>Your consent receipt</h1>
<p>This is a record of what you agreed to with the <strong>{e(panel)}</strong>.
Keep it. This consent is <strong>{e(state)}</strong>.</p>
<h2>What may be shared</h2><ul>{what}</ul>
<h2>Who may receive it</h2><ul>{who}</ul>
<h2>Why</h2><ul>{why}</ul>
<h2>For how long</h2>
<p>From {e(_date(claims["validFrom"]))}, {e(_date(claims["validUntil"]))}.</p>
<h2>How to stop it</h2>
<p>You can withdraw your consent at any time, without giving a reason, by telling the panel
coordinator. It stops from that moment: nothing more is shared on the basis of this consent.
What was already shared stays on the record of what was shared, which you can ask to see.</p>
<p>Receipt number: {e(claims["consentReceiptID"])}</p>
<details class="noprint"><summary>Signed copy (for checking)</summary>
<code>{e(token)}</code></details>
</body></html>
"""
