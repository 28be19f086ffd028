"""The latest `hub policy replay` report, kept in the data directory so the DPO's policy page
can show what the last candidate policy would have changed.

One JSON file, replaced atomically on every replay; older reports are not kept (the replay
itself can be rerun at any time against the decision records).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.config import Settings

REPORT_NAME = "policy-replay-latest.json"


def report_path(settings: Settings) -> Path:
    return settings.data_dir / "reports" / REPORT_NAME


def save_latest(*, settings: Settings, report: dict[str, Any], made_at: datetime) -> Path:
    """Write the report (with the time it was made) over the previous one."""
    path = report_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"made_at": made_at.isoformat(), **report}, indent=2))
    os.replace(temporary, path)
    return path


def load_latest(*, settings: Settings) -> dict[str, Any] | None:
    """The latest report, or None if no replay was run or its file is unreadable."""
    try:
        data = json.loads(report_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
