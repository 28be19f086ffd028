"""The embedded policy decision point: real decisions, concurrency and failing closed."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import regorus
from pydantic import ValidationError

import policies
from hub.policy import EmbeddedPolicyEngine, PolicyDecision, PolicyEngineError, PolicyInput
from hub.policy import engine as engine_module
from tests.policies.conftest import MakeInput
from tests.policies.inputs import CONSENT, GRANT, NOW, base_document, merge

SECRET = "SECRET-PERSON-DATA"


def codes(decision: PolicyDecision) -> set[str]:
    return {reason.code for reason in decision.reasons}


def assert_denied(decision: PolicyDecision, code: str) -> None:
    assert decision.allow is False
    assert decision.permitted_categories == []
    assert decision.legal_basis is None
    assert decision.obligations == []
    assert code in codes(decision)


# --------------------------------------------------------------------------- allow


def test_allow_with_consent(engine: EmbeddedPolicyEngine, make_input: MakeInput) -> None:
    decision = engine.decide(make_input())
    assert decision.allow is True
    assert decision.permitted_categories == ["contact", "identity"]
    assert decision.legal_basis == "consent"
    assert decision.obligations == ["redact_third_parties"]
    assert codes(decision) == {"covered_by_consent"}
    assert decision.revision == engine.revision == policies.revision()


def test_allow_with_grant(engine: EmbeddedPolicyEngine, make_input: MakeInput) -> None:
    decision = engine.decide(
        make_input({"request": {"categories": ["education"]}, "consents": [], "grants": [GRANT]})
    )
    assert decision.allow is True
    assert decision.permitted_categories == ["education"]
    assert decision.legal_basis == "public_task"
    assert [r.message for r in decision.reasons] == [
        "grant grant-1 covers category education under public_task"
    ]


def test_allow_with_consent_and_grant(engine: EmbeddedPolicyEngine, make_input: MakeInput) -> None:
    decision = engine.decide(
        make_input({"request": {"categories": ["identity", "education"]}, "grants": [GRANT]})
    )
    assert decision.allow is True
    assert decision.permitted_categories == ["education", "identity"]
    assert decision.legal_basis == "public_task"
    assert codes(decision) == {"covered_by_consent", "covered_by_grant"}


def test_times_in_other_zones_are_compared_in_utc(
    engine: EmbeddedPolicyEngine, make_input: MakeInput
) -> None:
    # 13:00 at +01:00 is 12:00 UTC, exactly when this consent ends: so it has ended.
    ends_now = merge(CONSENT, {"valid_until": "2026-11-28T13:00:00+01:00"})
    decision = engine.decide(make_input({"consents": [ends_now]}))
    assert_denied(decision, "category_not_covered")
    ends_later = merge(CONSENT, {"valid_until": "2026-11-28T13:00:01+01:00"})
    assert engine.decide(make_input({"consents": [ends_later]})).allow is True


# --------------------------------------------------------------------------- deny

DENIALS: dict[str, dict[str, Any]] = {
    "not_panel_member": {"requester": {"panels": ["panel-2"]}},
    "unknown_purpose": {"request": {"purpose": "curiosity"}},
    "purpose_not_allowed_at_stage": {"case": {"stage": "screening"}},
    "unknown_category": {"request": {"categories": ["identity", "religion"]}},
    "category_not_allowed_for_purpose": {
        "request": {"categories": ["identity", "health"]},
        "consents": [merge(CONSENT, {"categories": ["identity", "health"]})],
    },
    "no_categories": {"request": {"categories": []}},
    "category_not_covered": {"consents": []},
    "mixed_legal_basis": {
        "request": {"categories": ["education", "social_care"]},
        "consents": [],
        "grants": [
            merge(GRANT, {"categories": ["education"]}),
            merge(
                GRANT,
                {"id": "grant-2", "categories": ["social_care"], "legal_basis": "legal_obligation"},
            ),
        ],
    },
}


@pytest.mark.parametrize("code", sorted(DENIALS))
def test_each_deny_reason(engine: EmbeddedPolicyEngine, make_input: MakeInput, code: str) -> None:
    assert_denied(engine.decide(make_input(DENIALS[code])), code)


@pytest.mark.parametrize(
    "patch",
    [
        {"grants": [merge(GRANT, {"expires_at": NOW})]},
        {"grants": [merge(GRANT, {"expires_at": "2026-11-28T11:59:59Z"})]},
        {"grants": [merge(GRANT, {"not_before": "2026-11-28T12:00:01Z"})]},
        {"grants": [merge(GRANT, {"state": "revoked"})]},
        {"grants": [merge(GRANT, {"agency": "agency-school"})]},
        {"grants": [merge(GRANT, {"purposes": ["intervention_planning"]})]},
    ],
    ids=["expired", "long-expired", "not-yet", "revoked", "other-agency", "other-purpose"],
)
def test_grant_that_does_not_apply_is_denied(
    engine: EmbeddedPolicyEngine, make_input: MakeInput, patch: dict[str, Any]
) -> None:
    document = merge({"request": {"categories": ["education"]}, "consents": []}, patch)
    assert_denied(engine.decide(make_input(document)), "category_not_covered")


@pytest.mark.parametrize(
    "consent",
    [
        merge(CONSENT, {"state": "withdrawn"}),
        merge(CONSENT, {"valid_until": NOW}),
        merge(CONSENT, {"valid_from": "2026-11-28T12:00:01Z"}),
        merge(CONSENT, {"recipients": ["agency-school"]}),
        merge(CONSENT, {"categories": ["identity"]}),
    ],
    ids=["withdrawn", "ended", "not-yet", "other-recipient", "one-category-missing"],
)
def test_consent_that_does_not_apply_is_denied(
    engine: EmbeddedPolicyEngine, make_input: MakeInput, consent: dict[str, Any]
) -> None:
    assert_denied(engine.decide(make_input({"consents": [consent]})), "category_not_covered")


# --------------------------------------------------------------------------- missing input


def _without(document: dict[str, Any], *path: str) -> dict[str, Any]:
    node = document
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return document


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (("case", "panel"), "not_panel_member"),
        (("requester", "panels"), "not_panel_member"),
        (("requester", "agency"), "category_not_covered"),
        (("request", "purpose"), "unknown_purpose"),
        (("request", "categories"), "no_categories"),
        (("case", "stage"), "purpose_not_allowed_at_stage"),
        (("consents",), "category_not_covered"),
        (("now",), "category_not_covered"),
    ],
    ids=lambda value: ".".join(value) if isinstance(value, tuple) else value,
)
def test_missing_input_field_denies(
    engine: EmbeddedPolicyEngine, path: tuple[str, ...], code: str
) -> None:
    # The typed PolicyInput would refuse these, so they go in as raw documents, as a replayed
    # or hand-built input could.
    assert_denied(engine.decide_document(_without(base_document(), *path)), code)


def test_empty_document_denies(engine: EmbeddedPolicyEngine) -> None:
    decision = engine.decide_document({})
    assert_denied(decision, "not_panel_member")
    assert codes(decision) == {"not_panel_member", "unknown_purpose", "no_categories"}


@pytest.mark.parametrize(
    "patch",
    [
        {"consents": "all"},
        {"consents": [merge(CONSENT, {"valid_from": 20260101})]},
        {"consents": [merge(CONSENT, {"recipients": "agency-police"})]},
        {"requester": {"panels": "panel-1"}},
        {"now": None},
    ],
    ids=["consents-string", "time-number", "recipients-string", "panels-string", "now-null"],
)
def test_malformed_document_never_allows(
    engine: EmbeddedPolicyEngine, patch: dict[str, Any]
) -> None:
    try:
        decision = engine.decide_document(merge(base_document(), patch))
    except PolicyEngineError:
        return  # the hub denies on this too
    assert decision.allow is False


# --------------------------------------------------------------------------- input model


def test_policy_input_writes_times_as_utc_with_z(make_input: MakeInput) -> None:
    policy_input = make_input(
        {"now": "2026-11-28T13:30:00.5+01:30", "consents": [merge(CONSENT, {"valid_until": None})]}
    )
    document = policy_input.to_json_dict()
    assert document["now"] == "2026-11-28T12:00:00.500000Z"
    assert document["consents"][0]["valid_from"] == "2026-01-01T00:00:00Z"
    assert document["consents"][0]["valid_until"] is None
    assert policy_input.now == datetime(2026, 11, 28, 12, 0, 0, 500000, tzinfo=UTC)


def test_policy_input_refuses_naive_times() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        PolicyInput.model_validate(merge(base_document(), {"now": "2026-11-28T12:00:00"}))


def test_policy_input_accepts_datetimes() -> None:
    now = datetime(2026, 11, 28, 7, 0, tzinfo=timezone(timedelta(hours=-5)))
    policy_input = PolicyInput.model_validate(merge(base_document(), {"now": now}))
    assert policy_input.to_json_dict()["now"] == NOW


# --------------------------------------------------------------------------- threads


def test_decide_from_eight_threads(engine: EmbeddedPolicyEngine, make_input: MakeInput) -> None:
    cases = [(make_input(), True)] + [(make_input(patch), False) for patch in DENIALS.values()]
    expected = [(engine.decide(i), allow) for i, allow in cases]
    assert [d.allow for d, _ in expected] == [allow for _, allow in cases]
    start = threading.Barrier(8)

    def worker(offset: int) -> list[bool]:
        start.wait()
        results = []
        for n in range(40):
            index = (offset + n) % len(cases)
            results.append(engine.decide(cases[index][0]) == expected[index][0])
        return results

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(worker, range(8)))
    assert all(all(results) for results in outcomes)
    assert sum(len(results) for results in outcomes) == 320


def test_engine_made_in_one_thread_is_used_and_closed_from_others(make_input: MakeInput) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        engine = pool.submit(EmbeddedPolicyEngine.from_policies).result()
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert pool.submit(engine.decide, make_input()).result().allow is True
        pool.submit(engine.close).result()
    with pytest.raises(PolicyEngineError, match="closed"):
        engine.decide(make_input())


def test_forgotten_engine_stops_its_thread() -> None:
    engine = EmbeddedPolicyEngine.from_policies()
    thread = engine._worker._thread
    del engine
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


# --------------------------------------------------------------------------- failing closed

DENY_ON_EMPTY = """package hub.decision

result := {
	"allow": false,
	"permitted_categories": [],
	"legal_basis": null,
	"obligations": [],
	"reasons": [{"code": "empty", "message": "empty input"}],
} if not input.now
"""


def injected(branch: str, **kwargs: Any) -> EmbeddedPolicyEngine:
    """An engine whose policy denies an empty input (so it starts) and runs `branch` else."""
    return EmbeddedPolicyEngine(
        modules=[("hub/decision.rego", DENY_ON_EMPTY + branch)],
        data={},
        revision="test-revision",
        **kwargs,
    )


@pytest.fixture
def secret_input(make_input: MakeInput) -> PolicyInput:
    return make_input({"request": {"justification": SECRET}})


@pytest.mark.parametrize(
    ("branch", "match"),
    [
        (
            'result := {"allow": time.parse_rfc3339_ns("not a time") > 0} if input.now',
            "policy evaluation raised RuntimeError",
        ),
        (
            'result := {"allow": "true", "permitted_categories": ["identity"], '
            '"legal_basis": "consent", "obligations": [], "reasons": []} if input.now',
            r"allow: bool_type",
        ),
        (
            'result := {"allow": 1, "permitted_categories": ["identity"], '
            '"legal_basis": "consent", "obligations": [], "reasons": []} if input.now',
            r"allow: bool_type",
        ),
        ("result := 7 if input.now", "is a int, not an object"),
        ("result := [input.request.justification] if input.now", "is a list, not an object"),
        ("", "is undefined"),
        (
            'result := {"allow": true, "permitted_categories": [], "legal_basis": "consent", '
            '"obligations": [], "reasons": []} if input.now',
            "an allow must permit at least one category",
        ),
        (
            'result := {"allow": false, "permitted_categories": ["identity"], '
            '"legal_basis": null, "obligations": [], "reasons": [{"code": "x", "message": "x"}]}'
            " if input.now",
            "a deny must permit no category",
        ),
        (
            'result := {"allow": false, "permitted_categories": [], "legal_basis": null, '
            '"obligations": [], "reasons": []} if input.now',
            "a deny must give at least one reason",
        ),
        (
            'result := {"allow": false, "permitted_categories": [], "legal_basis": null, '
            '"obligations": [], "reasons": [{"code": "x", "message": input.request.justification}],'
            ' "extra": input.request.justification} if input.now',
            "extra: extra_forbidden",
        ),
        (
            'result := {"allow": false, "permitted_categories": [], "legal_basis": null, '
            '"obligations": [], "reasons": [{"code": "x", "message": 5}]} if input.now',
            r"reasons\.0\.message: string_type",
        ),
        (
            'result := {"allow": false, "permitted_categories": [], "legal_basis": null, '
            '"obligations": [], "reasons": [{"code": "x", "message": "x"}], "revision": "forged"}'
            " if input.now",
            "must not set the revision",
        ),
    ],
    ids=[
        "raises",
        "allow-string",
        "allow-number",
        "number",
        "list",
        "undefined",
        "allow-nothing",
        "deny-with-categories",
        "deny-without-reason",
        "extra-key",
        "reason-not-string",
        "sets-revision",
    ],
)
def test_broken_policy_raises_policy_engine_error(
    secret_input: PolicyInput, branch: str, match: str
) -> None:
    with injected(branch) as engine, pytest.raises(PolicyEngineError, match=match) as caught:
        engine.decide(secret_input)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None


def test_engine_keeps_working_after_a_failed_decision(
    make_input: MakeInput, secret_input: PolicyInput
) -> None:
    branch = (
        'result := {"allow": time.parse_rfc3339_ns(input.now) > 0} if {\n'
        "\tinput.now\n"
        f'\tinput.request.justification == "{SECRET}"\n'
        "}\n"
    )
    with injected(branch) as engine:
        with pytest.raises(PolicyEngineError, match="permitted_categories: missing"):
            engine.decide(secret_input)
        with pytest.raises(PolicyEngineError, match="undefined"):
            engine.decide(make_input())


@pytest.mark.parametrize(
    ("modules", "match"),
    [
        ([("hub/decision.rego", "package hub.decision\nresult := {\n")], "failed to load"),
        (
            [("hub/decision.rego", 'package hub.decision\nresult := time.parse_rfc3339_ns("x")\n')],
            "startup check raised RuntimeError",
        ),
        (
            [("hub/decision.rego", "package hub.decision\nresult := {} if input.x\n")],
            "result data.hub.decision.result is undefined",
        ),
        (
            [("hub/decision.rego", "package hub.decision\nother := 1\n")],
            "startup check raised RuntimeError",
        ),
        (
            [
                (
                    "hub/decision.rego",
                    'package hub.decision\nresult := {"allow": true, "permitted_categories": '
                    '["identity"], "legal_basis": "consent", "obligations": [], "reasons": []}\n',
                )
            ],
            "allows an empty input",
        ),
    ],
    ids=["syntax", "bad-call", "undefined", "no-rule", "allows-empty"],
)
def test_policy_that_cannot_start_raises(modules: list[tuple[str, str]], match: str) -> None:
    with pytest.raises(PolicyEngineError, match=match):
        EmbeddedPolicyEngine(modules=modules, data={}, revision="test-revision")


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Holds every evaluation until the event is set (set again at teardown)."""
    released = threading.Event()
    original = engine_module._Evaluate.__call__

    def held(self: Any, engine: Any) -> Any:
        released.wait(timeout=10)
        return original(self, engine)

    monkeypatch.setattr(engine_module._Evaluate, "__call__", held)
    yield released
    released.set()


def test_slow_decision_times_out(make_input: MakeInput, gate: threading.Event) -> None:
    gate.set()  # let the startup check through
    engine = EmbeddedPolicyEngine.from_policies(timeout=0.05)
    try:
        gate.clear()
        with pytest.raises(PolicyEngineError, match=r"policy evaluation took longer than 0\.05 s"):
            engine.decide(make_input())
        gate.set()
        assert engine.decide(make_input()).allow is True
    finally:
        gate.set()
        engine.close()


def test_tiny_timeout_fails_closed(make_input: MakeInput, gate: threading.Event) -> None:
    gate.set()
    with EmbeddedPolicyEngine.from_policies(timeout=1e-6) as engine:
        gate.clear()
        with pytest.raises(PolicyEngineError, match="took longer than"):
            engine.decide(make_input())
        gate.set()


class FakePanic(BaseException):
    """Stands in for pyo3's PanicException, which is a BaseException."""


@pytest.mark.parametrize(
    ("error", "match"),
    [
        (FakePanic("boom " + SECRET), "policy evaluation raised FakePanic"),
        (RuntimeError("boom " + SECRET), "policy evaluation raised RuntimeError"),
        (MemoryError(), "policy evaluation raised MemoryError"),
    ],
    ids=["panic", "runtime", "memory"],
)
def test_engine_exception_raises_policy_engine_error(
    monkeypatch: pytest.MonkeyPatch,
    engine: EmbeddedPolicyEngine,
    make_input: MakeInput,
    error: BaseException,
    match: str,
) -> None:
    def fail(self: Any, engine: Any) -> Any:
        raise error

    monkeypatch.setattr(engine_module._Evaluate, "__call__", fail)
    with pytest.raises(PolicyEngineError, match=match) as caught:
        engine.decide(make_input())
    assert SECRET not in str(caught.value)


def test_real_panic_from_the_wrong_thread_raises_policy_engine_error(
    monkeypatch: pytest.MonkeyPatch, make_input: MakeInput
) -> None:
    # An engine made on this thread and used on the worker raises pyo3's PanicException.
    foreign = regorus.Engine()
    with EmbeddedPolicyEngine.from_policies() as engine:

        def use_foreign(self: Any, engine: Any) -> Any:
            return foreign.eval_rule("data.hub.decision.result")

        monkeypatch.setattr(engine_module._Evaluate, "__call__", use_foreign)
        with pytest.raises(PolicyEngineError, match="raised PanicException"):
            engine.decide(make_input())
        monkeypatch.undo()
        assert engine.decide(make_input()).allow is True


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_interrupts_are_not_swallowed(
    monkeypatch: pytest.MonkeyPatch,
    engine: EmbeddedPolicyEngine,
    make_input: MakeInput,
    error: type[BaseException],
) -> None:
    def interrupt(self: Any, engine: Any) -> Any:
        raise error()

    monkeypatch.setattr(engine_module._Evaluate, "__call__", interrupt)
    with pytest.raises(error):
        engine.decide(make_input())


def test_unserialisable_document_raises(engine: EmbeddedPolicyEngine) -> None:
    with pytest.raises(PolicyEngineError, match="not JSON-serialisable"):
        engine.decide_document({"now": object()})


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        EmbeddedPolicyEngine.from_policies(timeout=timeout)


def test_close_twice_is_fine(make_input: MakeInput) -> None:
    engine = EmbeddedPolicyEngine.from_policies()
    engine.close()
    engine.close()
    with pytest.raises(PolicyEngineError, match="the policy engine is closed"):
        engine.decide(make_input())


def test_unreadable_shipped_policies_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_data() -> dict[str, Any]:
        raise policies.PolicyDataError("hub/config/data.json is not valid JSON")

    monkeypatch.setattr(policies, "policy_data", broken_data)
    with pytest.raises(PolicyEngineError, match=r"cannot be read: hub/config/data\.json"):
        EmbeddedPolicyEngine.from_policies()
