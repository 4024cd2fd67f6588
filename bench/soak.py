"""Mixed-load soak: `fundgoal serve --workers 2` on PostgreSQL, every kind of traffic at once.

For --seconds (default 180), against 127.0.0.1 only:
  - widget reads at the highest rate the machine allows: wrk (-t1 -c16) on
    /api/campaigns/{slug}, or a Python keep-alive loop when wrk is not installed;
  - Stripe webhooks at a steady --webhook-rate (default 20/s): the realistic mix of
    bench/webhooks.py (fake Stripe in a child process, duplicates, shuffled), re-signed at send
    time so deliveries stay within Stripe's five-minute signature tolerance;
  - an admin browsing the dashboard: `fundgoal create-admin`, sign-in through the login form
    (POST /admin/login), then the donations list page after page (keyset "next" links), again
    and again.
Checks: no error answer anywhere (non-2xx/3xx, wrk socket errors), each uvicorn worker's RSS
(VmRSS of the serve process's children) at start and end with growth under --rss-bound MB, and
every campaign's widget answer at the end equal to ledger.recompute (and to the harness's own
expected total when every delivery was sent).

    .venv/bin/python -m bench.soak                 # 3 minutes
    .venv/bin/python -m bench.soak --smoke         # CI: 5 seconds, same checks
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import stripe

from bench.serving import database, fundgoal_serve, rss_mb, worker_pids
from bench.webhooks import (
    API_KEY,
    WEBHOOK_SECRET,
    Generated,
    create_campaigns,
    fake_stripe_process,
    recomputed,
    served_totals,
)

ADMIN_EMAIL, ADMIN_PASSWORD = "soak@example.org", "soak benchmark password"


@dataclass
class Tally:
    requests: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, status: int) -> None:
        self.requests += 1
        if not 200 <= status < 400:
            self.errors += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1


def webhook_writer(
    base: str, deliveries: list[tuple[bytes, str]], rate: float, stop: float, tally: Tally
) -> None:
    """Steady rate, keep-alive; each body re-signed now (its first signature may be old)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    started = time.monotonic()
    try:
        for n, (body, _old) in enumerate(deliveries):
            due = started + n / rate
            if due >= stop:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            header = stripe.WebhookSignature.generate_signature_header(
                body.decode(), WEBHOOK_SECRET
            )
            conn.request(
                "POST",
                "/webhooks/stripe",
                body=body,
                headers={"stripe-signature": header, "content-type": "application/json"},
            )
            answer = conn.getresponse()
            answer.read()
            tally.add(answer.status)
    finally:
        conn.close()


def admin_browser(base: str, stop: float, tally: Tally) -> None:
    """Sign in through the form, then walk the donations list by its keyset links, in a loop."""
    with httpx.Client(base_url=base, timeout=30, headers={"origin": base}) as client:
        form = client.get("/admin/login")
        tally.add(form.status_code)
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        if token is None:
            tally.add(599)
            return
        signed_in = client.post(
            "/admin/login",
            data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf": token.group(1)},
        )
        tally.add(signed_in.status_code)
        page = "/admin/donations"
        while time.monotonic() < stop:
            answer = client.get(page)
            tally.add(answer.status_code)
            if "/admin/login" in str(answer.url):  # signed out: that is an error too
                tally.add(599)
                return
            following = re.search(r'href="(/admin/donations\?[^"]*after=[^"]+)"', answer.text)
            page = following.group(1).replace("&amp;", "&") if following else "/admin/donations"
            time.sleep(0.2)  # a person reading, quickly


def widget_reads(url: str, seconds: float, tally: Tally) -> str:
    """wrk at full speed (or a Python keep-alive loop); returns the tool's description."""
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t1", "-c16", f"-d{max(int(seconds), 1)}s", "--latency", url],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
        total = re.search(r"(\d+) requests in", out)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        socket_errors = re.search(r"Socket errors: (.*)", out)
        tally.requests = int(total.group(1)) if total else 0
        tally.errors = int(bad.group(1)) if bad else 0
        if socket_errors:
            tally.errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
        return "wrk -t1 -c16"
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        conn.request("GET", parts.path)
        answer = conn.getresponse()
        answer.read()
        tally.add(answer.status)
    conn.close()
    return "python keep-alive loop (wrk not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--webhook-rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--rss-bound", type=float, default=50.0, help="MB of growth per worker")
    parser.add_argument("--smoke", action="store_true", help="5 seconds: for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds = 5.0
    # About five events per donation: enough deliveries for the whole run.
    donations = max(10, int(args.seconds * args.webhook_rate / 5) + 10)

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    fake = ctx.Process(target=fake_stripe_process, args=(child,), daemon=True)
    fake.start()
    widget, hooks, admin = Tally(), Tally(), Tally()
    try:
        stripe_base = parent.recv()
        with database() as url:
            targets = create_campaigns(url, 4)
            slugs = [slug for _id, slug in targets]
            parent.send((targets, donations, 7))
            generated: Generated = parent.recv()
            env = {
                "FUNDGOAL_DATABASE_URL": url,
                "STRIPE_SECRET_KEY": API_KEY,
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "STRIPE_API_BASE": stripe_base,
            }
            clean = {k: v for k, v in os.environ.items() if not k.startswith("FUNDGOAL_")}
            subprocess.run(
                [sys.executable, "-m", "fundgoal", "create-admin", ADMIN_EMAIL],
                input=ADMIN_PASSWORD + "\n",
                text=True,
                env={**clean, "FUNDGOAL_DATABASE_URL": url},
                check=True,
                capture_output=True,
            )
            with fundgoal_serve(env, workers=2) as (base, serve_pid):
                # Both workers up and warm (each answered) before the first RSS reading.
                served_totals(base, slugs)
                pids = worker_pids(serve_pid)
                rss_start = {pid: rss_mb(pid) for pid in pids}
                stop = time.monotonic() + args.seconds
                threads = [
                    threading.Thread(
                        target=webhook_writer,
                        args=(base, generated.deliveries, args.webhook_rate, stop, hooks),
                    ),
                    threading.Thread(target=admin_browser, args=(base, stop, admin)),
                ]
                for thread in threads:
                    thread.start()
                tool = widget_reads(f"{base}/api/campaigns/{slugs[0]}", args.seconds, widget)
                for thread in threads:
                    thread.join(args.seconds + 60)
                rss_end = {pid: rss_mb(pid) for pid in pids}
                time.sleep(1.5)  # the one-second freshness promise
                served = served_totals(base, slugs)
            truth = recomputed(url, slugs)
    finally:
        parent.send("stop")
        fake.join(30)

    all_sent = hooks.requests == len(generated.deliveries)
    print(
        f"soak: {args.seconds:g} s, 2 workers, PostgreSQL; widget reads by {tool}, webhooks at "
        f"{args.webhook_rate:g}/s, one admin paging the donations list"
    )
    print(f"{'traffic':<28}{'requests':>10}{'per s':>9}{'errors':>8}")
    ok = True
    for name, tally in (
        ("widget GET /api/campaigns", widget),
        ("webhooks POST", hooks),
        ("admin donations list", admin),
    ):
        print(
            f"{name:<28}{tally.requests:>10,}{tally.requests / args.seconds:>9,.0f}"
            f"{tally.errors:>8}" + (f"  {tally.statuses}" if tally.statuses else "")
        )
        ok &= tally.errors == 0
    print(f"{'worker pid':<12}{'RSS start MB':>14}{'RSS end MB':>12}{'growth':>8}  bound")
    for pid in pids:
        growth = rss_end[pid] - rss_start[pid]
        print(
            f"{pid:<12}{rss_start[pid]:>14.1f}{rss_end[pid]:>12.1f}{growth:>8.1f}"
            f"  < {args.rss_bound:g} MB"
        )
        ok &= growth < args.rss_bound
    print(f"{'campaign':<12}{'served':>12}{'recompute':>12}{'expected':>12}")
    for slug in slugs:
        answers = served[slug]
        shown = answers.pop() if len(answers) == 1 else -1
        expected = generated.expected[slug] if all_sent else None
        print(
            f"{slug:<12}{shown:>12,}{truth[slug]:>12,}"
            + (f"{expected:>12,}" if expected is not None else f"{'(partial)':>12}")
        )
        ok &= shown == truth[slug] and (expected is None or expected == shown)
    if not ok:
        print("FAILED: errors, memory growth over the bound, or a wrong total", file=sys.stderr)
        return 1
    print("no errors; RSS growth within bound; widget totals == ledger.recompute")
    return 0


if __name__ == "__main__":
    sys.exit(main())
