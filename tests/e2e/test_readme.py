"""The README's walk-through, run verbatim against a real `hub serve` over real HTTP, with the
demo's real source systems, exactly as a new user would after `make run`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
HUB_BIN = Path(sys.executable).parent / "hub"


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(
        r"<!-- walkthrough:start -->\n```bash\n(.*?)```\n<!-- walkthrough:end -->", readme, re.S
    )
    assert match, "README has no walk-through block"
    return match.group(1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh working directory with `hub demo` done and `hub serve --demo-sources` running."""
    port, sources_port = free_port(), free_port()
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "HUB_DEMO_SOURCES_PORT": str(sources_port),
        "HUB_URL": f"http://127.0.0.1:{port}",
    }
    subprocess.run([str(HUB_BIN), "demo"], cwd=tmp_path, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [str(HUB_BIN), "serve", "--demo-sources", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("hub serve did not start")
        yield tmp_path, env
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_readme_walkthrough_works_verbatim(served: tuple[Path, dict[str, str]]) -> None:
    workdir, env = served

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert '"code":"denied"' in out
    assert "purpose_not_allowed_at_stage" in out
    assert "\nassessment\n" in out and "\nactive\n" in out
    assert '"legal_basis": "consent"' in out
    assert '"permitted_categories": [\n        "education",\n        "social_care"\n    ]' in out
    assert "NA-2231" not in out.split('"legal_basis"')[1]  # no local id in the disclosure
    assert "audit log verifies" in out
