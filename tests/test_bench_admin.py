"""The admin benchmark's smoke run: proves it fills, measures and cleans up (no speed asserts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.postgres
def test_admin_list_benchmark_smoke(pg_url: str) -> None:  # pg_url: skip/fail like the others
    done = subprocess.run(
        [sys.executable, "-m", "bench.admin_list", "--rows", "2000", "--requests", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "deep keyset page" in done.stdout
    assert "CSV export: 2,000 rows" in done.stdout
