"""The embed script's budget and invariants, checked on every change (DESIGN convention 10).

widgets/ is shipped as is (no build step), so these read the very bytes browsers get.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

WIDGETS = Path(__file__).resolve().parents[1] / "widgets"
# bytes as `gzip -9c widgets/widget.js | wc -c` counts them: the 2.5 KB budget.
BUDGET = 2560


def script() -> str:
    return (WIDGETS / "widget.js").read_text(encoding="utf-8")


def test_widget_js_fits_its_gzip_budget() -> None:
    body = (WIDGETS / "widget.js").read_bytes()
    # gzip(1) also stores the file name in its header; count it as the budget's command does.
    size = len(gzip.compress(body, compresslevel=9, mtime=0)) + len(b"widget.js\0")
    assert size <= BUDGET, f"widget.js is {size} bytes gzipped; the budget is {BUDGET}"


def test_inlined_css_is_widget_css_verbatim() -> None:
    text = script()
    assert text.count("`") == 2, "the CSS must be widget.js's only template literal"
    match = re.search(r"C=`([^`]*)`", text)
    assert match, "widget.js must hold the stylesheet as C=`...`"
    assert match.group(1) == (WIDGETS / "widget.css").read_text(encoding="utf-8")


def test_script_stays_within_its_promises() -> None:
    """No HTML parsing of data, no storage, cookies, timers, sockets or eval."""
    code = script()
    for forbidden in (
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
    ):
        assert forbidden not in code, forbidden
    assert "credentials:'omit'" in code
    assert "mode:'open'" in code
