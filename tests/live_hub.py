"""A real `hub serve` in a child process, and a demo case an agency can ask about over HTTP.

Used by the crash-consistency test (which SIGKILLs the process and starts it again on the same
data) and by the soak run (which reads the process's memory from /proc). The server runs in its
own process group with the demo's REST source systems, on loopback ports only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hub.demo.assertion import make_client_assertion
from hub.demo.people import ALEX, DemoPerson
from tests.ports import free_port

HUB_BIN = Path(sys.executable).parent / "hub"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCHOOL = "northtown-academy"
DESIGNATED = ["northtown-academy", "northtown-childrens-services"]
ALLOWED = {"purpose": "risk_assessment", "categories": ["education", "social_care"]}
# Not allowed at any stage without consent or a grant: logged and answered 403.
DENIED = {"purpose": "intervention_planning", "categories": ["health"]}
# Settings for load that comes from one client faster than any real one would send it.
UNLIMITED = {"HUB_RATE_LIMIT_PER_MINUTE": "1000000", "HUB_RATE_LIMIT_BURST": "100000"}


class HubStartError(RuntimeError):
    """`hub serve` did not answer /healthz in time."""


@dataclass
class LiveHub:
    """One data directory and database, served by at most one `hub serve` process at a time."""

    workdir: Path
    database_url: str | None = None
    # Extra HUB_* settings for every command and server of this hub.
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    sources_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env |= {
            "HUB_DATA_DIR": str(self.workdir / "var"),
            "HUB_PUBLIC_URL": self.url,
            "HUB_DEMO_SOURCES_PORT": str(self.sources_port),
            "HUB_MASTER_KEY": self._master_key(),
        }
        if self.database_url:
            env["HUB_DATABASE_URL"] = self.database_url
        return env | self.settings

    def _master_key(self) -> str:
        key_file = self.workdir / "master-key.b64"
        if not key_file.exists():
            self.workdir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(base64.b64encode(os.urandom(32)).decode())
        return key_file.read_text()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one `hub` command against this hub's data (never against the server)."""
        return subprocess.run(
            [str(HUB_BIN), *args],
            cwd=self.workdir,
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def demo(self) -> None:
        self.cli("demo")

    def start(self, *, timeout: float = 60.0) -> None:
        """Start `hub serve --demo-sources` and wait until it answers /healthz."""
        assert self.process is None, "already running"
        self.starts += 1
        self.log_path = self.workdir / f"serve-{self.starts}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(HUB_BIN), "serve", "--demo-sources", "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise HubStartError(f"hub serve did not start:\n{tail}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handler, no flush, no goodbye."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """Ask the server to shut down cleanly; kill it if it does not."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def rss_bytes(self) -> int:
        """Resident memory of the server process, from /proc (Linux)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

    def clients(self) -> dict[str, dict[str, Any]]:
        records = json.loads((self.workdir / "var" / "demo" / "clients.json").read_text())
        return {c["agency"]: c for c in records}

    def users(self) -> dict[str, dict[str, Any]]:
        records = json.loads((self.workdir / "var" / "demo" / "users.json").read_text())
        return {u["role"]: u for u in records}


def agency_headers(hub: LiveHub, http: httpx.Client, agency: str = SCHOOL) -> dict[str, str]:
    """A fresh access token for a demo agency system, from a signed client assertion."""
    client = hub.clients()[agency]
    assertion = make_client_assertion(
        client_id=client["client_id"],
        kid=client["kid"],
        private_key_pem=client["private_key_pem"],
        alg=client["alg"],
        audience=f"{hub.url}/v1/token",
    )
    response = http.post(
        f"{hub.url}/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def coordinator_headers(hub: LiveHub, http: httpx.Client) -> dict[str, str]:
    user = hub.users()["coordinator"]
    response = http.post(
        f"{hub.url}/v1/login",
        json={"username": user["username"], "password": user["password"]},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def open_case(
    hub: LiveHub,
    http: httpx.Client,
    *,
    agency: dict[str, str],
    coordinator: dict[str, str],
    consent: bool = True,
    person: DemoPerson = ALEX,
) -> str:
    """Refer a demo person (by default the demo pupil), move the case to assessment and
    (optionally) record the parent's consent to `ALLOWED`; return the case id."""
    response = http.post(
        f"{hub.url}/v1/referrals",
        headers=agency,
        json={
            "panel": "northtown",
            "subject": {
                "given_name": person.given_name,
                "family_name": person.family_name,
                "date_of_birth": person.date_of_birth,
                "local_id": person.local_ids.get(SCHOOL),
            },
            "indicators": ["withdrawal_from_peers"],
        },
    )
    response.raise_for_status()
    case: str = response.json()["id"]
    for move in (
        {"to": "screening", "reason": "eligible"},
        {"to": "assessment", "reason": "risk elevated", "designated_agencies": DESIGNATED},
    ):
        http.post(
            f"{hub.url}/v1/cases/{case}/transitions", headers=coordinator, json=move
        ).raise_for_status()
    if consent:
        give_consent(hub, http, case=case, coordinator=coordinator)
    return case


def give_consent(
    hub: LiveHub, http: httpx.Client, *, case: str, coordinator: dict[str, str]
) -> str:
    response = http.post(
        f"{hub.url}/v1/cases/{case}/consents",
        headers=coordinator,
        json={
            "given_by": "parent",
            "recipients": [SCHOOL],
            "purposes": [ALLOWED["purpose"]],
            "categories": ALLOWED["categories"],
            "evidence_ref": "signed-form-0001",
        },
    )
    response.raise_for_status()
    consent_id: str = response.json()["id"]
    return consent_id
