"""The secrets-in-logs check (tests/logcheck.py) sees what it must: a canary proves it."""

from __future__ import annotations

import logging
import sys

import pytest

from tests import logcheck

CANARY = "fgsk-canary-5e0b3c9d2a71"


def test_the_check_catches_a_secret_in_a_log_record_and_forgets_the_canary() -> None:
    logcheck.register(CANARY)
    try:
        logging.getLogger("fundgoal.anything").info("oops: key=%s", CANARY)
        assert any(CANARY[:6] in leak for leak in logcheck.leaks())
    finally:
        logcheck.SECRETS.discard(CANARY)
        logcheck._seen[:] = [t for t in logcheck._seen if CANARY not in t]
    assert not any(CANARY[:6] in leak for leak in logcheck.leaks())


def test_info_records_reach_the_check() -> None:
    """The run opens the root logger to INFO, so an info line with a secret would be seen."""
    assert logging.getLogger("fundgoal.web").isEnabledFor(logging.INFO)
    assert not logging.getLogger("sqlalchemy.engine").isEnabledFor(logging.INFO)


def test_every_configured_test_secret_is_registered() -> None:
    from tests.conftest import TEST_SECRET_KEY
    from tests.stripe_support import API_KEY, WEBHOOK_SECRET
    from tests.web.admin.conftest import PASSWORD

    assert {TEST_SECRET_KEY, API_KEY, WEBHOOK_SECRET, PASSWORD} <= logcheck.SECRETS


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_printed_output_is_part_of_the_report(
    stream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    print("nothing secret here", file=getattr(sys, stream))
    captured = capsys.readouterr()
    assert "nothing secret here" in (captured.out if stream == "stdout" else captured.err)
