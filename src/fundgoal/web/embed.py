"""The widget's hot path, answered from memory by a pure ASGI app in front of the router.

Every article view hits these URLs, so they skip Starlette's routing, middleware stack and
Request objects: the path is matched by hand, the answer is bytes the Snapshot already encoded,
and the headers are a prebuilt list. Everything else falls through to the Starlette app.

  GET /widget.js                   the embed script (short cache, revalidated with its ETag)
  GET /widget.<hash>.js            the same bytes under their content hash (immutable)
  GET /api/campaigns?c=slug:loc,…  batched progress JSON for the loader
  GET /api/campaigns/{slug}        progress JSON (?locale=)
  GET /campaigns/{slug}/badge.svg  the bar as an image (?locale=)
  GET /embed/{slug}                the bar as a server-rendered page
                                   (?locale=&theme=&accent=&compact=)
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..services.snapshots import SnapshotKeeper
from ..widget import BadRequest, EmbedOptions, Encoded, Snapshot, check_slug, resolve_locale
from ..widget_build import built

Headers = list[tuple[bytes, bytes]]

# What this app answers before routing, for the README's route table (tests/test_readme.py);
# tests/web/test_embed.py checks each one is answered here.
PATHS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/widget.js", ("GET",)),
    ("/widget.{hash}.js", ("GET",)),
    ("/api/campaigns", ("GET",)),
    ("/api/campaigns/{slug}", ("GET",)),
    ("/campaigns/{slug}/badge.svg", ("GET",)),
    ("/embed/{slug}", ("GET",)),
)

# Readers' browsers may fetch these from any site; nothing here is private or per-user.
PUBLIC = [
    (b"access-control-allow-origin", b"*"),
    (b"cross-origin-resource-policy", b"cross-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"timing-allow-origin", b"*"),
]
IMMUTABLE = b"public, max-age=31536000, immutable"
# /widget.js is the script itself, not a stub that loads it: one request fewer before the bar
# (README "Round trips"). Five minutes bounds a release's rollout; after that a reader's
# browser keeps using its copy for a day while it revalidates in the background (a 304).
SCRIPT_CACHE = b"public, max-age=300, stale-while-revalidate=86400"


@dataclass(frozen=True)
class Script:
    """The embed script as served (built from widgets/ at start-up), and its gzip form."""

    body: bytes
    gzipped: bytes
    digest: str

    @classmethod
    def load(cls) -> Script:
        body = built().script
        digest = hashlib.blake2b(body, digest_size=6).hexdigest()
        return cls(body, gzip.compress(body, 9, mtime=0), digest)

    @property
    def path(self) -> str:
        return f"/widget.{self.digest}.js"

    def representation(self, accept_encoding: bytes) -> tuple[bytes, bytes, Headers]:
        """Body, strong ETag and encoding headers for a request's Accept-Encoding. Each coding
        has its own tag (a strong validator names exact bytes, RFC 9110 8.8.3)."""
        if b"gzip" in accept_encoding:
            return self.gzipped, f'"{self.digest}-gz"'.encode(), [(b"content-encoding", b"gzip")]
        return self.body, f'"{self.digest}"'.encode(), []


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _matches(if_none_match: bytes | None, etag: bytes) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == b"*":
        return True
    # Weak comparison (RFC 9110 13.1.2): a CDN may hand back W/"…" for our strong tag.
    return any(tag.strip().removeprefix(b"W/") == etag for tag in if_none_match.split(b","))


class WidgetFastPath:
    def __init__(self, app: ASGIApp, keeper: SnapshotKeeper, settings: Settings) -> None:
        self.app = app
        self.keeper = keeper
        self.default_locale = settings.default_locale
        self.script = Script.load()
        self.svg_headers: Headers = [
            (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'")
        ]
        self.embed_headers: Headers = [
            (
                b"content-security-policy",
                b"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                b"base-uri 'none'; form-action 'none'; frame-ancestors "
                + settings.embed_frame_ancestors.encode(),
            ),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]
        self._headers: dict[tuple[bytes, bytes, int], Headers] = {}
        self.api_cache = (
            f"public, max-age={settings.widget_cache_seconds}, "
            f"stale-while-revalidate={settings.widget_stale_seconds}"
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/api/campaigns"):
            await self._api(scope, send, path)
        elif path.startswith("/widget.") and path.endswith(".js"):
            await self._script(scope, send, path)
        elif path.startswith("/campaigns/") and path.endswith("/badge.svg"):
            await self._slugged(scope, send, path[len("/campaigns/") : -len("/badge.svg")], "svg")
        elif path.startswith("/embed/"):
            await self._slugged(scope, send, path[len("/embed/") :], "html")
        else:
            await self.app(scope, receive, send)

    def _query(self, scope: Scope) -> dict[str, str]:
        raw = scope["query_string"]
        if not raw:
            return {}
        try:
            parsed = parse_qs(raw.decode("ascii"), max_num_fields=8, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the query string is malformed") from None
        return {k: v[-1] for k, v in parsed.items()}

    async def _api(self, scope: Scope, send: Send, path: str) -> None:
        try:
            query = self._query(scope)
            snapshot = self._snapshot()
            if snapshot is None:
                await self._unavailable(scope, send)
                return
            if path == "/api/campaigns":
                encoded: Encoded | None = snapshot.batch(query.get("c", ""), self.default_locale)
            elif path.startswith("/api/campaigns/"):
                slug = check_slug(path[len("/api/campaigns/") :])
                locale = resolve_locale(query.get("locale"), self.default_locale)
                encoded = snapshot.json(slug, locale)
            else:
                encoded = None
        except BadRequest as exc:
            await self._error(scope, send, 400, "bad_request", str(exc))
            return
        if encoded is None:
            await self._error(scope, send, 404, "not_found", "no such campaign")
            return
        await self._answer(scope, send, encoded, self.api_cache, [])

    async def _slugged(self, scope: Scope, send: Send, slug: str, form: str) -> None:
        try:
            check_slug(slug)
            query = self._query(scope)
            locale = resolve_locale(query.get("locale"), self.default_locale)
            snapshot = self._snapshot()
            if snapshot is None:
                await self._unavailable(scope, send)
                return
            if form == "svg":
                encoded = snapshot.svg(slug, locale)
                extra = self.svg_headers
            else:
                options = EmbedOptions.parse(
                    query.get("theme"), query.get("accent"), query.get("compact")
                )
                encoded = snapshot.html(slug, locale, options)
                extra = self.embed_headers
        except BadRequest as exc:
            await self._error(scope, send, 400, "bad_request", str(exc))
            return
        if encoded is None:
            await self._error(scope, send, 404, "not_found", "no such campaign")
            return
        await self._answer(scope, send, encoded, self.api_cache, extra)

    async def _script(self, scope: Scope, send: Send, path: str) -> None:
        script = self.script
        if path == "/widget.js":
            # The pinned URL, for those who want it: the content hash names these bytes.
            cache = [(b"cache-control", SCRIPT_CACHE), (b"content-location", script.path.encode())]
        elif path == script.path:
            cache = [(b"cache-control", IMMUTABLE)]
        else:
            # An old hash after a release: send the current script rather than break the page.
            await self._send(
                scope,
                send,
                307,
                [(b"location", script.path.encode()), (b"cache-control", b"no-store"), *PUBLIC],
                b"",
            )
            return
        body, etag, encoding = script.representation(_header(scope, b"accept-encoding") or b"")
        common = [*cache, (b"etag", etag), (b"vary", b"accept-encoding"), *PUBLIC]
        if _matches(_header(scope, b"if-none-match"), etag):
            await self._send(scope, send, 304, common, b"")
            return
        headers = [
            (b"content-type", b"text/javascript; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            *encoding,
            *common,
        ]
        await self._send(scope, send, 200, headers, body)

    def _snapshot(self) -> Snapshot | None:
        return self.keeper.current

    async def _answer(
        self, scope: Scope, send: Send, encoded: Encoded, cache: bytes, extra: Headers
    ) -> None:
        if _matches(_header(scope, b"if-none-match"), encoded.etag):
            not_modified = [(b"etag", encoded.etag), (b"cache-control", cache), *PUBLIC, *extra]
            await self._send(scope, send, 304, not_modified, b"")
            return
        key = (encoded.etag, cache, len(extra))
        headers = self._headers.get(key)
        if headers is None:
            # Built once per answer: the bytes and their headers both come from memory.
            if len(self._headers) > 4096:
                self._headers.clear()
            headers = self._headers[key] = [
                (b"content-type", encoded.media_type),
                (b"content-length", str(len(encoded.body)).encode()),
                (b"etag", encoded.etag),
                (b"cache-control", cache),
                *PUBLIC,
                *extra,
            ]
        await self._send(scope, send, 200, headers, encoded.body)

    async def _error(self, scope: Scope, send: Send, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": code, "message": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            # Short: a campaign created a minute from now should not stay a cached 404.
            (b"cache-control", b"public, max-age=5"),
            *PUBLIC,
        ]
        await self._send(scope, send, status, headers, body)

    async def _unavailable(self, scope: Scope, send: Send) -> None:
        body = b'{"error":"unavailable","message":"progress is not loaded yet; retry shortly"}'
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"retry-after", b"2"),
            *PUBLIC,
        ]
        await self._send(scope, send, 503, headers, body)

    @staticmethod
    async def _send(scope: Scope, send: Send, status: int, headers: Headers, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
