"""The embed script's served bytes, built from its readable source at start-up.

widgets/widget.js and widgets/widget.css are written for people: long names, comments. Every
article downloads the script, so browsers get a minified build of it instead, with the
stylesheet minified into it; the /embed page inlines the same minified stylesheet.

The minifiers: tdewolff-minify for the JavaScript (maintained, deterministic, parses current
ECMAScript and renames local names; it built the smallest gzipped script of the candidates we
measured, see README "The embed script's build") and rcssmin for the CSS (whitespace and comments
are all there is to remove from a hand-written stylesheet). Both are locked with hashes.

tdewolff-minify is a Go library: loaded, it costs a process about 8 MB and five threads, and a
Go runtime does not survive a fork. So a server never loads it: `built()` runs this module in a
child process, once per version of the sources, and keeps the answer in memory. Run it yourself
to see the sizes: `python -m fundgoal.widget_build` (exits 1 over budget).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from .resources import widgets_dir

# Bytes of everything the loader fetches, gzipped as `gzip -9c widget.js | wc -c` counts them
# (gzip(1) stores the file name, so the name's bytes count too). The 2.5 KB budget.
BUDGET = 2560
# The source's stand-in for its stylesheet: the build puts minified widget.css here.
PLACEHOLDER = '"@WIDGET_CSS@"'
# The newest syntax the minifier may emit: ES2019 is what the script's browsers have anyway
# (constructable stylesheets came later), and it stops the minifier inventing newer forms.
JS_VERSION = 2019
BUILD_TIMEOUT = 60.0  # seconds; a build takes about 0.1 s, most of it starting Python


class BuildError(RuntimeError):
    """The sources could not be built (a syntax error, a missing minifier)."""


@dataclass(frozen=True)
class Sources:
    script: str
    stylesheet: str

    @classmethod
    def read(cls, directory: Path | None = None) -> Sources:
        folder = directory or widgets_dir()
        return cls(
            (folder / "widget.js").read_text(encoding="utf-8"),
            (folder / "widget.css").read_text(encoding="utf-8"),
        )

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.script}\0{self.stylesheet}".encode()).hexdigest()


@dataclass(frozen=True)
class Built:
    """What is served: the script (with its stylesheet inside) and the stylesheet alone."""

    script: bytes
    stylesheet: str

    @property
    def gzipped_size(self) -> int:
        """The size the budget counts."""
        return gzipped_size(self.script)


def gzipped_size(body: bytes, name: str = "widget.js") -> int:
    return len(gzip.compress(body, compresslevel=9, mtime=0)) + len(name.encode()) + 1


def minify_sources(sources: Sources) -> Built:
    """Build in this process. Loads the Go minifier here: call it in a child process only."""
    if sources.script.count(PLACEHOLDER) != 1:
        raise BuildError(f"widget.js must hold the stylesheet's placeholder {PLACEHOLDER} once")
    import minify  # tdewolff-minify
    import rcssmin

    stylesheet: str = rcssmin.cssmin(sources.stylesheet)
    script = sources.script.replace(PLACEHOLDER, json.dumps(stylesheet, ensure_ascii=False))
    minify.config({"js-version": JS_VERSION})
    try:
        minified: str = minify.string("text/javascript", script)
    except minify.MinifyError as exc:
        # The first line says what and where; the rest quotes the line with a caret.
        raise BuildError(f"widgets/widget.js: {str(exc).splitlines()[0]}") from None
    return Built(minified.encode(), stylesheet)


_lock = threading.Lock()
_builds: dict[str, Built] = {}


def built(sources: Sources | None = None) -> Built:
    """The served bytes for the installed sources (or `sources`), built once per process."""
    sources = sources or Sources.read()
    with _lock:
        if sources.digest not in _builds:
            _builds[sources.digest] = _build_in_child(sources)
        return _builds[sources.digest]


def _build_in_child(sources: Sources) -> Built:
    # The child must import this very package, installed or not.
    package_root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
    result = subprocess.run(
        [sys.executable, "-m", "fundgoal.widget_build", "--child"],
        input=json.dumps({"script": sources.script, "stylesheet": sources.stylesheet}),
        capture_output=True,
        encoding="utf-8",
        env=env,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        reason = result.stderr.strip() or f"exit status {result.returncode}"
        raise BuildError(f"building the embed script failed: {reason}")
    answer = json.loads(result.stdout)
    return Built(answer["script"].encode(), answer["stylesheet"])


def report(sources: Sources, result: Built) -> str:
    size = result.gzipped_size
    verdict = "within" if size <= BUDGET else "OVER"
    return (
        f"widget.js: {len(sources.script.encode()):,} bytes of source -> "
        f"{len(result.script):,} served -> {size:,} gzipped "
        f"({verdict} the {BUDGET:,}-byte budget, {size / BUDGET:.0%})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fundgoal.widget_build",
        description="Build the embed script from widgets/ and report its gzipped size.",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help="also write the served script to this file")
    args = parser.parse_args(argv)
    if args.child:
        # `built()` talks to us over stdin and stdout; errors go to stderr.
        request = json.loads(sys.stdin.read())
        try:
            result = minify_sources(Sources(request["script"], request["stylesheet"]))
        except BuildError as exc:
            print(exc, file=sys.stderr)
            return 1
        json.dump({"script": result.script.decode(), "stylesheet": result.stylesheet}, sys.stdout)
        return 0
    sources = Sources.read()
    try:
        result = minify_sources(sources)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output:
        args.output.write_bytes(result.script)
    print(report(sources, result))
    return 0 if result.gzipped_size <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
