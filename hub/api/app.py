"""The FastAPI application. Nothing is built at import time: call `create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from hub import web
from hub.api import docs, errors
from hub.api.access_log import AccessLog
from hub.api.headers import SecurityHeaders
from hub.api.limits import RequestLimits
from hub.api.ratelimit import RateLimiter, TokenRateLimits
from hub.api.routes import (
    access_requests,
    audit,
    auth,
    break_glass,
    cases,
    disclosures,
    identities,
    notifications,
    oversight,
    permissions,
    workflow,
)
from hub.api.state import HubState
from hub.bootstrap import open_existing
from hub.config import Settings
from hub.policy import EmbeddedPolicyEngine, PolicyEngine, RemoteOpaPolicyEngine
from hub.services import audit_writer
from hub.services.sources import ConnectorRegistry


def create_app(state: HubState) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Bounds the handler threads, and with them the per-thread policy VMs (see Settings).
        to_thread.current_default_thread_limiter().total_tokens = state.settings.request_threads
        # The audit writer (group commit, timed checkpoints) lives as long as the app.
        audit_writer.writer_for(
            engine=state.engine,
            settings=state.settings,
            keyring=state.keyring,
            clock=lambda: state.clock(),
        )
        yield
        audit_writer.close_for(state.engine)
        state.close()

    app = FastAPI(
        title="Inter-agency hub",
        version="0.1.0",
        summary="Policy-checked, pseudonymised, audited sharing between referral-panel agencies",
        lifespan=lifespan,
        # /docs is served by hub.api.docs from local assets (no CDN, no inline script).
        docs_url=None,
        redoc_url=None,
    )
    docs.install(app)
    app.state.hub = state
    app.state.rate_limiter = RateLimiter.from_settings(state.settings)
    app.state.token_rate_limits = TokenRateLimits.from_settings(state.settings)
    errors.install(app)
    for module in (
        auth,
        cases,
        permissions,
        disclosures,
        audit,
        notifications,
        access_requests,
        break_glass,
        workflow,
        identities,
        oversight,
    ):
        app.include_router(module.router)
    # The web UI for people (sign-in, /panel, /dpo); after errors.install, whose handlers it
    # extends with error pages for its own paths.
    web.install(app)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=state.settings.max_body_bytes,
        form_prefixes=web.FORM_PREFIXES,
    )
    # Added late, so it wraps everything: even a 413 from RequestLimits carries the headers.
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog)
    return app


def policy_engine(settings: Settings) -> PolicyEngine:
    """The embedded engine, compiled once; or a remote OPA server when `HUB_OPA_URL` is set."""
    if settings.opa_url:
        token = settings.opa_token.get_secret_value() if settings.opa_token else None
        return RemoteOpaPolicyEngine.from_url(
            settings.opa_url, timeout=settings.opa_timeout_seconds, token=token
        )
    return EmbeddedPolicyEngine.from_policies(timeout=settings.policy_timeout_seconds)


def state_from_settings(settings: Settings) -> HubState:
    """Open the hub's stores and prepare the policy decision point once."""
    opened = open_existing(settings)
    return HubState(
        settings=settings,
        engine=opened.engine,
        keyring=opened.keyring,
        policy=policy_engine(settings),
        connectors=ConnectorRegistry.from_settings(settings),
    )


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and `hub serve`."""
    return create_app(state_from_settings(Settings()))
