"""Admin fixtures: an admin account and a TestClient signed in through the real login form."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Secret, Settings
from fundgoal.services import admins
from fundgoal.web.admin import views
from fundgoal.web.app import create_app
from tests.conftest import TEST_SECRET_KEY
from tests.logcheck import register

EMAIL = "editor@example.org"
PASSWORD = "correct horse battery staple"
register(PASSWORD)
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def make_admin(engine: Engine, email: str = EMAIL, password: str = PASSWORD) -> None:
    with db.transaction(engine) as session:
        admins.create_admin(session, email, password, actor="test")


def sign_in(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    page = client.get("/admin/login")
    answer = client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/admin").text)


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its cheapest: these tests sign in hundreds of times; the parameters are
    argon2-cffi's business, the flows are ours."""
    monkeypatch.setattr(
        admins, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )
    views._drift_cache.clear()  # ids restart in every test's database


@pytest.fixture
def settings(database_url: str) -> Settings:
    # No background snapshot polling: dashboard writes refresh the snapshot themselves, and a
    # poll still running in its thread when the test's engine is disposed leaks a connection.
    return Settings(
        database_url=database_url,
        env="test",
        public_url="http://testserver",
        secret_key=Secret(TEST_SECRET_KEY),
        snapshot_check_seconds=3600,
    )


@pytest.fixture
def admin(engine: Engine) -> str:
    make_admin(engine)
    return EMAIL


@pytest.fixture
def anon(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c


@pytest.fixture
def signed_in(anon: TestClient, admin: str) -> tuple[TestClient, str]:
    """(client, csrf token) for a signed-in admin."""
    return anon, sign_in(anon)
