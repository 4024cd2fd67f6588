"""Pure ASGI middleware (never Starlette's base HTTP middleware class: it costs most of the
widget's throughput).

- RequestContext: a request id per request (kept from X-Request-ID when sane), echoed in the
  response and attached to every log line written while the request runs.
- Metrics: Prometheus counters and a latency histogram, labelled by route family (a fixed,
  small set: a path never becomes a label), served at /metrics.
- SecurityHeaders: defaults for pages the Starlette app renders (the widget fast path sets its
  own): CSP by area, frame-ancestors, Referrer-Policy, nosniff, HSTS when the site is https.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..logs import request_id

_SANE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        rid = incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id.set(rid)
        raw = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", raw)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def route_family(path: str) -> str:
    """A bounded label for a path: never the path itself (slugs would explode cardinality)."""
    if path.startswith("/api/campaigns"):
        return "/api/campaigns/{slug}" if path.count("/") > 2 else "/api/campaigns"
    if path.startswith("/widget."):
        return "/widget.js"
    if path.startswith("/campaigns/"):
        return "/campaigns/{slug}/badge.svg"
    if path.startswith("/embed/"):
        return "/embed/{slug}"
    if path.startswith("/donate/"):
        return "/donate/{slug}/thanks" if path.endswith("/thanks") else "/donate/{slug}"
    if path.startswith("/webhooks/"):
        return "/webhooks/stripe"
    if path.startswith("/admin"):
        return "/admin"
    if path in ("/", "/demo", "/healthz", "/metrics", "/openapi.json"):
        return path
    return "other"


class MetricSet:
    """The app's Prometheus metrics, in a registry of its own (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "fundgoal_http_requests_total",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fundgoal_http_request_duration_seconds",
            "Time to answer, by route family",
            ["route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "fundgoal_webhook_events_total",
            "Provider events by type and outcome",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.raised = Gauge(
            "fundgoal_campaign_raised_minor",
            "Raised per campaign (minor units)",
            ["campaign", "currency"],
            registry=self.registry,
        )
        self.donors = Gauge(
            "fundgoal_campaign_donors", "Donors per campaign", ["campaign"], registry=self.registry
        )
        self.snapshot_rebuilds = Gauge(
            "fundgoal_snapshot_rebuilds",
            "Widget snapshot rebuilds in this process",
            registry=self.registry,
        )
        self.snapshot_rebuild_seconds = Gauge(
            "fundgoal_snapshot_rebuild_seconds",
            "Duration of the last snapshot rebuild",
            registry=self.registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, app: ASGIApp, metrics: MetricSet) -> None:
        self.app = app
        self.metrics = metrics
        # Labelled children, looked up once per (route, method, status) rather than per request:
        # labels() takes a lock and builds a key each time, on the widget's hot path.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    def _record(self, path: str, method: str, status: int, seconds: float) -> None:
        route = route_family(path)
        key = (route, method, status)
        counter = self._counters.get(key)
        if counter is None:
            if len(self._counters) > 1000:  # methods are client-chosen: keep the cache bounded
                self._counters.clear()
            counter = self._counters[key] = self.metrics.requests.labels(route, method, str(status))
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = self.metrics.latency.labels(route)
        counter.inc()
        timer.observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self._record(scope["path"], scope["method"], status, time.perf_counter() - started)


def _csp(*parts: str) -> bytes:
    return "; ".join(parts).encode()


class SecurityHeaders:
    """Adds security headers a response did not set itself."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        own = settings.public_url
        # Admin pages: no inline script or style at all.
        self.admin_csp = _csp(
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"frame-src 'self' {own}",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
        )
        # Public pages (donation form, thanks, demo article): the article loads the widget like a
        # host site would, and the donation form's redirect goes on to Stripe Checkout.
        self.page_csp = _csp(
            "default-src 'self'",
            f"script-src 'self' {own}",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: {own}",
            f"connect-src 'self' {own}",
            f"frame-src 'self' {own}",
            "frame-ancestors 'none'",
            "form-action 'self' https://checkout.stripe.com",
            "base-uri 'none'",
            "object-src 'none'",
        )
        self.hsts = b"max-age=31536000; includeSubDomains" if settings.https else None

    def _defaults(self, path: str) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]
        if path.startswith("/admin"):
            headers.append((b"content-security-policy", self.admin_csp))
            headers.append((b"cache-control", b"no-store"))
        elif not path.startswith(
            ("/api/", "/webhooks/", "/metrics", "/healthz", "/embed/", "/campaigns/", "/widget.")
        ):
            headers.append((b"content-security-policy", self.page_csp))
            headers.append((b"x-frame-options", b"DENY"))
        if self.hsts:
            headers.append((b"strict-transport-security", self.hsts))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = self._defaults(scope["path"])

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in defaults if h[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, add)


# Request bodies, by area. Form parsing (urlencoded) reads the whole body into memory, so without
# a cap one anonymous POST to the donation form or the login page could hold gigabytes.
PUBLIC_BODY_LIMIT = 64 * 1024  # the donation form is a few hundred bytes; its message ≤ 1000 chars
ADMIN_BODY_LIMIT = 8 * 1024 * 1024  # the CSV import (2 MB) is posted twice: upload, then confirm
_TOO_LARGE = b"Request body too large.\n"


class BodyLimit:
    """413 for request bodies over the area's limit: at once from Content-Length, else while
    streaming (the app then sees a disconnect and whatever it answers is dropped).
    /webhooks/ keeps its own limit and JSON answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def limit_for(path: str) -> int | None:
        if path.startswith("/webhooks/"):
            return None
        return ADMIN_BODY_LIMIT if path.startswith("/admin") else PUBLIC_BODY_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > limit:
            await _send_413(send)
            return
        seen = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    if not started:
                        await _send_413(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # we already answered 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


async def _send_413(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(_TOO_LARGE)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _TOO_LARGE})


MAX_TARGET_BYTES = 8 * 1024  # path + query: the longest real URL here is a batched widget query
MAX_HEADER_BYTES = 32 * 1024  # all header names and values together (browsers send ~1-4 KB)
MAX_HEADER_COUNT = 100


class RequestLimits:
    """414 for an over-long URL and 431 for oversized or too many headers, before anything else
    runs. httptools (uvicorn's fast parser) enforces no size limit of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if len(scope["path"]) + len(scope["query_string"]) > MAX_TARGET_BYTES:
                await _refuse(send, 414, b"The address is too long.\n")
                return
            if (
                len(headers) > MAX_HEADER_COUNT
                or sum(len(k) + len(v) for k, v in headers) > MAX_HEADER_BYTES
            ):
                await _refuse(send, 431, b"The request headers are too large.\n")
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
