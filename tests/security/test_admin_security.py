"""CSRF on every state-changing admin route, and no redirect ever leaves the site."""

from __future__ import annotations

from urllib.parse import quote, urljoin, urlsplit

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.models import AuditLog, Campaign, LedgerEntry
from fundgoal.web.app import create_app
from tests.factories import make_campaign
from tests.web.admin.conftest import EMAIL, PASSWORD, csrf_of, sign_in
from tests.web.admin.test_auth import ADMIN_ROUTES

POST_ROUTES = [path for method, path in ADMIN_ROUTES if method == "POST"]


def state(engine: Engine) -> tuple[int, int, list[tuple[str, str, int]]]:
    with Session(engine) as s:
        audits = s.scalar(select(func.count()).select_from(AuditLog)) or 0
        entries = s.scalar(select(func.count()).select_from(LedgerEntry)) or 0
        rows = [(c.slug, c.status, c.version) for c in s.scalars(select(Campaign))]
        return audits, entries, rows


def test_every_post_route_is_covered() -> None:
    assert len(POST_ROUTES) >= 10
    assert "/admin/gifts/new" in POST_ROUTES
    assert "/admin/logout" in POST_ROUTES


@pytest.mark.parametrize("token", ["missing", "empty", "forged", "other_session"])
@pytest.mark.parametrize("path", POST_ROUTES)
def test_every_admin_post_needs_this_sessions_csrf_token(
    signed_in: tuple[TestClient, str],
    settings: Settings,
    engine: Engine,
    path: str,
    token: str,
) -> None:
    client, good = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="spring")
    data = {
        "slug": "spring",
        "title": "Hijacked",
        "currency": "usd",
        "ms_amount": "100",
        "status": "archived",
        "campaign": "spring",
        "amount": "1000",
        "date": "2026-11-01",
        "source": "cash",
        "reason": "because",
    }
    if token == "empty":
        data["csrf"] = ""
    elif token == "forged":
        data["csrf"] = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    elif token == "other_session":
        with TestClient(create_app(settings, engine=engine)) as other:
            data["csrf"] = sign_in(other)
    before = state(engine)  # (after the other session signed in: that writes its own lines)
    answer = client.post(path, data=data, follow_redirects=False)
    assert answer.status_code == 403, (path, answer.status_code)
    assert state(engine) == before
    assert client.get("/admin", follow_redirects=False).status_code == 200  # still signed in


OFFSITE = [
    "https://evil.example/",
    "//evil.example/x",
    "///evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "http:evil.example",
    "https:/evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/admin@evil.example",
    "/admin/../..//evil.example",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/admin\r\nLocation: https://evil.example",
    " //evil.example",
]


def _stays_here(location: str) -> None:
    target = urlsplit(urljoin("http://testserver/admin/login", location))
    assert (target.scheme, target.netloc) == ("http", "testserver"), location
    assert not any(c in location for c in "\\\r\n"), location


@pytest.mark.parametrize("target", OFFSITE)
def test_sign_in_next_never_leaves_the_site(anon: TestClient, admin: str, target: str) -> None:
    first = anon.get(f"/admin/login?next={quote(target)}")
    assert first.status_code == 200
    assert "evil.example" not in first.text.split("<form", 1)[-1].split('name="next"')[0]
    answer = anon.post(
        "/admin/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf": csrf_of(first.text), "next": target},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    _stays_here(answer.headers["location"])
    assert answer.headers["location"].startswith("/admin")


@pytest.mark.parametrize("target", OFFSITE)
def test_anonymous_redirects_to_login_keep_next_on_site(anon: TestClient, target: str) -> None:
    answer = anon.get(f"/admin/login?next={quote(target)}", follow_redirects=False)
    assert answer.status_code == 200
    # The form carries next as a value; whatever it is, signing in is checked above.
    assert f'value="{target}"' not in answer.text or target.startswith("/admin")


@pytest.mark.parametrize("host", ["evil.example", "evil.example:443", "testserver@evil.example"])
def test_donation_return_urls_ignore_the_host_header(
    stripe_client: TestClient, engine: Engine, fake_stripe: object, host: str
) -> None:
    """success_url and cancel_url come from FUNDGOAL_PUBLIC_URL, never from the request."""
    import re

    from tests.stripe_support import campaign

    campaign(engine, "spring")
    page = stripe_client.get("/donate/spring")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    answer = stripe_client.post(
        "/donate/spring",
        data={"csrf_token": token.group(1), "amount": "25", "frequency": "once"},
        headers={"host": host, "x-forwarded-host": "evil.example"},
        follow_redirects=False,
    )
    [request] = fake_stripe.state.requests_to("/v1/checkout/sessions", "POST")  # type: ignore[attr-defined]
    for key in ("success_url", "cancel_url"):
        assert request.params[key].startswith("http://testserver/donate/spring"), request.params
    assert answer.status_code in {303, 403}
    if answer.status_code == 303:
        assert "evil.example" not in answer.headers["location"]
