"""Stripe webhook ingestion under load: `fundgoal serve --workers 2` on PostgreSQL, 16 senders.

A child process runs the fake Stripe server (tests.fakestripe) and pre-generates, with its
simulation API, a realistic mix of signed events for --donations gifts over four campaigns:
one-time gifts, monthly gifts with further paid invoices, partial and full refunds, disputes
won and lost. 10 % of the events are delivered twice and the whole list is shuffled, so
deliveries arrive duplicated and out of order. The webhook handler asks the same fake Stripe
for the objects it needs (STRIPE_API_BASE), as production asks Stripe.

16 concurrent senders (asyncio streams, keep-alive, requests pre-encoded) post every event to 127.0.0.1;
the same senders then post the same bodies to a bare Starlette app that only reads the body and
answers 200 (`bench.apps:sink`, same uvicorn process manager, 2 workers): that baseline shows
the load generator is not the bottleneck. Finally every campaign's `/api/campaigns/{slug}`
total must equal the harness's own expected total and `ledger.recompute`: nothing lost or
counted twice.

    .venv/bin/python -m bench.webhooks                 # 2,000 donations
    .venv/bin/python -m bench.webhooks --smoke         # CI: 40 donations, asserts only totals
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

from bench.serving import (
    baseline_serve,
    cpu_times,
    cpu_used,
    database,
    fundgoal_serve,
    postgres_pids,
    worker_pids,
)
from fundgoal import db, ledger
from fundgoal.payments import CheckoutRequest
from fundgoal.payments.stripe import checkout_params
from fundgoal.progress import Milestone
from fundgoal.services import campaigns
from fundgoal.stores import campaigns as campaign_store

API_KEY = "sk_test_fundgoal_bench"
WEBHOOK_SECRET = "whsec_fundgoal_bench_0123456789"
SENDERS = 16
AMOUNTS = (500, 1000, 2500, 5000, 10_000)


@dataclass
class Generated:
    deliveries: list[tuple[bytes, str]]  # (body, Stripe-Signature), in sending order
    expected: dict[str, int]  # slug -> raised, minor units
    events: int  # distinct events
    mix: dict[str, int]


def generate(fake: Any, targets: list[tuple[int, str]], donations: int, seed: int) -> Generated:
    """Every event of `donations` gifts, simulated on the fake Stripe's state."""
    from tests.fakestripe import sign_event

    rng = random.Random(seed)
    state = fake.state
    events: list[dict[str, Any]] = []
    expected = {slug: 0 for _id, slug in targets}
    mix: dict[str, int] = {}
    for i in range(donations):
        campaign_id, slug = targets[i % len(targets)]
        amount = rng.choice(AMOUNTS)
        monthly = rng.random() < 0.25
        request = CheckoutRequest(
            attempt_id=f"att_bench_{i}",  # never stored: the campaign is found by metadata
            campaign_id=campaign_id,
            campaign_slug=slug,
            campaign_title=slug,
            amount=amount,
            currency="USD",
            frequency="monthly" if monthly else "once",
            public_url="http://127.0.0.1:8000",
        )
        session = state.create_checkout_session(dict(checkout_params(request)))
        events += state.complete_checkout(session["id"], email=f"donor{i}@example.org")
        if monthly:
            more = rng.choice((0, 1, 2))
            for _ in range(more):
                events += state.pay_next_invoice(state.get(session["id"])["subscription"])
            expected[slug] += amount * (1 + more)
            kind = f"monthly, {1 + more} invoice(s)"
        else:
            pi = state.get(session["id"])["payment_intent"]
            roll = rng.random()
            if roll < 0.10:
                events += state.refund(pi, amount // 4)
                expected[slug] += amount - amount // 4
                kind = "one-time, partly refunded"
            elif roll < 0.15:
                events += state.refund(pi)
                kind = "one-time, fully refunded"
            elif roll < 0.20:
                opened = state.dispute(pi)
                events += opened + state.close_dispute(opened[0]["data"]["object"]["id"], won=True)
                expected[slug] += amount
                kind = "one-time, dispute won"
            elif roll < 0.25:
                opened = state.dispute(pi)
                events += opened + state.close_dispute(opened[0]["data"]["object"]["id"], won=False)
                kind = "one-time, dispute lost"
            else:
                expected[slug] += amount
                kind = "one-time"
        mix[kind] = mix.get(kind, 0) + 1
    signed = [sign_event(event, WEBHOOK_SECRET) for event in events]
    deliveries = signed + rng.sample(signed, len(signed) // 10)  # 10 % delivered twice
    rng.shuffle(deliveries)  # out of order, across gifts and within each gift
    return Generated(deliveries, expected, len(events), mix)


def fake_stripe_process(conn: Connection) -> None:
    """Child process: serve the fake Stripe, generate on request, stop when told."""
    from tests.fakestripe import run_fake_stripe

    with run_fake_stripe() as fake:
        conn.send(fake.base_url)
        targets, donations, seed = conn.recv()
        conn.send(generate(fake, targets, donations, seed))
        conn.recv()  # stop


async def _send_all(
    host: str, port: int, deliveries: list[tuple[bytes, str]]
) -> tuple[float, list[float], int]:
    """(seconds, latencies in ms, error count): 16 keep-alive senders share the list.

    A minimal HTTP/1.1 client on asyncio streams with every request pre-encoded: httpx spent
    more CPU per request than the server under test, on the same two cores.
    """
    requests = [
        b"POST /webhooks/stripe HTTP/1.1\r\nhost: %s:%d\r\ncontent-type: application/json\r\n"
        b"stripe-signature: %s\r\ncontent-length: %d\r\n\r\n%s"
        % (host.encode(), port, header.encode(), len(body), body)
        for body, header in deliveries
    ]
    latencies = [0.0] * len(requests)  # by delivery, so they can be grouped by event type
    errors = 0
    position = 0

    async def sender() -> None:
        nonlocal position, errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while position < len(requests):
                index = position
                request = requests[index]
                position += 1
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies[index] = (time.perf_counter() - started) * 1000
                if head[9:12] != b"200":
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(sender() for _ in range(SENDERS))), timeout=600)
    return time.perf_counter() - started, latencies, errors


def send_all(base: str, deliveries: list[tuple[bytes, str]]) -> tuple[float, list[float], int]:
    parts = urlsplit(base)
    assert parts.hostname is not None
    assert parts.port is not None
    return asyncio.run(_send_all(parts.hostname, parts.port, deliveries))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def create_campaigns(url: str, count: int) -> list[tuple[int, str]]:
    engine = db.make_engine(url)
    db.upgrade(engine)
    targets = []
    with db.transaction(engine) as session:
        for n in range(count):
            spec = campaigns.CampaignSpec(
                slug=f"bench-{n}",
                title=f"Bench {n}",
                currency="USD",
                milestones=[Milestone(10**9), Milestone(2 * 10**9)],
            )
            campaign = campaigns.create(session, spec, actor="bench")
            assert campaign.id is not None
            targets.append((campaign.id, campaign.slug))
    engine.dispose()
    return targets


def recomputed(url: str, slugs: list[str]) -> dict[str, int]:
    engine = db.make_engine(url)
    with db.transaction(engine) as session:
        totals = {}
        for slug in slugs:
            row = campaign_store.by_slug(session, slug)
            assert row is not None
            assert row.id is not None
            totals[slug] = ledger.recompute(session, row.id).raised
    engine.dispose()
    return totals


def served_totals(base: str, slugs: list[str]) -> dict[str, set[int]]:
    """Each campaign's `raised` as answered over several fresh connections (both workers)."""
    totals: dict[str, set[int]] = {slug: set() for slug in slugs}
    for _ in range(10):
        for slug in slugs:
            with urllib.request.urlopen(f"{base}/api/campaigns/{slug}", timeout=5) as r:
                totals[slug].add(int(json.loads(r.read())["raised"]))
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--donations", type=int, default=2000)
    parser.add_argument("--campaigns", type=int, default=4)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--pool-size", type=int, default=None, help="FUNDGOAL_DB_POOL_SIZE (default: the app's)"
    )
    parser.add_argument("--smoke", action="store_true", help="40 donations: for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.donations = 40

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    fake = ctx.Process(target=fake_stripe_process, args=(child,), daemon=True)
    fake.start()
    try:
        stripe_base = parent.recv()
        with database() as url:
            targets = create_campaigns(url, args.campaigns)
            slugs = [slug for _id, slug in targets]
            parent.send((targets, args.donations, args.seed))
            generated: Generated = parent.recv()
            env = {
                "FUNDGOAL_DATABASE_URL": url,
                "STRIPE_SECRET_KEY": API_KEY,
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "STRIPE_API_BASE": stripe_base,
            }
            if args.pool_size is not None:
                env["FUNDGOAL_DB_POOL_SIZE"] = str(args.pool_size)
            with fundgoal_serve(env, workers=2) as (base, serve_pid):
                # Who used the two cores while the events were sent (the fake Stripe stands in
                # for a remote API but runs here; PostgreSQL is shared with anything else).
                fake_pid = fake.pid or 0
                parts: dict[str, Callable[[], list[int]]] = {
                    "fundgoal workers": lambda: worker_pids(serve_pid),
                    "PostgreSQL": postgres_pids,
                    "fake Stripe": lambda: [fake_pid],
                }
                cpu_before = {name: cpu_times(pids()) for name, pids in parts.items()}
                own_before = sum(os.times()[:2])
                seconds, latencies, errors = send_all(base, generated.deliveries)
                cpu = {
                    name: cpu_used(cpu_before[name], cpu_times(pids()))
                    for name, pids in parts.items()
                }
                cpu["load generator"] = sum(os.times()[:2]) - own_before
                time.sleep(1.5)  # the one-second freshness promise, across both workers
                served = served_totals(base, slugs)
            truth = recomputed(url, slugs)
        with baseline_serve("sink", workers=2) as sink:
            base_seconds, base_latencies, base_errors = send_all(sink, generated.deliveries)
    finally:
        parent.send("stop")
        fake.join(30)

    sent = len(generated.deliveries)
    rate, base_rate = sent / seconds, sent / base_seconds
    print(
        f"webhook benchmark: {args.donations} donations over {len(slugs)} campaigns, "
        f"{generated.events} events, {sent} deliveries (10 % duplicates, shuffled), "
        f"{SENDERS} senders (asyncio streams, keep-alive), 2 workers, PostgreSQL"
    )
    print("mix: " + ", ".join(f"{kind} {n}" for kind, n in sorted(generated.mix.items())))
    print(f"{'case':<22}{'events/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, r, lat, err in (
        ("fundgoal webhooks", rate, latencies, errors),
        ("bare Starlette sink", base_rate, base_latencies, base_errors),
    ):
        print(
            f"{name:<22}{r:>10,.0f}{percentile(lat, 50):>9.1f}{percentile(lat, 95):>9.1f}"
            f"{percentile(lat, 99):>9.1f}{err:>8}"
        )
    print(
        f"ratio fundgoal / baseline: {rate / base_rate:.2f}   (target: >= 500 events/s, p99 < 100 ms)"
    )
    by_type: dict[str, list[float]] = {}
    for (body, _header), ms in zip(generated.deliveries, latencies, strict=True):
        by_type.setdefault(json.loads(body)["type"], []).append(ms)
    print(f"{'fundgoal, by event type':<34}{'count':>7}{'p50 ms':>9}{'p99 ms':>9}")
    for kind, values in sorted(by_type.items()):
        print(
            f"{kind:<34}{len(values):>7}{percentile(values, 50):>9.1f}"
            f"{percentile(values, 99):>9.1f}"
        )
    print(
        f"CPU seconds while sending ({seconds:.1f} s wall, 2 cores = {2 * seconds:.1f} CPU s): "
        + ", ".join(f"{name} {used:.1f}" for name, used in cpu.items())
        + " (PostgreSQL backends that exit during the run are not counted)"
    )
    print(f"{'campaign':<12}{'expected':>12}{'served':>12}{'recompute':>12}")
    ok = errors == 0
    for slug in slugs:
        answers = served[slug]
        shown = answers.pop() if len(answers) == 1 else -1
        print(f"{slug:<12}{generated.expected[slug]:>12,}{shown:>12,}{truth[slug]:>12,}")
        ok &= shown == generated.expected[slug] == truth[slug]
    if not ok:
        print("FAILED: an event was lost, counted twice, or answered an error", file=sys.stderr)
        return 1
    print("totals: served == expected == ledger.recompute for every campaign")
    return 0


if __name__ == "__main__":
    sys.exit(main())
