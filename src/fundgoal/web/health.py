"""Liveness and readiness, for load balancers and orchestrators (README, Monitoring).

- `GET /livez`: 200 while this process can serve. It answers from the event loop alone: a
  database outage does not make it fail, because restarting a worker that still serves the bars
  from its last snapshot would only take that away.
- `GET /readyz` (and `/healthz`, its older name): 200 when the database answers and the widget
  snapshot is fresh; 503 with the reasons otherwise, so a load balancer sends readers and
  Stripe to a worker that can do everything.

Neither touches the database: readiness is what the snapshot poller last learnt (it asks every
`snapshot_check_seconds`), so a probe answers at once even while the database hangs, and probes
add no load to it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import db
from ..services.snapshots import SnapshotKeeper
from .context import AppContext, ctx

log = logging.getLogger("fundgoal.web")

NO_STORE = {"cache-control": "no-store"}


def check_schema(context: AppContext) -> None:
    """Once the database answers, ask which migrations it lacks (once per worker). `serve` on
    PostgreSQL never applies them (`fundgoal db upgrade` does), and may have started while the
    database was away, unable to check."""
    if context.schema_pending is not None or not context.snapshots.status().healthy:
        return
    try:
        pending = db.pending_migrations(context.engine)
    except SQLAlchemyError:
        return  # asked again at the next poll
    context.schema_pending = pending
    if pending:
        log.error(
            "the database schema is behind (%d migrations pending): run `fundgoal db upgrade`; "
            "/readyz answers 503 until then",
            len(pending),
        )


def widget_status(keeper: SnapshotKeeper) -> dict[str, Any]:
    status = keeper.status()
    return {
        "loaded": status.loaded,
        "healthy": status.healthy,
        "source": status.source,
        "stale": status.stale,
        "age_seconds": None if status.age_seconds is None else round(status.age_seconds, 3),
        "error": status.error,
    }


def not_ready(context: AppContext) -> list[str]:
    """Why this worker should not get traffic; empty when it should."""
    status = context.snapshots.status()
    reasons = []
    if status.error is not None:
        reasons.append(f"the database is unreachable ({status.error})")
    if not status.loaded:
        reasons.append("the widget snapshot is not loaded")
    elif status.source == "disk":
        reasons.append("serving the widget snapshot saved on disk: the database has not answered")
    elif status.stale:
        assert status.age_seconds is not None
        reasons.append(
            f"the widget snapshot was last confirmed {status.age_seconds:.1f} s ago "
            f"(more than {context.snapshots.max_age:g} s)"
        )
    if context.schema_pending:
        reasons.append(
            f"the database schema is behind ({len(context.schema_pending)} migrations "
            "pending): run `fundgoal db upgrade`"
        )
    elif context.schema_pending is None and not reasons:
        reasons.append("the database schema has not been checked yet")
    return reasons


async def livez(request: Request) -> Response:
    status = ctx(request).snapshots.status()
    body = {"status": "alive", "serving_widget": status.loaded, "worker": os.getpid()}
    return JSONResponse(body, headers=NO_STORE)


async def readyz(request: Request) -> Response:
    context = ctx(request)
    reasons = not_ready(context)
    status = context.snapshots.status()
    body = {
        "status": "degraded" if reasons else "ok",
        "database": "ok" if status.healthy and not status.stale else "unreachable",
        "reasons": reasons,
        "widget": widget_status(context.snapshots),
        "worker": os.getpid(),
    }
    return JSONResponse(body, status_code=503 if reasons else 200, headers=NO_STORE)


routes = [
    Route("/livez", livez),
    Route("/readyz", readyz),
    Route("/healthz", readyz),  # the older name, kept: readiness, not liveness
]
