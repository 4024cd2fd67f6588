"""The saved widget snapshot: what is written is what is read back, and anything doubtful
(truncated, edited, another format, another database, not JSON at all) is never served."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundgoal.progress import Milestone, OverGoalPolicy
from fundgoal.services.snapshot_file import FORMAT, SnapshotFile
from fundgoal.widget import CampaignData

DATABASE = "postgresql+psycopg://fundgoal:***@db.internal/fundgoal"
AT = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)


def data(slug: str = "spring", raised: int = 146_000, **kw: object) -> CampaignData:
    fields: dict[str, object] = {
        "slug": slug,
        "title": "Spring «appeal» ✓",
        "currency": "USD",
        "raised": raised,
        "donors": 5,
        "milestones": (Milestone(250_000, "Halfway"), Milestone(500_000), Milestone(9, None, True)),
        "policy": OverGoalPolicy.STRETCH,
        "deadline": date(2026, 12, 31),
        "status": "active",
        "updated_at": AT,
        "version": 7,
        "accepts_gifts": False,
    }
    fields.update(kw)
    return CampaignData(**fields)  # type: ignore[arg-type]


def test_what_is_saved_is_what_is_loaded(tmp_path: Path) -> None:
    store = SnapshotFile(tmp_path / "deep" / "snapshot.json", DATABASE)
    campaigns = {"spring": data(), "autumn": data("autumn", 0, deadline=None)}
    assert store.save(campaigns, (2, 14), AT)
    saved = store.load()
    assert saved is not None
    assert saved.campaigns == campaigns
    assert saved.fingerprint == (2, 14)
    assert saved.saved_at == AT
    assert not list(store.path.parent.glob(".*.tmp")), "the temporary file was left behind"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(title=st.text(max_size=60), raised=st.integers(min_value=0, max_value=10**15))
def test_any_title_and_total_round_trip(tmp_path: Path, title: str, raised: int) -> None:
    # One file, overwritten by each example: the rename replaces it whole.
    store = SnapshotFile(tmp_path / "snapshot.json", DATABASE)
    campaigns = {"spring": data(title=title, raised=raised)}
    assert store.save(campaigns, (1, 1), AT)
    saved = store.load()
    assert saved is not None
    assert saved.campaigns == campaigns


def corruptions(text: str) -> list[str]:
    document = json.loads(text)
    edited = json.loads(text)
    edited["campaigns"][0]["raised"] += 100  # a total changed by hand: the digest disagrees
    future = json.loads(text)
    future["format"] = FORMAT + 1
    elsewhere = json.loads(text)
    elsewhere["database"] = "postgresql+psycopg://other/db"
    shape = json.loads(text)
    shape["campaigns"][0]["milestones"] = [[1, 2]]
    return [
        text[: len(text) // 2],  # truncated
        "",
        "not json at all",
        "[" * 100_000,  # deeper than the parser goes
        json.dumps(edited),
        json.dumps(future),
        json.dumps(elsewhere),
        json.dumps({**document, "digest": "0" * 64}),
        json.dumps(shape),
        json.dumps([1, 2, 3]),
    ]


def test_a_doubtful_file_is_never_served(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SnapshotFile(tmp_path / "snapshot.json", DATABASE)
    assert store.save({"spring": data()}, (1, 7), AT)
    good = store.path.read_text()
    for bad in corruptions(good):
        store.path.write_text(bad)
        with caplog.at_level(logging.WARNING, logger="fundgoal.snapshots"):
            assert store.load() is None, bad[:120]
    assert "not serving the saved widget snapshot" in caplog.text
    store.path.unlink()
    assert store.load() is None  # none yet: quietly nothing


def test_a_disk_that_refuses_costs_a_warning_not_the_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    store = SnapshotFile(blocked / "snapshot.json", DATABASE)  # its "directory" is a file
    with caplog.at_level(logging.WARNING, logger="fundgoal.snapshots"):
        assert store.save({"spring": data()}, (1, 7), AT) is False
        assert store.save({"spring": data()}, (1, 7), AT) is False
    assert caplog.text.count("cannot keep the widget snapshot") == 1
