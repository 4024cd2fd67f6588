"""Readers per second through nginx's cache (the shipped deploy/nginx.conf) against straight
to the origin (`fundgoal serve`), measured in the same run with wrk.

nginx (one worker process) and `fundgoal serve` (one worker) are pinned to the same core;
wrk is pinned to the other. Rounds alternate origin and cache so that noise from this shared
machine hits both alike; the ratio of medians is what we report. Through nginx the readers
speak TLS, as they do in production (keep-alive: one handshake per wrk connection); straight
to the origin they speak plain HTTP on 127.0.0.1, as nginx does.

Before measuring, and again after, it checks what the cache is for: the second request for
each URL is a HIT with the origin's bytes and ETag, and the origin sees at most one request
per URL per max-age window however fast wrk reads through the cache.

    .venv/bin/python -m bench.cache            # full: 3 rounds x 5 s per case
    .venv/bin/python -m bench.cache --smoke    # CI: proves it runs, asserts nothing on speed
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fundgoal import db
from fundgoal.services.demo import seed_demo
from fundgoal.web.middleware import route_family

from .nginx import Placement, free_port, running_nginx, self_signed
from .widget import python_load, wrk

ROOT = Path(__file__).resolve().parent.parent
MAX_AGE = 15  # the origin's default FUNDGOAL_WIDGET_CACHE_SECONDS
SAMPLE_LOCALES = ("fr", "de", "es", "it", "nl", "pt", "sv", "da", "fi", "pl")
CASES = {
    "json": "/api/campaigns/demo",
    "batched json": "/api/campaigns?c=demo:en",
    "badge.svg": "/campaigns/demo/badge.svg",
}


def pinned(command: list[str], core: str | None) -> list[str]:
    if core is not None and shutil.which("taskset"):
        return ["taskset", "-c", core, *command]
    return command


@contextmanager
def origin(url: str, public_url: str, port: int, core: str | None) -> Iterator[str]:
    """`fundgoal serve` (one worker) on a seeded SQLite database, trusting the local proxy."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    with db.transaction(engine) as session:
        seed_demo(session)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNDGOAL_", "STRIPE_"))}
    env.update(
        FUNDGOAL_DATABASE_URL=url,
        FUNDGOAL_ENV="test",
        FUNDGOAL_PUBLIC_URL=public_url,
        FUNDGOAL_WIDGET_CACHE_SECONDS=str(MAX_AGE),
        FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    command = [sys.executable, "-m", "fundgoal", "serve", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(
        pinned(command, core),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("fundgoal serve did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=40)


def fetch(url: str, tls: ssl.SSLContext | None = None) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10, context=tls) as answer:
        return answer.read(), {k.lower(): v for k, v in answer.headers.items()}


def origin_requests(base: str, path: str) -> int:
    """Requests the origin answered for this path's route family (its own /metrics)."""
    family = route_family(path.split("?", 1)[0])
    body = fetch(base + "/metrics")[0].decode()
    pattern = re.compile(r"^fundgoal_http_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.M)
    return int(
        sum(float(v) for labels, v in pattern.findall(body) if f'route="{family}"' in labels)
    )


def check_served_from_cache(edge: str, base: str, tls: ssl.SSLContext) -> None:
    for path in CASES.values():
        direct, direct_headers = fetch(base + path)
        first, _ = fetch(edge + path, tls)
        second, headers = fetch(edge + path, tls)
        if headers.get("x-cache-status") != "HIT":
            raise AssertionError(f"{path}: second request was {headers.get('x-cache-status')}")
        if not (first == second == direct) or headers.get("etag") != direct_headers.get("etag"):
            raise AssertionError(f"{path}: the cache's answer differs from the origin's")


def gift_delay(database_url: str, edge: str, tls: ssl.SSLContext, sample: int) -> float:
    """Seconds from a gift's commit until a reader sees it through nginx, in the worst case
    the cache allows: the entry was filled just before the commit."""
    import json

    from fundgoal.money import Money
    from fundgoal.services import gifts
    from fundgoal.stores import campaigns

    # Another locale is another cache key: this request is the one that fills it.
    url = f"{edge}/api/campaigns/demo?locale={SAMPLE_LOCALES[sample % len(SAMPLE_LOCALES)]}"
    body, headers = fetch(url, tls)
    if headers.get("x-cache-status") != "MISS":
        raise AssertionError(f"{url}: expected a MISS, got {headers.get('x-cache-status')}")
    before = json.loads(body)["raised"]
    engine = db.make_engine(database_url)
    with db.transaction(engine) as session:
        demo = campaigns.by_slug(session, "demo")
        assert demo is not None
        gifts.record_offline_gift(session, demo, Money.from_major(10, "USD"), actor="bench")
    engine.dispose()
    committed = time.monotonic()
    while json.loads(fetch(url, tls)[0])["raised"] != before + 1000:
        if time.monotonic() - committed > 60:
            raise AssertionError("the gift never showed through the cache")
        time.sleep(0.01)
    return time.monotonic() - committed


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
    tmp = Path(tempfile.mkdtemp(prefix="fundgoal-bench-cache-"))
    cert, key = self_signed(tmp / "tls")
    tls = ssl.create_default_context(cafile=str(cert))
    edge_port, origin_port = free_port(), free_port()
    edge = f"https://127.0.0.1:{edge_port}"
    database_url = f"sqlite:///{tmp / 'bench.db'}"

    def load(url: str) -> float:
        if have_wrk:
            return wrk(url, args.seconds, {}, load_core)
        return python_load(url, args.seconds, {})  # plain HTTP only: no cache column then

    results: dict[str, list[float]] = {}
    reached: dict[str, int] = {}
    try:
        with origin(database_url, edge, origin_port, server_core) as base:
            where = Placement(edge_port, origin_port, tmp / "nginx", cert, key)
            with running_nginx(where, access_log=False, workers=1, core=server_core):
                check_served_from_cache(edge, base, tls)
                for name, path in CASES.items():
                    reached[name] = 0
                    for _ in range(args.rounds):
                        results.setdefault(f"origin/{name}", []).append(load(base + path))
                        before, started = origin_requests(base, path), time.monotonic()
                        if have_wrk:
                            results.setdefault(name, []).append(load(edge + path))
                        window = time.monotonic() - started
                        reached[name] += origin_requests(base, path) - before
                        if reached[name] > args.rounds * (1 + int(window // MAX_AGE)):
                            raise AssertionError(f"{path}: the origin saw {reached[name]}")
                check_served_from_cache(edge, base, tls)
                delays = [gift_delay(database_url, edge, tls, n) for n in range(args.rounds)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    tool = "wrk -t1 -c32" if have_wrk else "python keep-alive loop (wrk not installed)"
    print(
        f"cache benchmark: {args.rounds} round(s) x {args.seconds:g} s, {tool}; nginx "
        f"(1 worker, TLS) and fundgoal serve (1 worker) on core {server_core}, load on core "
        f"{load_core}; origin max-age {MAX_AGE} s"
    )
    print(f"{'case':<14}{'via cache req/s':>17}{'origin req/s':>14}{'ratio':>8}{'origin hit':>12}")
    for name in CASES:
        direct = statistics.median(results[f"origin/{name}"])
        if name in results:
            cached = statistics.median(results[name])
            print(
                f"{name:<14}{cached:>17,.0f}{direct:>14,.0f}{cached / direct:>8.2f}"
                f"{reached[name]:>12}"
            )
        else:
            print(f"{name:<14}{'-':>17}{direct:>14,.0f}{'-':>8}{'-':>12}")
    print(
        "origin hit = requests the origin answered while wrk read through the cache "
        "(all rounds); each URL was a cache HIT with the origin's bytes and ETag before and after"
    )
    shown = ", ".join(f"{d:.2f}" for d in delays)
    print(
        f"gift visible through nginx after {shown} s (entry filled just before the commit: "
        f"the worst case; bound 1 s origin + max-age {MAX_AGE} s + 1 s nginx clock)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
