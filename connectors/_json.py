"""Turn values read from a source into plain JSON values."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from connectors.errors import ConnectorError


def jsonable(value: Any) -> Any:
    """Return ``value`` as JSON data: dates as ISO text, decimals as numbers, UUIDs as text.

    Raises:
        ConnectorError: "bad_response" for a value with no faithful JSON form (bytes, NaN, ...).
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConnectorError("a column holds a non-finite number", code="bad_response")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConnectorError("a column holds a non-finite number", code="bad_response")
        return int(value) if value == value.to_integral_value() else float(value)
    # datetime is a date subclass, so one isoformat() call serves both.
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    raise ConnectorError(
        f"a column of type {type(value).__name__} cannot be shared as JSON", code="bad_response"
    )
