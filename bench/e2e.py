"""End-to-end disclosures: a real `hub serve` with the demo data, and the baseline beside it.

For each database the hub gets a fresh working directory (`hub demo`), the demo's REST record
systems run in their own process, and `hub serve --workers N` answers over loopback. The case
is set up as the README's walk-through does (referral, screening, assessment, the parent's
consent), then the load generator (`bench.load`, a separate process) asks for the same
disclosure at each concurrency. The baseline (`bench.baseline`) is served by uvicorn with the
same worker count and asked the same thing, right after the hub, in the same run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

from bench.procs import HUB_BIN, PYTHON, ROOT, free_port, running, worker_peak_rss_mb
from hub.demo.people import ACADEMY, DEMO_PEOPLE

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# `hub serve`, the CLI's own command, started as `python -c`: its worker processes are spawned
# afresh and, unlike with the console script as the main module, need not import the CLI again.
HUB_SERVE = (PYTHON, "-c", "from hub.cli import app; app()", "serve")
RATE_LIMIT_PER_MINUTE = 6_000_000
REQUESTER = ACADEMY
PURPOSE = "risk_assessment"
CATEGORIES = ["education", "social_care"]
BODY = {"purpose": PURPOSE, "categories": CATEGORIES}
SUBJECT = next(p for p in DEMO_PEOPLE if p.local_ids.get(ACADEMY) == "NA-2231")


@dataclass(frozen=True)
class LoadPlan:
    concurrencies: tuple[int, ...]
    seconds: float
    max_requests: int


@dataclass(frozen=True)
class Site:
    """A running hub with the bench case ready."""

    url: str
    pid: int
    workdir: Path
    env: dict[str, str]
    case_id: str
    client: dict[str, str]
    coordinator: dict[str, str]
    records_per_answer: int

    @property
    def disclosure_url(self) -> str:
        return f"{self.url}/v1/cases/{self.case_id}/disclosures"


def postgres_admin_url() -> str:
    return os.environ.get("BENCH_POSTGRES_URL") or os.environ.get(
        "HUB_TEST_DATABASE_URL", DEFAULT_POSTGRES_URL
    )


def postgres_available() -> bool:
    try:
        engine = create_engine(postgres_admin_url())
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the local server for the ``with`` block, dropped afterwards."""
    admin_url = make_url(postgres_admin_url())
    name = f"hub_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _hub_env(
    workdir: Path, *, port: int, sources_port: int, database_url: str | None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {
        # One agency client sends every request of the run, so its per-client budget is set
        # above what the run can send; the limiter still runs (and costs) on every request.
        "HUB_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
        "HUB_RATE_LIMIT_BURST": str(RATE_LIMIT_PER_MINUTE // 60),
        "HUB_DATA_DIR": str(workdir / "var"),
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "HUB_DEMO_SOURCES_PORT": str(sources_port),
    }
    if database_url is not None:
        env["HUB_DATABASE_URL"] = database_url
    return env


def _agency_token(site_url: str, client: dict[str, str]) -> str:
    from hub.demo.assertion import make_client_assertion

    assertion = make_client_assertion(
        client_id=client["client_id"],
        kid=client["kid"],
        private_key_pem=client["private_key_pem"],
        audience=f"{site_url}/v1/token",
    )
    response = httpx.post(
        f"{site_url}/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        trust_env=False,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def _checked(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise RuntimeError(f"set-up step {response.request.url.path} got {response.status_code}")
    answer: dict[str, Any] = response.json()
    return answer


def _record_count(answer: dict[str, Any]) -> int:
    return sum(len(records) for records in answer["records"].values())


def set_up_case(url: str, client: dict[str, str], coordinator: dict[str, str]) -> tuple[str, int]:
    """The README's walk-through: refer Alex, move the case to assessment, record consent.

    Returns the case id and how many records its disclosure carries.
    """
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as http:
        agency = {"Authorization": f"Bearer {_agency_token(url, client)}"}
        login = http.post(
            "/v1/login",
            json={"username": coordinator["username"], "password": coordinator["password"]},
        )
        coord = {"Authorization": f"Bearer {_checked(login, 200)['access_token']}"}
        referral = http.post(
            "/v1/referrals",
            headers=agency,
            json={
                "panel": "northtown",
                "subject": {
                    "given_name": SUBJECT.given_name,
                    "family_name": SUBJECT.family_name,
                    "date_of_birth": SUBJECT.date_of_birth,
                    "local_id": SUBJECT.local_ids[ACADEMY],
                },
                "indicators": ["withdrawal_from_peers"],
            },
        )
        case_id = str(_checked(referral, 200, 201)["id"])
        designated = [ACADEMY, "northtown-childrens-services"]
        for move in (
            {"to": "screening", "reason": "bench"},
            {"to": "assessment", "reason": "bench", "designated_agencies": designated},
        ):
            _checked(http.post(f"/v1/cases/{case_id}/transitions", headers=coord, json=move), 200)
        consent = http.post(
            f"/v1/cases/{case_id}/consents",
            headers=coord,
            json={
                "given_by": "parent",
                "recipients": [REQUESTER],
                "purposes": [PURPOSE],
                "categories": CATEGORIES,
            },
        )
        _checked(consent, 201)
        first = http.post(f"/v1/cases/{case_id}/disclosures", headers=agency, json=BODY)
        answer = _checked(first, 200)
        if not all(s["status"] == "ok" for s in answer["sources"].values()):
            raise RuntimeError(f"a demo source did not answer: {answer['sources']}")
    return case_id, _record_count(answer)


@contextmanager
def hub_site(
    *, workers: int, database_url: str | None, logs: Path, wrapper: tuple[str, ...] = ()
) -> Iterator[Site]:
    """`hub demo`, the demo sources and `hub serve` running, with the bench case set up.

    ``wrapper`` goes before the serve command (a profiler that runs the server as its child).
    """
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        workdir = Path(tmp)
        port, sources_port = free_port(), free_port()
        env = _hub_env(workdir, port=port, sources_port=sources_port, database_url=database_url)
        subprocess.run(  # noqa: S603 (the hub's own console script)
            [HUB_BIN, "demo"], cwd=workdir, env=env, check=True, capture_output=True
        )
        demo = workdir / "var" / "demo"
        clients = {c["agency"]: c for c in json.loads((demo / "clients.json").read_text())}
        users = json.loads((demo / "users.json").read_text())
        coordinator = next(u for u in users if u["role"] == "coordinator")
        url = f"http://127.0.0.1:{port}"
        with (
            running(
                [
                    PYTHON,
                    "-m",
                    "bench.servers",
                    "sources",
                    str(demo / "sources"),
                    str(sources_port),
                ],
                env=env | {"PYTHONPATH": str(ROOT)},
                cwd=workdir,
                log=logs / "sources.log",
                ready_url=f"http://127.0.0.1:{sources_port}/",
            ),
            running(
                [*wrapper, *HUB_SERVE, "--port", str(port), "--workers", str(workers)],
                env=env,
                cwd=workdir,
                log=logs / "hub.log",
                ready_url=f"{url}/healthz",
                stop_signal=signal.SIGINT if wrapper else signal.SIGTERM,
            ) as server,
        ):
            case_id, records = set_up_case(url, clients[REQUESTER], coordinator)
            yield Site(
                url=url,
                pid=server.pid,
                workdir=workdir,
                env=env,
                case_id=case_id,
                client=clients[REQUESTER],
                coordinator=coordinator,
                records_per_answer=records,
            )


@contextmanager
def baseline_site(site: Site, *, workers: int, logs: Path) -> Iterator[tuple[str, int]]:
    """The pass-through baseline over the same demo sources, served like the hub."""
    port = free_port()
    env = site.env | {
        "PYTHONPATH": str(ROOT),
        "BENCH_SOURCES_DIR": str(site.workdir / "var" / "demo" / "sources"),
        "BENCH_LOCAL_IDS": json.dumps(SUBJECT.local_ids),
    }
    args = [PYTHON, "-m", "bench.baseline", "--port", str(port), "--workers", str(workers)]
    url = f"http://127.0.0.1:{port}"
    with running(args, env=env, cwd=ROOT, log=logs / "baseline.log", ready_url=f"{url}/") as proc:
        check = httpx.post(f"{url}/v1/cases/{site.case_id}/disclosures", json=BODY, timeout=30)
        answer = _checked(check, 200)
        if not all(s["status"] == "ok" for s in answer["sources"].values()):
            raise RuntimeError(f"a demo source did not answer the baseline: {answer['sources']}")
        # Like for like: the baseline must carry exactly what the hub discloses.
        if _record_count(answer) != site.records_per_answer:
            raise RuntimeError(
                f"the baseline answered {_record_count(answer)} records, "
                f"the hub {site.records_per_answer}"
            )
        yield f"{url}/v1/cases/{site.case_id}/disclosures", proc.pid


def generate_load(spec: dict[str, Any], *, logs: Path) -> dict[str, Any]:
    """Run the load generator in its own process and return its figures."""
    spec_file = logs / f"load-{uuid.uuid4().hex[:8]}.json"
    spec_file.write_text(json.dumps(spec))
    try:
        out = subprocess.run(  # noqa: S603 (our own interpreter)
            [PYTHON, "-m", "bench.load", str(spec_file)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            timeout=spec["seconds"] + 120,
        )
    finally:
        spec_file.unlink()  # it may hold the demo agency's private key
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{out.stderr.decode(errors='replace')}")
    figures: dict[str, Any] = json.loads(out.stdout)
    return figures


def hub_spec(site: Site, concurrency: int, plan: LoadPlan) -> dict[str, Any]:
    return {
        "url": site.disclosure_url,
        "body": BODY,
        "concurrency": concurrency,
        "seconds": plan.seconds,
        "max_requests": plan.max_requests,
        "client": site.client,
        "token_url": f"{site.url}/v1/token",
        "token_audience": f"{site.url}/v1/token",
    }


def measure_backend(
    *,
    backend: str,
    database_url: str | None,
    workers: int,
    plan: LoadPlan,
    growth_sizes: tuple[int, ...],
    logs: Path,
) -> dict[str, Any]:
    """Hub and baseline at every concurrency on one database, peak worker memory, growth."""
    from bench.growth import measure_growth

    backend_logs = logs / backend
    backend_logs.mkdir(parents=True, exist_ok=True)
    with hub_site(workers=workers, database_url=database_url, logs=backend_logs) as site:
        hub_runs = {
            c: generate_load(hub_spec(site, c, plan), logs=backend_logs) for c in plan.concurrencies
        }
        hub_rss = worker_peak_rss_mb(site.pid)
        with baseline_site(site, workers=workers, logs=backend_logs) as (baseline_url, pid):
            base_runs = {
                c: generate_load(
                    {
                        "url": baseline_url,
                        "body": BODY,
                        "concurrency": c,
                        "seconds": plan.seconds,
                        "max_requests": plan.max_requests,
                    },
                    logs=backend_logs,
                )
                for c in plan.concurrencies
            }
            baseline_rss = worker_peak_rss_mb(pid)
        growth = measure_growth(
            site,
            database_url=database_url or f"sqlite:///{site.workdir / 'var' / 'hub.db'}",
            sizes=growth_sizes,
            plan=plan,
            logs=backend_logs,
        )
    rows = []
    for c in plan.concurrencies:
        hub, base = hub_runs[c], base_runs[c]
        rate = base["throughput_per_s"]
        rows.append(
            {
                "concurrency": c,
                "hub": hub,
                "baseline": base,
                "ratio": hub["throughput_per_s"] / rate if rate else 0.0,
            }
        )
    return {
        "backend": backend,
        "workers": workers,
        "records_per_answer": site.records_per_answer,
        "runs": rows,
        "hub_worker_peak_rss_mb": hub_rss,
        "baseline_worker_peak_rss_mb": baseline_rss,
        "growth": growth,
    }
