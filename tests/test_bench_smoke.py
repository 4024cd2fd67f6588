"""Every benchmark's --smoke mode runs to the end and prints its table (CI proves they still
work; timings are never asserted: this machine is shared and noisy).

bench.admin_list has its own smoke test (tests/test_bench_admin.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"

pytestmark = pytest.mark.slow


def run_smoke(module: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def need_wrk() -> None:
    # The benchmarks fall back to a Python loop without wrk, but that measures something else:
    # CI must have the real tool; elsewhere say why the smoke run is skipped.
    if shutil.which("wrk") is None:
        if IN_CI:
            pytest.fail("wrk is required in CI (apt-get install wrk)")
        pytest.skip("wrk is not installed (apt-get install wrk)")


def test_widget_benchmark_smoke() -> None:
    need_wrk()
    out = run_smoke("bench.widget")
    assert "project req/s" in out
    assert "json 304" in out


def test_cache_benchmark_smoke() -> None:
    need_wrk()
    from bench.nginx import nginx_binary

    if nginx_binary() is None:
        if IN_CI:
            pytest.fail("nginx is required in CI (apt-get install nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    out = run_smoke("bench.cache")
    assert "via cache req/s" in out
    assert "each URL was a cache HIT with the origin's bytes and ETag before and after" in out
    assert "gift visible through nginx after" in out


@pytest.mark.postgres
def test_growth_benchmark_smoke(pg_url: str) -> None:  # pg_url: skip/fail like the others
    out = run_smoke("bench.growth")
    assert "rebuild ms" in out
    assert "1,000 ledger rows" in out


@pytest.mark.postgres
def test_webhooks_benchmark_smoke(pg_url: str) -> None:
    out = run_smoke("bench.webhooks")
    assert "bare Starlette sink" in out
    assert "served == expected == ledger.recompute" in out


@pytest.mark.postgres
def test_soak_smoke(pg_url: str) -> None:
    need_wrk()
    out = run_smoke("bench.soak")
    assert "RSS start MB" in out
    assert "admin donations list" in out
    assert "widget totals == ledger.recompute" in out
