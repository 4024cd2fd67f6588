"""Nothing but the bar ever goes through nginx's cache. The walk is over the app's own route
table (so a route added later is covered the day it lands), anonymous and signed in, every
method, each request twice: never a cache status, the origin sees both, and nothing is stored.
The widget's URLs are not in the route table (a fast path answers them before routing)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from starlette.routing import Route

from fundgoal import db
from fundgoal.config import Secret, Settings
from fundgoal.web.app import create_app
from tests.conftest import TEST_SECRET_KEY

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Edge, Origin, cache_status

pytestmark = pytest.mark.slow

# Values for path parameters: real ones where the app has them, so pages answer 200 rather
# than 404 (the cache decision must not depend on the status, but a 200 is the real case).
SAMPLES = {
    "slug": "demo",
    "name": "admin.css",
    "entry_id": "1",
    "session_id": "cs_test_walk",
    "token": "walk-token",
}
# Named by the issue and the public contract; some may not exist yet (then the origin's 404
# must not be cached either), and they stay covered when they arrive.
NAMED = [
    ("GET", "/admin"),
    ("GET", "/admin/login"),
    ("POST", "/admin/login"),
    ("GET", "/donate/demo"),
    ("POST", "/donate/demo"),
    ("GET", "/donate/demo/thanks?session_id=cs_test_walk"),
    ("POST", "/webhooks/stripe"),
    ("GET", "/donor"),
    ("POST", "/donor"),
    ("GET", "/donor/walk-token"),
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]


def route_table(origin: Origin) -> list[tuple[str, str]]:
    """(method, concrete path) for every route create_app registers (HEAD rides with GET)."""
    settings = Settings(
        database_url=origin.database_url,
        env="test",
        public_url=f"https://127.0.0.1:{origin.edge_port}",
        secret_key=Secret(TEST_SECRET_KEY),
    )
    engine = db.make_engine(origin.database_url)
    try:
        app = create_app(settings, engine=engine)
    finally:
        engine.dispose()
    walk = []
    for route in app.routes:
        assert isinstance(route, Route), f"extend this walk to {type(route).__name__}"
        path = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLES.get(m.group(1), "walk"), route.path)
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            walk.append((method, path))
    return walk


def every_route(origin: Origin) -> list[tuple[str, str]]:
    walk = route_table(origin)
    return walk + [pair for pair in NAMED if pair not in walk]


def sign_in(client: httpx.Client) -> None:
    page = client.get("/admin/login")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = client.post(
        "/admin/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


@pytest.fixture(params=["anonymous", "signed in"])
def reader(request: pytest.FixtureRequest, edge: Edge) -> Iterator[httpx.Client]:
    with edge.new_client() as client:
        if request.param == "signed in":
            sign_in(client)
        yield client
        if request.param == "signed in":  # the walk's POSTs carry no CSRF token: still in
            assert client.get("/admin", follow_redirects=False).status_code == 200


def test_the_walk_covers_the_private_areas(origin: Origin) -> None:
    walked = route_table(origin)
    for method, prefix in [
        ("GET", "/admin/"),
        ("POST", "/admin/"),
        ("GET", "/donate/"),
        ("POST", "/donate/"),
        ("POST", "/webhooks/"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
    ]:
        assert any(m == method and p.startswith(prefix) for m, p in walked), (method, prefix)


def test_no_route_but_the_bar_is_ever_cached(edge: Edge, reader: httpx.Client) -> None:
    for method, path in every_route(edge.origin):

        def seen() -> int:
            return sum(e.method == method for e in edge.tap.exchanges(path))  # noqa: B023

        before = seen()
        answers = [
            reader.request(method, path, data={"walk": "1"} if method == "POST" else None)
            for _ in range(2)
        ]
        for answer in answers:
            assert cache_status(answer) is None, (method, path, cache_status(answer))
            assert answer.status_code < 500, (method, path, answer.status_code)
        assert seen() - before == 2, f"{method} {path}: the origin did not see both requests"
    assert edge.cached_urls() == set()
