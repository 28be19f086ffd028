"""The embedded policy decision point: real decisions, concurrency and failing closed."""

from __future__ import annotations

import gc
import json
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
from tests.policies.inputs import (
    BREAK_GLASS,
    CONSENT,
    GRANT,
    NOW,
    VARIED,
    base_document,
    merge,
    without,
)

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


def test_consent_and_grant_each_covering_part_is_mixed(
    engine: EmbeddedPolicyEngine, make_input: MakeInput
) -> None:
    # A disclosure records one legal basis that covers every category, so consent for one
    # category and a grant for another must be asked for separately.
    decision = engine.decide(
        make_input({"request": {"categories": ["identity", "education"]}, "grants": [GRANT]})
    )
    assert_denied(decision, "mixed_legal_basis")


def test_allow_with_the_profiles_public_task(
    engine: EmbeddedPolicyEngine, make_input: MakeInput
) -> None:
    decision = engine.decide(
        make_input(
            {
                "case": {"stage": "referred"},
                "request": {"purpose": "screening", "categories": ["behavioural_indicators"]},
                "consents": [],
            }
        )
    )
    assert decision.allow is True
    assert decision.legal_basis == "public_task"
    assert codes(decision) == {"covered_by_profile"}


def test_allow_break_glass(engine: EmbeddedPolicyEngine, make_input: MakeInput) -> None:
    decision = engine.decide(make_input(BREAK_GLASS))
    assert decision.allow is True
    assert decision.permitted_categories == ["identity"]
    assert decision.legal_basis == "vital_interests"
    assert decision.obligations == ["dpo_review", "redact_third_parties"]
    assert codes(decision) == {"covered_by_break_glass"}


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
    "unknown_profile": {"case": {"profile": "unknown"}},
    "unknown_purpose": {"request": {"purpose": "curiosity"}},
    "purpose_not_allowed_at_stage": {
        "case": {"stage": "screening"},
        "request": {"categories": ["behavioural_indicators"]},
    },
    "unknown_category": {"request": {"categories": ["identity", "religion"]}},
    "category_not_allowed_for_purpose": {
        "request": {"categories": ["identity", "health"]},
        "consents": [merge(CONSENT, {"categories": ["identity", "health"], "explicit": True})],
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
    "identity_before_assessment": {
        "case": {"stage": "screening"},
        "request": {"purpose": "screening"},
    },
    "category_not_released_at_stage": {
        "request": {"purpose": "safeguarding_emergency", "categories": ["health"]},
    },
    "not_designated_agency": {"case": {"designated_agencies": ["agency-school"]}},
    "not_lead_or_assisting_agency": {
        "case": {"stage": "intervention", "designated_agencies": []},
        "request": {"purpose": "intervention_planning"},
    },
    "case_closed": {"case": {"stage": "signposted"}},
    "special_category_needs_explicit_consent": {
        "case": {"stage": "intervention"},
        "request": {"purpose": "intervention_planning", "categories": ["health"]},
        "consents": [merge(CONSENT, {"categories": ["health"]})],
    },
    "minor_consent_not_from_parent": {"case": {"subject_age": 15, "subject_is_minor": True}},
    "break_glass_wrong_purpose": merge(BREAK_GLASS, {"request": {"purpose": "risk_assessment"}}),
    "break_glass_needs_justification": merge(BREAK_GLASS, {"request": {"justification": "urgent"}}),
    "break_glass_category_not_allowed": merge(
        BREAK_GLASS, {"request": {"categories": ["identity", "police_contact"]}}
    ),
    "break_glass_expired": merge(
        BREAK_GLASS, {"request": {"break_glass_since": "2026-11-25T12:00:00Z"}}
    ),
    "safeguarding_emergency_needs_break_glass": merge(
        BREAK_GLASS, {"request": {"break_glass": False}}
    ),
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


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (("case", "panel"), "not_panel_member"),
        (("case", "profile"), "unknown_profile"),
        (("requester", "panels"), "not_panel_member"),
        (("requester", "agency"), "category_not_covered"),
        (("request", "purpose"), "unknown_purpose"),
        (("request", "categories"), "no_categories"),
        (("request", "break_glass"), "no_rule_allowed"),
        (("case", "stage"), "purpose_not_allowed_at_stage"),
        (("case", "designated_agencies"), "not_designated_agency"),
        (("case", "subject_age"), "minor_consent_not_from_parent"),
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
    assert_denied(engine.decide_document(without(base_document(), *path)), code)


def test_empty_document_denies(engine: EmbeddedPolicyEngine) -> None:
    decision = engine.decide_document({})
    assert_denied(decision, "not_panel_member")
    assert codes(decision) == {
        "not_panel_member",
        "unknown_profile",
        "unknown_purpose",
        "no_categories",
    }


@pytest.mark.parametrize(
    "patch",
    [
        {"consents": "all"},
        {"consents": [merge(CONSENT, {"valid_from": 20260101})]},
        {"consents": [merge(CONSENT, {"recipients": "agency-police"})]},
        {"requester": {"panels": "panel-1"}},
        {"now": None},
        {"now": "yesterday"},
        {"case": {"subject_age": "30"}},
        {"case": {"designated_agencies": "agency-police"}},
        {"request": {"break_glass": "false"}},
        merge(BREAK_GLASS, {"request": {"break_glass_since": "last week"}}),
        merge(BREAK_GLASS, {"request": {"break_glass": 1}}),
        {
            "case": {"stage": "intervention"},
            "request": {"purpose": "intervention_planning", "categories": ["health"]},
            "consents": [merge(CONSENT, {"explicit": "true", "categories": ["health"]})],
        },
    ],
    ids=[
        "consents-string",
        "time-number",
        "recipients-string",
        "panels-string",
        "now-null",
        "now-garbled",
        "age-string",
        "designated-string",
        "break-glass-string",
        "since-garbled",
        "break-glass-number",
        "explicit-string",
    ],
)
def test_malformed_document_never_allows(
    engine: EmbeddedPolicyEngine, patch: dict[str, Any]
) -> None:
    try:
        decision = engine.decide_document(merge(base_document(), patch))
    except PolicyEngineError:
        return  # the hub denies on this too
    assert decision.allow is False


@pytest.mark.parametrize("name", sorted(VARIED))
def test_reasons_are_sorted_by_code_then_message(engine: EmbeddedPolicyEngine, name: str) -> None:
    # The policy sorts the reason objects themselves; this is the order it promises (and
    # the conformance tests hold OPA to the same list).
    try:
        decision = engine.decide_document(VARIED[name])
    except PolicyEngineError:
        return  # a malformed document the hub denies anyway
    pairs = [(reason.code, reason.message) for reason in decision.reasons]
    assert pairs == sorted(set(pairs))
    assert pairs


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


def test_policy_input_json_text_matches_the_document(make_input: MakeInput) -> None:
    # decide() sends model_dump_json() to the engine, while the audit log keeps
    # to_json_dict(): both must write every time the same way, as UTC with Z.
    policy_input = make_input(
        {
            "now": "2026-11-28T13:30:00.000001+01:30",
            "request": {"break_glass_since": "2026-11-25T12:00:00-05:00"},
            "consents": [merge(CONSENT, {"valid_until": "2027-01-01T00:00:00+00:00"})],
            "grants": [GRANT],
        }
    )
    text = policy_input.model_dump_json()
    assert json.loads(text) == policy_input.to_json_dict()
    assert '"now":"2026-11-28T12:00:00.000001Z"' in text
    assert '"break_glass_since":"2026-11-25T17:00:00Z"' in text
    assert '"valid_until":"2027-01-01T00:00:00Z"' in text
    assert "+00:00" not in text


def test_policy_input_refuses_naive_times() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        PolicyInput.model_validate(merge(base_document(), {"now": "2026-11-28T12:00:00"}))


def test_policy_input_accepts_datetimes() -> None:
    now = datetime(2026, 11, 28, 7, 0, tzinfo=timezone(timedelta(hours=-5)))
    policy_input = PolicyInput.model_validate(merge(base_document(), {"now": now}))
    assert policy_input.to_json_dict()["now"] == NOW


def test_policy_input_json_is_the_policy_document(make_input: MakeInput) -> None:
    # decide() sends model_dump_json(); the audit log and the tests use to_json_dict().
    since = "2026-11-28T13:00:00+01:00"
    policy_input = make_input(merge(BREAK_GLASS, {"request": {"break_glass_since": since}}))
    assert json.loads(policy_input.model_dump_json()) == policy_input.to_json_dict()
    assert policy_input.to_json_dict()["request"]["break_glass_since"] == NOW


@pytest.mark.parametrize(
    "path",
    [
        ("case", "profile"),
        ("case", "subject_age"),
        ("case", "subject_is_minor"),
        ("case", "designated_agencies"),
        ("case", "lead_agency"),
        ("request", "break_glass"),
        ("request", "break_glass_since"),
        ("request", "justification"),
        ("requester", "panels"),
        ("consents",),
        ("grants",),
    ],
    ids=lambda path: ".".join(path),
)
def test_policy_input_has_no_silent_defaults(path: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError, match="Field required"):
        PolicyInput.model_validate(without(base_document(), *path))


@pytest.mark.parametrize("field", ["given_by", "explicit", "valid_until"])
def test_consent_input_has_no_silent_defaults(field: str) -> None:
    consent = {k: v for k, v in CONSENT.items() if k != field}
    with pytest.raises(ValidationError, match="Field required"):
        PolicyInput.model_validate(merge(base_document(), {"consents": [consent]}))


@pytest.mark.parametrize(
    "patch",
    [
        {"case": {"subject_age": "30"}},
        {"case": {"subject_age": 30.5}},
        {"case": {"subject_age": -1}},
        {"case": {"subject_age": True}},
        {"case": {"subject_is_minor": "no"}},
        {"request": {"break_glass": 0}},
        {"request": {"break_glass": "false"}},
        {"consents": [merge(CONSENT, {"explicit": "yes"})]},
        {"case": {"unknown": 1}},
    ],
    ids=[
        "age-string",
        "age-float",
        "age-negative",
        "age-bool",
        "minor-string",
        "break-glass-int",
        "break-glass-string",
        "explicit-string",
        "extra-field",
    ],
)
def test_policy_input_is_strict(patch: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PolicyInput.model_validate(merge(base_document(), patch))


def test_unknown_age_is_accepted_and_read_as_a_minor(
    engine: EmbeddedPolicyEngine, make_input: MakeInput
) -> None:
    policy_input = make_input({"case": {"subject_age": None}})
    assert policy_input.case.subject_age is None
    assert_denied(engine.decide(policy_input), "minor_consent_not_from_parent")


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


def test_each_thread_gets_its_own_vm_made_there(
    monkeypatch: pytest.MonkeyPatch, make_input: MakeInput
) -> None:
    made: list[int] = []
    original = engine_module._ProgramLoader.__call__

    def loader(self: Any) -> Any:
        made.append(threading.get_ident())
        return original(self)

    engine = EmbeddedPolicyEngine.from_policies()
    try:
        monkeypatch.setattr(engine_module._ProgramLoader, "__call__", loader)
        results: list[bool] = []

        def use() -> None:
            results.append(engine.decide(make_input()).allow)
            results.append(engine.decide(make_input()).allow)
            results.append(engine._vms.owned_here())

        threads = [threading.Thread(target=use) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        engine.close()
    assert results == [True, True, True] * 3
    # One VM per thread, made on that thread, none for threads that never decided.
    assert len(made) == 3
    assert threading.get_ident() not in made


def test_closed_engine_drops_this_threads_vm(make_input: MakeInput) -> None:
    engine = EmbeddedPolicyEngine.from_policies()
    assert engine._vms.owned_here()  # the startup check ran here
    engine.close()
    assert not engine._vms.owned_here()


def test_forgotten_engine_is_closed() -> None:
    engine = EmbeddedPolicyEngine.from_policies()
    vms = engine._vms
    state = vms._state
    del engine, vms
    gc.collect()
    assert state.closed
    # The next engine made on this thread drops the forgotten one's VM, here.
    with EmbeddedPolicyEngine.from_policies() as other:
        assert other._vms.owned_here()


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
            # The compiled VM leaves a document whose evaluation fails undefined.
            'result := {"allow": time.parse_rfc3339_ns("not a time") > 0} if input.now',
            "is undefined",
        ),
        (
            "result := 1 if input.now\nresult := 2 if input.now",
            "is undefined",
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
        ('result := "<undefined>" if input.now', "is undefined"),
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
        "conflict",
        "allow-string",
        "allow-number",
        "number",
        "undefined-string",
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
            "result data.hub.decision.result is undefined",
        ),
        (
            [("hub/decision.rego", "package hub.decision\nresult := {} if input.x\n")],
            "result data.hub.decision.result is undefined",
        ),
        (
            [("hub/decision.rego", "package hub.decision\nother := 1\n")],
            r"the policies failed to load \(RuntimeError\)",
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
    original = engine_module._execute

    def held(vm: Any, input_json: str) -> str:
        released.wait(timeout=0.2)
        return original(vm, input_json)

    monkeypatch.setattr(engine_module, "_execute", held)
    yield released
    released.set()


def test_slow_decision_fails_closed(make_input: MakeInput, gate: threading.Event) -> None:
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


def test_tiny_timeout_fails_closed(make_input: MakeInput) -> None:
    with (
        EmbeddedPolicyEngine.from_policies(timeout=1e-9) as engine,
        pytest.raises(PolicyEngineError, match="took longer than"),
    ):
        engine.decide(make_input())


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
    def fail(vm: Any, input_json: str) -> str:
        raise error

    monkeypatch.setattr(engine_module, "_execute", fail)
    with pytest.raises(PolicyEngineError, match=match) as caught:
        engine.decide(make_input())
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None


def test_failing_vm_creation_raises_policy_engine_error(
    monkeypatch: pytest.MonkeyPatch, make_input: MakeInput
) -> None:
    engine = EmbeddedPolicyEngine.from_policies()

    def fail(self: Any) -> Any:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(engine_module._ProgramLoader, "__call__", fail)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(engine.decide, make_input())
            with pytest.raises(PolicyEngineError, match="evaluation raised RuntimeError") as caught:
                future.result()
        assert SECRET not in str(caught.value)
    finally:
        engine.close()


def test_real_panic_from_the_wrong_thread_raises_policy_engine_error(
    monkeypatch: pytest.MonkeyPatch, make_input: MakeInput
) -> None:
    # An engine made on another thread and used on this one raises pyo3's PanicException. It
    # is kept, and dropped, on the thread that made it.
    made, done = threading.Event(), threading.Event()
    box: list[Any] = []

    def own() -> None:
        box.append(regorus.Engine())
        made.set()
        done.wait(timeout=10)
        box.clear()

    owner = threading.Thread(target=own)
    owner.start()
    try:
        assert made.wait(timeout=10)
        with EmbeddedPolicyEngine.from_policies() as engine:

            def use_foreign(vm: Any, input_json: str) -> str:
                result: str = box[0].eval_rule_as_json("data.hub.decision.result")
                return result

            monkeypatch.setattr(engine_module, "_execute", use_foreign)
            with pytest.raises(PolicyEngineError, match="raised PanicException"):
                engine.decide(make_input())
            monkeypatch.undo()
            assert engine.decide(make_input()).allow is True
    finally:
        done.set()
        owner.join(timeout=10)


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_interrupts_are_not_swallowed(
    monkeypatch: pytest.MonkeyPatch,
    engine: EmbeddedPolicyEngine,
    make_input: MakeInput,
    error: type[BaseException],
) -> None:
    def interrupt(vm: Any, input_json: str) -> str:
        raise error()

    monkeypatch.setattr(engine_module, "_execute", interrupt)
    with pytest.raises(error):
        engine.decide(make_input())


def test_unserialisable_document_raises(engine: EmbeddedPolicyEngine) -> None:
    with pytest.raises(PolicyEngineError, match="not JSON-serialisable"):
        engine.decide_document({"now": object()})
    with pytest.raises(PolicyEngineError, match="not JSON-serialisable"):
        engine.decide_document({"now": float("nan")})


def test_unserialisable_data_raises() -> None:
    with pytest.raises(PolicyEngineError, match="policy data is not JSON-serialisable"):
        EmbeddedPolicyEngine(modules=[], data={"x": object()}, revision="r")


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
