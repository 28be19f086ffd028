"""Who is looking at a page, as FastAPI dependencies.

- `CurrentPerson`: anyone signed in; otherwise the browser is sent to /sign-in.
- `DpoPerson`, `CoordinatorPerson`: that role only; anyone else gets the same 404 page as for a
  page that does not exist, so the response never hints that the page is there.
- `CsrfChecked`: every POST form; a missing or wrong `csrf_token` field gets a 403 page before
  the handler runs, so nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from hub.api.deps import NowDep, SessionDep, SettingsDep
from hub.errors import Forbidden, NotFound
from hub.services.auth import principal_for_user
from hub.services.principals import COORDINATOR, DPO, Principal
from hub.web import session as web_session

CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """Raised by the dependencies below; `hub.web.pages` answers it with a redirect."""

    def __init__(self, reason: str, *, next_path: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.next_path = next_path


@dataclass(frozen=True)
class WebPerson:
    username: str
    role: str
    panel_id: str | None
    # What the existing services take as the caller.
    principal: Principal
    csrf_token: str = field(repr=False)
    session_id: str = field(repr=False)


def _next_path(request: Request) -> str | None:
    # Only a page fetched with GET is worth returning to after signing in.
    if request.method != "GET":
        return None
    path = request.url.path
    return path + ("?" + request.url.query if request.url.query else "")


def get_person(
    request: Request, session: SessionDep, settings: SettingsDep, now: NowDep
) -> WebPerson:
    """The signed-in person; raises SignInRequired when there is none."""
    cookie = request.cookies.get(web_session.cookie_name(settings))
    if not cookie:
        raise SignInRequired("signed_out", next_path=_next_path(request))
    try:
        active = web_session.resume(session=session, settings=settings, session_id=cookie, now=now)
    except web_session.SessionEnded as ended:
        raise SignInRequired(ended.reason, next_path=_next_path(request)) from None
    user = active.user
    person = WebPerson(
        username=user.username,
        role=user.role,
        panel_id=user.panel_id,
        principal=principal_for_user(user),
        csrf_token=web_session.csrf_token(active.session_id),
        session_id=active.session_id,
    )
    # Error pages rendered later in this request show the person's navigation.
    request.state.web_person = person
    return person


CurrentPerson = Annotated[WebPerson, Depends(get_person)]


def _page_not_found() -> NotFound:
    return NotFound("page not found")


def get_dpo(person: CurrentPerson) -> WebPerson:
    if person.role != DPO:
        raise _page_not_found()
    return person


def get_coordinator(person: CurrentPerson) -> WebPerson:
    if person.role != COORDINATOR or person.panel_id is None:
        raise _page_not_found()
    return person


DpoPerson = Annotated[WebPerson, Depends(get_dpo)]
CoordinatorPerson = Annotated[WebPerson, Depends(get_coordinator)]


async def check_csrf(request: Request, person: CurrentPerson) -> WebPerson:
    """Raises Forbidden unless the form carries the session's token."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not web_session.tokens_match(person.csrf_token, given):
        raise Forbidden("the form's security token is missing or wrong; reload the page")
    return person


CsrfChecked = Annotated[WebPerson, Depends(check_csrf)]
