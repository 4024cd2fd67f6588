"""The dashboard's donations list and CSV export on a big ledger, against bare Starlette.

Fills a dedicated PostgreSQL database (created on 127.0.0.1:5432 as user postgres, dropped at
the end) with --rows ledger entries in one INSERT … SELECT generate_series, then drives the real
app in-process (starlette's TestClient, signed in through the login form):

  - the donations list: first page, a deep keyset page (90 % down), a filtered page
    (campaign + status + date range), a donor-email search and a donor-name search;
  - the same number of requests to a bare Starlette endpoint answering a static HTML page of the
    first page's size, measured in the same run: the baseline the ratios are against;
  - the CSV export of every row, streamed, with the process's RSS sampled while it streams
    and its peak (ru_maxrss) before and after: constant memory means the peak barely moves.

    .venv/bin/python -m bench.admin_list                  # 1,000,000 rows, 50 requests per case
    .venv/bin/python -m bench.admin_list --rows 10000     # CI smoke: seconds
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import time
from collections.abc import Callable

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.progress import Milestone
from fundgoal.services import admins, campaigns
from fundgoal.web.admin import views
from fundgoal.web.app import create_app

from .serving import database

EMAIL, PASSWORD = "bench@example.org", "benchmark password"

FILL = """
INSERT INTO ledger_entry (
    campaign_id, provider, provider_ref, kind, source, currency, amount, amount_refunded,
    amount_disputed, status, counted, donor_key, donor_name, donor_email, anonymous,
    payment_intent_id, occurred_at, created_at, updated_at)
SELECT c, p, ref, kind, source, 'USD', amount, refunded, disputed, status,
       CASE WHEN status = 'succeeded' THEN amount - refunded - disputed ELSE 0 END,
       'email:' || email, name, email, false,
       CASE WHEN p = 'stripe' THEN ref END, at, at, at
FROM (
    SELECT (%(campaigns)s)[1 + i %% 4] AS c,
           CASE WHEN i %% 5 = 0 THEN 'offline' ELSE 'stripe' END AS p,
           'pi_bench_' || i AS ref,
           CASE WHEN i %% 7 = 0 THEN 'monthly' ELSE 'one_time' END AS kind,
           (ARRAY['stripe','stripe','stripe','bank_transfer','cheque','cash'])[1 + i %% 6] AS source,
           500 + (i * 7919) %% 20000 AS amount,
           CASE WHEN i %% 50 = 0 THEN 500 ELSE 0 END AS refunded,
           CASE WHEN i %% 211 = 0 THEN 500 ELSE 0 END AS disputed,
           CASE WHEN i %% 20 = 0 THEN 'pending' WHEN i %% 33 = 0 THEN 'failed'
                ELSE 'succeeded' END AS status,
           'donor' || (i %% 200000) || '@example.org' AS email,
           'Donor ' || (i %% 200000) AS name,
           timestamptz '2024-11-24 00:00:00+00' + i * (interval '730 days' / %(rows)s) AS at
    FROM generate_series(1::bigint, %(rows)s) AS i
) AS g
"""


def fill(url: str, rows: int) -> list[int]:
    engine = db.make_engine(url)
    db.upgrade(engine)
    with db.transaction(engine) as session:
        admins.create_admin(session, EMAIL, PASSWORD, actor="bench")
        ids = []
        for n in range(4):
            spec = campaigns.CampaignSpec(
                slug=f"bench-{n}",
                title=f"Bench {n}",
                currency="USD",
                milestones=[Milestone(10**9), Milestone(2 * 10**9)],
            )
            campaign = campaigns.create(session, spec, actor="bench")
            assert campaign.id is not None
            ids.append(campaign.id)
    engine.dispose()
    started = time.perf_counter()
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(FILL, {"campaigns": ids, "rows": rows})
        conn.execute(
            "UPDATE campaign SET raised = t.raised, donors = t.donors, last_gift_at = t.last "
            "FROM (SELECT campaign_id, sum(counted) AS raised, "
            "count(DISTINCT donor_key) FILTER (WHERE counted > 0) AS donors, "
            "max(occurred_at) AS last FROM ledger_entry WHERE counted > 0 "
            "GROUP BY campaign_id) AS t WHERE t.campaign_id = campaign.id"
        )
        conn.execute("VACUUM ANALYZE ledger_entry")
    print(f"filled {rows:,} ledger rows in {time.perf_counter() - started:.1f} s")
    return ids


def deep_cursor(url: str, rows: int) -> str:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        found = conn.execute(
            "SELECT occurred_at, id FROM ledger_entry ORDER BY occurred_at DESC, id DESC "
            "OFFSET %s LIMIT 1",
            (int(rows * 0.9),),
        ).fetchone()
    assert found is not None
    moment, ident = found
    return f"{moment.strftime('%Y%m%dT%H%M%S.%f')}~{ident}"


def timings(call: Callable[[], int], count: int) -> list[float]:
    call()  # warm: template compilation, plan caches
    out = []
    for _ in range(count):
        started = time.perf_counter()
        status = call()
        out.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    return out


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    with database() as url:
        fill(url, args.rows)
        cursor = deep_cursor(url, args.rows)
        engine = db.make_engine(url)
        settings = Settings(database_url=url, env="test", public_url="http://testserver")
        app = create_app(settings, engine=engine)
        with TestClient(app) as client:
            login = client.get("/admin/login")
            token = re.search(r'name="csrf" value="([^"]+)"', login.text)
            assert token
            signed = client.post(
                "/admin/login",
                data={"email": EMAIL, "password": PASSWORD, "csrf": token.group(1)},
                follow_redirects=False,
            )
            assert signed.status_code == 303
            first = client.get("/admin/donations")
            static = first.content

            async def page(_request: Request) -> Response:
                return HTMLResponse(static)

            baseline_app = Starlette(routes=[Route("/", page)])
            cases = {
                "first page": "/admin/donations",
                "deep keyset page (90%)": f"/admin/donations?after={cursor}",
                "filtered (campaign+status+dates)": "/admin/donations?campaign=bench-2"
                "&status=succeeded&since=2025-03-01&until=2025-09-30",
                "search by donor email": "/admin/donations?q=donor12345@example.org",
                "search by donor name": "/admin/donations?q=Donor+1234",
                "overview": "/admin",
            }
            with TestClient(baseline_app) as bare:
                base = timings(lambda: bare.get("/").status_code, args.requests)
            base_median, base_p95 = summary(base)
            print(f"\n{args.rows:,} rows, {args.requests} requests per case, in-process")
            print(f"{'case':36} {'median ms':>10} {'p95 ms':>8} {'x baseline':>10}")
            print(f"{'bare Starlette, same-size HTML':36} {base_median:10.2f} {base_p95:8.2f}")
            for label, path in cases.items():
                median, p95 = summary(
                    timings(lambda p=path: client.get(p).status_code, args.requests)
                )
                print(f"{label:36} {median:10.2f} {p95:8.2f} {median / base_median:10.1f}")

            def cold_overview() -> int:
                views._drift_cache.clear()
                return client.get("/admin").status_code

            median, p95 = summary(timings(cold_overview, max(3, args.requests // 10)))
            label = "overview, totals recomputed"
            print(f"{label:36} {median:10.2f} {p95:8.2f} {median / base_median:10.1f}")

            peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            rss_before = rss_kib()
            sampled, size, lines = rss_before, 0, 0
            started = time.perf_counter()
            with client.stream("GET", "/admin/donations/export.csv") as answer:
                assert answer.status_code == 200
                for chunk in answer.iter_bytes():
                    size += len(chunk)
                    lines += chunk.count(b"\n")
                    sampled = max(sampled, rss_kib())
            seconds = time.perf_counter() - started
            peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            assert lines == args.rows + 1, (lines, args.rows)
            print(
                f"\nCSV export: {lines - 1:,} rows, {size / 1e6:.0f} MB in {seconds:.1f} s "
                f"({(lines - 1) / seconds:,.0f} rows/s)"
            )
            print(
                f"RSS while streaming: {rss_before / 1024:.0f} MiB before, "
                f"{sampled / 1024:.0f} MiB at most; peak (ru_maxrss) "
                f"{peak_before / 1024:.0f} MiB before, {peak_after / 1024:.0f} MiB after"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
