"""/livez, /readyz and /healthz, and what the app answers while the database is away: the bars
from the last snapshot (in memory, or saved on disk by an earlier run), everything that needs
the database a 503 with a message, never a 500."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.services.snapshot_file import SnapshotFile
from fundgoal.web.app import create_app
from tests.services.test_snapshot_file import AT, data

GONE = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # refused at once: nothing listens


@pytest.fixture
def gone() -> Iterator[Engine]:
    engine = db.make_engine(GONE)
    yield engine
    engine.dispose()


def test_all_well_is_alive_and_ready(settings: Settings, engine: Engine) -> None:
    with TestClient(create_app(settings, engine=engine)) as client:
        live = client.get("/livez")
        assert live.status_code == 200
        assert live.json()["status"] == "alive"
        for path in ("/readyz", "/healthz"):
            ready = client.get(path)
            assert ready.status_code == 200, ready.text
            assert ready.json()["status"] == "ok"
            assert ready.json()["reasons"] == []
            assert ready.json()["widget"]["source"] == "database"
            assert ready.headers["cache-control"] == "no-store"


def test_database_away_and_nothing_saved_is_alive_but_not_ready(
    settings: Settings, gone: Engine, tmp_path: Path
) -> None:
    settings = replace(settings, database_url=GONE, snapshot_file="off")
    with TestClient(create_app(settings, engine=gone)) as client:
        assert client.get("/livez").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        reasons = " / ".join(ready.json()["reasons"])
        assert "unreachable" in reasons
        assert "not loaded" in reasons
        assert client.get("/api/campaigns/spring").status_code == 503  # nothing to show


def test_database_away_with_a_saved_snapshot_serves_the_bars(
    settings: Settings, gone: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "snapshot.json"
    SnapshotFile(path, gone.url.render_as_string()).save({"spring": data()}, (1, 7), AT)
    settings = replace(settings, database_url=GONE, snapshot_file=str(path))
    with TestClient(create_app(settings, engine=gone)) as client:
        bar = client.get("/api/campaigns/spring")
        assert bar.status_code == 200
        assert bar.json()["raised"] == 146_000
        assert client.get("/campaigns/spring/badge.svg").status_code == 200
        assert client.get("/embed/spring").status_code == 200
        assert client.get("/livez").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["widget"]["source"] == "disk"
        assert any("saved on disk" in reason for reason in ready.json()["reasons"])


def test_a_saved_snapshot_that_cannot_be_trusted_is_not_served(
    settings: Settings, gone: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "snapshot.json"
    SnapshotFile(path, gone.url.render_as_string()).save({"spring": data()}, (1, 7), AT)
    path.write_text(path.read_text().replace("146000", "999999"))
    settings = replace(settings, database_url=GONE, snapshot_file=str(path))
    with TestClient(create_app(settings, engine=gone)) as client:
        assert client.get("/api/campaigns/spring").status_code == 503


def test_the_app_saves_its_snapshot_for_the_next_start(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    from tests.stripe_support import campaign

    campaign(engine, "spring")
    path = tmp_path / "saved.json"
    settings = replace(settings, snapshot_file=str(path), snapshot_check_seconds=0.05)
    with TestClient(create_app(settings, engine=engine)):
        deadline = time.monotonic() + 30
        while not path.exists():
            assert time.monotonic() < deadline, "the poller never saved the snapshot"
            time.sleep(0.05)
    saved = SnapshotFile(path, engine.url.render_as_string()).load()
    assert saved is not None
    assert set(saved.campaigns) == {"spring"}


def test_readyz_turns_503_when_the_snapshot_goes_stale(settings: Settings, engine: Engine) -> None:
    settings = replace(settings, snapshot_check_seconds=3600)  # no poller to confirm it
    with TestClient(create_app(settings, engine=engine)) as client:
        keeper = client.app.state.ctx.snapshots  # type: ignore[attr-defined]
        assert client.get("/readyz").status_code == 200
        keeper.max_age = 0.2
        deadline = time.monotonic() + 30
        while (answer := client.get("/readyz")).status_code == 200:
            assert time.monotonic() < deadline, "never went stale"
            time.sleep(0.05)
        assert answer.status_code == 503
        assert "last confirmed" in answer.json()["reasons"][0]
        assert client.get("/api/campaigns/demo").status_code in {200, 404}  # still serving
        keeper.refresh()
        assert client.get("/readyz").status_code == 200


def test_readyz_says_when_the_schema_is_behind(settings: Settings, engine: Engine) -> None:
    with engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        # The database says it is one migration behind (the PostgreSQL one is shared by the
        # run: put it back after).
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        with TestClient(create_app(settings, engine=engine)) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert "fundgoal db upgrade" in " ".join(ready.json()["reasons"])
            assert client.get("/livez").status_code == 200
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


def test_pages_that_need_the_database_answer_503_while_it_is_away(
    settings: Settings, gone: Engine
) -> None:
    settings = replace(settings, database_url=GONE, snapshot_file="off")
    with TestClient(create_app(settings, engine=gone), raise_server_exceptions=False) as client:
        page = client.get("/donate/spring", headers={"accept": "text/html"})
        assert page.status_code == 503, page.text
        assert page.headers["retry-after"]
        assert "try again" in page.text
        assert "Traceback" not in page.text
        answer = client.get("/donate/spring", headers={"accept": "application/json"})
        assert answer.status_code == 503
        assert answer.json()["error"] == "unavailable"
