"""POST /webhooks/stripe: raw body, signature check, then the event applied once.

The answer is 2xx only after the event's transaction committed, and 5xx on anything
unexpected so Stripe retries (with backoff, for up to three days).
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import db
from ..payments import PayloadError, SignatureError
from ..services import stripe_events
from .context import ctx
from .donate import gateway

log = logging.getLogger("fundgoal.web.webhooks")

# Stripe's events are a few KB; the largest (an invoice with many lines) stays well under this.
MAX_BODY = 256 * 1024


def _answer(status: int, error: str, message: str) -> Response:
    return JSONResponse({"error": error, "message": message}, status_code=status)


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None when it is larger than MAX_BODY (checked while streaming)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def stripe_webhook(request: Request) -> Response:
    context = ctx(request)
    secret = context.settings.stripe_webhook_secret.reveal()
    if not secret:
        # 404, not 5xx: nothing is broken, and a sender should not keep retrying.
        return _answer(
            404, "disabled", "STRIPE_WEBHOOK_SECRET is not set: the webhook endpoint is disabled"
        )
    try:
        body = await _read_body(request)
    except ClientDisconnect:
        return _answer(400, "disconnected", "the body did not arrive")
    if body is None:
        return _answer(413, "too_large", f"webhook bodies are at most {MAX_BODY} bytes")
    header = request.headers.get("stripe-signature")
    try:
        outcome = await run_in_threadpool(
            stripe_events.receive, context.engine, gateway(request), body, header, secret
        )
    except SignatureError as exc:
        context.metrics.webhook_events.labels("unverified", "bad_signature").inc()
        return _answer(400, "bad_signature", exc.message)
    except PayloadError as exc:
        context.metrics.webhook_events.labels("unverified", "bad_payload").inc()
        return _answer(400, "bad_payload", exc.message)
    except Exception as exc:
        # Nothing was committed: answer 5xx so Stripe delivers the event again later.
        context.metrics.webhook_events.labels("any", "error").inc()
        reason = db.unavailable(exc)
        if reason is not None:
            log.warning("stripe webhook not processed, Stripe will retry: %s", reason)
            return _answer(503, "unavailable", f"{reason}; the event will be retried")
        log.exception("stripe webhook failed; Stripe will retry")
        return _answer(500, "internal", "the event could not be processed; it will be retried")
    context.metrics.webhook_events.labels(outcome.kind, outcome.status).inc()
    if outcome.changed:
        await context.campaigns_changed()
    return JSONResponse({"status": outcome.status})


routes = [Route("/webhooks/stripe", stripe_webhook, methods=["POST"])]
