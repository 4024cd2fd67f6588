"""Widget throughput against bare Starlette, measured in the same run with wrk.

Both apps run under identical uvicorn settings (uvloop, httptools, no access log, one worker)
pinned to one core; wrk is pinned to the other. Rounds alternate baseline and project so that
noise from this shared machine hits both alike; the ratio of medians is what we report.

    .venv/bin/python -m bench.widget            # full: 3 rounds x 5 s per case
    .venv/bin/python -m bench.widget --smoke    # CI: proves it runs, asserts nothing on speed
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .serving import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def server(factory: str, env: dict[str, str], core: str | None) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        f"bench.apps:{factory}",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        "1",
    ]
    if core is not None and shutil.which("taskset"):
        command = ["taskset", "-c", core, *command]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{factory} server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def wrk(url: str, seconds: float, headers: dict[str, str], core: str | None) -> float:
    command = ["wrk", "-t1", "-c32", f"-d{max(int(seconds), 1)}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    if core is not None and shutil.which("taskset"):
        command = ["taskset", "-c", core, *command]
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not match:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses")
    return float(match.group(1))


def python_load(url: str, seconds: float, headers: dict[str, str]) -> float:
    """Fallback when wrk is missing: a keep-alive loop (slower, so ratios are compressed)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    count, stop = 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        conn.request("GET", path, headers=headers)
        conn.getresponse().read()
        count += 1
    conn.close()
    return count / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="1 s, 1 round: for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.rounds = 1.0, 1
    cores = os.cpu_count() or 1
    server_core, load_core = ("1", "0") if cores >= 2 else (None, None)
    have_wrk = shutil.which("wrk") is not None
    tmp = Path(tempfile.mkdtemp(prefix="fundgoal-bench-"))
    env = {"BENCH_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}"}

    def load(url: str, headers: dict[str, str]) -> float:
        if have_wrk:
            return wrk(url, args.seconds, headers, load_core)
        return python_load(url, args.seconds, headers)

    results: dict[str, list[float]] = {}
    with server("project", env, server_core) as project, server("hello", env, server_core) as hello:
        with urllib.request.urlopen(project + "/api/campaigns/demo") as r:
            etag = r.headers["etag"]
        with urllib.request.urlopen(project + "/widget.js") as r:
            script_path = r.headers["content-location"]  # the pinned /widget.<hash>.js
        cases = {
            "json 200": (project + "/api/campaigns/demo", {}),
            "json 304": (project + "/api/campaigns/demo", {"If-None-Match": etag}),
            "widget.<hash>.js": (project + script_path, {"Accept-Encoding": "gzip"}),
        }
        for _ in range(args.rounds):
            for name, (url, headers) in cases.items():
                results.setdefault(f"hello/{name}", []).append(load(hello + "/", {}))
                results.setdefault(name, []).append(load(url, headers))
    shutil.rmtree(tmp, ignore_errors=True)

    tool = "wrk -t1 -c32" if have_wrk else "python keep-alive loop (wrk not installed)"
    print(
        f"widget benchmark: {args.rounds} round(s) x {args.seconds:g} s, {tool}, "
        f"server pinned to core {server_core}, load to core {load_core}"
    )
    print(f"{'case':<20}{'project req/s':>15}{'hello req/s':>15}{'ratio':>8}  target")
    targets = {"json 200": 0.85, "json 304": 0.95, "widget.<hash>.js": None}
    for name, target in targets.items():
        mine = statistics.median(results[name])
        base = statistics.median(results[f"hello/{name}"])
        goal = f">= {target:.2f}" if target else "-"
        print(f"{name:<20}{mine:>15,.0f}{base:>15,.0f}{mine / base:>8.2f}  {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
