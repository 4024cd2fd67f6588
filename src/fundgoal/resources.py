"""Where the shipped browser files and templates are, installed or in a source checkout.

The design card keeps widgets/ and templates/ at the top of the repository; the wheel carries
them as fundgoal/_shipped/ (pyproject's force-include). An editable install finds the
repository copies instead, so a developer's edit shows up without reinstalling.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def shipped_dir(name: str) -> Path:
    """The directory `widgets` or `templates`; raises FileNotFoundError when neither exists."""
    for candidate in (_PACKAGE / "_shipped" / name, _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"fundgoal's {name}/ directory is missing from this installation")


def widgets_dir() -> Path:
    return shipped_dir("widgets")


def templates_dir() -> Path:
    return shipped_dir("templates")
