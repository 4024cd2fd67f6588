"""Public pages that are not the widget or the donation flow: health and the demo article."""

from __future__ import annotations

import os

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import db
from ..services.demo import DEMO_SLUG
from .context import ctx
from .embed import describe


async def healthz(request: Request) -> Response:
    """Liveness and database reachability; says whether the widget is serving a stale snapshot."""
    context = ctx(request)
    widget = describe(context.snapshots)
    try:
        await run_in_threadpool(db.ping, context.engine)
    except SQLAlchemyError:
        body = {
            "status": "degraded",
            "database": "unreachable",
            "widget": widget,
            "worker": os.getpid(),
        }
        return JSONResponse(body, status_code=503, headers={"cache-control": "no-store"})
    body = {"status": "ok", "database": "ok", "widget": widget, "worker": os.getpid()}
    return JSONResponse(body, headers={"cache-control": "no-store"})


async def demo_article(request: Request) -> Response:
    """A stand-in news article embedding the bar exactly as a host site would."""
    context = ctx(request)
    body = context.jinja.get_template("demo.html").render(
        slug=DEMO_SLUG, test_mode=context.settings.test_mode_payments
    )
    return HTMLResponse(body)


async def metrics(request: Request) -> Response:
    """Prometheus exposition. Campaign gauges come from the snapshot: no database work."""
    context = ctx(request)
    snapshot = context.snapshots.current
    if snapshot is not None:
        for campaign in snapshot.campaigns.values():
            context.metrics.raised.labels(campaign.slug, campaign.currency).set(campaign.raised)
            context.metrics.donors.labels(campaign.slug).set(campaign.donors)
    context.metrics.snapshot_rebuilds.set(context.snapshots.rebuilds)
    context.metrics.snapshot_rebuild_seconds.set(context.snapshots.last_rebuild_seconds)
    body, media_type = context.metrics.exposition()
    return Response(body, media_type=media_type, headers={"cache-control": "no-store"})


async def favicon(_request: Request) -> Response:
    # Browsers ask on every page; an empty answer cached for a day keeps logs and consoles clean.
    return Response(status_code=204, headers={"cache-control": "public, max-age=86400"})


async def home(_request: Request) -> Response:
    return RedirectResponse("/demo", status_code=307)


routes = [
    Route("/", home),
    Route("/healthz", healthz),
    Route("/demo", demo_article),
    Route("/metrics", metrics),
    Route("/favicon.ico", favicon),
]
