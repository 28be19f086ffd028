"""Browser tests: Debian's Chromium driven by Playwright (sync API, headless) against a real
`hub serve` with the demo data and the demo source systems, over real HTTP on loopback.

One live hub serves the whole test session (starting it costs a few seconds). Each test gets a
fresh browser context, so cookies never leak from one test into another.

Screenshots: with HUB_SCREENSHOTS=1 (`make screenshots`), `screenshot(page, name)` writes
docs/screenshots/<name>.png; otherwise it does nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from hub.demo.assertion import make_client_assertion
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
HUB_BIN = Path(sys.executable).parent / "hub"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
PANEL = "northtown"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Assertions wait for the page this long: a busy machine can be slow, a broken page never passes.
expect.set_options(timeout=15_000)
# Laptop-sized pages for screenshots and tests alike.
VIEWPORT = {"width": 1280, "height": 860}


@dataclass
class LiveHub:
    """A running `hub serve` and ways to act as its demo agencies, people and operator."""

    url: str
    workdir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def demo_dir(self) -> Path:
        return self.workdir / "var" / "demo"

    @property
    def users(self) -> dict[str, dict[str, str]]:
        data = json.loads((self.demo_dir / "users.json").read_text())
        return {u["username"]: u for u in data}

    @property
    def clients(self) -> dict[str, dict[str, str]]:
        data = json.loads((self.demo_dir / "clients.json").read_text())
        return {c["agency"]: c for c in data}

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run `hub ...` as the operator would, on this hub's data directory."""
        result = subprocess.run(
            [str(HUB_BIN), *args],
            cwd=self.workdir,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def agency_token(self, agency: str) -> str:
        """A real access token: a signed client assertion exchanged at /v1/token."""
        client = self.clients[agency]
        assertion = make_client_assertion(
            client_id=client["client_id"],
            kid=client["kid"],
            private_key_pem=client["private_key_pem"],
            audience=self.url + "/v1/token",
        )
        response = httpx.post(
            self.url + "/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion,
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def person_token(self, username: str) -> str:
        user = self.users[username]
        response = httpx.post(
            self.url + "/v1/login", json={"username": username, "password": user["password"]}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def api(self, token: str) -> httpx.Client:
        """An HTTP client for the JSON API with a bearer token."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


def start_hub(
    workdir: Path, *, extra_env: dict[str, str] | None = None, demo_sources: bool = True
) -> LiveHub:
    """`hub demo` once per data directory, then `hub serve` (with the demo's source systems
    unless another server on this directory already runs them) on free ports."""
    port, sources_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {
        "HUB_PUBLIC_URL": url,
        "HUB_DEMO_SOURCES_PORT": str(sources_port),
        # Plain HTTP on loopback: the session cookie cannot carry Secure here.
        "HUB_COOKIE_SECURE": "false",
        **(extra_env or {}),
    }
    if not (workdir / "var" / "demo" / "users.json").exists():
        subprocess.run(
            [str(HUB_BIN), "demo"], cwd=workdir, env=env, check=True, capture_output=True
        )
    log = (workdir / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(
        [str(HUB_BIN), "serve", *(["--demo-sources"] if demo_sources else []), "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    # Generous: on a busy machine importing the hub and compiling the policies takes a while.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return LiveHub(url=url, workdir=workdir, env=env, process=process)
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    process.wait(timeout=10)
    pytest.fail("hub serve did not start: " + (workdir / f"serve-{port}.log").read_text())


def stop_hub(hub: LiveHub) -> None:
    hub.process.terminate()
    try:
        hub.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        hub.process.kill()
        hub.process.wait(timeout=10)


@pytest.fixture(scope="session")
def live_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    hub = start_hub(tmp_path_factory.mktemp("live-hub"))
    try:
        yield hub
    finally:
        stop_hub(hub)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Debian's Chromium, installed by the set-up; Playwright never downloads a browser here.
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield chromium
    chromium.close()


def new_page(browser: Browser, base_url: str) -> Page:
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(30_000)
    return context.new_page()


@pytest.fixture
def page(browser: Browser, live_hub: LiveHub) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies) pointed at the live hub."""
    opened = new_page(browser, live_hub.url)
    yield opened
    opened.context.close()


SignIn = Callable[..., None]


def sign_in_as(
    page: Page, users: dict[str, dict[str, str]], username: str, password: str | None = None
) -> None:
    """Fill and send the sign-in form; the password defaults to the demo's users.json."""
    page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(
        password if password is not None else users[username]["password"]
    )
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def sign_in(live_hub: LiveHub) -> SignIn:
    """`sign_in(page, username, password=None)`: sign in through the form as a person."""

    def sign(page: Page, username: str, password: str | None = None) -> None:
        sign_in_as(page, live_hub.users, username, password)

    return sign


def screenshots_enabled() -> bool:
    return os.environ.get("HUB_SCREENSHOTS") == "1"


def take_screenshot(page: Page, name: str) -> None:
    """Write docs/screenshots/<name>.png when HUB_SCREENSHOTS=1 (`make screenshots`)."""
    if not screenshots_enabled():
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def screenshot() -> Callable[[Page, str], None]:
    return take_screenshot


def refer(hub: LiveHub, agency_token: str, *, subject: dict[str, Any], panel: str = PANEL) -> str:
    """An agency refers a person to the panel over the API; returns the case id."""
    with hub.api(agency_token) as api:
        response = api.post(
            "/v1/referrals",
            json={
                "panel": panel,
                "subject": subject,
                "channel": "agency",
                "indicators": ["expressed_support_for_violence", "withdrawal_from_peers"],
                "summary": "Concern raised after a classroom incident.",
            },
        )
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])
