"""Sign-in, sessions, CSRF, Origin checks and throttling for every /admin route."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session
from starlette.routing import Route
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.models import Admin, AuditLog, LoginAttempt
from fundgoal.services import auth as auth_service
from fundgoal.web.admin import auth, routes
from fundgoal.web.app import create_app

from .conftest import EMAIL, PASSWORD, csrf_of, make_admin, sign_in

SAMPLE_PARAMS = {"slug": "spring", "entry_id": "1", "name": "x"}


def _admin_routes() -> list[tuple[str, str]]:
    found = []
    for route in routes:
        assert isinstance(route, Route)
        if not route.path.startswith("/admin") or route.path == "/admin/login":
            continue
        path = re.sub(r"{(\w+)(:\w+)?}", lambda m: SAMPLE_PARAMS[m.group(1)], route.path)
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((method, path))
    return found


ADMIN_ROUTES = _admin_routes()


def test_the_route_list_covers_the_dashboard() -> None:
    paths = {p for _, p in ADMIN_ROUTES}
    assert {"/admin", "/admin/donations", "/admin/gifts/import/confirm"} <= paths
    assert len(ADMIN_ROUTES) >= 20


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_every_admin_route_refuses_anonymous_requests(
    anon: TestClient, method: str, path: str
) -> None:
    answer = anon.request(method, path, follow_redirects=False)
    if method == "GET":
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/admin/login?next=")
    else:
        assert answer.status_code == 403
    assert "editor@" not in answer.text


def test_sign_in_redirects_to_the_page_asked_for(anon: TestClient, admin: str) -> None:
    first = anon.get("/admin/donations?status=succeeded", follow_redirects=False)
    login = anon.get(first.headers["location"])
    assert 'name="next" value="/admin/donations?status=succeeded"' in login.text
    answer = anon.post(
        "/admin/login",
        data={
            "email": " Editor@Example.org ",
            "password": PASSWORD,
            "csrf": csrf_of(login.text),
            "next": "/admin/donations?status=succeeded",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/donations?status=succeeded"
    assert anon.get("/admin/donations").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/elsewhere"])
def test_sign_in_never_redirects_off_the_dashboard(
    anon: TestClient, admin: str, target: str
) -> None:
    login = anon.get("/admin/login")
    answer = anon.post(
        "/admin/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf": csrf_of(login.text), "next": target},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/admin"


def test_session_cookie_flags(anon: TestClient, admin: str) -> None:
    login = anon.get("/admin/login")
    answer = anon.post(
        "/admin/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf": csrf_of(login.text)},
        follow_redirects=False,
    )
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "fundgoal_admin" in v
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # http public URL


def test_secure_cookie_when_the_public_url_is_https(database_url: str, engine: Engine) -> None:
    make_admin(engine)
    settings = Settings(database_url=database_url, env="test", public_url="https://fund.example")
    with TestClient(create_app(settings, engine=engine), base_url="https://fund.example") as c:
        login = c.get("/admin/login")
        answer = c.post(
            "/admin/login",
            data={"email": EMAIL, "password": PASSWORD, "csrf": csrf_of(login.text)},
            follow_redirects=False,
        )
    cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    assert any("fundgoal_admin" in v and "Secure" in v for v in cookies)


def test_admin_pages_carry_a_strict_csp(signed_in: tuple[TestClient, str]) -> None:
    client, _ = signed_in
    page = client.get("/admin")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text
    assert " onclick=" not in page.text
    assert " style=" not in page.text


def test_wrong_password_is_refused_and_recorded(
    anon: TestClient, admin: str, engine: Engine
) -> None:
    login = anon.get("/admin/login")
    answer = anon.post(
        "/admin/login",
        data={"email": EMAIL, "password": "not the password", "csrf": csrf_of(login.text)},
    )
    assert answer.status_code == 400
    assert "Wrong email or password." in answer.text
    assert "fundgoal_admin" not in anon.cookies
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(LoginAttempt)).scalar_one() == 1


def test_a_failed_sign_in_keeps_the_page_asked_for(anon: TestClient, admin: str) -> None:
    login = anon.get("/admin/login?next=%2Fadmin%2Faudit")
    answer = anon.post(
        "/admin/login",
        data={
            "email": EMAIL,
            "password": "nope",
            "csrf": csrf_of(login.text),
            "next": "/admin/audit",
        },
    )
    assert 'name="next" value="/admin/audit"' in answer.text


def test_unknown_email_gets_the_same_answer(anon: TestClient, admin: str) -> None:
    login = anon.get("/admin/login")
    answer = anon.post(
        "/admin/login",
        data={"email": "nobody@example.org", "password": PASSWORD, "csrf": csrf_of(login.text)},
    )
    assert answer.status_code == 400
    assert "Wrong email or password." in answer.text


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_login_without_its_csrf_token_is_refused(
    anon: TestClient, admin: str, token: str | None
) -> None:
    anon.get("/admin/login")
    data = {"email": EMAIL, "password": PASSWORD}
    if token is not None:
        data["csrf"] = token
    answer = anon.post("/admin/login", data=data, follow_redirects=False)
    assert answer.status_code == 403
    assert anon.get("/admin", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_post_without_the_session_csrf_token_is_refused(
    signed_in: tuple[TestClient, str], engine: Engine, token: str | None
) -> None:
    client, _ = signed_in
    data = {"slug": "spring", "title": "Spring", "currency": "USD", "ms_amount": "100"}
    if token is not None:
        data["csrf"] = token
    answer = client.post("/admin/campaigns/new", data=data, follow_redirects=False)
    assert answer.status_code == 403
    with Session(engine) as s:
        assert (
            s.execute(
                select(func.count())
                .select_from(AuditLog)
                .where(AuditLog.action == "campaign.create")
            ).scalar_one()
            == 0
        )


def test_another_sessions_token_is_refused(
    signed_in: tuple[TestClient, str], settings: Settings, engine: Engine
) -> None:
    client, _ = signed_in
    with TestClient(create_app(settings, engine=engine)) as other:
        other_token = sign_in(other)
    answer = client.post("/admin/logout", data={"csrf": other_token}, follow_redirects=False)
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"referer": "https://evil.example/page"},
        {"origin": "null"},
    ],
)
def test_cross_origin_posts_are_refused(
    signed_in: tuple[TestClient, str], headers: dict[str, str]
) -> None:
    client, csrf = signed_in
    answer = client.post("/admin/logout", data={"csrf": csrf}, headers=headers)
    assert answer.status_code == 403
    assert client.get("/admin", follow_redirects=False).status_code == 200


def test_same_origin_posts_pass(signed_in: tuple[TestClient, str]) -> None:
    client, csrf = signed_in
    answer = client.post(
        "/admin/logout",
        data={"csrf": csrf},
        headers={"origin": "http://testserver"},
        follow_redirects=False,
    )
    assert answer.status_code == 303


def test_sign_out_kills_the_old_cookie_everywhere(
    signed_in: tuple[TestClient, str], engine: Engine
) -> None:
    client, csrf = signed_in
    old_cookie = client.cookies["fundgoal_admin"]
    answer = client.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    client.cookies.set("fundgoal_admin", old_cookie, path="/admin", domain="testserver.local")
    assert client.get("/admin", follow_redirects=False).status_code == 303
    assert client.post("/admin/logout", data={"csrf": csrf}).status_code == 403
    with Session(engine) as s:
        admin = s.scalars(select(Admin)).one()
        assert admin.session_epoch == 1


def test_a_new_session_on_every_sign_in(anon: TestClient, admin: str) -> None:
    first = sign_in(anon)
    first_cookie = anon.cookies["fundgoal_admin"]
    anon.cookies.clear()
    second = sign_in(anon)
    assert first != second
    assert anon.cookies["fundgoal_admin"] != first_cookie


def test_a_planted_cookie_is_ignored(anon: TestClient, admin: str) -> None:
    anon.cookies.set(
        "fundgoal_admin", "attacker-chosen-value", path="/admin", domain="testserver.local"
    )
    assert anon.get("/admin", follow_redirects=False).status_code == 303
    sign_in(anon)
    assert anon.cookies["fundgoal_admin"] != "attacker-chosen-value"


def test_a_cookie_signed_with_another_key_is_refused(
    signed_in: tuple[TestClient, str], settings: Settings
) -> None:
    client, csrf = signed_in
    data = auth.SessionData(1, 0, csrf, auth.clock(), auth.clock())
    from dataclasses import replace

    forged = auth.encode_session(
        replace(settings, secret_key=type(settings.secret_key)("x" * 40)), data
    )
    client.cookies.set("fundgoal_admin", forged, path="/admin", domain="testserver.local")
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_idle_sessions_expire(
    signed_in: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = signed_in
    now = auth.clock()
    monkeypatch.setattr(auth, "clock", lambda: now + auth.IDLE_SECONDS - 30)
    assert client.get("/admin", follow_redirects=False).status_code == 200  # refreshes `seen`
    monkeypatch.setattr(auth, "clock", lambda: now + 2 * auth.IDLE_SECONDS - 60)
    assert client.get("/admin", follow_redirects=False).status_code == 200
    monkeypatch.setattr(auth, "clock", lambda: now + 3 * auth.IDLE_SECONDS)
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_sessions_end_after_twelve_hours_whatever_the_activity(
    signed_in: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = signed_in
    now = auth.clock()
    step = auth.IDLE_SECONDS - 60
    moment = now
    while moment + step < now + auth.ABSOLUTE_SECONDS:
        moment += step
        monkeypatch.setattr(auth, "clock", lambda m=moment: m)
        assert client.get("/admin", follow_redirects=False).status_code == 200
    monkeypatch.setattr(auth, "clock", lambda: now + auth.ABSOLUTE_SECONDS + 1)
    assert client.get("/admin", follow_redirects=False).status_code == 303


def _fail(client: TestClient, email: str) -> int:
    login = client.get("/admin/login")
    answer = client.post(
        "/admin/login",
        data={"email": email, "password": "wrong password!", "csrf": csrf_of(login.text)},
    )
    return answer.status_code


def test_five_failures_lock_the_account_for_fifteen_minutes(anon: TestClient, admin: str) -> None:
    for _ in range(auth_service.EMAIL_LIMIT):
        assert _fail(anon, EMAIL) == 400
    assert _fail(anon, EMAIL) == 429
    login = anon.get("/admin/login")
    # Even the right password is refused while the account is throttled.
    answer = anon.post(
        "/admin/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf": csrf_of(login.text)},
    )
    assert answer.status_code == 429
    assert "Too many failed sign-ins for this account" in answer.text
    assert answer.headers["retry-after"] == "900"
    # Another account from the same address is not locked by this one.
    assert _fail(anon, "other@example.org") == 400


def test_the_account_lock_lifts_after_the_window(
    anon: TestClient, admin: str, engine: Engine
) -> None:
    for _ in range(auth_service.EMAIL_LIMIT):
        _fail(anon, EMAIL)
    with db.transaction(engine) as s:
        for attempt in s.scalars(select(LoginAttempt)):
            attempt.at = attempt.at - auth_service.WINDOW
            s.add(attempt)
    sign_in(anon)


def test_twenty_failures_lock_the_address(anon: TestClient, admin: str) -> None:
    for n in range(auth_service.ADDRESS_LIMIT):
        assert _fail(anon, f"guess{n}@example.org") == 400
    assert _fail(anon, "guess-last@example.org") == 429
    login = anon.get("/admin/login")
    answer = anon.post(
        "/admin/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf": csrf_of(login.text)},
    )
    assert answer.status_code == 429
    assert "from your network" in answer.text


def test_sign_in_is_audited_and_clears_the_accounts_failures(
    anon: TestClient, admin: str, engine: Engine
) -> None:
    _fail(anon, EMAIL)
    sign_in(anon)
    with Session(engine) as s:
        assert (
            s.execute(
                select(func.count()).select_from(LoginAttempt).where(LoginAttempt.email == EMAIL)
            ).scalar_one()
            == 0
        )
        actions = s.scalars(select(AuditLog.action)).all()
    assert "admin.sign_in" in actions


def test_the_login_page_sends_signed_in_admins_on(signed_in: tuple[TestClient, str]) -> None:
    client, _ = signed_in
    answer = client.get("/admin/login", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin"


def test_static_files_are_public(anon: TestClient) -> None:
    css = anon.get("/static/admin/admin.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert anon.get("/static/admin/admin.js").status_code == 200
    assert anon.get("/static/admin/secrets.txt").status_code == 404
