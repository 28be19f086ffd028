"""What one policy decision costs, embedded engine and real OPA side by side.

Run with `python -m tests.policies.bench [runs]`. Both engines are loaded once with the shipped
policies and data, warmed up, then decide `runs` times (default 5000), cycling through the
varied inputs of `tests.policies.inputs.VARIED` (allows and denies, every profile and stage).
The embedded engine is timed end to end through `EmbeddedPolicyEngine.decide` on a typed
`PolicyInput` (serialising, evaluating, validating the decision); OPA is the v1.20.2 Go
evaluator of `opa_bindings`, given the same documents. Nothing is asserted: timings belong
here, not in tests.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from opa_bindings import OpaEngine
from pydantic import ValidationError

import policies
from hub.policy import EmbeddedPolicyEngine, PolicyInput
from tests.policies.inputs import VARIED

T = TypeVar("T")


def timed(decide: Callable[[T], object], inputs: Sequence[T], runs: int) -> list[float]:
    """Seconds per call of `decide`, cycling through `inputs`, after a warm-up round."""
    for item in inputs:
        decide(item)
    samples = []
    cycle = itertools.cycle(inputs)
    gc.collect()
    for _ in range(runs):
        item = next(cycle)
        start = time.perf_counter()
        decide(item)
        samples.append(time.perf_counter() - start)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    """Median, p99 and mean in microseconds."""
    ordered = sorted(samples)
    return {
        "median_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
        "mean_us": statistics.fmean(ordered) * 1e6,
    }


def typed_inputs() -> list[PolicyInput]:
    """The varied documents that are valid policy inputs (the malformed ones are left out)."""
    found = []
    for document in VARIED.values():
        try:
            found.append(PolicyInput.model_validate(document))
        except ValidationError:
            continue
    return found


def main(runs: int = 5000) -> dict[str, Any]:
    inputs = typed_inputs()
    documents = [policy_input.to_json_dict() for policy_input in inputs]
    with EmbeddedPolicyEngine.from_policies() as engine:
        embedded = summary(timed(engine.decide, inputs, runs))
    opa = OpaEngine()
    try:
        for path, text in policies.policy_modules():
            opa.add_policy(path, text)
        opa.add_data(policies.policy_data())
        real = summary(
            timed(lambda d: opa.eval_document("hub.decision.result", d), documents, runs)
        )
    finally:
        opa.close()
    return {"inputs": len(inputs), "runs": runs, "embedded": embedded, "opa": real}


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
    print(f"{result['runs']} decisions over {result['inputs']} varied inputs")
    print(f"{'engine':<34} {'median µs':>10} {'p99 µs':>10} {'mean µs':>10}")
    for name, label in (
        ("embedded", "embedded (regorus VM, decide())"),
        ("opa", "OPA v1.20.2 (opa_bindings)"),
    ):
        row = result[name]
        print(
            f"{label:<34} {row['median_us']:>10.1f} {row['p99_us']:>10.1f} {row['mean_us']:>10.1f}"
        )
