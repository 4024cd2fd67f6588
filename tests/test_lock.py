"""The lock files agree with pyproject.toml (README "Dependencies").

A dependency added or re-bounded in pyproject.toml without `./scripts/lock` fails here, before
an install from the lock leaves it out.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    found = {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.M)
    }
    # Every pin carries at least one hash, or pip --require-hashes refuses the file.
    assert len(re.findall(r"^[A-Za-z0-9_.\-]+==", text, re.M)) == len(found)
    assert text.count("--hash=sha256:") >= len(found)
    return found


def requirements(*, dev: bool) -> list[Requirement]:
    listed = list(PROJECT["project"]["dependencies"]) + list(PROJECT["build-system"]["requires"])
    if dev:
        listed += PROJECT["project"]["optional-dependencies"]["dev"]
    return [Requirement(r) for r in listed]


@pytest.mark.parametrize(
    ("lock", "dev"), [("requirements.lock", False), ("requirements-dev.lock", True)]
)
def test_the_lock_satisfies_pyproject(lock: str, dev: bool) -> None:
    locked = pins(lock)
    wrong = []
    for requirement in requirements(dev=dev):
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            wrong.append(f"{requirement} (locked: {version})")
    assert wrong == [], f"{lock} is stale: run ./scripts/lock"


def test_the_runtime_lock_agrees_with_the_dev_lock() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime
