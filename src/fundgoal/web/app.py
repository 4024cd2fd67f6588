"""The app factory: explicit routes and middleware lists, built from Settings.

`create_app(settings)` is all a test, a worker or the CLI needs. Route modules each export a
`routes` list; this module only assembles them, so reading it shows the whole HTTP surface.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator

import anyio.to_thread
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
from . import admin, donate, errors, health, openapi, pages, webhooks
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
            timeouts=settings.db_timeouts,
        ),
    )
    # Without a Stripe key outside production, donations go through the local test checkout.
    gateway = payments or (
        TestModeGateway(settings.public_url)
        if settings.test_mode_payments
        else StripeGateway(settings)
    )

    routes: list[BaseRoute] = [
        *health.routes,
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
        # Bounded by the engine's timeouts: a worker starts (degraded) whatever the database does.
        await run_in_threadpool(_start, context)
        poller = _Poller(context)
        try:
            yield
        finally:
            context.snapshots.close()
            await poller.stop()
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


def _start(context: AppContext) -> None:
    keeper = context.snapshots
    keeper.refresh()
    if keeper.current is None and keeper.load_saved():
        log.warning("the database is unreachable: this worker starts degraded (/readyz 503)")
    elif keeper.current is None:
        log.warning(
            "the database is unreachable and no saved widget snapshot could be used: the bars "
            "answer 503 until the database answers"
        )
    health.check_schema(context)


class _Poller:
    """Asks the database, off the request path, whether any worker changed a campaign."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.idle = threading.Event()  # no tick running in a thread
        self.idle.set()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        interval = self.context.settings.snapshot_check_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                # Abandoned if cancelled (shutdown): stop() decides how long to wait for it.
                await anyio.to_thread.run_sync(self._tick, abandon_on_cancel=True)
            except Exception:  # never let the poller die: the widget would freeze silently
                log.exception("snapshot poller failed")

    def _tick(self) -> None:
        # Marked from the thread itself: a tick cancelled before its thread picked it up
        # never runs, and must not be waited for.
        self.idle.clear()
        try:
            if self.context.snapshots.closed:
                return  # shutdown began first: no new database work
            self.context.snapshots.refresh()
            self.context.snapshots.persist()
            health.check_schema(self.context)
        finally:
            self.idle.set()

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        # A tick in flight normally ends within milliseconds: let it, so its connection goes
        # back to a pool that still exists. If the database was not answering, do not wait:
        # the thread ends within its own bounds and discards its connection itself.
        if not self.idle.is_set() and self.context.snapshots.status().healthy:
            await anyio.to_thread.run_sync(self.idle.wait, self.context.snapshots.wait_seconds)


def app_from_environment() -> Starlette:
    """Entry point for uvicorn's worker processes (`--workers N` imports by name)."""
    return create_app(load_settings())
