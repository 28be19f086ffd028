"""`hub demo`: the Northtown situation table, with synthetic people and source systems.

Everything here is fictional. The demo agencies' private keys are generated here because the
demo plays the part of the agencies' own systems; a real agency keeps its key and registers
only the public half (`hub client add`).
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk
from sqlmodel import Session

from connectors import load_connector_config
from hub.config import Settings
from hub.demo.people import DEMO_PEOPLE
from hub.demo.sources import write_demo_sources
from hub.services import admin, audit, subjects
from keys import KeyRing

PANEL_ID = "northtown"
PANEL_NAME = "Northtown situation table"
AGENCIES = (
    ("northtown-police", "Northtown Police", "police"),
    ("northtown-childrens-services", "Northtown Children's Services", "social_services"),
    ("northtown-academy", "Northtown Academy", "school"),
    ("brightpath-youth", "Brightpath Youth Work", "cso"),
)
USERS = (("coordinator", "coordinator"), ("dpo", "dpo"))


@dataclass(frozen=True)
class DemoFiles:
    clients: Path
    users: Path


def _write_private(path: Path, data: Any) -> None:
    """Write JSON readable only by its owner, replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    loaded = json.loads(path.read_text())
    return loaded if isinstance(loaded, list) else []


def _new_client(agency_id: str) -> dict[str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "agency": agency_id,
        "client_id": f"{agency_id}-system",
        "kid": f"{agency_id}-{uuid.uuid4().hex[:8]}",
        "alg": "ES256",
        "private_key_pem": pem,
    }


def public_jwks(client: dict[str, str]) -> dict[str, Any]:
    public_pem = (
        serialization.load_pem_private_key(client["private_key_pem"].encode(), password=None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    key = jwk.construct(public_pem.decode(), client["alg"]).to_dict()
    key.update({"kid": client["kid"], "alg": client["alg"], "use": "sig"})
    return {"keys": [{k: str(v) for k, v in key.items()}]}


def build_demo(
    *, settings: Settings, session: Session, keyring: KeyRing, now: datetime
) -> DemoFiles:
    """Create (or bring up to date) the demo panel; safe to run twice."""
    demo_dir = settings.demo_dir
    connector_files = write_demo_sources(
        demo_dir / "sources", rest_base_url=f"http://127.0.0.1:{settings.demo_sources_port}"
    )
    admin.ensure_panel(session=session, panel_id=PANEL_ID, name=PANEL_NAME, now=now)
    for agency_id, name, kind in AGENCIES:
        config = load_connector_config(connector_files[agency_id]).to_mapping()
        admin.ensure_agency(
            session=session,
            agency_id=agency_id,
            name=name,
            kind=kind,
            panel_id=PANEL_ID,
            connector_config=config,
            now=now,
        )

    clients_path = demo_dir / "clients.json"
    clients = {c["agency"]: c for c in _read(clients_path)}
    for agency_id, _, _ in AGENCIES:
        client = clients.setdefault(agency_id, _new_client(agency_id))
        admin.ensure_client(
            session=session,
            client_id=client["client_id"],
            agency_id=agency_id,
            jwks=public_jwks(client),
            now=now,
        )
    _write_private(clients_path, [clients[a] for a, _, _ in AGENCIES])

    users_path = demo_dir / "users.json"
    users = {u["username"]: u for u in _read(users_path)}
    for username, role in USERS:
        user = users.setdefault(
            username,
            {
                "username": username,
                "password": secrets.token_urlsafe(18),
                "role": role,
                "panel": PANEL_ID,
            },
        )
        admin.ensure_user(
            session=session,
            username=username,
            password=user["password"],
            role=role,
            panel_id=PANEL_ID,
            now=now,
        )
    _write_private(users_path, [users[u] for u, _ in USERS])

    # The synthetic people are already known to the agencies' own systems; the hub learns
    # each agency's identifier for them, as matching would in a real deployment.
    for person in DEMO_PEOPLE:
        identity = subjects.Identity(
            given_name=person.given_name,
            family_name=person.family_name,
            date_of_birth=date.fromisoformat(person.date_of_birth),
        )
        subject = None
        for agency_id, local_id in sorted(person.local_ids.items()):
            subject = subjects.find_or_create(
                session=session,
                keyring=keyring,
                identity=identity,
                agency_id=agency_id,
                local_id=local_id,
            )
        assert subject is not None
    audit.commit(session=session)
    return DemoFiles(clients=clients_path, users=users_path)
