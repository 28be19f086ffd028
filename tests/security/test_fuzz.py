"""API fuzzing inside the normal test run (few examples per operation); `make fuzz` runs the
same with many more (`HUB_FUZZ_EXAMPLES`)."""

from __future__ import annotations

import os

from hub.api.ratelimit import RateLimiter, TokenRateLimits
from tests.api.conftest import Hub
from tests.security.fuzzing import fuzz
from tests.security.roles import app_of, callers, panel_records

EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "4"))


def test_no_operation_fails_under_fuzzing(hub: Hub) -> None:
    # Thousands of calls from one client would otherwise meet the rate limit (tested apart).
    app_of(hub).state.rate_limiter = RateLimiter(per_minute=10**9, burst=10**9)
    app_of(hub).state.token_rate_limits = TokenRateLimits(
        per_client=RateLimiter(per_minute=10**9, burst=10**9),
        per_address=RateLimiter(per_minute=10**9, burst=10**9),
    )
    ids = panel_records(hub)
    findings = fuzz(app_of(hub), callers=callers(hub), ids=ids, max_examples=EXAMPLES)
    report = "\n\n".join(f"{f.operation}\n{f.report}" for f in findings)
    assert findings == [], report
