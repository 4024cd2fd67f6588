"""Public pages that are not the widget or the donation flow: the demo article, metrics.

(Health, /livez and /readyz, is in health.py.)"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..services.demo import DEMO_SLUG
from .context import ctx


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
    Route("/demo", demo_article),
    Route("/metrics", metrics),
    Route("/favicon.ico", favicon),
]
