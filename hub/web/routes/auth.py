"""Signing in and out, and the start page that sends each role to its own pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hub.api.deps import KeyRingDep, NowDep, SessionDep, SettingsDep
from hub.config import Settings
from hub.errors import Unauthenticated
from hub.services.principals import COORDINATOR, DPO
from hub.web import session as web_session
from hub.web.auth import CSRF_FIELD, CsrfChecked, CurrentPerson
from hub.web.templating import render

router = APIRouter(include_in_schema=False)

_ENDED = {
    "idle": "You were signed out after a period without activity. Please sign in again.",
    "expired": "Your session reached its time limit. Please sign in again.",
}
HOME_BY_ROLE = {DPO: "/dpo/", COORDINATOR: "/panel/"}


def _safe_next(value: str | None) -> str:
    # Only paths on this hub: "//elsewhere" or "https://..." would send the person away.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _cookie_args(settings: Settings) -> dict[str, object]:
    return {
        "path": "/",
        "secure": settings.session_cookie_secure,
        "httponly": True,
        "samesite": "strict",
    }


def _sign_in_page(
    request: Request,
    settings: Settings,
    *,
    status_code: int = 200,
    error: str | None = None,
    notice: str | None = None,
    next_path: str = "/",
    username: str = "",
) -> Response:
    # A fresh pre-session secret per page: the form's token is bound to this browser's cookie.
    secret = web_session.new_sign_in_secret()
    request.state.csrf_token = web_session.sign_in_csrf_token(secret)
    response = render(
        request,
        "sign_in.html",
        {"error": error, "notice": notice, "next_path": next_path, "username": username},
        status_code=status_code,
    )
    response.set_cookie(
        web_session.sign_in_cookie_name(settings),
        secret,
        **_cookie_args(settings),  # type: ignore[arg-type]
    )
    return response


@router.get("/sign-in")
def sign_in_form(
    request: Request,
    settings: SettingsDep,
    next: str | None = None,
    ended: str | None = None,
    signed_out: bool = False,
) -> Response:
    notice = _ENDED.get(ended or "")
    if signed_out:
        notice = "You are signed out."
    return _sign_in_page(request, settings, notice=notice, next_path=_safe_next(next))


@router.post("/sign-in")
def sign_in(
    request: Request,
    session: SessionDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    now: NowDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "/",
) -> Response:
    secret = request.cookies.get(web_session.sign_in_cookie_name(settings))
    if not secret or not web_session.tokens_match(
        web_session.sign_in_csrf_token(secret), csrf_token
    ):
        return _sign_in_page(
            request,
            settings,
            status_code=403,
            error="The form's security token is missing or wrong. Please try again.",
            next_path=_safe_next(next_path),
        )
    try:
        active = web_session.sign_in(
            session=session,
            keyring=keyring,
            settings=settings,
            username=username,
            password=password,
            now=now,
        )
    except Unauthenticated:
        return _sign_in_page(
            request,
            settings,
            status_code=401,
            error="The username or password is wrong.",
            next_path=_safe_next(next_path),
            username=username,
        )
    response = RedirectResponse(_safe_next(next_path), status_code=303)
    response.set_cookie(
        web_session.cookie_name(settings),
        active.session_id,
        **_cookie_args(settings),  # type: ignore[arg-type]
    )
    response.delete_cookie(
        web_session.sign_in_cookie_name(settings),
        **_cookie_args(settings),  # type: ignore[arg-type]
    )
    return response


@router.post("/sign-out")
def sign_out(
    person: CsrfChecked, session: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    web_session.sign_out(session=session, session_id=person.session_id, now=now)
    response = RedirectResponse("/sign-in?signed_out=true", status_code=303)
    response.delete_cookie(
        web_session.cookie_name(settings),
        **_cookie_args(settings),  # type: ignore[arg-type]
    )
    return response


@router.get("/")
def home(request: Request, person: CurrentPerson) -> Response:
    target = HOME_BY_ROLE.get(person.role)
    if target is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "home.html", {})
