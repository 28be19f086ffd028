"""What an operator needs to set up a real panel: panels, agencies, clients, users.

Each function is idempotent on its key: running set-up twice changes nothing the second time
except what was asked to change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args

from sqlmodel import Session

from hub.errors import BadRequest, NotFound
from hub.services import audit, notifications, profiles, webhooks
from hub.services.auth import hash_password
from hub.services.principals import USER_ROLES
from hub.storage.models import Agency, AgencyWebhook, ApiClient, Panel, PanelMembership, User
from hub.vocabulary import AgencyKind
from keys import KeyRing


def ensure_panel(
    *, session: Session, panel_id: str, name: str, now: datetime, profile: str = "situation_table"
) -> Panel:
    """Add a panel, or change its name and profile. Raises BadRequest for an unknown profile."""
    known = profiles.names()
    if profile not in known:
        raise BadRequest(f"profile must be one of {', '.join(sorted(known))}")
    panel = session.get(Panel, panel_id)
    if panel is None:
        panel = Panel(id=panel_id, name=name, profile=profile, created_at=now)
        audit.append(
            session=session,
            kind="panel_added",
            body={"panel": panel_id, "profile": profile},
            now=now,
        )
    elif panel.profile != profile:
        audit.append(
            session=session,
            kind="panel_profile_changed",
            body={"panel": panel_id, "from": panel.profile, "to": profile},
            now=now,
        )
    panel.name, panel.profile = name, profile
    session.add(panel)
    return panel


def ensure_agency(
    *,
    session: Session,
    agency_id: str,
    name: str,
    kind: str,
    panel_id: str,
    connector_config: dict[str, Any] | None,
    now: datetime,
) -> Agency:
    """Add or update an agency and make it a member of the panel.

    Raises BadRequest for an unknown kind, NotFound for an unknown panel.
    """
    if kind not in get_args(AgencyKind):
        raise BadRequest(f"agency kind must be one of {', '.join(get_args(AgencyKind))}")
    if session.get(Panel, panel_id) is None:
        raise NotFound("panel not found")
    agency = session.get(Agency, agency_id)
    if agency is None:
        agency = Agency(id=agency_id, name=name, kind=kind, created_at=now)
        audit.append(
            session=session, kind="agency_added", body={"agency": agency_id, "kind": kind}, now=now
        )
    agency.name, agency.kind = name, kind
    if connector_config is not None:
        agency.connector_config = connector_config
    session.add(agency)
    session.flush()
    if session.get(PanelMembership, (panel_id, agency_id)) is None:
        session.add(PanelMembership(panel_id=panel_id, agency_id=agency_id))
        audit.append(
            session=session,
            kind="membership_added",
            body={"panel": panel_id, "agency": agency_id},
            now=now,
        )
    return agency


def ensure_client(
    *, session: Session, client_id: str, agency_id: str, jwks: dict[str, Any], now: datetime
) -> ApiClient:
    """Register (or re-key) an agency system by its public JWKS. Private keys never reach us."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise BadRequest("jwks must hold at least one key")
    if any(isinstance(k, dict) and "d" in k for k in keys):
        raise BadRequest("jwks must hold public keys only")
    if session.get(Agency, agency_id) is None:
        raise NotFound("agency not found")
    client = session.get(ApiClient, client_id)
    if client is None:
        client = ApiClient(client_id=client_id, agency_id=agency_id, jwks=jwks, created_at=now)
    client.jwks = jwks
    session.add(client)
    audit.append(
        session=session,
        kind="client_registered",
        body={"client": client_id, "agency": agency_id, "kids": [k.get("kid") for k in keys]},
        now=now,
    )
    return client


def ensure_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    panel_id: str | None,
    now: datetime,
) -> User:
    """Add a person, or reset their password and role. Raises BadRequest or NotFound."""
    if role not in USER_ROLES:
        raise BadRequest(f"role must be one of {', '.join(USER_ROLES)}")
    if len(password) < 12:
        raise BadRequest("passwords must be at least 12 characters")
    if panel_id is not None and session.get(Panel, panel_id) is None:
        raise NotFound("panel not found")
    user = session.get(User, username)
    if user is None:
        user = User(username=username, password_hash="", role=role, created_at=now)
    user.password_hash = hash_password(password)
    user.role, user.panel_id = role, panel_id
    session.add(user)
    audit.append(
        session=session,
        kind="user_set",
        body={"user": username, "role": role, "panel": panel_id},
        now=now,
    )
    return user


def set_agency_webhook(
    *, session: Session, keyring: KeyRing, agency_id: str, url: str, secret: str, now: datetime
) -> AgencyWebhook:
    """Set where the agency is told about consent changes and the secret that signs them
    (stored encrypted). Raises NotFound for an unknown agency, BadRequest for a URL that is not
    https (http only on loopback) or a secret not of the `whsec_` form."""
    if session.get(Agency, agency_id) is None:
        raise NotFound("agency not found")
    webhooks.check_url(url)
    webhooks.secret_key(secret)
    hook = session.get(AgencyWebhook, agency_id)
    if hook is None:
        hook = AgencyWebhook(agency_id=agency_id, url=url, secret_ciphertext="", updated_at=now)
    hook.url, hook.updated_at = url, now
    hook.secret_ciphertext = keyring.encrypt(
        secret.encode(), associated_data=notifications.secret_associated_data(agency_id)
    )
    session.add(hook)
    audit.append(
        session=session,
        kind="agency_webhook_set",
        body={"agency": agency_id, "origin": webhooks.origin(url)},
        now=now,
    )
    return hook
