"""Dashboard pages. Handlers parse the request, call services in one transaction, render.

Every handler is wrapped by `admin_endpoint` (auth.py): signed-in admins only, CSRF-checked
POSTs. Database work runs in the thread pool; no query is written here (stores/ has them).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar
from urllib.parse import urlencode

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from ... import db, ledger
from ...errors import Conflict, DomainError, NotFound
from ...inputs import numbers
from ...inputs.text import REASON_LENGTH, check_reason, is_slug, single_line
from ...models import AuditLog, Campaign, CampaignStatus, EntryStatus, LedgerEntry, utcnow
from ...money import format_money
from ...progress import OverGoalPolicy, bar_state
from ...services import campaigns as campaign_service
from ...services import exports, gifts, imports
from ...stores import audit
from ...stores import campaigns as campaign_store
from ...stores import donations as donation_store
from ..context import AppContext, ctx
from . import charts
from .auth import Auth, admin_endpoint, read_form
from .forms import CampaignForm, FormError, GiftForm, error_messages

T = TypeVar("T")
STATUSES = [s.value for s in EntryStatus]
SOURCES = ["stripe", *gifts.OFFLINE_SOURCES]  # Stripe gifts (test mode too) are "stripe"


def _tx(engine: Engine, work: Callable[[Session], T]) -> T:
    with db.transaction(engine) as session:
        return work(session)


async def in_tx(request: Request, work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction, off the event loop."""
    return await run_in_threadpool(_tx, ctx(request).engine, work)


def render(
    request: Request, auth: Auth, template: str, *, status: int = 200, **values: Any
) -> Response:
    context = ctx(request)
    body = context.jinja.get_template(f"admin/{template}").render(
        me=auth.email,
        csrf=auth.csrf,
        path=request.url.path,
        money=format_money,
        audit_changes=audit_changes,
        public_url=context.settings.public_url,
        **values,
    )
    return HTMLResponse(body, status_code=status)


def _shown(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


MONEY_KEYS = {"amount", "min_amount", "max_amount"}


def audit_changes(row: AuditLog) -> list[tuple[str, str, str, bool]]:
    """(field, before, after, edited) worth showing: what changed, or what was set."""
    before, after = row.before or {}, row.after or {}
    currency = after.get("currency") or before.get("currency")
    shown = []
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key), after.get(key)
        if new == row.entity_id and old in (None, new):
            continue  # the entry's own id, already in the "On" column
        if key in MONEY_KEYS and isinstance(currency, str):
            old = format_money(old, currency) if isinstance(old, int) else old
            new = format_money(new, currency) if isinstance(new, int) else new
        if row.before is None:
            if new not in (None, "", [], {}):
                shown.append((key, "", _shown(new), False))
        elif old != new:
            shown.append((key, _shown(old), _shown(new), True))
    return shown


def see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _actor(auth: Auth) -> dict[str, Any]:
    return {"actor": auth.email, "admin_id": auth.admin_id}


# --- overview -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    goal: int
    percent: float
    bar_percent: float
    drift: tuple[ledger.Totals, ledger.Totals] | None


def campaign_rows(session: Session) -> list[CampaignRow]:
    rows = []
    for c in campaign_store.all_campaigns(session):
        milestones = campaign_service.milestones_of(c)
        state = bar_state(c.raised, milestones, OverGoalPolicy(c.over_goal_policy))
        rows.append(CampaignRow(c, state.goal, state.percent, state.bar_percent, None))
    return rows


# Recomputing a campaign's totals is a full aggregate over its entries (~0.2 s per 250,000 on
# PostgreSQL), so the overview remembers each answer for as long as the campaign's stored
# totals and version stay the same (any ledger write changes them), and at most DRIFT_TTL.
DRIFT_TTL = 300.0
_drift_cache: dict[tuple[str, int], tuple[float, tuple[int, int, int], Any]] = {}


def cached_drift(
    session: Session, campaign: Campaign, key: str
) -> tuple[ledger.Totals, ledger.Totals] | None:
    assert campaign.id is not None
    stamp = (campaign.version, campaign.raised, campaign.donors)
    now = time.monotonic()
    hit = _drift_cache.get((key, campaign.id))
    if hit is not None and hit[1] == stamp and now - hit[0] < DRIFT_TTL:
        found: tuple[ledger.Totals, ledger.Totals] | None = hit[2]
        return found
    found = ledger.drift(session, campaign)
    _drift_cache[(key, campaign.id)] = (now, stamp, found)
    return found


@admin_endpoint
async def overview(request: Request, auth: Auth) -> Response:
    key = ctx(request).settings.database_url

    def work(session: Session) -> dict[str, Any]:
        rows = []
        for row in campaign_rows(session):
            if row.campaign.status != CampaignStatus.ARCHIVED:
                found = cached_drift(session, row.campaign, key)
                rows.append(
                    CampaignRow(row.campaign, row.goal, row.percent, row.bar_percent, found)
                )
        return {"rows": rows, "changes": audit.page(session, limit=10)}

    return render(request, auth, "overview.html", **await in_tx(request, work))


@admin_endpoint
async def repair(request: Request, auth: Auth) -> Response:
    slug = request.path_params["slug"]
    await in_tx(request, lambda s: campaign_service.repair_totals(s, slug, **_actor(auth)))
    await ctx(request).campaigns_changed()
    return see_other("/admin?repaired=" + slug)


# --- campaigns ------------------------------------------------------------------------------


@admin_endpoint
async def campaign_list(request: Request, auth: Auth) -> Response:
    rows = await in_tx(request, campaign_rows)
    return render(request, auth, "campaigns.html", rows=rows)


@admin_endpoint
async def campaign_new(request: Request, auth: Auth) -> Response:
    if request.method == "GET":
        return render(request, auth, "campaign_form.html", form=CampaignForm.blank(), campaign=None)
    form = CampaignForm.parse(await read_form(request))
    try:
        spec = form.spec()
        await in_tx(request, lambda s: campaign_service.create(s, spec, **_actor(auth)))
    except DomainError as exc:
        errors = error_messages(exc)
        return render(
            request,
            auth,
            "campaign_form.html",
            status=exc.status,
            form=form,
            campaign=None,
            errors=errors,
        )
    await ctx(request).campaigns_changed()
    return see_other(f"/admin/campaigns/{spec.slug}?saved=1")


def _campaign_page(session: Session, slug: str) -> dict[str, Any]:
    campaign = campaign_service.get(session, slug)
    assert campaign.id is not None
    return {
        "campaign": campaign,
        "locked_currency": donation_store.has_entries(session, campaign.id),
        "history": audit.page(session, entity="campaign", entity_id=slug, limit=20),
    }


@admin_endpoint
async def campaign_edit(request: Request, auth: Auth) -> Response:
    slug = request.path_params["slug"]
    if request.method == "GET":
        page = await in_tx(request, lambda s: _campaign_page(s, slug))
        return render(
            request,
            auth,
            "campaign_form.html",
            form=CampaignForm.of(page["campaign"]),
            saved=request.query_params.get("saved"),
            **page,
        )
    form = CampaignForm.parse(await read_form(request))
    form.slug = slug

    def work(session: Session) -> None:
        campaign = campaign_service.get(session, slug)  # 404 before any form error
        del campaign
        spec = form.spec()
        reason = form.checked_reason()
        campaign_service.update(session, slug, spec, reason=reason, **_actor(auth))

    try:
        await in_tx(request, work)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        errors = error_messages(exc)
        page = await in_tx(request, lambda s: _campaign_page(s, slug))
        return render(
            request,
            auth,
            "campaign_form.html",
            status=exc.status,
            form=form,
            errors=errors,
            **page,
        )
    await ctx(request).campaigns_changed()
    return see_other(f"/admin/campaigns/{slug}?saved=1")


STATUS_ACTIONS = {
    "close": CampaignStatus.CLOSED,
    "reopen": CampaignStatus.ACTIVE,
    "archive": CampaignStatus.ARCHIVED,
}


@admin_endpoint
async def campaign_status(request: Request, auth: Auth) -> Response:
    slug = request.path_params["slug"]
    form = await read_form(request)
    action = STATUS_ACTIONS.get(str(form.get("action", "")))
    if action is None:
        raise FormError(["choose close, reopen or archive"])
    reason = check_reason(str(form.get("reason", ""))[: 4 * REASON_LENGTH])
    await in_tx(
        request,
        lambda s: campaign_service.set_status(s, slug, action, reason=reason, **_actor(auth)),
    )
    await ctx(request).campaigns_changed()
    return see_other(f"/admin/campaigns/{slug}?saved=1")


# --- reports and embed code ----------------------------------------------------------------


@admin_endpoint
async def reports(request: Request, auth: Auth) -> Response:
    slug = request.path_params["slug"]
    bucket = request.query_params.get("by", "day")
    if bucket not in donation_store.BUCKETS:
        bucket = "day"

    def work(session: Session) -> dict[str, Any]:
        campaign = campaign_service.get(session, slug)
        assert campaign.id is not None
        totals = donation_store.totals_by_period(session, campaign.id, bucket)
        goal = bar_state(
            campaign.raised,
            campaign_service.milestones_of(campaign),
            OverGoalPolicy(campaign.over_goal_policy),
        ).goal
        sources, table = charts.period_table(totals, campaign.currency)
        return {
            "campaign": campaign,
            "bucket": bucket,
            "line": charts.raised_over_time(totals, goal, campaign.currency),
            "bars": charts.by_source(totals, campaign.currency),
            "sources": sources,
            "table": table,
            "total": format_money(sum(t.amount for t in totals), campaign.currency),
            "gifts": sum(t.gifts for t in totals),
        }

    return render(request, auth, "reports.html", **await in_tx(request, work))


@dataclass(frozen=True)
class EmbedCode:
    script: str
    iframe: str
    image: str
    preview: str


def embed_code(
    public_url: str, campaign: Campaign, locale: str, theme: str, accent: str, compact: bool
) -> EmbedCode:
    from html import escape

    slug = campaign.slug
    attrs = f'data-fundgoal="{slug}" data-locale="{escape(locale)}" data-theme="{escape(theme)}"'
    attrs += f' data-accent="{escape(accent)}"'
    if compact:
        attrs += " data-compact"
    script = (
        f'<div {attrs}><a href="{public_url}/donate/{slug}">Support us</a></div>\n'
        f'<script async src="{public_url}/widget.js"></script>'
    )
    query = {"locale": locale, "theme": theme, "accent": accent}
    if compact:
        query["compact"] = "1"
    qs = urlencode(query)
    title = escape(campaign.title)
    height = 96 if compact else 150
    iframe = (
        f'<iframe src="{public_url}/embed/{slug}?{qs}" title="{title}: fundraising progress" '
        f'width="100%" height="{height}" style="border:0" loading="lazy"></iframe>'
    )
    image = (
        f'<img src="{public_url}/campaigns/{slug}/badge.svg?locale={escape(locale)}" '
        f'alt="{title}: fundraising progress" width="480" height="112">'
    )
    return EmbedCode(script, iframe, image, f"/embed/{slug}?{qs}")


@admin_endpoint
async def embed(request: Request, auth: Auth) -> Response:
    slug = request.path_params["slug"]
    campaign = await in_tx(request, lambda s: campaign_service.get(s, slug))
    defaults = campaign_service.check_theme(campaign.theme or {})
    query = request.query_params
    chosen = {
        "locale": query.get("locale") or defaults["locale"],
        "theme": query.get("theme") or defaults["theme"],
        "accent": (query.get("accent") or defaults["accent"]).lower(),
        "compact": query.get("compact", "1" if defaults["compact"] else "") in ("1", "on"),
    }
    try:
        options = campaign_service.check_theme(chosen)
        error = None
    except DomainError as exc:
        options, error = defaults, exc.message
    code = embed_code(
        ctx(request).settings.public_url,
        campaign,
        options["locale"],
        options["theme"],
        options["accent"],
        options["compact"],
    )
    return render(
        request, auth, "embed.html", campaign=campaign, options=options, code=code, error=error
    )


# --- donations ------------------------------------------------------------------------------


@dataclass
class ListQuery:
    filters: donation_store.DonationFilter
    values: dict[str, str]
    errors: list[str]


def _list_query(session: Session, params: Any) -> ListQuery:
    values = {
        k: str(params.get(k, "")).strip()[:200]
        for k in ("campaign", "status", "source", "since", "until", "q")
    }
    errors: list[str] = []
    try:
        # The search text goes into a query: the same character rules as stored text.
        single_line(values["q"], 200, "Search")
    except DomainError as exc:
        errors.append(exc.message)
        values["q"] = ""
    campaign_id = None
    if values["campaign"]:
        found = (
            campaign_store.by_slug(session, values["campaign"])
            if is_slug(values["campaign"])
            else None
        )
        if found is None:
            errors.append(f"no campaign {values['campaign']!r}")
            campaign_id = -1
        else:
            campaign_id = found.id
    dates: dict[str, date | None] = {}
    for key in ("since", "until"):
        dates[key] = None
        if values[key]:
            try:
                dates[key] = numbers.parse_date(values[key])
            except DomainError as exc:
                errors.append(exc.message)
    status = values["status"] if values["status"] in STATUSES else None
    if values["source"] and values["source"] not in SOURCES:
        errors.append(f"the source is one of {', '.join(SOURCES)}")
        values["source"] = ""
    filters = donation_store.DonationFilter(
        campaign_id=campaign_id,
        status=status,
        source=values["source"] or None,
        since=dates["since"],
        until=dates["until"],
        search=values["q"] or None,
    )
    return ListQuery(filters, values, errors)


@admin_endpoint
async def donation_list(request: Request, auth: Auth) -> Response:
    params = request.query_params
    after = donation_store.Cursor.decode(params.get("after", ""))
    before = donation_store.Cursor.decode(params.get("before", ""))

    def work(session: Session) -> dict[str, Any]:
        query = _list_query(session, params)
        page = donation_store.page(session, query.filters, after=after, before=before)
        all_campaigns = campaign_store.all_campaigns(session)
        return {
            "page": page,
            "query": query,
            "campaigns": all_campaigns,
            "slugs": {c.id: c.slug for c in all_campaigns},
        }

    found = await in_tx(request, work)
    kept = {k: v for k, v in found["query"].values.items() if v}
    page = found["page"]
    links = {
        "newest": "/admin/donations?" + urlencode(kept),
        "older": "/admin/donations?" + urlencode({**kept, "after": page.next.encode()})
        if page.next
        else None,
        "newer": "/admin/donations?" + urlencode({**kept, "before": page.previous.encode()})
        if page.previous
        else None,
        "export": "/admin/donations/export.csv?" + urlencode(kept),
    }
    return render(
        request,
        auth,
        "donations.html",
        statuses=STATUSES,
        sources=SOURCES,
        links=links,
        **found,
    )


def _export_rows(context: AppContext, params: Any) -> Iterator[str]:
    # Its own read-only session, open while the response streams; batches keep memory flat.
    # Each batch reads on its own (db.reader): no transaction stays open across the awaits of
    # a slow download.
    with db.reader(context.engine) as session:
        query = _list_query(session, params)
        yield from exports.csv_chunks(session, query.filters)


@admin_endpoint
async def donation_export(request: Request, auth: Auth) -> Response:
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        _export_rows(ctx(request), dict(request.query_params)),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="donations-{stamp}.csv"'},
    )


def stripe_links(entry: LedgerEntry, secret_key: str) -> list[tuple[str, str, str]]:
    """(label, id, dashboard URL) for each Stripe object the entry names."""
    live = secret_key.startswith(("sk_live_", "rk_live_"))
    base = "https://dashboard.stripe.com" + ("" if live else "/test")
    found = []
    for label, value, kind in (
        ("Payment", entry.payment_intent_id, "payments"),
        ("Charge", entry.charge_id, "payments"),
        ("Invoice", entry.invoice_id, "invoices"),
        ("Subscription", entry.subscription_id, "subscriptions"),
        ("Customer", entry.customer_id, "customers"),
    ):
        if value:
            found.append((label, value, f"{base}/{kind}/{value}"))
    return found


def _entry_page(session: Session, entry_id: int) -> dict[str, Any]:
    entry = donation_store.by_id(session, entry_id) if 0 < entry_id <= numbers.MAX_ID else None
    if entry is None:
        raise NotFound(f"no donation {entry_id}")
    campaign = campaign_store.by_id(session, entry.campaign_id)
    assert campaign is not None
    return {
        "entry": entry,
        "campaign": campaign,
        "history": audit.page(
            session, entity="ledger_entry", entity_id=entry.provider_ref, limit=50
        ),
    }


@admin_endpoint
async def donation_detail(request: Request, auth: Auth) -> Response:
    entry_id = request.path_params["entry_id"]
    found = await in_tx(request, lambda s: _entry_page(s, entry_id))
    key = ctx(request).settings.stripe_secret_key.reveal()
    return render(
        request,
        auth,
        "donation.html",
        links=stripe_links(found["entry"], key),
        saved=request.query_params.get("saved"),
        **found,
    )


# --- offline gifts --------------------------------------------------------------------------


def _open_campaigns(session: Session) -> list[Campaign]:
    return [c for c in campaign_store.all_campaigns(session) if c.status != CampaignStatus.ARCHIVED]


def _gift_form(
    request: Request,
    auth: Auth,
    form: GiftForm,
    campaigns: Sequence[Campaign],
    entry: LedgerEntry | None,
    error: DomainError | None = None,
) -> Response:
    """The record/edit gift page, fresh or re-rendered with what was wrong."""
    if error is None:
        return render(
            request,
            auth,
            "gift_form.html",
            form=form,
            campaigns=campaigns,
            entry=entry,
            sources=gifts.OFFLINE_SOURCES,
        )
    return render(
        request,
        auth,
        "gift_form.html",
        status=error.status,
        form=form,
        campaigns=campaigns,
        entry=entry,
        errors=error_messages(error),
        sources=gifts.OFFLINE_SOURCES,
    )


@admin_endpoint
async def gift_new(request: Request, auth: Auth) -> Response:
    campaigns = await in_tx(request, _open_campaigns)
    if request.method == "GET":
        form = GiftForm(campaign=request.query_params.get("campaign", ""))
        form.date = utcnow().date().isoformat()
        return _gift_form(request, auth, form, campaigns, None)
    form = GiftForm.parse(await read_form(request))

    def work(session: Session) -> LedgerEntry:
        campaign = campaign_service.get(session, form.campaign)
        if campaign.status == CampaignStatus.ARCHIVED:
            raise FormError(["the campaign is archived"])
        values = form.values(campaign.currency)
        return gifts.record_offline_gift(
            session, campaign, values.pop("amount"), **values, **_actor(auth)
        )

    try:
        entry = await in_tx(request, work)
    except DomainError as exc:
        return _gift_form(request, auth, form, campaigns, None, exc)
    await ctx(request).campaigns_changed()
    return see_other(f"/admin/donations/{entry.id}?saved=1")


def _offline_entry(session: Session, entry_id: int) -> tuple[LedgerEntry, Campaign]:
    page = _entry_page(session, entry_id)
    entry: LedgerEntry = page["entry"]
    if entry.provider != "offline":
        raise NotFound("only offline gifts can be edited here; Stripe's come from Stripe")
    return entry, page["campaign"]


def _editable(session: Session, entry_id: int) -> LedgerEntry:
    entry, campaign = _offline_entry(session, entry_id)
    if entry.status == EntryStatus.VOID:
        raise Conflict("the gift is void; record a new one instead")
    if campaign.status == CampaignStatus.ARCHIVED:
        raise Conflict("the campaign is archived; its gifts can no longer change")
    return entry


@admin_endpoint
async def gift_edit(request: Request, auth: Auth) -> Response:
    entry_id = request.path_params["entry_id"]
    entry, campaign = await in_tx(request, lambda s: _offline_entry(s, entry_id))
    if request.method == "GET":
        return _gift_form(request, auth, GiftForm.of(entry, campaign.slug), [campaign], entry)
    form = GiftForm.parse(await read_form(request))
    form.campaign = campaign.slug

    def work(session: Session) -> None:
        # Dashboard policy on top of the service: a void gift stays void (record a new one),
        # an archived campaign's gifts are frozen, and every edit says why.
        _editable(session, entry_id)
        current = campaign_service.get(session, campaign.slug)
        reason = check_reason(form.reason)
        if not reason:
            raise FormError(["Why: say why the gift is changed"])
        values = form.values(current.currency)
        gifts.record_offline_gift(
            session,
            current,
            values.pop("amount"),
            ref=entry.provider_ref,
            reason=reason,
            **values,
            **_actor(auth),
        )

    try:
        await in_tx(request, work)
    except DomainError as exc:
        return _gift_form(request, auth, form, [campaign], entry, exc)
    await ctx(request).campaigns_changed()
    return see_other(f"/admin/donations/{entry_id}?saved=1")


@admin_endpoint
async def gift_void(request: Request, auth: Auth) -> Response:
    entry_id = request.path_params["entry_id"]
    reason = str((await read_form(request)).get("reason", ""))[: 4 * REASON_LENGTH]

    def work(session: Session) -> None:
        entry = _editable(session, entry_id)
        gifts.void_offline_gift(session, entry.provider_ref, reason=reason, **_actor(auth))

    await in_tx(request, work)
    await ctx(request).campaigns_changed()
    return see_other(f"/admin/donations/{entry_id}?saved=1")


# --- CSV import -----------------------------------------------------------------------------


@admin_endpoint
async def import_page(request: Request, auth: Auth) -> Response:
    if request.method == "GET":
        return render(request, auth, "import.html", plan=None, columns=imports.COLUMNS)
    form = await read_form(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        return render(
            request,
            auth,
            "import.html",
            status=400,
            plan=None,
            columns=imports.COLUMNS,
            errors=["Choose a CSV file to import."],
        )
    data = await upload.read(imports.MAX_BYTES + 1)
    plan = await in_tx(request, lambda s: imports.plan(s, data))
    return render(
        request,
        auth,
        "import.html",
        status=200 if plan.valid else 400,
        plan=plan,
        columns=imports.COLUMNS,
        payload=base64.b64encode(data).decode() if plan.valid else "",
        filename=upload.filename or "upload.csv",
    )


@admin_endpoint
async def import_confirm(request: Request, auth: Auth) -> Response:
    form = await read_form(request)
    try:
        data = base64.b64decode(str(form.get("payload", "")), validate=True)
    except (binascii.Error, ValueError):
        raise FormError(["the import form was damaged; upload the file again"]) from None
    try:
        plan = await in_tx(request, lambda s: imports.apply(s, data, **_actor(auth)))
    except DomainError as exc:
        preview = await in_tx(request, lambda s: imports.plan(s, data))
        return render(
            request,
            auth,
            "import.html",
            status=exc.status,
            plan=preview,
            columns=imports.COLUMNS,
            errors=[exc.message],
            payload="",
        )
    await ctx(request).campaigns_changed()
    return see_other(f"/admin/audit?imported={len(plan.rows)}")


# --- audit log ------------------------------------------------------------------------------


@admin_endpoint
async def audit_log(request: Request, auth: Auth) -> Response:
    before_id = numbers.query_id(request.query_params.get("before", ""), "before")
    rows = await in_tx(request, lambda s: audit.page(s, before_id=before_id, limit=50))
    older = f"/admin/audit?before={rows[-1].id}" if len(rows) == 50 else None
    return render(
        request,
        auth,
        "audit.html",
        rows=rows,
        older=older,
        imported=request.query_params.get("imported"),
    )
