"""The `fundgoal` command, run as a person runs it: a subprocess with an environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(
    database_url: str,
    *args: str,
    stdin: str = "",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("FUNDGOAL_", "STRIPE_"))
    }
    environment["FUNDGOAL_DATABASE_URL"] = database_url
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "fundgoal", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        cwd=cwd,
    )


def test_campaign_lifecycle(database_url: str) -> None:
    created = run(
        database_url,
        "campaign",
        "create",
        "spring",
        "--title",
        "Spring appeal",
        "--currency",
        "usd",
        "--milestones",
        "2500,5000",
        "--deadline",
        "2026-12-31",
    )
    assert created.returncode == 0, created.stderr
    listed = run(database_url, "campaign", "list")
    assert "spring" in listed.stdout
    assert "$5,000" in listed.stdout
    shown = run(database_url, "campaign", "show", "spring")
    assert shown.returncode == 0
    assert "totals:     consistent" in shown.stdout
    assert "2026-12-31" in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("campaign", "create", "Bad Slug", "--title", "x", "--milestones", "10"), "slug"),
        (("campaign", "create", "ok", "--title", "x", "--milestones", "50,20"), "increase"),
        (
            ("campaign", "create", "ok", "--title", "x", "--milestones", "10", "--currency", "zzz"),
            "unknown currency",
        ),
        (("campaign", "create", "ok", "--title", "x", "--milestones", "0.001"), "decimal places"),
        (("campaign", "show", "missing"), "no campaign called 'missing'"),
    ],
)
def test_errors_are_one_line_and_non_zero(
    database_url: str, args: tuple[str, ...], message: str
) -> None:
    result = run(database_url, *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert lines[0].startswith("fundgoal: error:")


def test_bad_date_is_a_usage_error(database_url: str) -> None:
    result = run(
        database_url,
        "campaign",
        "create",
        "x",
        "--title",
        "x",
        "--milestones",
        "1",
        "--deadline",
        "tomorrow",
    )
    assert result.returncode == 2
    assert "is not a date" in result.stderr


def test_duplicate_campaign_is_refused(database_url: str) -> None:
    args = ("campaign", "create", "dup", "--title", "x", "--milestones", "100")
    assert run(database_url, *args).returncode == 0
    again = run(database_url, *args)
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_create_admin_reads_the_password_from_stdin(database_url: str) -> None:
    ok = run(database_url, "create-admin", "Editor@Example.org", stdin="correct horse battery\n")
    assert ok.returncode == 0, ok.stderr
    assert "editor@example.org" in ok.stdout
    assert "correct horse" not in ok.stdout + ok.stderr
    weak = run(database_url, "create-admin", "b@example.org", stdin="short\n")
    assert weak.returncode == 1
    assert "at least 12 characters" in weak.stderr


def test_campaign_show_reports_drift(database_url: str) -> None:
    assert (
        run(
            database_url, "campaign", "create", "drifty", "--title", "x", "--milestones", "100"
        ).returncode
        == 0
    )
    from fundgoal import db

    engine = db.make_engine(database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE campaign SET raised = 999 WHERE slug = 'drifty'")
    engine.dispose()
    shown = run(database_url, "campaign", "show", "drifty")
    assert shown.returncode == 3
    assert "DIFFER" in shown.stderr


def test_commands_refuse_an_old_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    result = run(url, "campaign", "list")
    assert result.returncode == 1
    assert "fundgoal db upgrade" in result.stderr
    assert run(url, "db", "upgrade").returncode == 0
    assert run(url, "campaign", "list").returncode == 0


def test_production_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    result = run(
        f"sqlite:///{tmp_path / 'prod.db'}",
        "serve",
        "--port",
        "1",
        env={"FUNDGOAL_ENV": "production"},
    )
    assert result.returncode == 1
    for missing in ("FUNDGOAL_SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "schema"):
        assert missing in result.stderr
    assert all(
        line.startswith("fundgoal: refusing to start:")
        for line in result.stderr.strip().splitlines()
    )


def test_unreachable_database_is_one_line() -> None:
    result = run("postgresql+psycopg://nobody@127.0.0.1:1/none", "campaign", "list")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unreachable" in result.stderr


@pytest.mark.parametrize(
    ("milestones", "message"),
    [
        ("1e1000000", "not an amount"),
        ("1e600000", "not an amount"),
        ("2500,\uff15000", "digits 0 to 9"),
        ("1_000", "not an amount"),
        ("+5", "sign"),
        ("Infinity", "not an amount"),
    ],
)
def test_hostile_milestones_are_one_line_errors(
    database_url: str, milestones: str, message: str
) -> None:
    """The same strict parser as the web: a one-line error and exit 1, never a traceback."""
    done = run(database_url, "campaign", "create", "x", "--title", "X", "--milestones", milestones)
    assert done.returncode == 1
    assert message in done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("fundgoal: error:")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("title", ["\x1b[31mRed\x1b[0m", "\u202eevil", "\u200b\u200b", "x" * 201])
def test_hostile_titles_are_refused(database_url: str, title: str) -> None:
    done = run(database_url, "campaign", "create", "x", "--title", title, "--milestones", "5")
    assert done.returncode == 1
    assert done.stderr.startswith("fundgoal: error: Title:")
    assert "\x1b" not in done.stderr
    assert "\u202e" not in done.stderr


def test_stored_control_characters_are_printed_escaped(database_url: str) -> None:
    """Rows written before the input rules may hold terminal escapes: printed as text."""
    from sqlalchemy import update

    from fundgoal import db
    from fundgoal.models import Campaign

    assert (
        run(database_url, "campaign", "create", "x", "--title", "X", "--milestones", "5").returncode
        == 0
    )
    engine = db.make_engine(database_url)
    with db.transaction(engine) as session:
        session.execute(update(Campaign).values(title="\x1b]0;pwned\x07\x1b[2J\u202eevil"))
    engine.dispose()
    for args in (("campaign", "list"), ("campaign", "show", "x")):
        done = run(database_url, *args)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout
        assert "\x07" not in done.stdout
        assert "\u202e" not in done.stdout
        assert "\\x1b]0;pwned\\x07" in done.stdout
