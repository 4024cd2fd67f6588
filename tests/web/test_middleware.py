from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from fundgoal import db, logs
from fundgoal.config import Settings
from fundgoal.services.demo import seed_demo
from fundgoal.web.app import create_app
from fundgoal.web.middleware import route_family


def test_request_ids_are_kept_or_made(client: TestClient) -> None:
    made = client.get("/healthz").headers["x-request-id"]
    assert len(made) == 32
    kept = client.get("/healthz", headers={"x-request-id": "trace-1234abcd"})
    assert kept.headers["x-request-id"] == "trace-1234abcd"
    hostile = client.get("/healthz", headers={"x-request-id": "x; drop table <script>"})
    assert hostile.headers["x-request-id"] != "x; drop table <script>"
    assert len(hostile.headers["x-request-id"]) == 32


def test_pages_get_security_headers(client: TestClient) -> None:
    page = client.get("/demo")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' http://testserver" in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in page.headers


def test_admin_area_csp_has_no_unsafe_inline(client: TestClient) -> None:
    csp = client.get("/admin/anything").headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    assert "script-src 'self'" in csp


def test_hsts_when_https(settings: Settings, engine: Engine) -> None:
    secure = replace(settings, public_url="https://fund.example.org")
    with TestClient(create_app(secure, engine=engine)) as c:
        assert c.get("/demo").headers["strict-transport-security"].startswith("max-age=31536000")


def test_embed_is_frameable(client: TestClient, engine: Engine) -> None:
    with db.transaction(engine) as s:
        seed_demo(s)
    client.app.state.ctx.snapshots.refresh()  # type: ignore[attr-defined]
    embed = client.get("/embed/demo")
    assert embed.status_code == 200
    assert "x-frame-options" not in embed.headers
    assert "frame-ancestors *" in embed.headers["content-security-policy"]


def test_metrics_count_requests_by_route_family(client: TestClient, engine: Engine) -> None:
    with db.transaction(engine) as s:
        seed_demo(s)
    client.app.state.ctx.snapshots.refresh()  # type: ignore[attr-defined]
    for _ in range(3):
        client.get("/api/campaigns/demo")
    client.get("/api/campaigns/unknown-one")
    text = client.get("/metrics").text
    assert (
        'fundgoal_http_requests_total{method="GET",route="/api/campaigns/{slug}",status="200"} 3.0'
        in text
    )
    assert 'status="404"' in text
    assert "unknown-one" not in text  # paths never become labels
    assert 'fundgoal_campaign_raised_minor{campaign="demo",currency="USD"} 146000.0' in text
    assert "fundgoal_http_request_duration_seconds_bucket" in text


@pytest.mark.parametrize(
    ("path", "family"),
    [
        ("/api/campaigns/x", "/api/campaigns/{slug}"),
        ("/api/campaigns", "/api/campaigns"),
        ("/widget.abc.js", "/widget.js"),
        ("/donate/x/thanks", "/donate/{slug}/thanks"),
        ("/random/path", "other"),
    ],
)
def test_route_families_are_bounded(path: str, family: str) -> None:
    assert route_family(path) == family


def test_json_logs_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    # configure() replaces the root handlers; put the run's own back (the secrets-in-logs
    # check is one of them) so later tests stay watched.
    saved_handlers, saved_level = root.handlers[:], root.level
    logs.configure(json_lines=True)
    token = logs.request_id.set("req-12345678")
    try:
        logging.getLogger("fundgoal.test").warning("hello %s", "there")
    finally:
        logs.request_id.reset(token)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "hello there"
    assert line["request_id"] == "req-12345678"
    assert line["level"] == "WARNING"
