"""Hostile input by class, over the app's own route table (DESIGN.md convention 12).

Nothing here lists routes, fields or hostile values one by one:
- the routes are `app.routes` (recursing into Mounts) plus the widget's fast-path URLs as the
  app's own /openapi.json describes them, so a new route is fuzzed without editing this file;
- each route's form fields and query parameters are discovered, not declared: the forms and
  links of every page a crawl of the app reaches (with their current values, so the rest of a
  request stays valid and the handler's own checks run), plus every key a handler actually
  reads from its query string or form while the crawl runs (recorded by wrapping Starlette's
  multi-dicts), plus the parameters /openapi.json names; path parameters get the values the
  crawl saw in links and redirects;
- the values come from generators per hostile class: control characters and NUL, direction
  controls and invisible text, huge exponents, non-ASCII digits, lengths just past each
  column and very long values, repeated fields, invalid UTF-8 and percent-encoded NUL.

Every answer must be below 500 and come within a generous bound, on SQLite and PostgreSQL,
signed in as an admin (with a valid CSRF token, so the handlers' code really runs) for /admin
and anonymously elsewhere. The test also proves the requests get that far: a good share of
the answers are the handlers' own 4xx refusals, not the CSRF check's 403.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel
from starlette.datastructures import ImmutableMultiDict
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Secret, Settings
from fundgoal.services import admins
from fundgoal.services.demo import seed_demo
from fundgoal.services.imports import COLUMNS
from fundgoal.web.admin import auth
from fundgoal.web.app import create_app
from tests.conftest import TEST_SECRET_KEY
from tests.logcheck import register
from tests.web.admin.conftest import EMAIL, make_admin, sign_in

FUZZ_WEBHOOK_SECRET = "whsec_fundgoal_fuzz_3b8e51c0a9d2"
register(FUZZ_WEBHOOK_SECRET)
EXAMPLES = int(
    os.environ.get("FUZZ_EXAMPLES", "1200")
)  # per database: about a minute each on a loaded 2-core CI machine
ANSWER_BOUND = 20.0  # seconds for one answer: generous, it only catches pathological work
MAX_PAGES = 80
URL_LIMIT = 12_000  # per value in a URL: past the server's 8 KB (414), under the client's 64 KB

# -- discovery -------------------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)  # (name, value) in order
    choices: dict[str, set[str]] = field(default_factory=dict)  # buttons, options
    hidden: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)


class PageParser(HTMLParser):
    """Links and forms of one page."""

    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for key in ("href", "src", "action"):
            link = a.get(key, "").removeprefix("http://testserver")
            if link.startswith("/"):
                self.links.append(link)
                a[key] = link
        if tag == "form":
            self._form = Form(a.get("action") or self.base, (a.get("method") or "get").upper())
            self.forms.append(self._form)
            return
        form = self._form
        if tag == "option" and form is not None and self._select:
            form.choices[self._select].add(a.get("value", ""))
            return
        if form is None or not a.get("name"):
            return
        name = a["name"]
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind == "file":
                form.files.add(name)
            elif kind in ("checkbox", "radio"):
                form.choices.setdefault(name, set()).add(a.get("value", "on"))
                if "checked" in a:
                    form.fields.append((name, a.get("value", "on")))
            elif kind == "submit":
                form.choices.setdefault(name, set()).add(a.get("value", ""))
            else:
                form.fields.append((name, a.get("value", "")))
                if kind == "hidden":
                    form.hidden.add(name)
        elif tag == "button" and a.get("type", "submit") == "submit":
            form.choices.setdefault(name, set()).add(a.get("value", ""))
        elif tag == "select":
            self._select = name
            form.choices.setdefault(name, set())
        elif tag == "textarea":
            self._textarea = name
            form.fields.append((name, ""))

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea:
            name, value = self._form.fields[-1]
            self._form.fields[-1] = (name, value + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            if self._form is not None and self._select:
                options = sorted(self._form.choices[self._select])
                if options:
                    self._form.fields.append((self._select, options[0]))
            self._select = None
        elif tag == "textarea":
            self._textarea = None


@dataclass
class Target:
    """One route and method, with everything discovered about it."""

    template: str  # /admin/donations/{entry_id}
    method: str
    params: dict[str, str]  # path parameter -> its convertor's name
    pattern: re.Pattern[str]
    values: dict[str, set[str]] = field(default_factory=dict)  # path param -> seen values
    query: set[str] = field(default_factory=set)
    form: list[tuple[str, str]] = field(default_factory=list)
    form_names: set[str] = field(default_factory=set)
    hidden: set[str] = field(default_factory=set)
    choices: dict[str, set[str]] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)
    source: str | None = None  # the page whose form posts here: fetched again before a POST

    admin: bool = False  # sent signed in: an anonymous visitor is sent to sign in

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def route_table(app: Any) -> Iterator[tuple[str, Route]]:
    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, Route]]:
        for route in routes:
            if isinstance(route, Mount):
                yield from walk(list(route.routes), prefix + route.path)
            elif isinstance(route, Route):
                yield prefix + route.path, route

    yield from walk(list(app.routes), "")


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{([^}:]+)(?::[^}]+)?\}", template)
    regex = ""
    for i, part in enumerate(parts):
        regex += re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)"
    return re.compile(regex)


# Handlers' reads of query strings and forms, recorded while the crawl runs.
READS: dict[str, set[str]] = {"QueryParams": set(), "FormData": set()}


@pytest.fixture
def recorded_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    for method in ("get", "getlist", "__getitem__", "__contains__"):
        real = getattr(ImmutableMultiDict, method)

        def spy(self: Any, key: Any, *args: Any, _real: Any = real) -> Any:
            kind = type(self).__name__
            if kind in READS and isinstance(key, str):
                READS[kind].add(key)
            return _real(self, key, *args)

        monkeypatch.setattr(ImmutableMultiDict, method, spy)
    return READS


@dataclass
class World:
    targets: list[Target]
    anon: TestClient
    admin: TestClient
    engine: Engine
    settings: Settings
    csrf: str


def discover(
    app: Any,
    anon: TestClient,
    admin: TestClient,
    reads: dict[str, set[str]],
    refresh: Callable[[], None],
    seeds: list[str],
    csrf: str,
) -> list[Target]:
    targets: list[Target] = []
    for template, route in route_table(app):
        params = {name: type(c).__name__ for name, c in route.param_convertors.items()}
        clean = re.sub(r"\{([^}:]+)(?::[^}]+)?\}", r"{\1}", template)
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            targets.append(Target(clean, method, params, _pattern(clean)))
    # The widget's fast path answers before routing: its URLs are the ones /openapi.json names.
    spec = anon.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if any(t.template == path and t.method == method.upper() for t in targets):
                continue
            names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
            target = Target(path, method.upper(), dict.fromkeys(names, "str"), _pattern(path))
            target.query |= {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
            targets.append(target)

    def match(url: str, method: str) -> list[Target]:
        path = urlsplit(url).path
        return [t for t in targets if t.method == method and t.pattern.fullmatch(path)]

    def learn(url: str) -> None:
        parts = urlsplit(url)
        for target in match(url, "GET") + match(url, "POST"):
            found = target.pattern.fullmatch(parts.path)
            assert found is not None
            for name, value in found.groupdict().items():
                target.values.setdefault(name, set()).add(value)
            target.query |= {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}

    # Crawl every page reachable from the routes without parameters, as both visitors.
    queue = [t.template for t in targets if t.method == "GET" and not t.params] + seeds
    seen: set[str] = set()
    unrouted: set[str] = set()
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        path = urlsplit(url).path
        if url in seen:
            continue
        seen.add(url)
        for kind in reads:
            reads[kind].clear()
        page = anon.get(url, follow_redirects=False)
        if page.status_code in (303, 403) and "/login" in page.headers.get("location", "/login"):
            # Behind the sign-in: every method of this route is sent as the signed-in admin.
            for target in targets:
                if target.pattern.fullmatch(path):
                    target.admin = True
            for kind in reads:
                reads[kind].clear()
            page = admin.get(url, follow_redirects=False)
        for target in match(url, "GET"):
            target.query |= reads["QueryParams"]
        learn(url)
        if page.status_code in (301, 302, 303, 307) and "location" in page.headers:
            queue.append(page.headers["location"].removeprefix("http://testserver"))
            continue
        if "html" not in page.headers.get("content-type", ""):
            continue
        parser = PageParser(path)
        parser.feed(page.text)
        for link in parser.links:
            learn(link)
            if not any(t.pattern.fullmatch(urlsplit(link).path) for t in targets):
                unrouted.add(link)
            if link not in seen:
                queue.append(link)
        for form in parser.forms:
            learn(form.action)
            for target in match(form.action, form.method):
                if form.method == "GET":
                    target.query |= {name for name, _ in form.fields} | set(form.choices)
                    continue
                if not target.form:
                    target.form = list(form.fields)
                    target.source = url
                target.form_names |= {n for n, _ in form.fields} | set(form.choices)
                target.hidden |= form.hidden
                target.files |= form.files
                for name, options in form.choices.items():
                    target.choices.setdefault(name, set()).update(options)
    # A POST is protected like the page of the same route; a POST-only route is protected
    # when an anonymous visitor is refused (403) where the signed-in admin is not.
    for target in targets:
        if target.method != "POST":
            continue
        pages = [t for t in targets if t.template == target.template and t.method == "GET"]
        if pages:
            target.admin = pages[0].admin
            continue
        url = fill(target, {n: sorted(v)[0] for n, v in target.values.items() if v})
        refresh()
        anonymous = anon.post(url, data={}, follow_redirects=False).status_code
        signed_in = admin.post(url, data={"csrf": csrf}, follow_redirects=False).status_code
        target.admin = anonymous == 403 and signed_in != 403
    # A path parameter's values serve every route naming it ({slug} is a slug everywhere).
    by_name: dict[str, set[str]] = {}
    for target in targets:
        for name, values in target.values.items():
            by_name.setdefault(name, set()).update(values)
    for target in targets:
        for name in target.params:
            target.values.setdefault(name, set()).update(by_name.get(name, set()))
    # Links the router does not answer (the widget's fast path: badge.svg, /embed/...): each
    # becomes a target, its segments that are known parameter values made parameters again.
    for link in sorted(unrouted):
        parts = urlsplit(link)
        segments = parts.path.split("/")
        params: dict[str, str] = {}
        for i, segment in enumerate(segments):
            for name, values in by_name.items():
                if segment and segment in values:
                    segments[i] = "{" + name + "}"
                    params[name] = "str"
        template = "/".join(segments)
        known = [t for t in targets if t.template == template and t.method == "GET"]
        target = known[0] if known else Target(template, "GET", params, _pattern(template))
        target.values = {name: set(by_name[name]) for name in params}
        target.query |= {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
        if not known:
            targets.append(target)
    # And every key each handler reads when sent what the crawl found (or nothing).
    for target in targets:
        client = admin if target.admin else anon
        refresh()  # an earlier probe may have been the sign-out
        for kind in reads:
            reads[kind].clear()
        url = fill(target, {n: sorted(v)[0] for n, v in target.values.items() if v})
        if target.method == "GET":
            client.get(url, follow_redirects=False)
        else:
            client.post(url, data=dict(target.form), follow_redirects=False)
        target.form_names |= reads["FormData"]
        target.query |= reads["QueryParams"]
    # A field no page shows for a route (the handler reads it) starts from the value the same
    # name has in the forms the same visitor sees (the admin's CSRF token is the same in all).
    for signed_in in (False, True):
        defaults: dict[str, str] = {}
        hidden: set[str] = set()
        for target in targets:
            if target.admin == signed_in:
                for name, value in target.form:
                    defaults.setdefault(name, value)
                hidden |= target.hidden
        for target in targets:
            if target.admin == signed_in:
                target.hidden |= hidden & target.form_names
                present = {name for name, _ in target.form}
                missing = sorted(target.form_names - present)
                target.form += [(n, defaults[n]) for n in missing if n in defaults]
    return targets


def fill(target: Target, values: dict[str, str]) -> str:
    url = target.template
    for name in target.params:
        url = url.replace("{" + name + "}", values.get(name, "x"))
    return url


# -- hostile values by class -----------------------------------------------------------------

COLUMN_LENGTHS = sorted(
    {
        col.type.length
        for table in SQLModel.metadata.tables.values()
        for col in table.columns
        if isinstance(getattr(col.type, "length", None), int)
    }
)
controls = st.characters(categories=["Cc", "Cs", "Zl", "Zp"])
bidi = st.sampled_from([chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]])
invisible = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", " "])
other_digits = st.characters(categories=["Nd", "No", "Nl"]).filter(lambda c: not c.isascii())


def with_inside(base: st.SearchStrategy[str], bad: st.SearchStrategy[str]) -> Any:
    return st.tuples(base, bad, st.integers(min_value=0, max_value=50)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    )


words = st.text(st.characters(categories=["L", "N"]), min_size=0, max_size=12)
# One branch per class, each about as likely as the others.
hostile_text = st.one_of(
    # control characters and NUL (anywhere), direction controls, invisible-only text
    st.one_of(with_inside(words, controls), with_inside(words, st.just("\x00"))),
    with_inside(words, bidi),
    st.text(invisible, min_size=1, max_size=8),
    # numbers people do not mean: exponents (huge ones), words, signs, underscores
    st.one_of(
        st.builds(
            lambda d, n, e: f"{d}{e}{n}",
            st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,2})?", fullmatch=True),
            st.integers(min_value=300, max_value=10**7),
            st.sampled_from(["e", "E", "e+", "e-"]),
        ),
        st.sampled_from(
            ["1e600000", "1e1000000", "Infinity", "-Infinity", "NaN", "1_000", "+5", "-5"]
        ),
    ),
    # digits that are not 0-9: full-width, Arabic-Indic, superscripts, alone or among others
    st.one_of(
        st.text(other_digits, min_size=1, max_size=6),
        with_inside(st.from_regex(r"[0-9]{1,4}", fullmatch=True), other_digits),
    ),
    # integers past every column's range, and dates at the calendar's edges
    st.from_regex(r"[0-9]{10,40}", fullmatch=True),
    st.sampled_from(["9999-12-31", "9999-12-31T23:00-05:00", "0001-01-01", "2026-02-30"]),
    # lengths just past each column, and very long values
    st.builds(
        lambda n, extra, ch: ch * (n + extra),
        st.sampled_from(COLUMN_LENGTHS),
        st.integers(min_value=1, max_value=3),
        st.sampled_from(["a", "9", "é", "@"]),
    ),
    st.integers(min_value=10_000, max_value=200_000).map(lambda n: "x" * n),
    # and anything at all
    st.text(max_size=30),
)
# Raw percent-encoded bytes, sent as they are: NUL, invalid UTF-8, overlong forms, surrogates.
odd_encodings = st.sampled_from(
    ["%00", "a%00b", "%ff%fe", "%c0%ae%c0%ae", "%ed%a0%80", "%e2%80%ae", "%0d%0aX-Injected:%201"]
)


@dataclass
class Plan:
    target: Target
    path: dict[str, str]  # already percent-encoded
    query: list[tuple[str, str]]  # already percent-encoded
    form: list[tuple[str, str, bool]]  # (name, value) percent-encoded; True: the page's own
    files: dict[str, bytes]

    def __repr__(self) -> str:
        def short(value: object) -> str:
            text = repr(value)
            return text if len(text) < 300 else f"{text[:300]}…({len(text)} chars)"

        return (
            f"Plan({self.target}, path={short(self.path)}, query={short(self.query)}, "
            f"form={short(self.form)}, files={short({k: len(v) for k, v in self.files.items()})})"
        )


def encoded(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def value_for(draw: Any, valid: list[str], limit: int = 400_000) -> str:
    """A percent-encoded value: hostile mostly, sometimes valid, sometimes raw odd bytes.
    In URLs `limit` keeps under the HTTP client's own 64 KB refusal (the server answers 414
    far earlier: past it the server is not reached at all)."""
    kind = draw(st.sampled_from(["hostile", "hostile", "hostile", "valid", "odd"]))
    if kind == "valid" and valid:
        return encoded(draw(st.sampled_from(valid)))[:limit]
    if kind == "odd":
        return draw(odd_encodings)
    value = encoded(draw(hostile_text))
    return value[:limit].rsplit("%", 1)[0] if len(value) > limit else value


@st.composite
def csv_file(draw: Any) -> bytes:
    """An import file with the app's own columns and hostile cells, or hostile bytes."""
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        return draw(
            st.sampled_from([b"\xff\xfe\x00\x00", b"campaign,amount,date\n\x00,\x00,\x00\n"])
        )
    rows = [",".join(COLUMNS)]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        cells = []
        for column in COLUMNS:
            valid = {"campaign": "demo", "amount": "10", "date": "2026-01-05"}.get(column, "")
            cell = draw(st.one_of(st.just(valid), hostile_text))
            cells.append('"' + cell.replace('"', '""') + '"')
        rows.append(",".join(cells))
    return "\n".join(rows).encode("utf-8", "surrogatepass")


@st.composite
def plans(draw: Any, targets: list[Target]) -> Plan:
    target = draw(st.sampled_from(targets))
    path = {}
    for name in target.params:
        known = sorted(target.values.get(name, set()))
        if known and draw(st.booleans()):
            path[name] = known[0] if len(known) == 1 else draw(st.sampled_from(known))
        else:
            path[name] = draw(value_for(known, URL_LIMIT))
    query = []
    for name in sorted(target.query):
        if draw(st.integers(min_value=0, max_value=2)) == 0:
            continue
        for _ in range(draw(st.integers(min_value=1, max_value=2))):  # repeated parameters
            query.append((encoded(name), draw(value_for([], URL_LIMIT))))
    form: list[tuple[str, str, bool]] = []
    files: dict[str, bytes] = {}
    if target.method == "POST":
        chosen = (
            draw(st.sets(st.sampled_from(sorted(target.form_names)), max_size=4))
            if (target.form_names)
            else set()
        )
        # The page's own values keep the rest valid; hidden ones (the CSRF token) are only
        # rarely touched, so most requests get past the check into the handler.
        touch_hidden = draw(st.integers(min_value=0, max_value=9)) == 0
        sent = set()
        for name, value in target.form:
            if name in chosen and (name not in target.hidden or touch_hidden):
                options = sorted(target.choices.get(name, set()) | {value})
                form.append((encoded(name), draw(value_for(options)), False))
            else:
                form.append((encoded(name), encoded(value), True))
            sent.add(name)
        for name in sorted(chosen - sent):
            options = sorted(target.choices.get(name, set()))
            for _ in range(draw(st.integers(min_value=1, max_value=3))):  # repeated fields
                form.append((encoded(name), draw(value_for(options)), False))
        for name in target.files:
            files[name] = draw(csv_file())
    return Plan(target, path, query, form, files)


# -- the test --------------------------------------------------------------------------------


@pytest.fixture
def world(
    database_url: str, recorded_reads: dict[str, set[str]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        admins, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )
    config = Settings(
        database_url=database_url,
        env="test",
        public_url="http://testserver",
        secret_key=Secret(TEST_SECRET_KEY),
        stripe_webhook_secret=Secret(FUZZ_WEBHOOK_SECRET),
        snapshot_check_seconds=3600,
    )
    engine = db.make_engine(database_url)
    with db.transaction(engine) as session:
        seed_demo(session)
    make_admin(engine)
    app = create_app(config, engine=engine)
    with (
        TestClient(app, raise_server_exceptions=False) as anon,
        TestClient(app, raise_server_exceptions=False) as admin,
    ):
        csrf = sign_in(admin)
        # A real donation attempt, so the crawl follows its redirect to a test checkout.
        page = anon.get("/donate/demo")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        checkout = anon.post(
            "/donate/demo",
            data={"csrf_token": token.group(1), "amount": "25", "frequency": "once"},
            follow_redirects=False,
        )
        seeds = [checkout.headers["location"].removeprefix("http://testserver")]
        found = World([], anon, admin, engine, config, csrf)
        found.targets = discover(
            app, anon, admin, recorded_reads, lambda: refresh_admin_session(found), seeds, csrf
        )
        yield found
    engine.dispose()


def refresh_admin_session(world: World) -> None:
    """A fuzzed POST may sign the admin out (or in as a new session): put back a session with
    the original CSRF token, so the forms the crawl found stay valid."""
    with Session(world.engine) as session:
        account = admins.by_email(session, EMAIL)
        assert account is not None
        assert account.id is not None
        now = time.time()
        data = auth.SessionData(account.id, account.session_epoch, world.csrf, now, now)
    jar = world.admin.cookies.jar
    for cookie in list(jar):
        if cookie.name == auth.COOKIE:
            jar.clear(cookie.domain, cookie.path, cookie.name)
    world.admin.cookies.set(
        auth.COOKIE,
        auth.encode_session(world.settings, data),
        domain="testserver.local",
        path="/admin",
    )


def send(world: World, plan: Plan) -> tuple[int, float]:
    target = plan.target
    client = world.admin if target.admin else world.anon
    url = fill(target, plan.path)
    if plan.query:
        url += "?" + "&".join(f"{k}={v}" for k, v in plan.query)
    headers = {"origin": "http://testserver"}
    fields = [(k, v) for k, v, _ in plan.form]
    if target.source and any(own for _, _, own in plan.form):
        # The page's form again, as a person would reload it: its tokens may have rotated
        # (a refused sign-in issues a new one), and its own values are what a browser sends.
        parser = PageParser(urlsplit(target.source).path)
        parser.feed(client.get(target.source).text)
        fresh = {
            encoded(n): encoded(v)
            for form in parser.forms
            if target.pattern.fullmatch(urlsplit(form.action).path)
            for n, v in form.fields
        }
        fields = [(k, fresh.get(k, v) if own else v) for k, v, own in plan.form]
    started = time.monotonic()
    if target.method == "GET":
        answer = client.get(url, headers=headers, follow_redirects=False)
    elif plan.files:
        answer = client.post(
            url,
            headers=headers,
            data={unquote(k): unquote(v) for k, v in fields},  # multipart: one value per name
            files={name: ("gifts.csv", body, "text/csv") for name, body in plan.files.items()},
            follow_redirects=False,
        )
    else:
        body = "&".join(f"{k}={v}" for k, v in fields).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
        answer = client.request(
            target.method, url, content=body, headers=headers, follow_redirects=False
        )
    return answer.status_code, time.monotonic() - started


def test_every_route_survives_hostile_input_by_class(world: World) -> None:
    targets = world.targets
    # The discovery really found the surface: every route, and fields for the forms.
    assert len({t.template for t in targets}) >= 25
    posts = [t for t in targets if t.method == "POST"]
    assert all(t.form_names or t.files for t in posts if "webhooks" not in t.template), [
        str(t) for t in posts if not (t.form_names or t.files)
    ]
    statuses: Counter[tuple[str, int]] = Counter()
    by_target: Counter[tuple[str, int]] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(plan=plans(targets))
    def fuzz(plan: Plan) -> None:
        refresh_admin_session(world)
        status, seconds = send(world, plan)
        statuses[(plan.target.method, status)] += 1
        by_target[(str(plan.target), status)] += 1
        where = f"{plan.target} path={plan.path} query={plan.query[:3]} form={plan.form[:6]}"
        assert status < 500, f"{status} for {where}"[:2000]
        assert seconds < ANSWER_BOUND, f"{seconds:.1f} s for {where}"[:2000]

    fuzz()
    if os.environ.get("FUZZ_VERBOSE"):  # what the fuzz reached, for a person tuning it
        for target in targets:
            print(target, target.admin, sorted(target.values), sorted(target.query), target.form)
        print(sorted(statuses.items()))
        print(sorted(by_target.items()))
    # The fuzz reached the handlers: most POSTs passed the CSRF check, and a good share of
    # all answers are the handlers' own validation refusals.
    post_total = sum(n for (method, _), n in statuses.items() if method == "POST")
    csrf_refused = statuses[("POST", 403)]
    refused_by_handlers = sum(
        n for (_, status), n in statuses.items() if status in (400, 404, 409, 422, 429)
    )
    total = sum(statuses.values())
    assert post_total > EXAMPLES // 5, statuses
    assert csrf_refused < post_total * 0.3, statuses
    assert statuses[("POST", 400)] > post_total * 0.2, statuses  # the forms' own validation
    assert refused_by_handlers > total * 0.3, statuses
