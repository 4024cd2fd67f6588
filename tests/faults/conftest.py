"""Fault fixtures: the PostgreSQL test database reached through a FaultProxy (tests/faults/proxy.py).

`direct` is the test database without the proxy (to look at what was really written);
`proxied_engine` is what the app under test uses, and dies when the proxy is cut."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, make_url

from fundgoal import db
from tests.conftest import clean_postgres
from tests.faults.proxy import FaultProxy, running_proxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def direct(pg_engine: Engine) -> Engine:
    clean_postgres(pg_engine)
    return pg_engine


@pytest.fixture
def proxy(direct: Engine) -> Iterator[FaultProxy]:
    url = direct.url
    with running_proxy(url.host or "127.0.0.1", url.port or 5432) as p:
        yield p


@pytest.fixture
def proxied_url(direct: Engine, proxy: FaultProxy) -> str:
    url = make_url(direct.url.render_as_string(hide_password=False)).set(
        host="127.0.0.1", port=proxy.port
    )
    return url.render_as_string(hide_password=False)


@pytest.fixture
def proxied_engine(proxied_url: str) -> Iterator[Engine]:
    engine = db.make_engine(proxied_url)
    yield engine
    engine.dispose()
