from __future__ import annotations

from sqlalchemy import Engine
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.web.app import create_app


def test_healthz_checks_the_database(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["database"] == "ok"
    assert answer.json()["widget"]["loaded"] is True


def test_healthz_says_when_the_database_is_gone(settings: Settings) -> None:
    broken = db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings, engine=broken)) as c:
        answer = c.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["database"] == "unreachable"


def test_demo_article_embeds_the_bar(client: TestClient) -> None:
    page = client.get("/demo")
    assert page.status_code == 200
    assert 'data-fundgoal="demo"' in page.text
    assert 'src="http://testserver/widget.js"' in page.text
    assert "/embed/demo" in page.text  # the no-JS fallback


def test_unknown_page_is_a_clear_404(client: TestClient, engine: Engine) -> None:
    answer = client.get("/no/such/page", headers={"accept": "text/html"})
    assert answer.status_code == 404
    api = client.get("/api/nothing-here")
    assert api.status_code == 404
    assert api.json()["error"]


def test_favicon_is_an_empty_cached_answer(client: TestClient) -> None:
    answer = client.get("/favicon.ico")
    assert answer.status_code == 204
    assert answer.headers["cache-control"] == "public, max-age=86400"
