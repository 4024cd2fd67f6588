"""Secrets never in logs: a pytest plugin that keeps every log record and every captured
stdout/stderr of the whole run, and fails the session if any registered secret appears in them.

Tests register the secret values they configure (`register("whsec_…")`); the values are made
distinctive so that a hit is a leak, not a coincidence. The root logger is opened to INFO for
the run (SQLAlchemy's statement echo stays off: it would only slow the run down), so records
the default WARNING level would drop are scanned as well.

PYTEST_DONT_REWRITE (tests/conftest.py imports this before registering it as a plugin)
"""

from __future__ import annotations

import logging

import pytest

SECRETS: set[str] = set()
_seen: list[str] = []


def register(*values: str) -> None:
    """Values that must never reach a log line, stdout or stderr."""
    SECRETS.update(v for v in values if len(v) >= 8)


class _Keeper(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is still worth scanning raw
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + logging.Formatter().formatException(record.exc_info)
        _seen.append(f"{record.name}: {text}")


_keeper = _Keeper(level=logging.DEBUG)
_levels: dict[str, int] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    root = logging.getLogger()
    _levels["root"] = root.level
    _levels["sqlalchemy"] = logging.getLogger("sqlalchemy").level
    root.setLevel(min(root.level or logging.WARNING, logging.INFO))
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    root.addHandler(_keeper)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Captured stdout, stderr and log of every phase of every test, passed or failed.
    for name, content in report.sections:
        _seen.append(f"{report.nodeid} [{name}]: {content}")
    if report.longrepr is not None and report.failed:
        _seen.append(f"{report.nodeid} [failure]: {report.longreprtext}")


def leaks() -> list[str]:
    found = []
    for secret in sorted(SECRETS):
        for text in _seen:
            if secret in text:
                found.append(f"{secret[:6]}… in {text[:160]!r}")
                break
    return found


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    root = logging.getLogger()
    root.removeHandler(_keeper)
    root.setLevel(_levels.get("root", logging.WARNING))
    logging.getLogger("sqlalchemy").setLevel(_levels.get("sqlalchemy", logging.NOTSET))
    found = leaks()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"logcheck: {len(SECRETS)} secrets checked against {len(_seen)} log records and "
            f"captured outputs: {'LEAKED' if found else 'none found'}"
        )
        for line in found:
            reporter.write_line(f"logcheck: secret leaked: {line}", red=True)
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
