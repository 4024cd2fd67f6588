"""The fake Stripe's in-memory state, and the simulation API tests use to make "Stripe" act.

Objects are plain dicts shaped like Stripe's JSON for API version `API_VERSION` (the version
the installed `stripe` library pins): what `GET /v1/...` returns without `expand`. Fields that
Stripe only returns when asked (`invoice.payments`, `checkout.session.line_items`,
`charge.refunds`) are computed by the server on `expand[]`, never stored, so event snapshots
leave them out just as real webhooks do.

Every simulation method (`complete_checkout`, `refund`, `dispute`, ...) changes the objects the
way Stripe would, records the events Stripe would send (each holding a snapshot of its object
at that moment) and returns them, so a test can sign them (`signing.sign_event`) and post them
to the app in any order it likes, as often as it likes.

One re-entrant lock guards everything: the server thread and the test thread both call in.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import stripe

Obj = dict[str, Any]

# The version the installed library sends and parses; events are rendered in it.
API_VERSION: str = stripe.api_version

# Currencies whose amounts have no minor unit (Stripe's list): 500 JPY is sent as 500.
ZERO_DECIMAL = frozenset(
    (
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    )
)
# Stripe refuses charges below these (minor units); a donation form must not offer less.
MINIMUM_CHARGE = {
    "usd": 50,
    "aud": 50,
    "brl": 50,
    "cad": 50,
    "chf": 50,
    "eur": 50,
    "inr": 50,
    "jpy": 50,
    "nzd": 50,
    "sgd": 50,
    "gbp": 30,
    "aed": 200,
    "myr": 200,
    "pln": 200,
    "ron": 200,
    "bgn": 100,
    "dkk": 250,
    "nok": 300,
    "sek": 300,
    "hkd": 400,
    "mxn": 1000,
    "thb": 1000,
    "czk": 1500,
    "huf": 17500,
}
MAX_UNIT_AMOUNT = 99_999_999  # Stripe's ceiling for an 8-digit amount
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}
_INTERVALS = ("day", "week", "month", "year")
_OPEN_DISPUTE = ("warning_needs_response", "needs_response", "under_review", "warning_under_review")


def format_amount(amount: int, currency: str) -> str:
    """Stripe's way of quoting an amount in an error message, e.g. `$0.50`."""
    cur = currency.lower()
    symbol = _SYMBOLS.get(cur, "")
    if cur in ZERO_DECIMAL:
        return f"{symbol}{amount:,}"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    return f"{sign}{symbol}{amount // 100:,}.{amount % 100:02d}"


class FakeStripeError(Exception):
    """A Stripe API error; the server renders it as Stripe's `{"error": {...}}` envelope."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.param = param
        self.code = code

    def to_body(self) -> Obj:
        error: Obj = {"message": self.message, "type": self.error_type}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def missing_param(name: str) -> FakeStripeError:
    return FakeStripeError(f"Missing required param: {name}.", param=name, code="parameter_missing")


def no_such(kind: str, object_id: str, *, param: str = "id", status: int = 404) -> FakeStripeError:
    return FakeStripeError(
        f"No such {kind}: '{object_id}'", status=status, param=param, code="resource_missing"
    )


@dataclass
class RecordedRequest:
    """One request as the server received it, for tests to assert on."""

    method: str
    path: str
    params: Obj  # parsed Stripe-style: nested dicts and lists of strings
    headers: dict[str, str]  # names lower-cased, as ASGI delivers them
    status: int | None = None  # filled in once answered

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def stripe_version(self) -> str | None:
        return self.headers.get("stripe-version")


@dataclass
class Fault:
    """An injected failure or delay for the next `remaining` requests under `path_prefix`."""

    path_prefix: str
    method: str | None
    remaining: int
    status: int | None = None  # an error status to answer instead of executing
    seconds: float = 0.0  # or: execute, then hold the response this long
    should_retry: bool | None = None  # the Stripe-Should-Retry header, when set

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and path.startswith(self.path_prefix)
            and (self.method is None or self.method.upper() == method.upper())
        )


@dataclass
class SavedResponse:
    """What a POST with an Idempotency-Key answered, replayed byte for byte on a repeat."""

    method: str
    path: str
    params: Obj
    status: int
    headers: dict[str, str]
    body: bytes


def _random(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_random(24)}"


def _int(value: Any, param: str, *, minimum: int | None = None) -> int:
    # Form values arrive as strings; Python callers of the state may pass ints.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FakeStripeError(f"Invalid integer: {value}", param=param)
    if isinstance(value, str):
        if not re.fullmatch(r"-?\d+", value):
            raise FakeStripeError(f"Invalid integer: {value}", param=param)
        value = int(value)
    number = int(value)
    if minimum is not None and number < minimum:
        raise FakeStripeError(
            f"This value must be greater than or equal to {minimum}.", param=param
        )
    return number


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise FakeStripeError(f"Invalid string: {value!r}", param=param)
    return value


def _object(value: Any, param: str) -> Obj:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise FakeStripeError("Invalid object", param=param)
    return value


def _url(value: Any, param: str) -> str:
    text = _str(value, param)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FakeStripeError("Not a valid URL", param=param, code="url_invalid")
    return text


def _metadata(value: Any, param: str) -> dict[str, str]:
    raw = _object(value, param)
    if len(raw) > 50:
        raise FakeStripeError(
            f"Metadata can have up to 50 keys, but you passed in {len(raw)} keys.", param=param
        )
    out: dict[str, str] = {}
    for key, item in raw.items():
        if len(key) > 40:
            raise FakeStripeError(
                "Metadata keys can have up to 40 characters, but you passed in a key with "
                f"{len(key)} characters.",
                param=f"{param}[{key}]",
            )
        text = _str(item, f"{param}[{key}]")
        if len(text) > 500:
            raise FakeStripeError(
                "Metadata values can have up to 500 characters, but you passed in a value with "
                f"{len(text)} characters.",
                param=f"{param}[{key}]",
            )
        if text != "":  # Stripe treats an empty value as "unset"
            out[key] = text
    return out


def _add_interval(ts: int, interval: str, count: int) -> int:
    """`ts` moved on by `count` intervals, months clamped like Stripe (Jan 31 + 1 month = Feb 28)."""
    if interval == "day":
        return ts + 86_400 * count
    if interval == "week":
        return ts + 7 * 86_400 * count
    start = dt.datetime.fromtimestamp(ts, dt.UTC)
    months = count * (12 if interval == "year" else 1)
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


class FakeStripe:
    """Stripe's side of the world for one test: objects, events, requests, faults."""

    def __init__(self, *, api_keys: set[str] | None = None) -> None:
        self.lock = threading.RLock()
        # None accepts any `sk_test_`/`rk_test_` key; a set accepts only those keys.
        self.api_keys = api_keys
        self.api_version = API_VERSION
        # Called with each new event after the lock is released (e.g. to deliver webhooks).
        self.on_event: Callable[[Obj], None] | None = None
        self._depth = 0
        self._pending: list[Obj] = []
        self.reset()

    # -- bookkeeping ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (a module-scoped server can then serve many tests)."""
        with self.lock:
            self._objects: dict[str, Obj] = {}
            self._kinds: dict[str, list[str]] = {}
            self._seq: dict[str, int] = {}
            self._checkout: dict[str, Obj] = {}  # per session: line items and *_data params
            self.events: list[Obj] = []
            self.requests: list[RecordedRequest] = []
            self.idempotency: dict[tuple[str, str], SavedResponse] = {}
            self.faults: list[Fault] = []
            self.server_errors: list[str] = []  # tracebacks of bugs in the fake itself
            self._frozen: int | None = None
            self._offset = 0

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Hold the lock; run `on_event` for the events made inside once it is released."""
        with self.lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                pending: list[Obj] = []
                if self._depth == 0:  # only the outermost block hands events out
                    pending, self._pending = self._pending, []
        callback = self.on_event
        if callback is not None:
            for event in pending:
                callback(copy.deepcopy(event))

    def now(self) -> int:
        with self.lock:
            return self._frozen if self._frozen is not None else int(time.time()) + self._offset

    def set_time(self, timestamp: int | None) -> None:
        """Freeze Stripe's clock at `timestamp` (None: follow the real clock again)."""
        with self.lock:
            self._frozen, self._offset = timestamp, 0

    def advance_time(self, seconds: int) -> None:
        with self.lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds

    def get(self, object_id: str) -> Obj:
        """A copy of any object (session, payment intent, charge, invoice, event, ...)."""
        with self.lock:
            return copy.deepcopy(self._objects[object_id])

    def objects_of(self, kind: str) -> list[Obj]:
        """Copies of every object of one `object` type, oldest first."""
        with self.lock:
            return [copy.deepcopy(self._objects[i]) for i in self._kinds.get(kind, [])]

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[RecordedRequest]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r.path.startswith(path_prefix) and (method is None or r.method == method)
            ]

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)

    # Internal helpers for the server (same package).
    def stored(self, object_id: str) -> Obj | None:
        return self._objects.get(object_id)

    def stored_of(self, kind: str) -> list[Obj]:
        return [self._objects[i] for i in self._kinds.get(kind, [])]

    def sort_key(self, obj: Obj) -> tuple[int, int]:
        return (obj.get("created", 0), self._seq.get(obj["id"], 0))

    def session_extras(self, session_id: str) -> Obj:
        return self._checkout[session_id]

    def _store(self, obj: Obj) -> Obj:
        self._objects[obj["id"]] = obj
        self._kinds.setdefault(obj["object"], []).append(obj["id"])
        self._seq[obj["id"]] = len(self._seq)
        return obj

    def _require(self, object_id: str, kind: str, *, param: str = "id", status: int = 404) -> Obj:
        obj = self._objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise no_such(kind, object_id, param=param, status=status)
        return obj

    def _event(
        self,
        event_type: str,
        obj: Obj,
        *,
        request: Mapping[str, str | None] | None = None,
        previous_attributes: Obj | None = None,
    ) -> Obj:
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        event = self._store(
            {
                "id": _new_id("evt"),
                "object": "event",
                "api_version": self.api_version,
                "created": self.now(),
                "data": data,
                "livemode": False,
                "pending_webhooks": 1,
                # Automatic events (checkout, renewals, disputes) have no request.
                "request": dict(request or {"id": None, "idempotency_key": None}),
                "type": event_type,
            }
        )
        self.events.append(event)
        self._pending.append(event)
        return event

    # -- fault injection ------------------------------------------------------------------

    def fail_next(
        self,
        path_prefix: str,
        status: int = 500,
        times: int = 1,
        *,
        method: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        """Answer the next `times` requests under `path_prefix` with `status` (500, 429, ...)
        without executing them (like a load balancer failing), so nothing is saved for their
        Idempotency-Key and a retry executes for real."""
        if status < 400:
            raise ValueError("fail_next needs an error status")
        with self.lock:
            self.faults.append(
                Fault(path_prefix, method, times, status=status, should_retry=should_retry)
            )

    def delay_next(
        self, path_prefix: str, seconds: float, times: int = 1, *, method: str | None = None
    ) -> None:
        """Execute the next `times` requests under `path_prefix`, then hold each response for
        `seconds`: a client that times out has still had its request carried out (the case
        Idempotency-Keys exist for)."""
        with self.lock:
            self.faults.append(Fault(path_prefix, method, times, seconds=seconds))

    def take_faults(self, method: str, path: str) -> tuple[Fault | None, float]:
        """The failure to answer with (if any) and the delay to apply, used up as they match."""
        with self.lock:
            matching = [f for f in self.faults if f.matches(method, path)]
            failure = next((f for f in matching if f.status is not None), None)
            # A failed request never ran, so it does not use up a delay meant for a real one.
            delayed = None if failure else next((f for f in matching if f.status is None), None)
            for fault in (failure, delayed):
                if fault is not None:
                    fault.remaining -= 1
            self.faults = [f for f in self.faults if f.remaining > 0]
            return failure, delayed.seconds if delayed else 0.0

    # -- checkout sessions ----------------------------------------------------------------

    def create_checkout_session(
        self, params: Mapping[str, Any], *, base_url: str = "http://127.0.0.1"
    ) -> Obj:
        """`POST /v1/checkout/sessions`, validated the way Stripe validates it."""
        with self.atomic():
            mode = params.get("mode")
            if mode is None:
                raise missing_param("mode")
            if mode not in ("payment", "subscription", "setup"):
                raise FakeStripeError(
                    "Invalid mode: must be one of payment, setup, or subscription", param="mode"
                )
            if mode == "setup":
                raise FakeStripeError("fakestripe does not model `setup` mode.", param="mode")
            ui_mode = params.get("ui_mode", "hosted_page")
            if ui_mode != "hosted_page":
                raise FakeStripeError(
                    "fakestripe models only ui_mode=hosted_page.", param="ui_mode"
                )
            if not params.get("success_url"):
                raise missing_param("success_url")
            success_url = _url(params["success_url"], "success_url")
            cancel_url = (
                _url(params["cancel_url"], "cancel_url") if params.get("cancel_url") else None
            )

            raw_items = params.get("line_items")
            if not raw_items:
                raise missing_param("line_items")
            if not isinstance(raw_items, list):
                raise FakeStripeError("Invalid array", param="line_items")
            specs = [self._line_item_spec(item, i) for i, item in enumerate(raw_items)]
            currencies = {s["currency"] for s in specs}
            if len(currencies) > 1:
                raise FakeStripeError(
                    "All line items must use the same currency.", param="line_items"
                )
            currency = currencies.pop()
            recurring = [s for s in specs if s["recurring"]]
            if mode == "payment" and recurring:
                raise FakeStripeError(
                    "You specified `payment` mode but passed a recurring price. Either switch to "
                    "`subscription` mode or use only one-time prices.",
                    param="mode",
                )
            if mode == "subscription" and not recurring:
                raise FakeStripeError(
                    "You must provide at least one recurring price in `subscription` mode when "
                    "using prices.",
                    param="mode",
                )
            if mode == "payment" and "subscription_data" in params:
                raise FakeStripeError(
                    "You can not pass `subscription_data` in `payment` mode.",
                    param="subscription_data",
                )
            if mode == "subscription" and "payment_intent_data" in params:
                raise FakeStripeError(
                    "You can not pass `payment_intent_data` in `subscription` mode.",
                    param="payment_intent_data",
                )
            submit_type = params.get("submit_type")
            if submit_type is not None and submit_type not in (
                "auto",
                "book",
                "donate",
                "pay",
                "subscribe",
            ):
                raise FakeStripeError(
                    "Invalid submit_type: must be one of auto, book, donate, pay, or subscribe",
                    param="submit_type",
                )
            amount_total = sum(s["unit_amount"] * s["quantity"] for s in specs)
            minimum = MINIMUM_CHARGE.get(currency, 0)
            if mode == "payment" and amount_total < minimum:
                raise FakeStripeError(
                    "The Checkout Session's total amount due must add up to at least "
                    f"{format_amount(minimum, currency)} {currency}",
                    code="amount_too_small",
                )
            metadata = _metadata(params.get("metadata"), "metadata")
            pi_data = _object(params.get("payment_intent_data"), "payment_intent_data")
            sub_data = _object(params.get("subscription_data"), "subscription_data")
            pi_data = {
                **pi_data,
                "metadata": _metadata(pi_data.get("metadata"), "payment_intent_data[metadata]"),
            }
            sub_data = {
                **sub_data,
                "metadata": _metadata(sub_data.get("metadata"), "subscription_data[metadata]"),
            }
            email = params.get("customer_email")
            if email is not None and not re.fullmatch(
                r"[^@\s]+@[^@\s]+\.[^@\s]+", _str(email, "customer_email")
            ):
                raise FakeStripeError(
                    f"Invalid email address: {email}", param="customer_email", code="email_invalid"
                )
            reference = params.get("client_reference_id")
            if reference is not None and len(_str(reference, "client_reference_id")) > 200:
                raise FakeStripeError(
                    "client_reference_id must be at most 200 characters",
                    param="client_reference_id",
                )
            now = self.now()
            expires_at = now + 86_400
            if params.get("expires_at") is not None:
                expires_at = _int(params["expires_at"], "expires_at")
                if not now + 1800 <= expires_at <= now + 86_400:
                    raise FakeStripeError(
                        "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                        "Checkout Session creation.",
                        param="expires_at",
                    )

            # Everything is valid: only now create prices, so a 400 leaves no trace.
            line_items = [self._make_line_item(s) for s in specs]
            session_id = f"cs_test_a1{_random(56)}"
            session = self._store(
                {
                    "id": session_id,
                    "object": "checkout.session",
                    "adaptive_pricing": None,
                    "after_expiration": None,
                    "allow_promotion_codes": None,
                    "amount_subtotal": amount_total,
                    "amount_total": amount_total,
                    "automatic_tax": {
                        "enabled": False,
                        "liability": None,
                        "provider": None,
                        "status": None,
                    },
                    "billing_address_collection": None,
                    "cancel_url": cancel_url,
                    "client_reference_id": reference,
                    "client_secret": None,
                    "collected_information": None,
                    "consent": None,
                    "consent_collection": None,
                    "created": now,
                    "currency": currency,
                    "currency_conversion": None,
                    "custom_fields": [],
                    "custom_text": {
                        "after_submit": None,
                        "shipping_address": None,
                        "submit": None,
                        "terms_of_service_acceptance": None,
                    },
                    "customer": None,
                    "customer_account": None,
                    "customer_creation": "if_required" if mode == "payment" else None,
                    "customer_details": None,
                    "customer_email": email,
                    "discounts": [],
                    "expires_at": expires_at,
                    "invoice": None,
                    "invoice_creation": (
                        {"enabled": False, "invoice_data": None} if mode == "payment" else None
                    ),
                    "livemode": False,
                    "locale": params.get("locale"),
                    "metadata": metadata,
                    "mode": mode,
                    "origin_context": None,
                    # Since 2022-08-01 the PaymentIntent only exists once the customer pays.
                    "payment_intent": None,
                    "payment_link": None,
                    "payment_method_collection": "if_required" if mode == "payment" else "always",
                    "payment_method_configuration_details": None,
                    "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
                    "payment_method_types": ["card"],
                    "payment_status": "unpaid",
                    "permissions": None,
                    "phone_number_collection": {"enabled": False},
                    "recovered_from": None,
                    "saved_payment_method_options": None,
                    "setup_intent": None,
                    "shipping_address_collection": None,
                    "shipping_cost": None,
                    "shipping_options": [],
                    "status": "open",
                    "submit_type": submit_type,
                    "subscription": None,
                    "success_url": success_url,
                    "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
                    "ui_mode": "hosted_page",
                    "url": f"{base_url.rstrip('/')}/c/pay/{session_id}",
                    "wallet_options": None,
                }
            )
            self._checkout[session_id] = {
                "line_items": line_items,
                "payment_intent_data": pi_data,
                "subscription_data": sub_data,
            }
            return session

    def _line_item_spec(self, raw: Any, i: int) -> Obj:
        p = f"line_items[{i}]"
        item = _object(raw, p)
        if "quantity" not in item:
            raise missing_param(f"{p}[quantity]")
        quantity = _int(item["quantity"], f"{p}[quantity]", minimum=1)
        if ("price" in item) == ("price_data" in item):
            raise FakeStripeError(
                "You must specify either `price` or `price_data` for each line item.", param=p
            )
        if "price" in item:
            price = self._require(
                _str(item["price"], f"{p}[price]"), "price", param=f"{p}[price]", status=400
            )
            return {
                "price_id": price["id"],
                "currency": price["currency"],
                "unit_amount": price["unit_amount"],
                "recurring": price["recurring"],
                "quantity": quantity,
                "name": self._objects[price["product"]]["name"],
            }
        data = _object(item["price_data"], f"{p}[price_data]")
        pp = f"{p}[price_data]"
        if "currency" not in data:
            raise missing_param(f"{pp}[currency]")
        currency = _str(data["currency"], f"{pp}[currency]").lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise FakeStripeError(f"Invalid currency: {currency}", param=f"{pp}[currency]")
        if "unit_amount" not in data:
            raise missing_param(f"{pp}[unit_amount]")
        unit_amount = _int(data["unit_amount"], f"{pp}[unit_amount]", minimum=0)
        if unit_amount > MAX_UNIT_AMOUNT:
            raise FakeStripeError(
                f"This value must be less than or equal to {MAX_UNIT_AMOUNT}.",
                param=f"{pp}[unit_amount]",
            )
        if "product" in data:
            product = self._require(
                _str(data["product"], f"{pp}[product]"),
                "product",
                param=f"{pp}[product]",
                status=400,
            )
            name = product["name"]
        else:
            product_data = _object(data.get("product_data"), f"{pp}[product_data]")
            if not product_data:
                raise FakeStripeError(
                    "You must specify either `product` or `product_data` when creating a price.",
                    param=pp,
                )
            if not product_data.get("name"):
                raise missing_param(f"{pp}[product_data][name]")
            name = _str(product_data["name"], f"{pp}[product_data][name]")
        recurring = None
        if data.get("recurring"):
            raw_recurring = _object(data["recurring"], f"{pp}[recurring]")
            interval = raw_recurring.get("interval")
            if interval is None:
                raise missing_param(f"{pp}[recurring][interval]")
            if interval not in _INTERVALS:
                raise FakeStripeError(
                    "Invalid recurring[interval]: must be one of day, month, week, or year",
                    param=f"{pp}[recurring][interval]",
                )
            count = _int(
                raw_recurring.get("interval_count", 1),
                f"{pp}[recurring][interval_count]",
                minimum=1,
            )
            recurring = {
                "interval": interval,
                "interval_count": count,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
        return {
            "price_id": None,
            "product_id": data.get("product"),
            "currency": currency,
            "unit_amount": unit_amount,
            "recurring": recurring,
            "quantity": quantity,
            "name": name,
        }

    def _make_line_item(self, spec: Obj) -> Obj:
        now = self.now()
        if spec["price_id"]:
            price = self._objects[spec["price_id"]]
        else:
            product_id = spec.get("product_id")
            if not product_id:
                product_id = self._store(
                    {
                        "id": _new_id("prod"),
                        "object": "product",
                        "active": False,  # inline product_data makes a hidden product
                        "created": now,
                        "default_price": None,
                        "description": None,
                        "images": [],
                        "livemode": False,
                        "marketing_features": [],
                        "metadata": {},
                        "name": spec["name"],
                        "package_dimensions": None,
                        "shippable": None,
                        "statement_descriptor": None,
                        "tax_code": None,
                        "unit_label": None,
                        "updated": now,
                        "url": None,
                    }
                )["id"]
            price = self._store(
                {
                    "id": _new_id("price"),
                    "object": "price",
                    "active": False,  # price_data makes an archived, single-use price
                    "billing_scheme": "per_unit",
                    "created": now,
                    "currency": spec["currency"],
                    "custom_unit_amount": None,
                    "livemode": False,
                    "lookup_key": None,
                    "metadata": {},
                    "nickname": None,
                    "product": product_id,
                    "recurring": spec["recurring"],
                    "tax_behavior": "unspecified",
                    "tiers_mode": None,
                    "transform_quantity": None,
                    "type": "recurring" if spec["recurring"] else "one_time",
                    "unit_amount": spec["unit_amount"],
                    "unit_amount_decimal": str(spec["unit_amount"]),
                }
            )
        amount = price["unit_amount"] * spec["quantity"]
        return {
            "id": _new_id("li"),
            "object": "item",
            "adjustable_quantity": None,
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "currency": price["currency"],
            "description": spec["name"],
            "metadata": {},
            "price": copy.deepcopy(price),
            "quantity": spec["quantity"],
        }

    def expire_checkout(
        self, session_id: str, *, request: Mapping[str, str | None] | None = None
    ) -> list[Obj]:
        """The session runs out (or `POST .../expire`): `checkout.session.expired`."""
        with self.atomic():
            session = self._require(session_id, "checkout.session")
            if session["status"] != "open":
                raise FakeStripeError(
                    f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                    f'Checkout Session has a status of "{session["status"]}".',
                    param="session",
                )
            session["status"] = "expired"
            session["url"] = None
            return [
                copy.deepcopy(self._event("checkout.session.expired", session, request=request))
            ]

    def complete_checkout(
        self,
        session_id: str,
        *,
        async_payment: bool = False,
        email: str | None = None,
        name: str = "Jenny Rosen",
    ) -> list[Obj]:
        """The donor pays on the Checkout page.

        payment mode: a PaymentIntent (carrying `payment_intent_data.metadata`) and its Charge;
        events `checkout.session.completed`, `payment_intent.succeeded`, `charge.succeeded`.
        subscription mode: a Customer, an active Subscription (`subscription_data.metadata`) and
        its first Invoice, paid; events `checkout.session.completed`, `invoice.paid`,
        `invoice.payment_succeeded`, `payment_intent.succeeded`, `charge.succeeded` (the last
        two, as on real Stripe, carry no campaign metadata: only the invoice links them).
        async_payment (bank debits): the session completes `unpaid` and the PaymentIntent is
        `processing`; only `checkout.session.completed` now, the rest on
        `async_payment_succeeded` / `async_payment_failed`.
        """
        with self.atomic():
            session = self._require(session_id, "checkout.session")
            if session["status"] != "open":
                raise FakeStripeError(
                    f"Checkout Session {session_id} is {session['status']}, not open."
                )
            extras = self._checkout[session_id]
            email = email or session["customer_email"] or "donor@example.com"
            session["customer_details"] = {
                "address": {
                    "city": None,
                    "country": "US",
                    "line1": None,
                    "line2": None,
                    "postal_code": "94103",
                    "state": None,
                },
                "business_name": None,
                "email": email,
                "individual_name": None,
                "name": name,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            }
            session["status"] = "complete"
            session["url"] = None  # a finished session has no page any more
            method = "us_bank_account" if async_payment else "card"

            if session["mode"] == "payment":
                pi_data = extras["payment_intent_data"]
                pi = self._new_payment_intent(
                    session["amount_total"],
                    session["currency"],
                    metadata=pi_data["metadata"],
                    description=pi_data.get("description"),
                    customer=None,
                    method=method,
                    receipt_email=pi_data.get("receipt_email"),
                )
                session["payment_intent"] = pi["id"]
                if async_payment:
                    pi["status"] = "processing"
                    return self._copies([self._event("checkout.session.completed", session)])
                charge = self._succeed(pi, billing_email=email, billing_name=name)
                session["payment_status"] = "paid"
                return self._copies(
                    [
                        self._event("checkout.session.completed", session),
                        self._event("payment_intent.succeeded", pi),
                        self._event("charge.succeeded", charge),
                    ]
                )

            customer = self._new_customer(email, name)
            session["customer"] = customer["id"]
            subscription = self._new_subscription(session, customer, extras, method=method)
            invoice = self._new_invoice(
                subscription,
                billing_reason="subscription_create",
                line_items=extras["line_items"],
            )
            subscription["latest_invoice"] = invoice["id"]
            session["subscription"] = subscription["id"]
            session["invoice"] = invoice["id"]
            pi = self._invoice_payment_intent(invoice, method=method)
            if async_payment:
                pi["status"] = "processing"
                subscription["status"] = "incomplete"
                return self._copies([self._event("checkout.session.completed", session)])
            charge = self._succeed(pi, billing_email=email, billing_name=name)
            self._invoice_paid(invoice)
            session["payment_status"] = "paid"
            return self._copies(
                [
                    self._event("checkout.session.completed", session),
                    self._event("invoice.paid", invoice),
                    self._event("invoice.payment_succeeded", invoice),
                    self._event("payment_intent.succeeded", pi),
                    self._event("charge.succeeded", charge),
                ]
            )

    def _async_session(self, session_id: str) -> tuple[Obj, Obj, Obj | None]:
        session = self._require(session_id, "checkout.session")
        if session["status"] != "complete" or session["payment_status"] != "unpaid":
            raise FakeStripeError(f"Checkout Session {session_id} has no payment in progress.")
        invoice = self._objects[session["invoice"]] if session["invoice"] else None
        pi_id = session["payment_intent"] or (invoice and self._invoice_pi(invoice))
        pi = self._objects[pi_id] if pi_id else None
        if pi is None or pi["status"] != "processing":
            raise FakeStripeError(f"Checkout Session {session_id} has no payment in progress.")
        return session, pi, invoice

    def async_payment_succeeded(self, session_id: str) -> list[Obj]:
        """The bank debit clears: `checkout.session.async_payment_succeeded`, then the payment's
        events (`payment_intent.succeeded`, `charge.succeeded`, and in subscription mode
        `invoice.paid`, `invoice.payment_succeeded`, `customer.subscription.updated`)."""
        with self.atomic():
            session, pi, invoice = self._async_session(session_id)
            details = session["customer_details"] or {}
            charge = self._succeed(
                pi, billing_email=details.get("email"), billing_name=details.get("name")
            )
            session["payment_status"] = "paid"
            events = [self._event("checkout.session.async_payment_succeeded", session)]
            if invoice is not None:
                self._invoice_paid(invoice)
                events += [
                    self._event("invoice.paid", invoice),
                    self._event("invoice.payment_succeeded", invoice),
                ]
            events += [
                self._event("payment_intent.succeeded", pi),
                self._event("charge.succeeded", charge),
            ]
            if invoice is not None:
                events += self._set_subscription_status(session["subscription"], "active")
            return self._copies(events)

    def async_payment_failed(self, session_id: str) -> list[Obj]:
        """The bank debit fails: `checkout.session.async_payment_failed`,
        `payment_intent.payment_failed` (and `invoice.payment_failed` in subscription mode)."""
        with self.atomic():
            session, pi, invoice = self._async_session(session_id)
            self._fail(pi, create_charge=False)
            events = [self._event("checkout.session.async_payment_failed", session)]
            if invoice is not None:
                invoice["attempted"] = True
                invoice["attempt_count"] += 1
                events.append(self._event("invoice.payment_failed", invoice))
            events.append(self._event("payment_intent.payment_failed", pi))
            return self._copies(events)

    # -- payments ---------------------------------------------------------------------------

    def _new_payment_intent(
        self,
        amount: int,
        currency: str,
        *,
        metadata: Mapping[str, str],
        description: str | None,
        customer: str | None,
        method: str,
        receipt_email: str | None = None,
    ) -> Obj:
        pi_id = _new_id("pi")
        return self._store(
            {
                "id": pi_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": 0,
                "amount_details": {"tip": {}},
                "amount_received": 0,
                "application": None,
                "application_fee_amount": None,
                "automatic_payment_methods": None,
                "canceled_at": None,
                "cancellation_reason": None,
                "capture_method": "automatic_async",
                "client_secret": f"{pi_id}_secret_{_random(25)}",
                "confirmation_method": "automatic",
                "created": self.now(),
                "currency": currency,
                "customer": customer,
                "customer_account": None,
                "description": description,
                "excluded_payment_method_types": None,
                "last_payment_error": None,
                "latest_charge": None,
                "livemode": False,
                "metadata": dict(metadata),
                "next_action": None,
                "on_behalf_of": None,
                "payment_method": _new_id("pm"),
                "payment_method_configuration_details": None,
                "payment_method_options": {},
                "payment_method_types": [method],
                "processing": None,
                "receipt_email": receipt_email,
                "review": None,
                "setup_future_usage": None,
                "shipping": None,
                "source": None,
                "statement_descriptor": None,
                "statement_descriptor_suffix": None,
                "status": "requires_payment_method",
                "transfer_data": None,
                "transfer_group": None,
            }
        )

    def _new_charge(
        self, pi: Obj, *, paid: bool, billing_email: str | None, billing_name: str | None
    ) -> Obj:
        method = pi["payment_method_types"][0]
        if method == "card":
            details: Obj = {
                "card": {
                    "brand": "visa",
                    "country": "US",
                    "exp_month": 12,
                    "exp_year": 2034,
                    "funding": "credit",
                    "last4": "4242" if paid else "0002",
                    "network": "visa",
                },
                "type": "card",
            }
        else:
            details = {
                "type": method,
                method: {
                    "bank_name": "STRIPE TEST BANK",
                    "last4": "6789",
                    "routing_number": "110000000",
                },
            }
        return self._store(
            {
                "id": _new_id("ch"),
                "object": "charge",
                "amount": pi["amount"],
                "amount_captured": pi["amount"] if paid else 0,
                "amount_refunded": 0,
                "application": None,
                "application_fee": None,
                "application_fee_amount": None,
                "balance_transaction": _new_id("txn") if paid else None,
                "billing_details": {
                    "address": {
                        "city": None,
                        "country": "US",
                        "line1": None,
                        "line2": None,
                        "postal_code": "94103",
                        "state": None,
                    },
                    "email": billing_email,
                    "name": billing_name,
                    "phone": None,
                    "tax_id": None,
                },
                "calculated_statement_descriptor": "FUNDGOAL",
                "captured": paid,
                "created": self.now(),
                "currency": pi["currency"],
                "customer": pi["customer"],
                "description": pi["description"],
                "disputed": False,
                "failure_balance_transaction": None,
                "failure_code": None if paid else "card_declined",
                "failure_message": None if paid else "Your card was declined.",
                "fraud_details": {},
                "livemode": False,
                # Stripe copies the PaymentIntent's metadata onto its charges.
                "metadata": dict(pi["metadata"]),
                "on_behalf_of": None,
                "outcome": {
                    "advice_code": None,
                    "network_advice_code": None,
                    "network_decline_code": None,
                    "network_status": "approved_by_network" if paid else "declined_by_network",
                    "reason": None if paid else "generic_decline",
                    "risk_level": "normal",
                    "risk_score": 32,
                    "seller_message": "Payment complete."
                    if paid
                    else "The bank did not return any further details with this decline.",
                    "type": "authorized" if paid else "issuer_declined",
                },
                "paid": paid,
                "payment_intent": pi["id"],
                "payment_method": pi["payment_method"],
                "payment_method_details": details,
                "receipt_email": pi["receipt_email"],
                "receipt_number": None,
                "receipt_url": f"https://pay.stripe.com/receipts/payment/{_random(40)}"
                if paid
                else None,
                "refunded": False,
                "review": None,
                "shipping": None,
                "source": None,
                "source_transfer": None,
                "statement_descriptor": None,
                "statement_descriptor_suffix": None,
                "status": "succeeded" if paid else "failed",
                "transfer_data": None,
                "transfer_group": None,
            }
        )

    def _succeed(self, pi: Obj, *, billing_email: str | None, billing_name: str | None) -> Obj:
        charge = self._new_charge(
            pi, paid=True, billing_email=billing_email, billing_name=billing_name
        )
        pi.update(
            status="succeeded",
            amount_received=pi["amount"],
            latest_charge=charge["id"],
            last_payment_error=None,
        )
        return charge

    def _fail(self, pi: Obj, *, create_charge: bool) -> Obj | None:
        charge = None
        if create_charge:
            charge = self._new_charge(pi, paid=False, billing_email=None, billing_name=None)
            pi["latest_charge"] = charge["id"]
        pi["status"] = "requires_payment_method"
        pi["last_payment_error"] = {
            "charge": charge["id"] if charge else None,
            "code": "card_declined" if create_charge else "payment_method_not_available",
            "decline_code": "generic_decline" if create_charge else None,
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "message": "Your card was declined." if create_charge else "The bank debit failed.",
            "type": "card_error" if create_charge else "invalid_request_error",
        }
        return charge

    # -- subscriptions and invoices -----------------------------------------------------------

    def _new_customer(self, email: str, name: str) -> Obj:
        return self._store(
            {
                "id": _new_id("cus"),
                "object": "customer",
                "address": None,
                "balance": 0,
                "created": self.now(),
                "currency": None,
                "customer_account": None,
                "default_source": None,
                "delinquent": False,
                "description": None,
                "email": email,
                "invoice_prefix": _random(8, string.ascii_uppercase + string.digits),
                "invoice_settings": {
                    "custom_fields": None,
                    "default_payment_method": None,
                    "footer": None,
                    "rendering_options": None,
                },
                "livemode": False,
                "metadata": {},
                "name": name,
                "next_invoice_sequence": 1,
                "phone": None,
                "preferred_locales": [],
                "shipping": None,
                "tax_exempt": "none",
                "test_clock": None,
            }
        )

    def _new_subscription(self, session: Obj, customer: Obj, extras: Obj, *, method: str) -> Obj:
        now = self.now()
        sub_id = _new_id("sub")
        items = []
        for line in extras["line_items"]:
            price = line["price"]
            recurring = price["recurring"]
            if not recurring:
                continue  # one-time items go on the first invoice only
            items.append(
                {
                    "id": _new_id("si"),
                    "object": "subscription_item",
                    "billing_thresholds": None,
                    "created": now,
                    "current_period_end": _add_interval(
                        now, recurring["interval"], recurring["interval_count"]
                    ),
                    "current_period_start": now,
                    "discounts": [],
                    "metadata": {},
                    "plan": {
                        "id": price["id"],
                        "object": "plan",
                        "active": price["active"],
                        "amount": price["unit_amount"],
                        "amount_decimal": price["unit_amount_decimal"],
                        "billing_scheme": "per_unit",
                        "created": price["created"],
                        "currency": price["currency"],
                        "interval": recurring["interval"],
                        "interval_count": recurring["interval_count"],
                        "livemode": False,
                        "metadata": {},
                        "meter": None,
                        "nickname": None,
                        "product": price["product"],
                        "tiers_mode": None,
                        "transform_usage": None,
                        "trial_period_days": None,
                        "usage_type": "licensed",
                    },
                    "price": copy.deepcopy(price),
                    "quantity": line["quantity"],
                    "subscription": sub_id,
                    "tax_rates": [],
                }
            )
        return self._store(
            {
                "id": sub_id,
                "object": "subscription",
                "application": None,
                "application_fee_percent": None,
                "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
                "billing_cycle_anchor": now,
                "billing_cycle_anchor_config": None,
                "billing_mode": {"flexible": None, "type": "flexible", "updated_at": now},
                "billing_thresholds": None,
                "cancel_at": None,
                "cancel_at_period_end": False,
                "canceled_at": None,
                "cancellation_details": {"comment": None, "feedback": None, "reason": None},
                "collection_method": "charge_automatically",
                "created": now,
                "currency": session["currency"],
                "customer": customer["id"],
                "customer_account": None,
                "days_until_due": None,
                "default_payment_method": _new_id("pm"),
                "default_source": None,
                "default_tax_rates": [],
                "description": extras["subscription_data"].get("description"),
                "discounts": [],
                "ended_at": None,
                "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
                "items": {
                    "object": "list",
                    "data": items,
                    "has_more": False,
                    "total_count": len(items),
                    "url": f"/v1/subscription_items?subscription={sub_id}",
                },
                "latest_invoice": None,
                "livemode": False,
                "metadata": dict(extras["subscription_data"]["metadata"]),
                "next_pending_invoice_item_invoice": None,
                "on_behalf_of": None,
                "pause_collection": None,
                "payment_settings": {
                    "payment_method_options": None,
                    "payment_method_types": [method],
                    "save_default_payment_method": "off",
                },
                "pending_invoice_item_interval": None,
                "pending_setup_intent": None,
                "pending_update": None,
                "schedule": None,
                "start_date": now,
                "status": "active",
                "test_clock": None,
                "transfer_data": None,
                "trial_end": None,
                "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
                "trial_start": None,
            }
        )

    def _new_invoice(
        self,
        subscription: Obj,
        *,
        billing_reason: str,
        line_items: list[Obj] | None = None,
        period: tuple[int, int] | None = None,
    ) -> Obj:
        """A finalized (open) invoice; `line_items` for the first one, else the sub's items."""
        now = self.now()
        invoice_id = _new_id("in")
        customer = self._objects[subscription["customer"]]
        items_by_price = {i["price"]["id"]: i for i in subscription["items"]["data"]}
        if line_items is not None:
            sources = [(li["price"], li["quantity"], li["description"]) for li in line_items]
        else:
            sources = [
                (i["price"], i["quantity"], self._objects[i["price"]["product"]]["name"])
                for i in subscription["items"]["data"]
            ]
        lines = []
        for price, quantity, name in sources:
            item = items_by_price.get(price["id"])
            if item is not None:
                start, end = period or (item["current_period_start"], item["current_period_end"])
            else:
                start, end = now, now
            amount = price["unit_amount"] * quantity
            lines.append(
                {
                    "id": _new_id("il"),
                    "object": "line_item",
                    "amount": amount,
                    "currency": price["currency"],
                    "description": f"{quantity} × {name}",
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": dict(subscription["metadata"]) if item else {},
                    "parent": self._line_parent(subscription["id"], item),
                    "period": {"end": end, "start": start},
                    "pretax_credit_amounts": [],
                    "pricing": {
                        "price_details": {"price": price["id"], "product": price["product"]},
                        "type": "price_details",
                        "unit_amount_decimal": price["unit_amount_decimal"],
                    },
                    "quantity": quantity,
                    "subscription": subscription["id"],
                    "subtotal": amount,
                    "taxes": [],
                }
            )
        total = sum(line["amount"] for line in lines)
        number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        period_start = min((line["period"]["start"] for line in lines), default=now)
        period_end = max((line["period"]["end"] for line in lines), default=now)
        if billing_reason == "subscription_create":
            period_start = period_end = now  # Stripe: the first invoice covers "now"
        return self._store(
            {
                "id": invoice_id,
                "object": "invoice",
                "account_country": "US",
                "account_name": "fundgoal test",
                "account_tax_ids": None,
                "amount_due": total,
                "amount_overpaid": 0,
                "amount_paid": 0,
                "amount_remaining": total,
                "amount_shipping": 0,
                "application": None,
                "attempt_count": 0,
                "attempted": False,
                "auto_advance": True,
                "automatic_tax": {
                    "disabled_reason": None,
                    "enabled": False,
                    "liability": None,
                    "provider": None,
                    "status": None,
                },
                "automatically_finalizes_at": None,
                "billing_reason": billing_reason,
                "collection_method": "charge_automatically",
                "confirmation_secret": None,
                "created": now,
                "currency": subscription["currency"],
                "custom_fields": None,
                "customer": customer["id"],
                "customer_account": None,
                "customer_address": None,
                "customer_email": customer["email"],
                "customer_name": customer["name"],
                "customer_phone": None,
                "customer_shipping": None,
                "customer_tax_exempt": "none",
                "customer_tax_ids": [],
                "default_payment_method": None,
                "default_source": None,
                "default_tax_rates": [],
                "description": None,
                "discounts": [],
                "due_date": None,
                "effective_at": now,
                "ending_balance": 0,
                "footer": None,
                "from_invoice": None,
                "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{_random(40)}",
                "invoice_pdf": f"https://pay.stripe.com/invoice/acct_test/{_random(40)}/pdf",
                "issuer": {"type": "self"},
                "last_finalization_error": None,
                "latest_revision": None,
                "lines": {
                    "object": "list",
                    "data": lines,
                    "has_more": False,
                    "total_count": len(lines),
                    "url": f"/v1/invoices/{invoice_id}/lines",
                },
                "livemode": False,
                "metadata": {},
                "next_payment_attempt": None,
                "number": number,
                "on_behalf_of": None,
                # API 2025-03-31+: no top-level `subscription`; it and a snapshot of its
                # metadata live under parent.subscription_details.
                "parent": {
                    "quote_details": None,
                    "subscription_details": {
                        "metadata": dict(subscription["metadata"]),
                        "subscription": subscription["id"],
                    },
                    "type": "subscription_details",
                },
                "payment_settings": {
                    "default_mandate": None,
                    "payment_method_options": None,
                    "payment_method_types": None,
                },
                "period_end": period_end,
                "period_start": period_start,
                "post_payment_credit_notes_amount": 0,
                "pre_payment_credit_notes_amount": 0,
                "receipt_number": None,
                "rendering": None,
                "shipping_cost": None,
                "shipping_details": None,
                "starting_balance": 0,
                "statement_descriptor": None,
                "status": "open",
                "status_transitions": {
                    "finalized_at": now,
                    "marked_uncollectible_at": None,
                    "paid_at": None,
                    "voided_at": None,
                },
                "subtotal": total,
                "subtotal_excluding_tax": total,
                "test_clock": None,
                "threshold_reason": None,
                "total": total,
                "total_discount_amounts": [],
                "total_excluding_tax": total,
                "total_pretax_credit_amounts": [],
                "total_taxes": [],
                "webhooks_delivered_at": now,
            }
        )

    @staticmethod
    def _line_parent(subscription_id: str, item: Obj | None) -> Obj:
        details = {
            "proration": False,
            "proration_details": {"credited_items": None},
            "subscription": subscription_id,
        }
        if item is None:  # a one-time price on the first invoice becomes an invoice item
            return {
                "invoice_item_details": {**details, "invoice_item": _new_id("ii")},
                "subscription_item_details": None,
                "type": "invoice_item_details",
            }
        return {
            "invoice_item_details": None,
            "subscription_item_details": {
                **details,
                "invoice_item": None,
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        }

    def _invoice_payment_intent(self, invoice: Obj, *, method: str) -> Obj:
        """The invoice's PaymentIntent, linked the 2025+ way: an `invoice_payment` record
        (what `invoice.payments` lists); the PaymentIntent itself has no `invoice` field."""
        pi = self._new_payment_intent(
            invoice["amount_due"],
            invoice["currency"],
            metadata={},
            description="Subscription creation"
            if invoice["billing_reason"] == "subscription_create"
            else "Subscription update",
            customer=invoice["customer"],
            method=method,
        )
        self._store(
            {
                "id": _new_id("inpay"),
                "object": "invoice_payment",
                "amount_paid": None,
                "amount_requested": invoice["amount_due"],
                "created": self.now(),
                "currency": invoice["currency"],
                "invoice": invoice["id"],
                "is_default": True,
                "livemode": False,
                "payment": {"payment_intent": pi["id"], "type": "payment_intent"},
                "status": "open",
                "status_transitions": {"canceled_at": None, "paid_at": None},
            }
        )
        return pi

    def invoice_payments(self, invoice_id: str) -> list[Obj]:
        return [p for p in self.stored_of("invoice_payment") if p["invoice"] == invoice_id]

    def _invoice_pi(self, invoice: Obj) -> str | None:
        payments = self.invoice_payments(invoice["id"])
        return payments[-1]["payment"]["payment_intent"] if payments else None

    def _invoice_paid(self, invoice: Obj) -> None:
        now = self.now()
        invoice.update(
            amount_paid=invoice["amount_due"],
            amount_remaining=0,
            attempted=True,
            attempt_count=invoice["attempt_count"] + 1,
            auto_advance=False,
            next_payment_attempt=None,
            status="paid",
        )
        invoice["status_transitions"]["paid_at"] = now
        for payment in self.invoice_payments(invoice["id"]):
            payment.update(amount_paid=payment["amount_requested"], status="paid")
            payment["status_transitions"]["paid_at"] = now

    def _set_subscription_status(self, subscription_id: str, status: str) -> list[Obj]:
        subscription = self._objects[subscription_id]
        previous = subscription["status"]
        if previous == status:
            return []
        subscription["status"] = status
        return [
            self._event(
                "customer.subscription.updated",
                subscription,
                previous_attributes={"status": previous},
            )
        ]

    def _due_invoice(self, subscription: Obj) -> tuple[Obj, Obj]:
        """The invoice to charge next: an open (failed) one is retried with its own
        PaymentIntent, as Stripe's smart retries do; else the next period's invoice."""
        if subscription["status"] in ("canceled", "incomplete_expired"):
            raise FakeStripeError(f"Subscription {subscription['id']} is {subscription['status']}.")
        for invoice in reversed(self.stored_of("invoice")):
            sub_id = invoice["parent"]["subscription_details"]["subscription"]
            if sub_id == subscription["id"] and invoice["status"] == "open":
                pi_id = self._invoice_pi(invoice)
                assert pi_id is not None
                return invoice, self._objects[pi_id]
        for item in subscription["items"]["data"]:
            recurring = item["price"]["recurring"]
            item["current_period_start"] = item["current_period_end"]
            item["current_period_end"] = _add_interval(
                item["current_period_start"], recurring["interval"], recurring["interval_count"]
            )
        invoice = self._new_invoice(subscription, billing_reason="subscription_cycle")
        subscription["latest_invoice"] = invoice["id"]
        method = subscription["payment_settings"]["payment_method_types"][0]
        return invoice, self._invoice_payment_intent(invoice, method=method)

    def pay_next_invoice(self, subscription_id: str) -> list[Obj]:
        """A renewal (or a retry of a failed one) succeeds: `invoice.paid`,
        `invoice.payment_succeeded`, `payment_intent.succeeded`, `charge.succeeded`, and
        `customer.subscription.updated` if the subscription was past_due."""
        with self.atomic():
            subscription = self._require(subscription_id, "subscription")
            invoice, pi = self._due_invoice(subscription)
            customer = self._objects[subscription["customer"]]
            charge = self._succeed(
                pi, billing_email=customer["email"], billing_name=customer["name"]
            )
            self._invoice_paid(invoice)
            events = [
                self._event("invoice.paid", invoice),
                self._event("invoice.payment_succeeded", invoice),
                self._event("payment_intent.succeeded", pi),
                self._event("charge.succeeded", charge),
            ]
            events += self._set_subscription_status(subscription_id, "active")
            return self._copies(events)

    def fail_next_invoice(self, subscription_id: str) -> list[Obj]:
        """A renewal's card is declined: `invoice.payment_failed`,
        `payment_intent.payment_failed`, `charge.failed`, and `customer.subscription.updated`
        (active -> past_due). The invoice stays open; `pay_next_invoice` retries it."""
        with self.atomic():
            subscription = self._require(subscription_id, "subscription")
            invoice, pi = self._due_invoice(subscription)
            charge = self._fail(pi, create_charge=True)
            assert charge is not None
            invoice["attempted"] = True
            invoice["attempt_count"] += 1
            invoice["next_payment_attempt"] = self.now() + 3 * 86_400
            events = [
                self._event("invoice.payment_failed", invoice),
                self._event("payment_intent.payment_failed", pi),
                self._event("charge.failed", charge),
            ]
            if subscription["status"] == "active":
                events += self._set_subscription_status(subscription_id, "past_due")
            return self._copies(events)

    def cancel_subscription(
        self, subscription_id: str, *, request: Mapping[str, str | None] | None = None
    ) -> list[Obj]:
        """The donor or admin cancels (also `DELETE /v1/subscriptions/{id}`):
        `customer.subscription.deleted`."""
        with self.atomic():
            subscription = self._require(subscription_id, "subscription")
            if subscription["status"] == "canceled":
                raise FakeStripeError(
                    f"A canceled subscription can only update its cancellation_details and "
                    f"metadata. Subscription {subscription_id} is already canceled."
                )
            now = self.now()
            subscription.update(status="canceled", canceled_at=now, ended_at=now)
            subscription["cancellation_details"]["reason"] = "cancellation_requested"
            return self._copies(
                [self._event("customer.subscription.deleted", subscription, request=request)]
            )

    # -- refunds and disputes -----------------------------------------------------------------

    def _charge_of(self, payment_id: str, param: str, action: str = "refund") -> Obj:
        """The succeeded charge behind a PaymentIntent id (or a charge id)."""
        if payment_id.startswith("ch_"):
            return self._require(payment_id, "charge", param=param, status=400)
        pi = self._require(payment_id, "payment_intent", param=param, status=400)
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise FakeStripeError(
                f"This PaymentIntent ({payment_id}) does not have a successful charge to {action}.",
                param=param,
            )
        return self._objects[pi["latest_charge"]]

    def create_refund(
        self, params: Mapping[str, Any], *, request: Mapping[str, str | None] | None = None
    ) -> tuple[Obj, list[Obj]]:
        """`POST /v1/refunds`: the refund, plus events `charge.refunded` and `refund.created`."""
        with self.atomic():
            pi_id, charge_id = params.get("payment_intent"), params.get("charge")
            if not pi_id and not charge_id:
                raise FakeStripeError(
                    "One of the following params should be provided for this request: "
                    "payment_intent or charge."
                )
            if charge_id:
                charge = self._charge_of(_str(charge_id, "charge"), "charge")
                if pi_id and charge["payment_intent"] != pi_id:
                    raise FakeStripeError(
                        f"Charge {charge['id']} does not belong to PaymentIntent {pi_id}.",
                        param="charge",
                    )
            else:
                charge = self._charge_of(_str(pi_id, "payment_intent"), "payment_intent")
            if charge["status"] != "succeeded":
                raise FakeStripeError(f"Charge {charge['id']} has not succeeded.", param="charge")
            dispute = self._dispute_of(charge["id"])
            if dispute is not None and dispute["status"] != "won":
                raise FakeStripeError(
                    f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                    code="charge_disputed",
                )
            remaining = charge["amount_captured"] - charge["amount_refunded"]
            if remaining <= 0:
                raise FakeStripeError(
                    f"Charge {charge['id']} has already been refunded.",
                    code="charge_already_refunded",
                )
            amount = remaining
            if params.get("amount") is not None:
                amount = _int(params["amount"], "amount", minimum=1)
            if amount > remaining:
                raise FakeStripeError(
                    f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than "
                    f"unrefunded amount on charge ({format_amount(remaining, charge['currency'])})",
                    param="amount",
                )
            reason = params.get("reason")
            if reason is not None and reason not in (
                "duplicate",
                "fraudulent",
                "requested_by_customer",
            ):
                raise FakeStripeError(
                    "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
                    param="reason",
                )
            metadata = _metadata(params.get("metadata"), "metadata")
            refund = self._store(
                {
                    "id": _new_id("re"),
                    "object": "refund",
                    "amount": amount,
                    "balance_transaction": _new_id("txn"),
                    "charge": charge["id"],
                    "created": self.now(),
                    "currency": charge["currency"],
                    "destination_details": {
                        "card": {
                            "reference": _random(22, string.digits),
                            "reference_status": "available",
                            "reference_type": "acquirer_reference_number",
                            "type": "refund",
                        },
                        "type": "card",
                    },
                    "metadata": metadata,
                    "payment_intent": charge["payment_intent"],
                    "reason": reason,
                    "receipt_number": None,
                    "source_transfer_reversal": None,
                    "status": "succeeded",
                    "transfer_reversal": None,
                }
            )
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
            events = [
                self._event("charge.refunded", charge, request=request),
                self._event("refund.created", refund, request=request),
            ]
            return refund, self._copies(events)

    def refund(self, payment_intent_id: str, amount: int | None = None, **params: Any) -> list[Obj]:
        """Refund (part of) a payment from the Dashboard: `charge.refunded` (the charge, with
        its cumulative `amount_refunded`) and `refund.created`. Refuses more than remains."""
        key = "charge" if payment_intent_id.startswith("ch_") else "payment_intent"
        _, events = self.create_refund({key: payment_intent_id, "amount": amount, **params})
        return events

    def _dispute_of(self, charge_id: str) -> Obj | None:
        found = [d for d in self.stored_of("dispute") if d["charge"] == charge_id]
        return found[-1] if found else None

    def _dispute_txn(self, dispute: Obj, amount: int, fee: int, description: str) -> Obj:
        now = self.now()
        return {
            "id": _new_id("txn"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": now,
            "balance_type": "payments",
            "created": now,
            "currency": dispute["currency"],
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": [
                {
                    "amount": fee,
                    "application": None,
                    "currency": dispute["currency"],
                    "description": "Dispute fee",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else [],
            "net": amount - fee,
            "reporting_category": "dispute" if amount < 0 else "dispute_reversal",
            "source": dispute["id"],
            "status": "available",
            "type": "adjustment",
        }

    def dispute(self, payment_intent_id: str, *, reason: str = "fraudulent") -> list[Obj]:
        """The cardholder disputes the payment: `charge.dispute.created` and
        `charge.dispute.funds_withdrawn` (the unrefunded amount leaves the balance)."""
        with self.atomic():
            charge = self._charge_of(payment_intent_id, "payment_intent", "dispute")
            if charge["status"] != "succeeded":
                raise FakeStripeError(f"Charge {charge['id']} has not succeeded.")
            if self._dispute_of(charge["id"]) is not None:
                raise FakeStripeError(f"Charge {charge['id']} is already disputed.")
            amount = charge["amount_captured"] - charge["amount_refunded"]
            if amount <= 0:
                raise FakeStripeError(
                    f"Charge {charge['id']} is fully refunded; it cannot be disputed."
                )
            now = self.now()
            dispute = self._store(
                {
                    "id": _new_id("dp"),
                    "object": "dispute",
                    "amount": amount,
                    "balance_transactions": [],
                    "charge": charge["id"],
                    "created": now,
                    "currency": charge["currency"],
                    "enhanced_eligibility_types": [],
                    "evidence": {
                        "access_activity_log": None,
                        "billing_address": None,
                        "cancellation_policy": None,
                        "customer_email_address": None,
                        "customer_name": None,
                        "product_description": None,
                        "receipt": None,
                        "refund_policy": None,
                        "service_date": None,
                        "uncategorized_text": None,
                    },
                    "evidence_details": {
                        "due_by": now + 21 * 86_400,
                        "enhanced_eligibility": {},
                        "has_evidence": False,
                        "past_due": False,
                        "submission_count": 0,
                    },
                    "is_charge_refundable": False,
                    "livemode": False,
                    "metadata": {},
                    "network_reason_code": "10.4",
                    "payment_intent": charge["payment_intent"],
                    "payment_method_details": {
                        "card": {
                            "brand": "visa",
                            "case_type": "chargeback",
                            "network_reason_code": "10.4",
                        },
                        "type": "card",
                    },
                    "reason": reason,
                    "status": "needs_response",
                }
            )
            charge["disputed"] = True
            events = [self._event("charge.dispute.created", dispute)]
            dispute["balance_transactions"].append(
                self._dispute_txn(
                    dispute, -amount, 1500, f"Chargeback withdrawal for {charge['id']}"
                )
            )
            events.append(self._event("charge.dispute.funds_withdrawn", dispute))
            return self._copies(events)

    def close_dispute(self, dispute_id: str, won: bool) -> list[Obj]:
        """The bank decides: `charge.dispute.closed` (status `won` or `lost`) and, when won,
        `charge.dispute.funds_reinstated` (the amount comes back)."""
        with self.atomic():
            dispute = self._require(dispute_id, "dispute")
            if dispute["status"] not in _OPEN_DISPUTE:
                raise FakeStripeError(
                    f"Dispute {dispute_id} is already closed ({dispute['status']})."
                )
            dispute["status"] = "won" if won else "lost"
            if won:
                dispute["balance_transactions"].append(
                    self._dispute_txn(
                        dispute,
                        dispute["amount"],
                        0,
                        f"Chargeback reversal for {dispute['charge']}",
                    )
                )
            events = [self._event("charge.dispute.closed", dispute)]
            if won:
                events.append(self._event("charge.dispute.funds_reinstated", dispute))
            return self._copies(events)

    @staticmethod
    def _copies(events: list[Obj]) -> list[Obj]:
        # Tests get their own copies: mutating one must not rewrite Stripe's history.
        return copy.deepcopy(events)
