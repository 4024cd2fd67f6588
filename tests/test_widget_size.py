"""The embed script's budget and promises, checked on every change (DESIGN convention 10).

widgets/widget.js and widget.css are the readable source; fundgoal.widget_build turns them into
the bytes browsers get. The budget is checked on those served bytes, the promises on both.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fundgoal import widget_build
from fundgoal.widget_build import BUDGET, PLACEHOLDER, Built, Sources

WIDGETS = Path(__file__).resolve().parents[1] / "widgets"


@pytest.fixture(scope="module")
def served() -> Built:
    return widget_build.built(Sources.read(WIDGETS))


def test_served_script_fits_its_gzip_budget(served: Built) -> None:
    size = served.gzipped_size
    assert size <= BUDGET, f"widget.js is {size} bytes gzipped as served; the budget is {BUDGET}"


def test_the_script_command_reports_the_size_and_fails_over_budget(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert widget_build.main([]) == 0
    line = capsys.readouterr().out
    assert re.search(r"-> [\d,]+ gzipped \(within the 2,560-byte budget", line), line
    monkeypatch.setattr(widget_build, "BUDGET", 1000)
    assert widget_build.main([]) == 1
    assert "OVER the 1,000-byte budget" in capsys.readouterr().out


def test_served_script_is_built_from_the_source(served: Built) -> None:
    sources = Sources.read(WIDGETS)
    script = served.script.decode()
    # Minified: no comments, no indentation, and far smaller than the source it came from.
    assert "/*" not in script
    assert "\n  " not in script
    assert len(served.script) < len(sources.script.encode()) / 1.8
    # The stylesheet, minified, is inside it once and is what the /embed page inlines.
    assert served.stylesheet in script
    assert script.count(":host{display:block}") == 1
    assert "legend" not in served.stylesheet  # widget.css's comments are gone
    assert PLACEHOLDER not in script
    # The build is deterministic, in this process or in the child that servers use.
    assert widget_build.minify_sources(sources) == served


def test_the_stylesheet_exists_once_in_the_source() -> None:
    source = (WIDGETS / "widget.js").read_text(encoding="utf-8")
    assert source.count(PLACEHOLDER) == 1
    assert not re.search(r"\{\s*display\s*:", source), "widget.js must not hold CSS rules"


def test_a_broken_source_fails_the_build_with_its_reason(tmp_path: Path) -> None:
    sources = Sources.read(WIDGETS)
    broken = Sources(sources.script.replace("const doc = document;", "const doc = ;"), "")
    with pytest.raises(widget_build.BuildError, match=r"widget\.js"):
        widget_build.built(broken)
    with pytest.raises(widget_build.BuildError, match="placeholder"):
        widget_build.minify_sources(Sources("(() => {})();", ""))


FORBIDDEN = (
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "document.write",
    "localStorage",
    "sessionStorage",
    "indexedDB",
    ".cookie",
    "setInterval",
    "setTimeout",
    "WebSocket",
    "EventSource",
    "eval(",
    "Function(",
)


@pytest.mark.parametrize("form", ["source", "served"])
def test_script_stays_within_its_promises(form: str, served: Built) -> None:
    """No HTML parsing of data, no storage, cookies, timers, sockets or eval; its one request
    omits credentials; its shadow roots are open (so tests and assistive tools can see in)."""
    code = (WIDGETS / "widget.js").read_text() if form == "source" else served.script.decode()
    if form == "source":  # the promises are about code, not the comments that state them
        code = re.sub(r"/\*.*?\*/|//[^\n]*", "", code, flags=re.DOTALL)
    for forbidden in FORBIDDEN:
        assert forbidden not in code, forbidden
    assert re.search(r"""credentials:\s*["']omit["']""", code)
    assert re.search(r"""mode:\s*["']open["']""", code)
    assert code.count("fetch(") == 1
