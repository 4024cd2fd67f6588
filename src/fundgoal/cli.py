"""The `fundgoal` command. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from types import FrameType

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from . import db
from .config import ConfigError, Settings, load_settings
from .errors import DomainError
from .inputs import numbers
from .inputs.campaign import CampaignText, MilestoneRow
from .inputs.text import shown
from .money import format_money
from .payments import Gateway
from .progress import OverGoalPolicy, bar_state
from .services import admins as admin_service
from .services import campaigns as campaign_service
from .services import stripe_events
from .services.demo import seed_demo
from .stores import campaigns as campaign_store


class CliError(Exception):
    """A one-line error for the person at the terminal."""


def _engine(settings: Settings, *, attended: bool = True) -> Engine:
    # A command someone runs at a terminal has no call limit (Ctrl-C ends it, and `db upgrade`
    # may legitimately take long); the server's start-up checks have one.
    timeouts = settings.db_timeouts
    return db.make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        timeouts=replace(timeouts, call=None) if attended else timeouts,
    )


def _require_schema(engine: Engine) -> None:
    pending = db.pending_migrations(engine)
    if pending:
        raise CliError(
            f"the database schema is behind ({len(pending)} migrations pending): "
            "run `fundgoal db upgrade`"
        )


def startup_problems(settings: Settings, engine: Engine) -> list[str]:
    """Why `serve` must refuse to start in production; empty when it may."""
    problems = settings.production_problems() if settings.production else []
    try:
        pending = db.pending_migrations(engine)
    except SQLAlchemyError as exc:
        if db.unavailable(exc) is None:
            raise
        cause = exc.orig if isinstance(exc, OperationalError) else exc
        reason = f"the database is unreachable ({cause.__class__.__name__})"
        if settings.is_sqlite:
            return [*problems, reason]
        # PostgreSQL may be away for a while: start degraded rather than not at all. Each
        # worker checks the schema when the database answers (/readyz says 503 until then,
        # and while migrations are pending).
        print(
            f"fundgoal: warning: {reason}: starting degraded; the bars answer from the last "
            "saved snapshot and /readyz answers 503 until the database answers and its schema "
            "is checked",
            file=sys.stderr,
        )
        return problems
    if pending and (settings.production or not settings.is_sqlite):
        problems.append(
            f"the schema is not up to date ({len(pending)} migrations pending): "
            "run `fundgoal db upgrade`"
        )
    return problems


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings, attended=False)
    if settings.is_sqlite and not settings.production:
        db.upgrade(engine)  # the embedded default sets itself up
    problems = startup_problems(settings, engine)
    engine.dispose()
    if problems:
        for problem in problems:
            print(f"fundgoal: refusing to start: {problem}", file=sys.stderr)
        return 1
    _run_server(
        args.host, args.port, args.workers, json_logs=settings.log_json or settings.production
    )
    return 0


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM: after uvicorn's graceful shutdown (or before it started) there is nothing left."""
    raise SystemExit(0)


def _run_server(host: str, port: int, workers: int, *, json_logs: bool = False) -> None:
    import uvicorn

    from .logs import uvicorn_log_config

    print(f"fundgoal: serving on http://{host}:{port} with {workers} worker(s)", file=sys.stderr)
    # A single uvicorn process re-raises the SIGTERM it shut down on once it is done, which
    # would end us with status -15 although every request finished; the process manager
    # (--workers N) exits 0. A requested, completed stop is a success either way.
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(
        "fundgoal.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        timeout_graceful_shutdown=30,  # let in-flight webhooks finish on SIGTERM
        log_config=uvicorn_log_config(json_logs),
    )


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    if settings.production:
        raise CliError("the demo never runs with FUNDGOAL_ENV=production")
    public_url = os.environ.get("FUNDGOAL_PUBLIC_URL") or f"http://{args.host}:{args.port}"
    os.environ["FUNDGOAL_PUBLIC_URL"] = public_url  # the workers read the environment
    engine = _engine(settings)
    db.upgrade(engine)
    with db.transaction(engine) as session:
        seed_demo(session)
    engine.dispose()
    print(f"fundgoal: demo article at {public_url}/demo", file=sys.stderr)
    _run_server(args.host, args.port, 1)
    return 0


def cmd_db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    pending = db.pending_migrations(engine)
    db.upgrade(engine)
    print(f"applied {len(pending)} migration(s); schema is up to date")
    return 0


def cmd_create_admin(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    _require_schema(engine)
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise CliError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    with db.transaction(engine) as session:
        admin = admin_service.create_admin(session, args.email, password, actor="cli")
    print(f"created admin {admin.email}")
    return 0


def _date(text: str) -> date:
    try:
        return numbers.parse_date(text)
    except DomainError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def cmd_campaign_create(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    _require_schema(engine)
    # The dashboard's campaign form, filled from the arguments: the same rules and messages.
    spec = CampaignText(
        slug=args.slug,
        title=args.title,
        currency=args.currency.upper(),
        milestones=[MilestoneRow(part) for part in args.milestones.split(",")[:100]],
        description=args.description or "",
        deadline=args.deadline.isoformat() if args.deadline else "",
        policy=args.policy,
    ).spec()
    with db.transaction(engine) as session:
        campaign = campaign_service.create(session, spec, actor="cli")
    print(f"created campaign {campaign.slug}")
    return 0


def cmd_campaign_list(_args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    _require_schema(engine)
    with db.transaction(engine) as session:
        rows = campaign_store.all_campaigns(session)
        if not rows:
            print("no campaigns yet: fundgoal campaign create SLUG --title ... --milestones ...")
        for c in rows:
            goal = campaign_service.milestones_of(c)[-1].amount
            print(
                f"{shown(c.slug):<24} {c.status:<9} {format_money(c.raised, c.currency):>14} of "
                f"{format_money(goal, c.currency):<14} {c.donors:>6} donors  {shown(c.title)}"
            )
    return 0


def cmd_campaign_show(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    _require_schema(engine)
    with db.transaction(engine) as session:
        report = campaign_service.totals_report(session, args.slug)
    c = report.campaign
    milestones = campaign_service.milestones_of(c)
    state = bar_state(c.raised, milestones, OverGoalPolicy(c.over_goal_policy))

    def money(minor: int) -> str:
        return format_money(minor, c.currency)

    # Stored text is printed escaped: an old row may hold terminal escapes (titles are
    # checked on the way in now, but rows written before that were not).
    print(f"{shown(c.title)} ({shown(c.slug)}), {c.status}, {c.currency}")
    print(
        f"goal:       {money(state.goal)}  ({state.percent}% raised, policy {c.over_goal_policy})"
    )
    for m in milestones:
        mark = "x" if c.raised >= m.amount else " "
        kind = " (stretch)" if m.stretch else ""
        print(f"  [{mark}] {money(m.amount)}{kind}  {shown(m.label or '')}".rstrip())
    if c.deadline:
        print(f"deadline:   {c.deadline.isoformat()}")
    print(f"stored:     raised {money(report.stored.raised)}, {report.stored.donors} donors")
    print(f"ledger:     raised {money(report.derived.raised)}, {report.derived.donors} donors")
    if report.consistent:
        print("totals:     consistent")
        return 0
    print("totals:     DIFFER: the stored totals disagree with the ledger", file=sys.stderr)
    return 3


RECONCILE_DEFAULT_DAYS = 30  # Stripe keeps events 30 days; older gaps are rare and deliberate


def cmd_stripe_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    if settings.test_mode_payments:
        raise CliError("reconcile needs STRIPE_SECRET_KEY: test mode has no Stripe account")
    from .payments.stripe import StripeGateway  # the library loads only for this command

    engine = _engine(settings)
    try:
        return _reconcile(args, engine, StripeGateway(settings))
    finally:
        engine.dispose()


def _reconcile(args: argparse.Namespace, engine: Engine, gateway: Gateway) -> int:
    _require_schema(engine)
    since = (
        datetime.combine(args.since, time.min, tzinfo=UTC)
        if args.since
        else datetime.now(UTC) - timedelta(days=RECONCILE_DEFAULT_DAYS)
    )

    def progress(kind: str, count: int) -> None:
        print(f"\rchecked {count} objects ({kind.replace('_', ' ')})", end="", file=sys.stderr)

    report = stripe_events.reconcile(engine, gateway, since, progress=progress)
    if report.checked:
        print(file=sys.stderr)  # end the progress line
    print(
        f"checked {report.checked} Stripe objects since {since.date().isoformat()}: "
        f"{report.changed} changed, {report.ignored} not fundgoal's or nothing to do, "
        f"{len(report.problems)} could not be reconciled"
    )
    for problem in report.problems:
        print(f"  not reconciled: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fundgoal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(handler=cmd_serve)

    demo = sub.add_parser("demo", help="seed the demo campaign and serve it (SQLite, test mode)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(handler=cmd_demo)

    dbp = sub.add_parser("db", help="database maintenance")
    dbsub = dbp.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dbsub.add_parser("upgrade", help="apply pending migrations").set_defaults(
        handler=cmd_db_upgrade
    )

    admin = sub.add_parser("create-admin", help="create a dashboard admin (password on stdin)")
    admin.add_argument("email")
    admin.set_defaults(handler=cmd_create_admin)

    campaign = sub.add_parser("campaign", help="create, list and inspect campaigns")
    csub = campaign.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")
    create = csub.add_parser("create", help="create a campaign")
    create.add_argument("slug")
    create.add_argument("--title", required=True)
    create.add_argument("--currency", default="usd")
    create.add_argument(
        "--milestones",
        required=True,
        help="amounts in major units, increasing; the last is the goal",
    )
    create.add_argument("--deadline", type=_date)
    create.add_argument("--description")
    create.add_argument(
        "--policy",
        choices=[p.value for p in OverGoalPolicy],
        default="fill",
        help="over 100%%: cap, fill (keep counting) or stretch",
    )
    create.set_defaults(handler=cmd_campaign_create)
    csub.add_parser("list", help="all campaigns").set_defaults(handler=cmd_campaign_list)
    show = csub.add_parser("show", help="one campaign, stored totals against the ledger")
    show.add_argument("slug")
    show.set_defaults(handler=cmd_campaign_show)

    stripe_cmd = sub.add_parser("stripe", help="Stripe maintenance")
    ssub = stripe_cmd.add_subparsers(dest="stripe_command", required=True, metavar="ACTION")
    reconcile = ssub.add_parser(
        "reconcile",
        help="apply Checkout Sessions, invoices, refunds and disputes the ledger missed",
    )
    reconcile.add_argument(
        "--since",
        type=_date,
        help=f"first day to look at (default: {RECONCILE_DEFAULT_DAYS} days ago)",
    )
    reconcile.set_defaults(handler=cmd_stripe_reconcile)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        code: int = args.handler(args, settings)
        return code
    except (CliError, ConfigError, DomainError) as exc:
        print(f"fundgoal: error: {shown(str(exc))}", file=sys.stderr)
        return 1
    except OperationalError as exc:
        print(
            f"fundgoal: error: the database is unreachable: {str(exc.orig).splitlines()[0]}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
