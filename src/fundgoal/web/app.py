"""The app factory: explicit routes and middleware lists, built from Settings.

`create_app(settings)` is all a test, a worker or the CLI needs. Route modules each export a
`routes` list; this module only assembles them, so reading it shows the whole HTTP surface.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from ..config import Settings, load_settings
from ..db import make_engine
from . import errors, pages
from .context import AppContext


def create_app(settings: Settings, *, engine: Engine | None = None) -> Starlette:
    context = AppContext.build(settings, engine or make_engine(settings.database_url))

    routes: list[BaseRoute] = [
        *pages.routes,
    ]
    middleware: list[Middleware] = []

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        if engine is None:  # we made it, we close it
            context.engine.dispose()

    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=errors.handlers,
        lifespan=lifespan,
    )
    app.state.ctx = context
    return app


def app_from_environment() -> Starlette:
    """Entry point for uvicorn's worker processes (`--workers N` imports by name)."""
    return create_app(load_settings())
