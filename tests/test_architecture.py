"""The layering (README "Architecture checks"): what loads what, checked by running it.

import-linter's contracts (pyproject.toml, `lint-imports` in scripts/check) check the arrows;
these tests check that the contracts catch a wrong import, and what a command loads at run time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("FUNDGOAL_", "STRIPE_"))
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_the_cli_does_not_load_stripe(tmp_path: Path) -> None:
    """The library takes about a quarter of a second to import: only the commands that talk to
    Stripe may pay for it."""
    result = python(
        "import sys\n"
        "from fundgoal import cli\n"
        "assert 'stripe' not in sys.modules, 'import fundgoal.cli loaded stripe'\n"
        "cli.main(['db', 'upgrade'])\n"
        "cli.main(['campaign', 'list'])\n"
        "assert 'stripe' not in sys.modules, 'fundgoal campaign list loaded stripe'\n"
        "print('stripe-not-loaded')\n",
        env={"FUNDGOAL_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
    )
    assert result.returncode == 0, result.stderr
    assert "stripe-not-loaded" in result.stdout


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts against the package copied to `tree`."""
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_the_contracts_catch_a_wrong_import(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "fundgoal",
        tree / "fundgoal",
        ignore=shutil.ignore_patterns("__pycache__", "_shipped"),
    )
    clean = _lint_imports(tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    ledger = tree / "fundgoal" / "ledger.py"
    ledger.write_text(ledger.read_text() + "\nimport stripe  # deliberately wrong\n")
    broken = _lint_imports(tree)
    assert broken.returncode != 0
    assert "The stripe library only in fundgoal.payments.stripe BROKEN" in broken.stdout
    assert "fundgoal.ledger -> stripe" in broken.stdout, broken.stdout
