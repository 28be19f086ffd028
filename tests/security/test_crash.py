"""Crash consistency: SIGKILL a real `hub serve` while agencies stream disclosure requests at
it, start it again on the same data, and check that nothing a client was told is missing.

The promise under test (DESIGN section 5, step 6): no answer leaves before its audit entry is
durable. So after any number of hard kills, every 200 a client received must be backed by the
entry its receipt names (same index, same leaf hash, same decision id), every 403 by its denial
entry, the whole log must verify with `hub audit verify`, and the hub must serve again. The test
looks only at what clients received and at the stored log, so it holds however the append is
batched or committed.

Kill points are random but seeded, so a failure can be replayed.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlmodel import Session, select

from hub.audit.verifier import VerifierKey, leaf_hash, verify_receipt
from hub.services.audit import entry_data
from hub.storage.models import AuditEntry
from tests.live_hub import (
    ALLOWED,
    DENIED,
    UNLIMITED,
    LiveHub,
    agency_headers,
    coordinator_headers,
    open_case,
)

SEED = 20261128
KILLS = 3
CLIENTS = 3
# A kill lands after a random number of answers, plus a random fraction of one request's time,
# so it catches requests in every stage of their flight (deciding, fetching, appending,
# committing, signing the receipt, writing the response).
KILL_AFTER_ANSWERS = (2, 12)
KILL_JITTER_SECONDS = (0.0, 0.1)
# Waiting for those answers is bounded: a hub that stops answering fails the test.
ROUND_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Answer:
    """What one client was told: a disclosure (with its receipt) or a logged denial."""

    kind: str
    decision_id: str
    receipt: dict[str, Any] | None = None


@dataclass
class Round:
    answers: list[Answer]
    unexpected: list[str]
    progress: threading.Condition


def _client_loop(
    hub: LiveHub,
    case: str,
    headers: dict[str, str],
    rng: random.Random,
    stop: threading.Event,
    found: Round,
    lock: threading.Lock,
) -> None:
    url = f"{hub.url}/v1/cases/{case}/disclosures"
    with httpx.Client(timeout=30) as http:
        while not stop.is_set():
            body = DENIED if rng.random() < 0.2 else ALLOWED
            try:
                response = http.post(url, headers=headers, json=body)
            except httpx.TransportError:
                return  # the server died under us; that answer was never received
            with lock:
                if response.status_code == 200:
                    document = response.json()
                    found.answers.append(
                        Answer("disclosure", document["decision_id"], document["receipt"])
                    )
                elif response.status_code == 403:
                    decision_id = response.json()["error"]["details"]["decision_id"]
                    found.answers.append(Answer("denial", decision_id))
                else:
                    found.unexpected.append(f"{response.status_code} {response.text[:200]}")
                found.progress.notify_all()


def _stream_then_kill(hub: LiveHub, case: str, rng: random.Random) -> Round:
    """Several agency clients ask concurrently until the server is SIGKILLed under them."""
    lock = threading.Lock()
    found = Round(answers=[], unexpected=[], progress=threading.Condition(lock))
    stop = threading.Event()
    with httpx.Client(timeout=30) as http:
        tokens = [agency_headers(hub, http) for _ in range(CLIENTS)]
    threads = [
        threading.Thread(
            target=_client_loop,
            args=(hub, case, headers, random.Random(rng.random()), stop, found, lock),
        )
        for headers in tokens
    ]
    for thread in threads:
        thread.start()
    target = rng.randint(*KILL_AFTER_ANSWERS)
    with lock:
        found.progress.wait_for(
            lambda: len(found.answers) + len(found.unexpected) >= target,
            timeout=ROUND_TIMEOUT_SECONDS,
        )
    time.sleep(rng.uniform(*KILL_JITTER_SECONDS))
    hub.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return found


def _stored_entries(database_url: str) -> dict[int, AuditEntry]:
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            return {entry.seq: entry for entry in session.exec(select(AuditEntry)).all()}
    finally:
        engine.dispose()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def test_every_answer_survives_sigkill_and_the_log_verifies(
    database_url: str, tmp_path: Path
) -> None:
    backend = database_url.split(":", 1)[0]
    rng = random.Random(f"{SEED}/{backend}")
    # Three clients of one agency, as fast as they can: above the per-client rate limit, which
    # is not what this test is about.
    hub = LiveHub(tmp_path, database_url=database_url, settings=UNLIMITED)
    hub.demo()
    answers: list[Answer] = []
    unexpected: list[str] = []
    try:
        hub.start()
        with httpx.Client(timeout=30) as http:
            case = open_case(
                hub,
                http,
                agency=agency_headers(hub, http),
                coordinator=coordinator_headers(hub, http),
            )
        for kill in range(KILLS):
            if kill:
                hub.start()
            found = _stream_then_kill(hub, case, rng)
            answers += found.answers
            unexpected += found.unexpected

        # The hub serves again after the last kill, and its next disclosure lands after all
        # the ones clients were already told about.
        hub.start()
        with httpx.Client(timeout=30) as http:
            response = http.post(
                f"{hub.url}/v1/cases/{case}/disclosures",
                headers=agency_headers(hub, http),
                json=ALLOWED,
            )
            assert response.status_code == 200, response.text
            after = response.json()
            key = VerifierKey.from_text(http.get(f"{hub.url}/v1/audit/key").text.strip())
    finally:
        hub.stop()

    assert unexpected == [], "answers other than 200 or 403 while the hub was up"
    disclosures = [a for a in answers if a.kind == "disclosure"]
    assert len(disclosures) >= KILLS, "too few disclosures answered to test anything"
    assert after["receipt"]["index"] > max(a.receipt["index"] for a in disclosures if a.receipt)

    verified = hub.cli("audit", "verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit log verifies" in verified.stdout

    entries = _stored_entries(database_url)
    by_decision = {json.loads(e.body).get("decision_id"): e for e in entries.values()}
    for answer in [*answers, Answer("disclosure", after["decision_id"], after["receipt"])]:
        if answer.receipt is None:
            entry = by_decision.get(answer.decision_id)
            assert entry is not None, f"denial {answer.decision_id} answered but not on the log"
            assert entry.kind == "denial"
            continue
        receipt = answer.receipt
        entry = entries.get(receipt["index"] + 1)
        assert entry is not None, f"disclosure at index {receipt['index']} lost in the crash"
        assert entry.kind == "disclosure"
        assert json.loads(entry.body)["decision_id"] == answer.decision_id
        assert _b64(leaf_hash(entry_data(entry))) == receipt["leaf_hash"]
        # The receipt the client holds still checks out offline against the restarted hub's key.
        assert verify_receipt(receipt, key=key).decision_id == answer.decision_id
