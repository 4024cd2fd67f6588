"""The app factory: explicit routes and middleware lists, built from Settings.

`create_app(settings)` is all a test, a worker or the CLI needs. Route modules each export a
`routes` list; this module only assembles them, so reading it shows the whole HTTP surface.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from ..config import Settings, load_settings
from ..db import make_engine
from ..payments import Gateway
from ..payments.stripe import StripeGateway
from ..payments.testmode import TestModeGateway
from . import admin, donate, errors, openapi, pages, webhooks
from .context import AppContext
from .embed import WidgetFastPath
from .middleware import BodyLimit, Metrics, RequestContext, RequestLimits, SecurityHeaders

log = logging.getLogger("fundgoal.web")


def create_app(
    settings: Settings, *, engine: Engine | None = None, payments: Gateway | None = None
) -> Starlette:
    context = AppContext.build(
        settings,
        engine
        or make_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        ),
    )
    # Without a Stripe key outside production, donations go through the local test checkout.
    gateway = payments or (
        TestModeGateway(settings.public_url)
        if settings.test_mode_payments
        else StripeGateway(settings)
    )

    routes: list[BaseRoute] = [
        *pages.routes,
        *openapi.routes,
        *donate.routes,
        *webhooks.routes,
        *admin.routes,
    ]
    middleware: list[Middleware] = [
        Middleware(RequestLimits),
        Middleware(Metrics, metrics=context.metrics),
        # Then the widget's URLs, answered from memory before any routing or per-request work.
        Middleware(WidgetFastPath, keeper=context.snapshots, settings=settings),
        Middleware(RequestContext),
        Middleware(SecurityHeaders, settings=settings),
        # After the headers, so a 413 still carries them.
        Middleware(BodyLimit),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(context.snapshots.refresh)
        poller = asyncio.create_task(_poll_snapshots(context))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            # Cancelling the task does not stop a refresh already running in a worker thread.
            await run_in_threadpool(context.snapshots.close)
            if engine is None:  # we made it, we close it
                context.engine.dispose()

    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=errors.handlers,
        lifespan=lifespan,
    )
    app.state.ctx = context
    app.state.payments = gateway
    return app


async def _poll_snapshots(context: AppContext) -> None:
    """Ask the database, off the request path, whether any worker changed a campaign."""
    interval = context.settings.snapshot_check_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(context.snapshots.refresh)
        except Exception:  # never let the poller die: the widget would freeze silently
            log.exception("snapshot poller failed")


def app_from_environment() -> Starlette:
    """Entry point for uvicorn's worker processes (`--workers N` imports by name)."""
    return create_app(load_settings())
