"""Dashboard sessions: a signed cookie, CSRF tokens, Origin checks, and the sign-in pages.

No middleware: each admin endpoint is wrapped by `admin_endpoint`, a plain function that checks
the session (and, on POST, the Origin and the CSRF token) before the handler runs, so the
widget's hot path never pays for any of it.

The cookie holds {admin id, session epoch, CSRF token, issued, last seen}, signed with
settings.signing_key(). It dies when:
  - it is older than ABSOLUTE_SECONDS (12 h) since sign-in, whatever the activity;
  - nothing used it for IDLE_SECONDS (2 h): `seen` is refreshed at most once a minute;
  - the admin's session_epoch moved on (sign-out ends every session of that admin).
Signing in always issues a brand-new session (new CSRF token), so a planted cookie is useless.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ... import db
from ...config import Settings
from ...errors import DomainError
from ...inputs import InputError
from ...inputs.auth import SignIn
from ...models import Admin
from ...services import auth as auth_service
from ..context import ctx

COOKIE = "fundgoal_admin"
LOGIN_COOKIE = "fundgoal_login"
ABSOLUTE_SECONDS = 12 * 3600
IDLE_SECONDS = 2 * 3600
REFRESH_SECONDS = 60  # re-sign the cookie's `seen` at most this often (one Set-Cookie a minute)
MAX_FORM_PART = 4 * 1024 * 1024  # the CSV import's confirm step posts the file back

# Admin pages load only our own script and stylesheet: no inline script, style or handler.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def clock() -> float:
    """The session clock (tests move it to expire sessions)."""
    return time.time()


@dataclass(frozen=True)
class SessionData:
    admin_id: int
    epoch: int
    csrf: str
    issued: float
    seen: float


@dataclass(frozen=True)
class Auth:
    """The signed-in admin for one request."""

    admin_id: int
    email: str
    session: SessionData

    @property
    def csrf(self) -> str:
        return self.session.csrf


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.signing_key(), salt="fundgoal.admin.session")


def encode_session(settings: Settings, data: SessionData) -> str:
    payload = [data.admin_id, data.epoch, data.csrf, int(data.issued), int(data.seen)]
    return str(_serializer(settings).dumps(payload))


def decode_session(settings: Settings, raw: str | None, now: float) -> SessionData | None:
    if not raw or len(raw) > 4096:
        return None
    try:
        payload = _serializer(settings).loads(raw)
        admin_id, epoch, csrf, issued, seen = payload
        data = SessionData(int(admin_id), int(epoch), str(csrf), float(issued), float(seen))
    except (BadSignature, ValueError, TypeError):
        return None
    if now - data.issued > ABSOLUTE_SECONDS or now - data.seen > IDLE_SECONDS:
        return None
    if data.issued > now + 60:  # from the future: forged with a leaked key or a broken clock
        return None
    return data


def set_session_cookie(response: Response, settings: Settings, data: SessionData) -> None:
    response.set_cookie(
        COOKIE,
        encode_session(settings, data),
        max_age=ABSOLUTE_SECONDS,
        path="/admin",
        httponly=True,
        samesite="lax",
        secure=settings.https,
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE, path="/admin", httponly=True, samesite="lax", secure=settings.https
    )


def harden(response: Response) -> Response:
    """Headers every admin answer carries."""
    response.headers["content-security-policy"] = CSP
    response.headers["x-frame-options"] = "DENY"
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    response.headers.setdefault("cache-control", "no-store")
    return response


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, settings: Settings) -> bool:
    """Origin (else Referer), when the browser sends one, must be this site."""
    allowed = {_origin_of(settings.public_url)}
    host = request.headers.get("host")
    if host:
        allowed.add(f"{request.url.scheme}://{host}".lower())
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() in allowed
    referer = request.headers.get("referer")
    if referer:
        return _origin_of(referer) in allowed
    return True


def tokens_match(given: object, expected: str) -> bool:
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def forbidden(request: Request, message: str) -> Response:
    body = ctx(request).jinja.get_template("admin/denied.html").render(message=message)
    return harden(HTMLResponse(body, status_code=403))


def _current(engine: Engine, data: SessionData) -> Admin | None:
    with db.transaction(engine) as session:
        return auth_service.current(session, data.admin_id, data.epoch)


Handler = Callable[[Request, Auth], Awaitable[Response]]


def admin_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: signed-in admins only; POSTs also need a same-origin CSRF token."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await _guarded(request)
        finally:
            await request.close()  # uploaded files are spooled to disk: release them

    async def _guarded(request: Request) -> Response:
        context = ctx(request)
        settings = context.settings
        now = clock()
        data = decode_session(settings, request.cookies.get(COOKIE), now)
        admin = await run_in_threadpool(_current, context.engine, data) if data else None
        if admin is None or data is None or admin.id is None:
            if request.method in ("GET", "HEAD"):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response: Response = RedirectResponse(
                    f"/admin/login?next={quote(target, safe='')}", status_code=303
                )
            else:
                response = forbidden(request, "Your session has ended. Sign in again.")
            if request.cookies.get(COOKIE):
                clear_session_cookie(response, settings)
            return harden(response)
        if request.method == "POST":
            if not same_origin(request, settings):
                return forbidden(request, "This form was sent from another site.")
            form = await read_form(request)
            if not tokens_match(form.get("csrf"), data.csrf):
                return forbidden(request, "This form has expired. Reload the page and try again.")
        auth = Auth(admin.id, admin.email, data)
        try:
            response = await handler(request, auth)
        except DomainError as exc:
            # Refusals inside the dashboard stay inside it (its layout, its CSP).
            body = context.jinja.get_template("admin/error.html").render(
                status=exc.status,
                message=exc.message,
                me=auth.email,
                csrf=auth.csrf,
                path=request.url.path,
            )
            response = HTMLResponse(body, status_code=exc.status)
        if "x-signed-out" in response.headers:
            del response.headers["x-signed-out"]
        elif now - data.seen >= REFRESH_SECONDS:
            fresh = SessionData(data.admin_id, data.epoch, data.csrf, data.issued, now)
            set_session_cookie(response, settings, fresh)
        return harden(response)

    return endpoint


async def read_form(request: Request) -> FormData:
    return await request.form(max_files=1, max_fields=500, max_part_size=MAX_FORM_PART)


# --- sign-in and sign-out pages ---------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/admin") and not target.startswith("/admin/login"):
        if "\\" not in target and "//" not in target:
            return target
    return "/admin"


def _login_page(
    request: Request,
    token: str,
    *,
    error: str | None = None,
    email: str = "",
    status: int = 200,
    next_url: str | None = None,
) -> Response:
    target = _safe_next(next_url or request.query_params.get("next"))
    template = ctx(request).jinja.get_template("admin/login.html")
    body = template.render(csrf=token, error=error, email=email, next=target)
    response = HTMLResponse(body, status_code=status)
    settings = ctx(request).settings
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/admin/login",
        httponly=True,
        samesite="strict",
        secure=settings.https,
    )
    return harden(response)


async def login_form(request: Request) -> Response:
    context = ctx(request)
    data = decode_session(context.settings, request.cookies.get(COOKIE), clock())
    if data is not None and await run_in_threadpool(_current, context.engine, data) is not None:
        return harden(RedirectResponse(_safe_next(request.query_params.get("next")), 303))
    return _login_page(request, secrets.token_urlsafe(32))


def _attempt(engine: Engine, email: str, password: str, address: str) -> Admin | DomainError:
    # The failure row must commit even though the answer is an error: return, don't raise.
    with db.transaction(engine) as session:
        try:
            return auth_service.sign_in(session, email, password, address=address)
        except (auth_service.BadCredentials, auth_service.Throttled) as exc:
            return exc


async def login(request: Request) -> Response:
    context = ctx(request)
    settings = context.settings
    if not same_origin(request, settings):
        return forbidden(request, "This form was sent from another site.")
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    email = str(form.get("email", ""))[:320]
    password = str(form.get("password", ""))[:1024]
    if not tokens_match(form.get("csrf"), expected):
        return _login_page(
            request,
            secrets.token_urlsafe(32),
            error="The sign-in form expired. Please try again.",
            email=email,
            status=403,
            next_url=str(form.get("next", "")),
        )
    try:
        # NUL or control characters in the email cannot be stored with a failed attempt
        # (PostgreSQL refuses NUL): refused here, before the throttle or the password.
        credentials = SignIn(email=email, password=password)
    except InputError as exc:
        return _login_page(
            request,
            expected,
            error=exc.message,
            email="",
            status=400,
            next_url=str(form.get("next", "")),
        )
    email, password = credentials.email, credentials.password
    address = request.client.host if request.client else "unknown"
    result = await run_in_threadpool(_attempt, context.engine, email, password, address)
    if isinstance(result, DomainError):
        response = _login_page(
            request,
            expected,
            error=result.message,
            email=email,
            status=result.status,
            next_url=str(form.get("next", "")),
        )
        if isinstance(result, auth_service.Throttled):
            response.headers["retry-after"] = str(int(auth_service.WINDOW.total_seconds()))
        return response
    assert result.id is not None
    now = clock()
    data = SessionData(result.id, result.session_epoch, secrets.token_urlsafe(32), now, now)
    response = RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)
    set_session_cookie(response, settings, data)
    response.delete_cookie(LOGIN_COOKIE, path="/admin/login")
    return harden(response)


def _sign_out(engine: Engine, admin_id: int) -> None:
    with db.transaction(engine) as session:
        admin = session.get(Admin, admin_id)
        if admin is not None:
            auth_service.sign_out_everywhere(session, admin)


@admin_endpoint
async def logout(request: Request, auth: Auth) -> Response:
    context = ctx(request)
    await run_in_threadpool(_sign_out, context.engine, auth.admin_id)
    response = RedirectResponse("/admin/login?signed_out=1", status_code=303)
    response.headers["x-signed-out"] = "1"
    clear_session_cookie(response, context.settings)
    return response


def template_globals(auth: Auth) -> dict[str, Any]:
    return {"me": auth.email, "csrf": auth.csrf}
