"""How costs grow with campaigns and ledger rows, on PostgreSQL.

For 1, 10 and 100 campaigns, and then for 10k, 100k and 1M ledger rows, it measures (medians):
  - the widget's answer, called in-process through the whole ASGI stack, against a bare
    Starlette "hello" app called the same way in the same run (the ratio must not grow);
  - the snapshot rebuild a worker does after a change, and the cheap version check it does
    every half second;
  - one ledger write (a webhook's transaction), and a full recompute of the totals.

    .venv/bin/python -m bench.growth              # full: up to 1,000,000 rows
    .venv/bin/python -m bench.growth --smoke      # CI: 1,000 rows, proves it runs

It creates a database of its own on the machine's server (bench/serving.py, FUNDGOAL_BENCH_PG)
and drops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from fundgoal import db, ledger
from fundgoal.config import Settings
from fundgoal.services import campaigns as campaign_service
from fundgoal.stores import campaigns as campaign_store
from fundgoal.web.app import create_app

from .apps import hello
from .serving import database


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def asgi_get(app: Any, path: str, query: bytes = b"") -> Callable[[], None]:
    """One in-process GET through the app's whole middleware stack."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(b"host", b"bench")],
        "http_version": "1.1",
        "scheme": "http",
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
        "root_path": "",
    }
    loop = asyncio.new_event_loop()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message["status"]

    def call() -> None:
        loop.run_until_complete(app(dict(scope), receive, send))

    return call


def fill_ledger(engine: Any, campaign_id: int, rows: int, start: int) -> None:
    """Bulk rows straight into the ledger table (a benchmark fixture, not a code path)."""
    with engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO ledger_entry (campaign_id, provider, provider_ref, kind, source, currency,
                    amount, amount_refunded, amount_disputed, status, counted, donor_key, anonymous,
                    occurred_at, created_at, updated_at)
                SELECT :cid, 'stripe', 'pi_bench_' || g, 'one_time', 'card', 'USD', 2500, 0, 0,
                    'succeeded', 2500, 'email:donor' || (g % 50000) || '@example.org', false,
                    now() - (g || ' seconds')::interval, now(), now()
                FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g
                """
            ),
            {"cid": campaign_id, "start": start, "stop": start + rows - 1},
        )
        connection.execute(text("ANALYZE ledger_entry"))
    with db.transaction(engine) as session:
        ledger.repair(session, campaign_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    campaign_steps = [1, 10] if args.smoke else [1, 10, 100]
    row_steps = [1_000] if args.smoke else [10_000, 100_000, 1_000_000]
    repeat = 20 if args.smoke else 200

    with database() as url:
        run(url, campaign_steps, row_steps, repeat)
    return 0


def run(url: str, campaign_steps: list[int], row_steps: list[int], repeat: int) -> None:
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        app = create_app(Settings(database_url=url, env="test"), engine=engine)
        keeper = app.state.ctx.snapshots
        baseline = asgi_get(hello(), "/")
        widget = asgi_get(app, "/api/campaigns/c-0")

        print(f"growth benchmark on PostgreSQL, medians of {repeat} calls; in-process ASGI calls")
        print(
            f"{'step':<22}{'widget µs':>10}{'hello µs':>10}{'ratio':>7}{'rebuild ms':>12}"
            f"{'check ms':>10}{'write ms':>10}{'recompute ms':>14}"
        )

        def row(label: str) -> None:
            keeper.refresh(force=True)
            widget()  # the first answer renders and caches; the rest are what readers get
            w = median_seconds(widget, repeat)
            b = median_seconds(baseline, repeat)
            rebuild = median_seconds(lambda: keeper.refresh(force=True), 5)
            check = median_seconds(keeper.refresh, 20)
            counter = iter(range(10**9))

            def write() -> None:
                with db.transaction(engine) as s:
                    ledger.apply(
                        s,
                        ledger.Fact(
                            "stripe",
                            f"pi_w_{label}_{next(counter)}",
                            cid0,
                            currency="USD",
                            amount=1000,
                            status="succeeded",
                            donor_key="email:bench@example.org",
                        ),
                    )

            wr = median_seconds(write, 20)
            with db.transaction(engine) as s:
                rc = median_seconds(lambda: ledger.recompute(s, cid0), 3)
            print(
                f"{label:<22}{w * 1e6:>10.1f}{b * 1e6:>10.1f}{w / b:>7.2f}{rebuild * 1e3:>12.2f}"
                f"{check * 1e3:>10.2f}{wr * 1e3:>10.2f}{rc * 1e3:>14.2f}"
            )

        made = 0
        cid0 = 0
        for count in campaign_steps:
            with db.transaction(engine) as s:
                while made < count:
                    campaign_service.create(
                        s,
                        campaign_service.CampaignSpec(
                            slug=f"c-{made}",
                            title=f"Campaign {made}",
                            currency="USD",
                            milestones=campaign_service.parse_milestones("2500,5000", "USD"),
                        ),
                        actor="bench",
                    )
                    made += 1
                first = campaign_store.by_slug(s, "c-0")
                assert first is not None
                assert first.id is not None
                cid0 = first.id
            row(f"{count} campaigns")
        filled = 0
        for rows in row_steps:
            fill_ledger(engine, cid0, rows - filled, filled)
            filled = rows
            row(f"{rows:,} ledger rows")
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
