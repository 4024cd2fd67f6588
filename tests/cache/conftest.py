"""A real cache in front: Debian's nginx with the shipped deploy/nginx.conf, in front of a real
`fundgoal serve` (SQLite), with a relay between them that records what the origin sees.

    client --TLS--> nginx (deploy/nginx.conf) --> OriginTap --> fundgoal serve

`origin` and `tap` live for a test module (a module sets WIDGET_CACHE_SECONDS and
WIDGET_STALE_SECONDS to choose the origin's max-age and stale-while-revalidate); `edge` is a fresh nginx with an empty cache for every test, on the port the
origin's FUNDGOAL_PUBLIC_URL names. Without nginx these tests skip with the install command,
except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bench.nginx import Placement, free_port, nginx_binary, running_nginx, self_signed

from fundgoal import db
from fundgoal.services import admins
from fundgoal.services.demo import seed_demo
from tests.conftest import IN_CI, TEST_SECRET_KEY
from tests.factories import make_campaign
from tests.logcheck import register

from .tap import OriginTap, running_tap

ADMIN_EMAIL = "editor@example.org"
ADMIN_PASSWORD = "nginx in front, horse battery"
register(ADMIN_PASSWORD)
CAMPAIGNS = ("alpha", "beta")  # besides "demo": URLs a test can be the first to ask for
START_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def nginx_installed() -> str:
    binary = nginx_binary()
    if binary is None:
        if IN_CI:
            pytest.fail("CI must run the cache tests but nginx is missing (apt-get install nginx)")
        pytest.skip("Debian nginx not installed: apt-get install nginx")
    return binary


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@dataclass(frozen=True)
class Origin:
    port: int  # fundgoal serve, straight
    edge_port: int  # where nginx will listen: the public URL
    database_url: str
    max_age: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _seed(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with db.transaction(engine) as session:
        seed_demo(session)
        for slug in CAMPAIGNS:
            make_campaign(session, slug=slug)
        admins.create_admin(session, ADMIN_EMAIL, ADMIN_PASSWORD, actor="test")
    engine.dispose()


@pytest.fixture(scope="module")
def origin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, nginx_installed: str
) -> Iterator[Origin]:
    tmp = tmp_path_factory.mktemp("origin")
    max_age = int(getattr(request.module, "WIDGET_CACHE_SECONDS", 15))
    stale = int(getattr(request.module, "WIDGET_STALE_SECONDS", 60))
    database_url = f"sqlite:///{tmp / 'fundgoal.db'}"
    _seed(database_url)
    port, edge_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNDGOAL_", "STRIPE_"))}
    env.update(
        FUNDGOAL_DATABASE_URL=database_url,
        FUNDGOAL_ENV="test",
        FUNDGOAL_SECRET_KEY=TEST_SECRET_KEY,
        # Readers reach the app through nginx: that is its public address.
        FUNDGOAL_PUBLIC_URL=f"https://127.0.0.1:{edge_port}",
        FUNDGOAL_WIDGET_CACHE_SECONDS=str(max_age),
        FUNDGOAL_WIDGET_STALE_SECONDS=str(stale),
        # Set explicitly: the proxy (here the relay in front of the app) is on 127.0.0.1.
        FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fundgoal", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc, log)
        yield Origin(port, edge_port, database_url, max_age, log)
    finally:
        proc.terminate()
        proc.wait(timeout=40)


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"fundgoal serve did not start:\n{log.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def tap(origin: Origin) -> Iterator[OriginTap]:
    with running_tap(origin.port) as relay:
        yield relay


@dataclass
class Edge:
    """One nginx in front of the origin, with a client that trusts its certificate."""

    base: str
    workdir: Path
    tap: OriginTap
    origin: Origin
    client: httpx.Client
    tls: ssl.SSLContext

    def get(self, path: str, **headers: str) -> httpx.Response:
        return self.client.get(path, headers=headers)

    def cached_urls(self) -> set[str]:
        return cached_urls(self.workdir)

    def new_client(self, **options: object) -> httpx.Client:
        return httpx.Client(base_url=self.base, verify=self.tls, timeout=30, **options)  # type: ignore[arg-type]


def cached_urls(workdir: Path) -> set[str]:
    """The URLs nginx has stored on disk: each cache file records its key (the default,
    `$scheme$proxy_host$request_uri`, so `http://fundgoal/api/...`) on a KEY line."""
    urls = set()
    for path in (workdir / "cache").rglob("*"):
        if path.is_file():
            found = re.search(rb"\nKEY: http://fundgoal([^\n]*)\n", path.read_bytes())
            assert found, f"a cache file without the expected key: {path}"
            urls.add(found.group(1).decode())
    return urls


def trust(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    return context


@pytest.fixture
def edge(origin: Origin, tap: OriginTap, tls: tuple[Path, Path], tmp_path: Path) -> Iterator[Edge]:
    cert, key = tls
    where = Placement(origin.edge_port, tap.port, tmp_path / "nginx", cert, key)
    tap.reset()
    context = trust(cert)
    with running_nginx(where) as workdir:
        base = f"https://127.0.0.1:{origin.edge_port}"
        with httpx.Client(base_url=base, verify=context, timeout=30) as client:
            yield Edge(base, workdir, tap, origin, client, context)


def cache_status(response: httpx.Response) -> str | None:
    return response.headers.get("x-cache-status")


def wait_for(condition: object, timeout: float, what: str) -> None:
    """Poll `condition()` until true, failing after `timeout` seconds (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
