"""The README documents every setting, route and command, read from the code itself.

The sources: the variables `load_settings` actually reads, the app's own route table (and the
widget fast path's, which answers before routing), and the `fundgoal` argparse parser. A new
setting, route, command or option without its README line fails here, so the docs cannot rot.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import BaseRoute, Mount, Route

from fundgoal.cli import build_parser
from fundgoal.config import Settings, load_settings
from fundgoal.web.app import create_app
from fundgoal.web.embed import PATHS as FAST_PATHS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's text under `## title`, up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[-:| ]+\|", line):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([cell.strip() for cell in cells])
    return rows


class Recording(dict[str, str]):
    """An environment that remembers every variable asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def settings_read() -> set[str]:
    asked: set[str] = set()
    # Development and production, in case a variable is only read in one of them.
    for values in (
        {},
        {
            "FUNDGOAL_ENV": "production",
            "FUNDGOAL_PUBLIC_URL": "https://give.example.org",
            "FUNDGOAL_DATABASE_URL": "postgresql+psycopg://u@db/fundgoal",
        },
    ):
        environment = Recording(values)
        load_settings(environment)
        asked |= environment.asked
    return asked


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = {
        row[0].strip("`") for row in table_rows(section("Configuration")) if row[0] != "variable"
    }
    read = settings_read()
    assert len(read) >= 10, read  # the recording works
    assert sorted(read - documented) == []


def _walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _walk(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, set(route.methods or ()) - {"HEAD"}


def _plain(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)  # {entry_id:int} -> {entry_id}


def test_every_route_is_in_the_routes_table(tmp_path: Path) -> None:
    documented: dict[str, set[str]] = {}
    for row in table_rows(section("HTTP routes")):
        if row[0] == "route":
            continue
        for path in re.findall(r"`([^`]+)`", row[0]):
            documented.setdefault(path, set()).update(re.findall(r"[A-Z]{3,}", row[1]))
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", env="test"))
    routes = [*_walk(list(app.routes)), *((path, set(methods)) for path, methods in FAST_PATHS)]
    assert len(routes) > 20  # the walk found the table
    missing = []
    for path, methods in routes:
        shown = documented.get(_plain(path))
        if shown is None or not methods <= shown:
            missing.append(f"{sorted(methods)} {_plain(path)}")
    assert missing == [], "routes missing from README '## HTTP routes'"


def _commands(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield " ".join(("fundgoal", *words)), parser
    for action in subcommands:
        for name, child in action.choices.items():
            yield from _commands(child, (*words, name))


def test_every_command_and_option_is_in_the_command_table() -> None:
    rows = {
        match.group(1): row[0]
        for row in table_rows(section("Command line"))
        if (match := re.match(r"`(fundgoal(?: [a-z][a-z-]*)+)", row[0]))
    }
    commands = list(_commands(build_parser()))
    assert len(commands) >= 8
    missing = []
    for command, parser in commands:
        row = rows.get(command)
        if row is None:
            missing.append(command)
            continue
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            names = action.option_strings or [(action.metavar or action.dest).upper()]
            if not any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", row) for n in names):
                missing.append(f"{command} {names[0]}")
    assert missing == [], "commands or options missing from README '## Command line'"


@pytest.mark.parametrize("title", ["Configuration", "HTTP routes", "Command line"])
def test_the_sections_exist(title: str) -> None:
    assert table_rows(section(title))
