"""The donation flow: the form, the redirect to Checkout, the thank-you page, and (in test
mode) the local test checkout.

CSRF is a signed double submit: a random nonce and its HMAC under the signing key, set as a
cookie and repeated in a hidden field. A POST must carry both, equal and correctly signed, so
no server-side session is needed and another site cannot forge the pair.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import db
from ..config import Settings
from ..errors import Conflict, Forbidden, NotFound, TooManyRequests
from ..inputs.emails import check_email
from ..inputs.text import is_slug
from ..models import Campaign
from ..money import format_money, known_locale
from ..payments import CheckoutRequest, Gateway, ProviderError, testmode
from ..progress import OverGoalPolicy, bar_state
from ..services import campaigns as campaign_service
from ..services import donations, stripe_events
from ..stores import attempts as attempt_store
from ..stores import campaigns as campaign_store
from .context import AppContext, ctx

log = logging.getLogger("fundgoal.web.donate")

# A Checkout Session id as Stripe (cs_live_…, cs_test_…) and our test mode write them: the
# only shape looked up, so nothing else reaches a query.
CHECKOUT_ID = re.compile(r"[A-Za-z0-9_]{1,255}")
CSRF_COOKIE = "fundgoal_csrf"
CSRF_FIELD = "csrf_token"
MAX_FORM_FIELDS = 20


def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.payments
    return found


# -- CSRF ------------------------------------------------------------------------------


def _sign(settings: Settings, nonce: str) -> str:
    mac = hmac.new(settings.signing_key().encode(), b"csrf:" + nonce.encode(), hashlib.sha256)
    return f"{nonce}.{mac.hexdigest()}"


def _valid_token(settings: Settings, token: str) -> bool:
    nonce, _, _mac = token.partition(".")
    # Bytes, not str: compare_digest raises TypeError on non-ASCII text (a 500 from a cookie).
    return bool(nonce) and hmac.compare_digest(
        _sign(settings, nonce).encode(), token.encode("utf-8", "surrogateescape")
    )


def csrf_token(request: Request, settings: Settings) -> tuple[str, bool]:
    """(token, whether the cookie must be set): an existing valid cookie is reused, so two
    open tabs both work."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    if existing and _valid_token(settings, existing):
        return existing, False
    return _sign(settings, secrets.token_urlsafe(18)), True


def check_csrf(request: Request, settings: Settings, form: FormData) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    posted = str(form.get(CSRF_FIELD, ""))
    same = hmac.compare_digest(
        cookie.encode("utf-8", "surrogateescape"), posted.encode("utf-8", "surrogateescape")
    )
    if not (cookie and posted and same and _valid_token(settings, cookie)):
        raise Forbidden(
            "This form has expired or was not sent from our page. Reload the page and try again."
        )


def _with_cookie(response: Response, settings: Settings, token: str, new: bool) -> Response:
    if new:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            max_age=2 * 3600,
            httponly=True,
            samesite="lax",
            secure=settings.https,
            path="/",
        )
    return response


# -- rendering -------------------------------------------------------------------------


def _locale(request: Request, settings: Settings, form: FormData | None = None) -> str:
    wanted = str(form.get("locale", "")) if form is not None else ""
    wanted = wanted or request.query_params.get("locale", "")
    if wanted and known_locale(wanted) is not None:
        return wanted
    return settings.default_locale


@dataclass
class PageState:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None


def _campaign_view(campaign: Campaign, locale: str) -> dict[str, Any]:
    milestones = campaign_service.milestones_of(campaign)
    state = bar_state(campaign.raised, milestones, OverGoalPolicy(campaign.over_goal_policy))

    def money(minor: int) -> str:
        return format_money(minor, campaign.currency, locale)

    return {
        "slug": campaign.slug,
        "title": campaign.title,
        "description": campaign.description,
        "raised": money(campaign.raised),
        "goal": money(state.goal),
        "percent": state.percent,
        "bar_percent": state.bar_percent,
        "donors": campaign.donors,
        "ticks": [
            {
                "label": m.label or money(m.amount),
                "amount": money(m.amount),
                "left": round(m.amount * 100 / state.scale_max, 2) if state.scale_max else 0,
                "reached": campaign.raised >= m.amount,
            }
            for m in state.ticks
        ],
        "next": money(state.next_milestone.amount) if state.next_milestone else None,
        "presets": [(p, money(p)) for p in campaign.preset_amounts],
        "min": money(campaign.min_amount),
        "currency": campaign.currency,
        "deadline": campaign.deadline.isoformat() if campaign.deadline else None,
    }


def _known_slug(slug: str) -> str:
    """Only a slug's shape reaches a query: '%00' or 5,000 characters are simply no campaign
    (PostgreSQL refuses NUL in text, which would be a 500)."""
    if not is_slug(slug):
        raise NotFound("There is no such campaign.")
    return slug


def _load(context: AppContext, slug: str) -> tuple[Campaign, list[donations.WallItem]]:
    _known_slug(slug)
    with db.transaction(context.engine) as session:
        campaign = campaign_store.by_slug(session, slug)
        if campaign is None:
            raise NotFound(f"There is no campaign called {slug!r}.")
        return campaign, donations.donor_wall(session, campaign)


def _render_form(
    request: Request,
    campaign: Campaign,
    wall: list[donations.WallItem],
    locale: str,
    state: PageState,
    status: int = 200,
) -> Response:
    context = ctx(request)
    settings = context.settings
    token, new = csrf_token(request, settings)
    body = context.jinja.get_template("donate.html").render(
        campaign=_campaign_view(campaign, locale),
        closed=donations.closed_reason(campaign),
        wall=[
            {
                "name": w.name,
                "message": w.message,
                "amount": format_money(w.amount, w.currency, locale),
            }
            for w in wall
        ],
        locale=locale,
        lang=locale.split("_")[0].split("-")[0],
        values={"frequency": "once", **state.values},
        errors=state.errors,
        notice=state.notice,
        csrf=token,
        csrf_field=CSRF_FIELD,
        test_mode=settings.test_mode_payments,
    )
    response = HTMLResponse(body, status_code=status)
    response.headers["cache-control"] = "no-store"
    return _with_cookie(response, settings, token, new)


# -- the form --------------------------------------------------------------------------


async def donate_page(request: Request) -> Response:
    context = ctx(request)
    locale = _locale(request, context.settings)
    campaign, wall = await run_in_threadpool(_load, context, request.path_params["slug"])
    notice = None
    if request.query_params.get("cancelled"):
        notice = "Your checkout was cancelled; no payment was taken. You can try again below."
    return _render_form(request, campaign, wall, locale, PageState(notice=notice))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _begin(
    context: AppContext, slug: str, donation: donations.Donation, client: str
) -> tuple[CheckoutRequest, str]:
    _known_slug(slug)
    with db.transaction(context.engine) as session:
        campaign = campaign_store.by_slug(session, slug)
        if campaign is None:
            raise NotFound(f"There is no campaign called {slug!r}.")
        donations.ensure_open(campaign)
        donations.check_rate(session, client)
        attempt = donations.start_attempt(session, campaign, donation, client=client)
        return donations.checkout_request(campaign, attempt, context.settings.public_url), (
            attempt.id
        )


def _finish(context: AppContext, attempt_id: str, session_id: str | None) -> None:
    with db.transaction(context.engine) as session:
        if session_id is None:
            donations.mark_failed(session, attempt_id)
        else:
            donations.mark_redirected(session, attempt_id, session_id)


async def donate_submit(request: Request) -> Response:
    context = ctx(request)
    settings = context.settings
    slug = request.path_params["slug"]
    campaign, wall = await run_in_threadpool(_load, context, slug)
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    locale = _locale(request, settings, form)
    values = {k: str(form.get(k, "")) for k in ("amount", "preset", "frequency", "name", "message")}
    values["anonymous"] = "1" if form.get("anonymous") else ""
    reason = donations.closed_reason(campaign)
    if reason:
        return _render_form(request, campaign, wall, locale, PageState(values), status=409)
    check_csrf(request, settings, form)
    try:
        donation = donations.validate(
            campaign,
            donations.DonationForm(
                amount=values["amount"],
                preset=values["preset"],
                frequency=values["frequency"] or "once",
                name=values["name"],
                message=values["message"],
                anonymous=bool(values["anonymous"]),
            ),
            locale,
        )
    except donations.FormError as exc:
        state = PageState(values, {exc.field: exc.message})
        return _render_form(request, campaign, wall, locale, state, status=400)
    client = donations.client_hash(settings.signing_key(), _client(request))
    try:
        checkout, attempt_id = await run_in_threadpool(_begin, context, slug, donation, client)
    except TooManyRequests as exc:
        state = PageState(values, {"form": exc.message})
        return _render_form(request, campaign, wall, locale, state, status=429)
    except Conflict:
        return _render_form(request, campaign, wall, locale, PageState(values), status=409)
    try:
        created = await run_in_threadpool(gateway(request).create_checkout_session, checkout)
    except ProviderError as exc:
        await run_in_threadpool(_finish, context, attempt_id, None)
        log.warning("checkout for attempt %s could not be created: %s", attempt_id, exc.message)
        body = context.jinja.get_template("donate_retry.html").render(
            slug=slug, title=campaign.title, message=exc.message, locale=locale
        )
        return HTMLResponse(body, status_code=exc.status, headers={"retry-after": "30"})
    await run_in_threadpool(_finish, context, attempt_id, created.id)
    return RedirectResponse(created.url, status_code=303)


# -- after checkout --------------------------------------------------------------------


def _gift(context: AppContext, slug: str, session_id: str) -> tuple[Campaign, Any]:
    _known_slug(slug)
    with db.transaction(context.engine) as session:
        campaign = campaign_store.by_slug(session, slug)
        if campaign is None:
            raise NotFound(f"There is no campaign called {slug!r}.")
        return campaign, donations.gift_state(session, campaign, session_id)


async def thanks_page(request: Request) -> Response:
    context = ctx(request)
    locale = _locale(request, context.settings)
    session_id = request.query_params.get("session_id", "")
    if not CHECKOUT_ID.fullmatch(session_id):
        raise NotFound("This page needs the checkout it thanks you for.")
    campaign, gift = await run_in_threadpool(
        _gift, context, request.path_params["slug"], session_id
    )
    attempt = gift.attempt
    body = context.jinja.get_template("donate_thanks.html").render(
        campaign=_campaign_view(campaign, locale),
        status=gift.status,
        amount=format_money(attempt.amount, attempt.currency, locale),
        monthly=attempt.frequency == "monthly",
        name=attempt.donor_name,
        lang=locale.split("_")[0].split("-")[0],
    )
    response = HTMLResponse(body)
    response.headers["cache-control"] = "no-store"
    return response


# -- test mode -------------------------------------------------------------------------


def _test_checkout(context: AppContext, session_id: str) -> tuple[testmode.TestCheckout, str]:
    if not CHECKOUT_ID.fullmatch(session_id):
        raise NotFound("There is no test checkout with this id.")
    with db.transaction(context.engine) as session:
        attempt = attempt_store.by_checkout_session(session, session_id)
        if attempt is None:
            raise NotFound("There is no test checkout with this id.")
        campaign = campaign_store.by_id(session, attempt.campaign_id)
        assert campaign is not None
        assert campaign.id is not None
        return (
            testmode.TestCheckout(
                session_id=session_id,
                attempt_id=attempt.id,
                campaign_id=campaign.id,
                campaign_slug=campaign.slug,
                amount=attempt.amount,
                currency=attempt.currency,
                frequency=attempt.frequency,
                created=int(attempt.created_at.timestamp()),
            ),
            campaign.title,
        )


def _require_test_mode(settings: Settings) -> None:
    if not settings.test_mode_payments:
        raise NotFound("The test checkout only exists in test mode.")


async def test_checkout_page(request: Request) -> Response:
    context = ctx(request)
    _require_test_mode(context.settings)
    checkout, title = await run_in_threadpool(
        _test_checkout, context, request.path_params["session_id"]
    )
    token, new = csrf_token(request, context.settings)
    body = context.jinja.get_template("test_checkout.html").render(
        checkout=checkout,
        title=title,
        amount=format_money(checkout.amount, checkout.currency, context.settings.default_locale),
        monthly=checkout.frequency == "monthly",
        csrf=token,
        csrf_field=CSRF_FIELD,
        cancel_url=f"{context.settings.public_url}/donate/{checkout.campaign_slug}?cancelled=1",
    )
    response = HTMLResponse(body)
    response.headers["cache-control"] = "no-store"
    return _with_cookie(response, context.settings, token, new)


def _deliver(context: AppContext, gw: Gateway, events: list[dict[str, Any]]) -> bool:
    """Sign and deliver the events through the webhook's own verification and handler."""
    secret = testmode.webhook_secret(context.settings.signing_key())
    changed = False
    for event in events:
        body, header = testmode.sign(event, secret)
        outcome = stripe_events.receive(
            context.engine, gw, body, header, secret, provider=testmode.PROVIDER
        )
        context.metrics.webhook_events.labels(outcome.kind, outcome.status).inc()
        changed = changed or outcome.changed
    return changed


async def test_checkout_submit(request: Request) -> Response:
    context = ctx(request)
    settings = context.settings
    _require_test_mode(settings)
    session_id = request.path_params["session_id"]
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    check_csrf(request, settings, form)
    action = str(form.get("action", ""))
    if action not in {"pay", "fail"}:
        raise Forbidden("Choose Pay or Fail.")
    checkout, _title = await run_in_threadpool(_test_checkout, context, session_id)
    try:
        typed = check_email(str(form.get("email", ""))[:400], required=False)
    except PydanticCustomError:
        typed = ""  # the test checkout only pretends to collect an address
    email = typed or f"test-{checkout.suffix}@example.org"
    events = testmode.events_for(checkout, paid=action == "pay", now=int(time.time()), email=email)
    if await run_in_threadpool(_deliver, context, gateway(request), events):
        await context.campaigns_changed()
    return RedirectResponse(
        f"{settings.public_url}/donate/{checkout.campaign_slug}/thanks?session_id={session_id}",
        status_code=303,
    )


routes = [
    Route("/donate/{slug}", donate_page, methods=["GET"]),
    Route("/donate/{slug}", donate_submit, methods=["POST"]),
    Route("/donate/{slug}/thanks", thanks_page, methods=["GET"]),
    Route("/test-checkout/{session_id}", test_checkout_page, methods=["GET"]),
    Route("/test-checkout/{session_id}", test_checkout_submit, methods=["POST"]),
]
