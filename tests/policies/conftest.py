"""Fixtures for the policy tests: one shared engine and a factory for policy inputs.

`make_input()` starts from a request that the shipped policy allows by consent (police on
panel-1 asking for identity and contact for a risk assessment) and takes patches, so each test
changes exactly one thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hub.policy import EmbeddedPolicyEngine, PolicyInput
from tests.policies.inputs import base_document, merge

MakeInput = Callable[..., PolicyInput]


@pytest.fixture
def make_input() -> MakeInput:
    def make(patch: dict[str, Any] | None = None) -> PolicyInput:
        return PolicyInput.model_validate(merge(base_document(), patch or {}))

    return make


@pytest.fixture(scope="module")
def engine() -> Iterator[EmbeddedPolicyEngine]:
    with EmbeddedPolicyEngine.from_policies() as engine:
        yield engine
