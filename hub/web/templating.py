"""Rendering pages: Jinja2 with autoescaping, and a strict Content-Security-Policy.

Every template extends `base.html` and fills the blocks `title`, `content` and (for page
scripts, loaded from /static or /vendor only) `scripts`. Each page gets `person` (a WebPerson or
None), `csrf_token` (for the hidden `csrf_token` field of every form), `static_url(name)` and
`vendor_url(name)` besides its own context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from hub.api.headers import PAGE_CSP

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
# Front-end libraries installed from the npm registry by `npm ci` (see package.json); only the
# files named here are served, under /vendor/<name>.
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
VENDOR: dict[str, str] = {
    "chart.umd.js": "chart.js/dist/chart.umd.js",
}


def static_url(name: str) -> str:
    return f"/static/{name}"


def vendor_url(name: str) -> str:
    if name not in VENDOR:
        raise KeyError(f"no vendored asset named {name}")
    return f"/vendor/{name}"


def when(value: datetime | None) -> str:
    """A time as people read it on the page, in UTC."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(value: timedelta) -> str:
    """A span like "3 d 4 h" or "25 min"; never negative."""
    seconds = max(0, int(value.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def label(value: str | None) -> str:
    """A vocabulary code as words: "risk_assessment" -> "risk assessment"."""
    return "" if value is None else value.replace("_", " ")


def zip_labels(values: Iterable[str]) -> list[tuple[str, str]]:
    """Codes as (value, words) pairs for a form's options."""
    return [(v, label(v)) for v in values]


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["duration"] = duration
    env.filters["label"] = label
    env.filters["zip_labels"] = zip_labels
    env.globals["static_url"] = static_url
    env.globals["vendor_url"] = vendor_url
    return env


_env = _environment()


def render(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render `template` with the person, the form token and the asset helpers added."""
    person = getattr(request.state, "web_person", None)
    csrf = person.csrf_token if person is not None else getattr(request.state, "csrf_token", "")
    page = _env.get_template(template).render(
        {
            "request": request,
            "person": person,
            "csrf_token": csrf,
            "static_url": static_url,
            "vendor_url": vendor_url,
            **context,
        }
    )
    return HTMLResponse(
        page, status_code=status_code, headers={"content-security-policy": PAGE_CSP}
    )
