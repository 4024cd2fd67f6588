"""A Stripe-compatible HTTP API over a `FakeStripe` state, for the real `stripe` library.

It speaks v1 the way the library does: form-encoded requests with bracketed nested keys
(`line_items[0][price_data][unit_amount]=500`, `expand[0]=...` or `expand[]=...`), JSON
answers, Stripe's error envelope and status codes, Bearer-key auth, Idempotency-Key replay,
cursor pagination and `expand[]`. Unknown parameters are refused as Stripe refuses them,
checked against the installed library's own `*Params` TypedDicts, so a typo in the app's
call fails here as it would in production.

Besides `/v1`, `GET /c/pay/{id}` serves a tiny stand-in for the hosted Checkout page (a Pay
button that completes the session and redirects to `success_url`), for browser tests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import html
import json
import re
import secrets
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import stripe
import stripe.params as p
import stripe.params.checkout as pc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .state import FakeStripe, FakeStripeError, Obj, RecordedRequest, SavedResponse, no_such

# Options the library takes beside params (idempotency_key, ...): never sent as params.
_OPTION_KEYS = frozenset(stripe.RequestOptions.__annotations__)
_PARAMS_CLASS = re.compile(r"\b([A-Z][A-Za-z0-9]*Params[A-Za-z0-9]*)\b")
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_LIST_PARAMS = frozenset(("created", "limit", "starting_after", "ending_before", "expand"))
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
MISSING_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)
# Stripe answers throttling with 429 and code `rate_limit` (type invalid_request_error); the
# library maps any 429 to RateLimitError.
_FAULT_BODIES = {
    429: {
        "code": "rate_limit",
        "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
        "message": "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        "type": "invalid_request_error",
    },
    409: {
        "code": "lock_timeout",
        "message": "This object cannot be accessed right now because another API request or "
        "Stripe process is currently accessing it.",
        "type": "invalid_request_error",
    },
}


# -- request parsing ------------------------------------------------------------------------


def parse_params(pairs: list[tuple[str, str]]) -> Obj:
    """Stripe-style nested params: `a[b][0][c]=v` -> {"a": {"b": [{"c": "v"}]}}.

    Dicts whose keys are exactly 0..n-1 become lists (the library indexes arrays), `[]`
    appends, except under `metadata`, whose keys are free-form ("0" is a fine key there).
    """
    root: Obj = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise FakeStripeError(f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for depth, part in enumerate(parts):
            name = part if part != "" else str(len(node))
            if depth == len(parts) - 1:
                if isinstance(node.get(name), dict):
                    raise FakeStripeError(f"Invalid value for {key}: expected an object", param=key)
                node[name] = value
            else:
                child = node.setdefault(name, {})
                if not isinstance(child, dict):
                    raise FakeStripeError(
                        f"Invalid object: {key} mixes a value and an object", param=key
                    )
                node = child
    return _listify(root, None)  # type: ignore[no-any-return]


def _listify(value: Any, key: str | None) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v, k) for k, v in value.items()}
    if key != "metadata" and converted and all(k.isdigit() for k in converted):
        by_index = {int(k): v for k, v in converted.items()}
        if sorted(by_index) == list(range(len(by_index))):
            return [by_index[i] for i in range(len(by_index))]
    return converted


def check_unknown(params: Mapping[str, Any], spec: type, prefix: str = "") -> None:
    """Refuse parameters the endpoint does not take ("Received unknown parameter: x")."""
    annotations: Mapping[str, Any] = getattr(spec, "__annotations__", {})
    module = sys.modules[spec.__module__]
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if key not in annotations or (not prefix and key in _OPTION_KEYS):
            raise FakeStripeError(f"Received unknown parameter: {name}", param=name)
        nested = None
        for class_name in _PARAMS_CLASS.findall(repr(annotations[key])):
            nested = getattr(module, class_name, None) or nested
        if nested is None:
            continue  # a scalar, or a free-form object such as metadata
        if isinstance(value, dict):
            check_unknown(value, nested, name)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    check_unknown(item, nested, f"{name}[{i}]")


def _redact(key: str) -> str:
    # Stripe echoes a wrong key with all but its prefix and last four characters hidden.
    prefix = "_".join(key.split("_")[:2]) + "_" if key.count("_") >= 2 else ""
    hidden = max(len(key) - len(prefix) - 4, 0)
    return prefix + "*" * hidden + key[len(prefix) + hidden :]


def _int_param(params: Mapping[str, Any], name: str, default: int) -> int:
    raw = params.get(name, default)
    if isinstance(raw, int):
        return raw
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise FakeStripeError(f"Invalid integer: {raw}", param=name)
    return int(raw)


def _created_filter(raw: Any) -> Callable[[int], bool]:
    """`created=N` or `created[gt|gte|lt|lte]=N`."""
    if raw is None:
        return lambda _: True
    if not isinstance(raw, dict):
        exact = _int_param({"created": raw}, "created", 0)
        return lambda ts: ts == exact
    bounds = {}
    for op, value in raw.items():
        if op not in ("gt", "gte", "lt", "lte"):
            raise FakeStripeError(
                f"Received unknown parameter: created[{op}]", param=f"created[{op}]"
            )
        bounds[op] = _int_param({op: value}, op, 0)

    def accept(ts: int) -> bool:
        return (
            ("gt" not in bounds or ts > bounds["gt"])
            and ("gte" not in bounds or ts >= bounds["gte"])
            and ("lt" not in bounds or ts < bounds["lt"])
            and ("lte" not in bounds or ts <= bounds["lte"])
        )

    return accept


@dataclass
class Call:
    """What a handler gets: the parsed request, and how to name it in events."""

    params: Obj
    path_params: dict[str, str]
    base_url: str
    request_info: dict[str, str | None]  # the event's `request` field


Handler = Callable[[Call], Obj]


# -- the API --------------------------------------------------------------------------------


class FakeStripeApi:
    def __init__(self, state: FakeStripe, stopping: threading.Event) -> None:
        self.state = state
        self.stopping = stopping
        # Fields Stripe returns only when expanded; computed, never stored.
        self.includable: dict[tuple[str, str], Callable[[Obj], Obj]] = {
            ("checkout.session", "line_items"): lambda o: self._list_of(
                self.state.session_extras(o["id"])["line_items"],
                f"/v1/checkout/sessions/{o['id']}/line_items",
                newest_first=False,  # line items keep the order they were given in
            ),
            ("invoice", "payments"): lambda o: self._list_of(
                self.state.invoice_payments(o["id"]), f"/v1/invoice_payments?invoice={o['id']}"
            ),
            ("charge", "refunds"): lambda o: self._list_of(
                [r for r in self.state.stored_of("refund") if r["charge"] == o["id"]],
                f"/v1/charges/{o['id']}/refunds",
            ),
        }

    # Rendering ----------------------------------------------------------------------------

    @staticmethod
    def _list_of(items: list[Obj], url: str, *, newest_first: bool = True) -> Obj:
        data = [copy.deepcopy(i) for i in (reversed(items) if newest_first else items)]
        return {
            "object": "list",
            "data": data,
            "has_more": False,
            "total_count": len(data),
            "url": url,
        }

    def render(self, obj: Obj, params: Mapping[str, Any]) -> Obj:
        out = copy.deepcopy(obj)
        raw = params.get("expand", [])
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise FakeStripeError("Invalid array", param="expand")
        for path in raw:
            self._expand(out, path.split("."), path)
        return out

    def _expand(self, node: Obj, parts: list[str], path: str) -> None:
        head, rest = parts[0], parts[1:]
        include = self.includable.get((str(node.get("object")), head))
        if include is not None and not isinstance(node.get(head), dict):
            node[head] = include(node)
        if head not in node:
            raise FakeStripeError(f"This property cannot be expanded ({path}).", param="expand")
        value = node[head]
        if isinstance(value, str):
            target = self.state.stored(value)
            if target is None:
                # An id this fake does not model (e.g. a balance transaction): left as is.
                return
            node[head] = value = copy.deepcopy(target)
        elif (
            not rest
            and include is None
            and not (value is None or (isinstance(value, dict) and "id" in value))
        ):
            raise FakeStripeError(f"This property cannot be expanded ({path}).", param="expand")
        if rest and isinstance(value, dict):
            self._expand(value, rest, path)
        elif rest and isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    self._expand(item, rest, path)

    def paginate(self, kind: str, items: list[Obj], params: Mapping[str, Any], url: str) -> Obj:
        """Newest first; `limit` (1-100, default 10), `starting_after` / `ending_before`."""
        limit = _int_param(params, "limit", 10)
        if not 1 <= limit <= 100:
            raise FakeStripeError(
                "This value must be greater than or equal to 1 and less than or equal to 100.",
                param="limit",
            )
        after, before = params.get("starting_after"), params.get("ending_before")
        if after and before:
            raise FakeStripeError(
                "You may only specify one of these parameters: ending_before, starting_after."
            )
        ordered = self.order(items)
        if after or before:
            cursor_id = str(after or before)
            ids = [o["id"] for o in ordered]
            if cursor_id in ids:
                index = ids.index(cursor_id)
                rest = ordered[index + 1 :] if after else ordered[:index]
            else:  # a cursor filtered out of this listing still marks a place in time
                cursor = self.state.stored(cursor_id)
                if cursor is None or cursor["object"] != kind:
                    param = "starting_after" if after else "ending_before"
                    raise no_such(kind, cursor_id, param=param, status=400)
                key = self.state.sort_key(cursor)
                rest = [
                    o
                    for o in ordered
                    if (self.state.sort_key(o) < key if after else self.state.sort_key(o) > key)
                ]
            page = rest[:limit] if after else rest[-limit:]
            has_more = len(rest) > limit
        else:
            page, has_more = ordered[:limit], len(ordered) > limit
        listing = {"object": "list", "data": page, "has_more": has_more, "url": url}
        return self.render(listing, params)

    def order(self, items: list[Obj]) -> list[Obj]:
        """Newest first, as every Stripe list is (creation order breaks ties)."""
        return sorted(items, key=self.state.sort_key, reverse=True)

    def _get(self, kind: str, call: Call) -> Obj:
        obj_id = call.path_params["id"]
        obj = self.state.stored(obj_id)
        if obj is None or obj["object"] != kind:
            raise no_such(kind, obj_id)
        return obj

    def retrieve(self, kind: str) -> Handler:
        return lambda call: self.render(self._get(kind, call), call.params)

    def listing(
        self, kind: str, url: str, filters: Mapping[str, Callable[[Obj, Any], bool]]
    ) -> Handler:
        """A list endpoint: `created` filtering plus the given `param -> predicate` filters."""

        def handler(call: Call) -> Obj:
            for name in call.params:
                if name not in _LIST_PARAMS and name not in filters:
                    # Valid on Stripe but not modelled here: refuse rather than ignore it.
                    raise FakeStripeError(
                        f"fakestripe does not model the `{name}` filter of {url}.", param=name
                    )
            accept_created = _created_filter(call.params.get("created"))
            items = [o for o in self.state.stored_of(kind) if accept_created(o["created"])]
            for name, predicate in filters.items():
                if name in call.params:
                    wanted = call.params[name]
                    items = [o for o in items if predicate(o, wanted)]
            return self.paginate(kind, items, call.params, url)

        return handler

    # Endpoints with side effects ------------------------------------------------------------

    def create_session(self, call: Call) -> Obj:
        session = self.state.create_checkout_session(call.params, base_url=call.base_url)
        return self.render(session, call.params)

    def expire_session(self, call: Call) -> Obj:
        session_id = call.path_params["id"]
        self._get("checkout.session", call)
        self.state.expire_checkout(session_id, request=call.request_info)
        return self.render(self._get("checkout.session", call), call.params)

    def session_line_items(self, call: Call) -> Obj:
        session = self._get("checkout.session", call)
        # Line items share one sort key, and a stable sort keeps them in the order given.
        items = self.state.session_extras(session["id"])["line_items"]
        url = f"/v1/checkout/sessions/{session['id']}/line_items"
        return self.paginate("item", items, call.params, url)

    def invoice_lines(self, call: Call) -> Obj:
        invoice = self._get("invoice", call)
        return self.render(invoice["lines"], call.params)

    def create_refund(self, call: Call) -> Obj:
        refund, _ = self.state.create_refund(call.params, request=call.request_info)
        return self.render(refund, call.params)

    def cancel_subscription(self, call: Call) -> Obj:
        subscription = self._get("subscription", call)
        self.state.cancel_subscription(subscription["id"], request=call.request_info)
        return self.render(subscription, call.params)


def _event_type_matches(event: Obj, wanted: Any) -> bool:
    # `type` accepts one `*` wildcard, e.g. `checkout.session.*`.
    pattern = re.escape(str(wanted)).replace(r"\*", ".*")
    return re.fullmatch(pattern, event["type"]) is not None


def _response(
    status: int, body: Obj, headers: Mapping[str, str]
) -> tuple[int, dict[str, str], bytes]:
    # Stripe pretty-prints its JSON; byte-exact replays depend on these exact bytes.
    return (
        status,
        {"content-type": "application/json", **headers},
        json.dumps(body, indent=2).encode(),
    )


def create_app(state: FakeStripe) -> Starlette:
    """The fake Stripe as a Starlette app; `app.state.stopping` cuts injected delays short."""
    stopping = threading.Event()
    api = FakeStripeApi(state, stopping)

    async def handle(request: Request, handler: Handler, spec: type | None) -> Response:
        body = await request.body()
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        if request.method == "POST":
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = RecordedRequest(request.method, request.url.path, {}, headers)
        state.record(recorded)
        request_id = f"req_{secrets.token_hex(7)}"
        base_headers = {
            "request-id": request_id,
            "stripe-version": headers.get("stripe-version", state.api_version),
        }
        key = headers.get("idempotency-key") if request.method == "POST" else None
        if key:
            base_headers["idempotency-key"] = key

        def answer(status: int, payload: Obj, extra: Mapping[str, str] | None = None) -> Response:
            code, hdrs, data = _response(status, payload, {**base_headers, **(extra or {})})
            recorded.status = code
            return Response(data, status_code=code, headers=hdrs)

        try:
            recorded.params = parse_params(pairs)
            api_key = _authenticate(state, headers)
            version = headers.get("stripe-version")
            if version is not None and not _VERSION.match(version):
                raise FakeStripeError(
                    f"Invalid Stripe API version: {version}", param="Stripe-Version"
                )
        except FakeStripeError as error:
            return answer(
                error.status,
                error.to_body(),
                {"www-authenticate": 'Bearer realm="Stripe"'} if error.status == 401 else None,
            )

        failure, delay = state.take_faults(request.method, request.url.path)
        if failure is not None:
            assert failure.status is not None
            payload = _FAULT_BODIES.get(
                failure.status, {"message": "An unknown error occurred", "type": "api_error"}
            )
            extra = {}
            if failure.should_retry is not None:
                extra["stripe-should-retry"] = str(failure.should_retry).lower()
            return answer(failure.status, {"error": dict(payload)}, extra)

        with state.atomic():
            saved = state.idempotency.get((api_key, key)) if key else None
            if saved is not None:
                response = _replay(
                    saved, request.method, request.url.path, recorded.params, key or ""
                )
                recorded.status = response.status_code
            else:
                response = _execute(api, handler, spec, recorded, request, request_id, key, answer)
                if key and 200 <= response.status_code < 300:
                    # Only executed requests are remembered; a 400 can be fixed and retried.
                    state.idempotency[(api_key, key)] = SavedResponse(
                        request.method,
                        request.url.path,
                        copy.deepcopy(recorded.params),
                        response.status_code,
                        {k: v for k, v in response.headers.items() if k != "content-length"},
                        bytes(response.body),
                    )
        if delay:
            await _sleep(delay, stopping)
        return response

    def _execute(
        api: FakeStripeApi,
        handler: Handler,
        spec: type | None,
        recorded: RecordedRequest,
        request: Request,
        request_id: str,
        key: str | None,
        answer: Callable[..., Response],
    ) -> Response:
        try:
            if spec is not None:
                check_unknown(recorded.params, spec)
            call = Call(
                recorded.params,
                dict(request.path_params),
                str(request.base_url).rstrip("/"),
                {"id": request_id, "idempotency_key": key},
            )
            return answer(200, handler(call))
        except FakeStripeError as error:
            return answer(error.status, error.to_body())
        except Exception:
            # A bug in the fake, not a Stripe behaviour: visible to the test via server_errors.
            state.server_errors.append(traceback.format_exc())
            return answer(
                500, {"error": {"message": "fakestripe internal error", "type": "api_error"}}
            )

    def endpoint(handler: Handler, spec: type | None) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            return await handle(request, handler, spec)

        return run

    async def not_found(request: Request, exc: Exception) -> Response:
        method = request.method
        message = (
            f"Unrecognized request URL ({method}: {request.url.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."
        )

        def refuse(call: Call) -> Obj:
            raise FakeStripeError(message, status=404)

        return await handle(request, refuse, None)

    def has(field: str) -> Callable[[Obj, Any], bool]:
        return lambda o, wanted: bool(o.get(field) == wanted)

    def invoice_sub(invoice: Obj, wanted: Any) -> bool:
        # API 2025-03-31+: an invoice names its subscription under parent.subscription_details.
        details = invoice["parent"]["subscription_details"] or {}
        return bool(details.get("subscription") == wanted)

    routes = [
        Route(
            "/v1/checkout/sessions",
            endpoint(api.create_session, pc.SessionCreateParams),
            methods=["POST"],
        ),
        Route(
            "/v1/checkout/sessions",
            endpoint(
                api.listing(
                    "checkout.session",
                    "/v1/checkout/sessions",
                    {
                        "customer": has("customer"),
                        "payment_intent": has("payment_intent"),
                        "subscription": has("subscription"),
                        "status": has("status"),
                        "customer_details": lambda o, w: (
                            isinstance(w, dict)
                            and (o["customer_details"] or {}).get("email") == w.get("email")
                        ),
                    },
                ),
                pc.SessionListParams,
            ),
            methods=["GET"],
        ),
        Route(
            "/v1/checkout/sessions/{id}",
            endpoint(api.retrieve("checkout.session"), pc.SessionRetrieveParams),
            methods=["GET"],
        ),
        Route(
            "/v1/checkout/sessions/{id}/expire",
            endpoint(api.expire_session, pc.SessionExpireParams),
            methods=["POST"],
        ),
        Route(
            "/v1/checkout/sessions/{id}/line_items",
            endpoint(api.session_line_items, pc.SessionListLineItemsParams),
            methods=["GET"],
        ),
        Route(
            "/v1/payment_intents/{id}",
            endpoint(api.retrieve("payment_intent"), p.PaymentIntentRetrieveParams),
            methods=["GET"],
        ),
        Route(
            "/v1/charges/{id}",
            endpoint(api.retrieve("charge"), p.ChargeRetrieveParams),
            methods=["GET"],
        ),
        Route(
            "/v1/customers/{id}",
            endpoint(api.retrieve("customer"), p.CustomerRetrieveParams),
            methods=["GET"],
        ),
        Route("/v1/refunds", endpoint(api.create_refund, p.RefundCreateParams), methods=["POST"]),
        Route(
            "/v1/refunds",
            endpoint(
                api.listing(
                    "refund",
                    "/v1/refunds",
                    {"charge": has("charge"), "payment_intent": has("payment_intent")},
                ),
                p.RefundListParams,
            ),
            methods=["GET"],
        ),
        Route(
            "/v1/refunds/{id}",
            endpoint(api.retrieve("refund"), p.RefundRetrieveParams),
            methods=["GET"],
        ),
        Route(
            "/v1/invoices",
            endpoint(
                api.listing(
                    "invoice",
                    "/v1/invoices",
                    {
                        "customer": has("customer"),
                        "status": has("status"),
                        "collection_method": has("collection_method"),
                        "subscription": invoice_sub,
                    },
                ),
                p.InvoiceListParams,
            ),
            methods=["GET"],
        ),
        Route(
            "/v1/invoices/{id}",
            endpoint(api.retrieve("invoice"), p.InvoiceRetrieveParams),
            methods=["GET"],
        ),
        Route(
            "/v1/invoices/{id}/lines",
            endpoint(api.invoice_lines, p.InvoiceListLinesParams),
            methods=["GET"],
        ),
        Route(
            "/v1/invoice_payments",
            endpoint(
                api.listing(
                    "invoice_payment",
                    "/v1/invoice_payments",
                    {
                        "invoice": has("invoice"),
                        "status": has("status"),
                        "payment": lambda o, w: (
                            isinstance(w, dict)
                            and all(o["payment"].get(k) == v for k, v in w.items())
                        ),
                    },
                ),
                p.InvoicePaymentListParams,
            ),
            methods=["GET"],
        ),
        Route(
            "/v1/invoice_payments/{id}",
            endpoint(api.retrieve("invoice_payment"), p.InvoicePaymentRetrieveParams),
            methods=["GET"],
        ),
        Route(
            "/v1/subscriptions/{id}",
            endpoint(api.retrieve("subscription"), p.SubscriptionRetrieveParams),
            methods=["GET"],
        ),
        Route(
            "/v1/subscriptions/{id}",
            endpoint(api.cancel_subscription, p.SubscriptionCancelParams),
            methods=["DELETE"],
        ),
        Route(
            "/v1/disputes",
            endpoint(
                api.listing(
                    "dispute",
                    "/v1/disputes",
                    {"charge": has("charge"), "payment_intent": has("payment_intent")},
                ),
                p.DisputeListParams,
            ),
            methods=["GET"],
        ),
        Route(
            "/v1/disputes/{id}",
            endpoint(api.retrieve("dispute"), p.DisputeRetrieveParams),
            methods=["GET"],
        ),
        Route(
            "/v1/events",
            endpoint(
                api.listing(
                    "event",
                    "/v1/events",
                    {
                        "type": _event_type_matches,
                        "types": lambda o, w: isinstance(w, list) and o["type"] in w,
                    },
                ),
                p.EventListParams,
            ),
            methods=["GET"],
        ),
        Route(
            "/v1/events/{id}",
            endpoint(api.retrieve("event"), p.EventRetrieveParams),
            methods=["GET"],
        ),
        Route("/c/pay/{id}", _checkout_page(state), methods=["GET", "POST"]),
        Route("/healthz", _health, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.stopping = stopping
    return app


def _authenticate(state: FakeStripe, headers: Mapping[str, str]) -> str:
    auth = headers.get("authorization", "").strip()
    if not auth:
        raise FakeStripeError(MISSING_KEY, status=401)
    scheme, _, credential = auth.partition(" ")
    credential = credential.strip()
    if scheme.lower() == "basic":  # curl -u sk_test_...: works on Stripe too
        try:
            credential = base64.b64decode(credential).decode().split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            credential = ""
    elif scheme.lower() != "bearer":
        credential = ""
    if not credential:
        raise FakeStripeError(MISSING_KEY, status=401)
    valid = credential.startswith(("sk_test_", "rk_test_")) and (
        state.api_keys is None or credential in state.api_keys
    )
    if not valid:
        raise FakeStripeError(f"Invalid API Key provided: {_redact(credential)}", status=401)
    return credential


def _replay(saved: SavedResponse, method: str, path: str, params: Obj, key: str) -> Response:
    if (saved.method, saved.path) != (method, path):
        error = FakeStripeError(
            f"Keys for idempotent requests can only be used for the same endpoint they were first "
            f"used for ({saved.method} {saved.path}). Try using a key other than '{key}' if you "
            "meant to execute a different request.",
            error_type="idempotency_error",
        )
    elif saved.params != params:
        error = FakeStripeError(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a "
            "different request.",
            error_type="idempotency_error",
        )
    else:
        headers = {**saved.headers, "idempotent-replayed": "true"}
        return Response(saved.body, status_code=saved.status, headers=headers)
    status, headers, body = _response(error.status, error.to_body(), {"idempotency-key": key})
    return Response(body, status_code=status, headers=headers)


async def _sleep(seconds: float, stopping: threading.Event) -> None:
    # Sleep in slices so a stopping server is not held up by an injected delay.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not stopping.is_set() and (left := deadline - loop.time()) > 0:
        await asyncio.sleep(min(left, 0.05))


async def _health(request: Request) -> Response:
    return Response(b"ok", media_type="text/plain")


def _checkout_page(state: FakeStripe) -> Callable[[Request], Awaitable[Response]]:
    """A minimal hosted Checkout page: Pay completes the session and redirects like Stripe."""

    async def page(request: Request) -> Response:
        session_id = request.path_params["id"]
        with state.lock:
            session = state.stored(session_id)
            session = (
                copy.deepcopy(session)
                if session and session["object"] == "checkout.session"
                else None
            )
        if session is None:
            return HTMLResponse("<p>No such Checkout Session.</p>", status_code=404)
        if request.method == "POST":
            form = dict(parse_qsl((await request.body()).decode()))
            if session["status"] != "open":
                return HTMLResponse(
                    "<p>This Checkout Session is no longer active.</p>", status_code=410
                )
            if form.get("action") == "cancel":
                return RedirectResponse(session["cancel_url"] or "/", status_code=303)
            state.complete_checkout(
                session_id,
                async_payment=form.get("action") == "pay_async",
                email=form.get("email") or None,
            )
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
            return RedirectResponse(target, status_code=303)
        if session["status"] != "open":
            return HTMLResponse(
                "<p>This Checkout Session is no longer active.</p>", status_code=410
            )
        amount = html.escape(f"{session['amount_total']} {session['currency']}")
        body = f"""<!doctype html><html><head><title>Fake Stripe Checkout</title></head><body>
<h1>Pay {amount}</h1><p data-mode="{html.escape(session["mode"])}">{html.escape(session_id)}</p>
<form method="post"><label>Email <input name="email" value="{html.escape(session["customer_email"] or "")}"></label>
<button name="action" value="pay">Pay</button>
<button name="action" value="pay_async">Pay by bank debit</button>
<button name="action" value="cancel">Cancel</button></form></body></html>"""
        return HTMLResponse(body)

    return page
