"""An origin answer that sets a cookie is never stored, even on the bar's URLs and even when it
says `public, max-age=60`: nginx refuses to cache a response with Set-Cookie unless told to
ignore it (`proxy_ignore_headers Set-Cookie`), and the shipped config must never say so.

fundgoal's widget never sets a cookie, so a small stand-in origin plays one that does, behind
the shipped config; the same origin's cookie-free answers are stored (the control).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.nginx import Placement, free_port, running_nginx

from tests.browser.serving import serve_app

from .conftest import cache_status, cached_urls, trust

pytestmark = pytest.mark.slow

URL_KINDS = ["/api/campaigns/{}", "/campaigns/{}/badge.svg", "/embed/{}", "/widget.{}.js"]
PLAIN, COOKIE = "0ab1e", "c00c1e"  # hex, so that they fit /widget.<hash>.js too


class CookieOrigin:
    """Every answer is public for 60 s with an ETag; those whose path says so set a cookie."""

    def __init__(self) -> None:
        self.seen: collections.Counter[str] = collections.Counter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.seen[scope["path"]] += 1
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"public, max-age=60"),
            (b"etag", b'"v1"'),
        ]
        if COOKIE in scope["path"]:
            headers.append((b"set-cookie", b"session=s3cr3t-per-reader; Path=/; HttpOnly"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"raised": 1}'})


@pytest.fixture
def stand_in(
    nginx_installed: str, tls: tuple[Path, Path], tmp_path: Path
) -> Iterator[tuple[CookieOrigin, httpx.Client, Path]]:
    origin = CookieOrigin()
    with serve_app(origin, lifespan="off") as base:
        cert, key = tls
        where = Placement(free_port(), int(base.rsplit(":", 1)[1]), tmp_path / "nginx", cert, key)
        with (
            running_nginx(where) as workdir,
            httpx.Client(
                base_url=f"https://127.0.0.1:{where.port}", verify=trust(cert), timeout=30
            ) as client,
        ):
            yield origin, client, workdir


def test_an_answer_with_set_cookie_is_never_stored(
    stand_in: tuple[CookieOrigin, httpx.Client, Path],
) -> None:
    origin, client, workdir = stand_in
    for kind in URL_KINDS:
        plain, cookie = kind.format(PLAIN), kind.format(COOKIE)
        # Control: without a cookie the same kind of answer is stored and served from cache.
        assert [cache_status(client.get(plain)) for _ in range(2)] == ["MISS", "HIT"], plain
        assert "set-cookie" not in client.get(plain).headers
        assert origin.seen[plain] == 1
        # With a cookie: passed to the one reader who asked, never stored, never shared.
        answers = [client.get(cookie) for _ in range(3)]
        assert [cache_status(a) for a in answers] == ["MISS"] * 3, cookie
        assert all("set-cookie" in a.headers for a in answers)
        assert origin.seen[cookie] == 3
    assert cached_urls(workdir) == {kind.format(PLAIN) for kind in URL_KINDS}
