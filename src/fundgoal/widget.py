"""The bar as bytes: campaign data in, pre-encoded JSON / SVG / HTML answers with ETags out.

No HTTP and no database here. `Snapshot` is an immutable picture of every campaign at one
moment; it renders each (campaign, locale, form) answer once, on first request, and keeps the
bytes, so serving the widget is a dictionary lookup. When a campaign changes, the caller builds a
new Snapshot (services/snapshots.py) and the old one, with its caches, is dropped whole.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from babel import Locale
from babel.dates import format_timedelta
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment

from .inputs.text import displayable
from .money import format_money, format_money_compact, known_locale
from .progress import (
    DeadlinePhase,
    Milestone,
    OverGoalPolicy,
    bar_state,
    deadline_state,
)

MAX_BATCH = 24  # keys per batched request: a page with more bars than this is not a real page
MAX_CACHED = 4096  # answers kept per snapshot; past it the cache starts over (bounded memory)
SLUG_SHAPE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
ACCENT_SHAPE = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?")


class BadRequest(ValueError):
    """A malformed slug, locale or option: answered 400, never a 500."""


@dataclass(frozen=True, slots=True)
class CampaignData:
    """The fields of a campaign that a bar shows, copied out of the database row."""

    slug: str
    title: str
    currency: str
    raised: int
    donors: int
    milestones: tuple[Milestone, ...]
    policy: OverGoalPolicy
    deadline: date | None
    status: str
    updated_at: datetime
    version: int
    accepts_gifts: bool = True


@dataclass(frozen=True, slots=True)
class Encoded:
    body: bytes
    etag: bytes  # a strong validator, quoted, ready for the header
    media_type: bytes

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Encoded:
        digest = hashlib.blake2b(body, digest_size=12).hexdigest()
        return cls(body, f'"{digest}"'.encode(), media_type.encode())


@dataclass(frozen=True, slots=True)
class EmbedOptions:
    theme: str = "auto"
    accent: str | None = None
    compact: bool = False

    @classmethod
    def parse(cls, theme: str | None, accent: str | None, compact: str | None) -> EmbedOptions:
        chosen = theme or "auto"
        if chosen not in {"auto", "light", "dark"}:
            raise BadRequest("theme must be light, dark or auto")
        if accent and not ACCENT_SHAPE.fullmatch(accent):
            raise BadRequest("accent must be a hex colour like #0b6e4f")
        return cls(
            chosen, accent or None, compact in {"1", "true", ""} if compact is not None else False
        )


# The few words the bar says. Numbers, currencies, percentages and durations are Babel's;
# these phrases fall back to English for locales not listed.
PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "valuetext": "{raised} raised of {goal}",
        "donors_one": "{n} donor",
        "donors_other": "{n} donors",
        "button": "Support",
        "reached": "Goal reached!",
        "last_day": "Last day",
        "ended": "Ended",
        "ends": "Ends {when}",
        "closed": "Closed",
        "raised": "raised",
    },
    "fr": {
        "valuetext": "{raised} collectés sur {goal}",
        "donors_one": "{n} donateur",
        "donors_other": "{n} donateurs",
        "button": "Soutenir",
        "reached": "Objectif atteint !",
        "last_day": "Dernier jour",
        "ended": "Terminé",
        "ends": "Se termine {when}",
        "closed": "Clôturé",
        "raised": "collectés",
    },
    "de": {
        "valuetext": "{raised} von {goal} gesammelt",
        "donors_one": "{n} Spender",
        "donors_other": "{n} Spender",
        "button": "Unterstützen",
        "reached": "Ziel erreicht!",
        "last_day": "Letzter Tag",
        "ended": "Beendet",
        "ends": "Endet {when}",
        "closed": "Geschlossen",
        "raised": "gesammelt",
    },
    "es": {
        "valuetext": "{raised} recaudados de {goal}",
        "donors_one": "{n} donante",
        "donors_other": "{n} donantes",
        "button": "Apoyar",
        "reached": "¡Meta alcanzada!",
        "last_day": "Último día",
        "ended": "Finalizada",
        "ends": "Termina {when}",
        "closed": "Cerrada",
        "raised": "recaudados",
    },
    "ar": {
        "valuetext": "تم جمع {raised} من {goal}",
        "donors_one": "متبرع واحد",
        "donors_other": "{n} متبرعين",
        "button": "ادعمنا",
        "reached": "تم بلوغ الهدف!",
        "last_day": "اليوم الأخير",
        "ended": "انتهت",
        "ends": "تنتهي {when}",
        "closed": "مغلقة",
        "raised": "تم جمعها",
    },
}


def resolve_locale(requested: str | None, default: str) -> str:
    """A request's locale as Babel's canonical name; unknown ones become the default.

    Raises BadRequest only for values that cannot be a locale at all (control characters,
    slashes, absurd length): those are probes, not readers.
    """
    if requested is None or requested == "":
        return default
    if len(requested) > 35 or not re.fullmatch(r"[A-Za-z0-9_-]+", requested):
        raise BadRequest("locale must look like en, fr or pt-BR")
    found = known_locale(requested)
    return str(found) if found is not None else default


def check_slug(slug: str) -> str:
    if not SLUG_SHAPE.fullmatch(slug):
        raise BadRequest("a campaign slug is lower-case letters, digits and hyphens")
    return slug


def _phrases(locale: str) -> dict[str, str]:
    return PHRASES.get(locale.split("_")[0], PHRASES["en"])


class Renderer:
    """Turns CampaignData into the bar's forms. Pure; holds only configuration."""

    def __init__(self, jinja: Environment, public_url: str, css: str) -> None:
        self.jinja = jinja
        self.public_url = public_url
        self.css = css

    def view(self, c: CampaignData, locale: str, today: date) -> dict[str, Any]:
        """The progress JSON for one campaign in one locale."""
        words = _phrases(locale)
        babel_locale = Locale.parse(locale)
        milestones = list(c.milestones)
        state = bar_state(c.raised, milestones, c.policy)
        raised = max(c.raised, 0)

        def money(minor: int) -> str:
            return format_money(minor, c.currency, locale)

        deadline = deadline_state(c.deadline, datetime(today.year, today.month, today.day))
        if deadline.phase is DeadlinePhase.OPEN and deadline.days_left is not None:
            when = format_timedelta(
                timedelta(days=deadline.days_left),
                add_direction=True,
                granularity="day",
                threshold=10_000,
                locale=babel_locale,
            )
            deadline_text: str | None = words["ends"].format(when=when)
        elif deadline.phase is DeadlinePhase.LAST_DAY:
            deadline_text = words["last_day"]
        elif deadline.phase is DeadlinePhase.ENDED:
            deadline_text = words["ended"]
        else:
            deadline_text = None
        plural = "donors_one" if babel_locale.plural_form(c.donors) == "one" else "donors_other"
        formatted_raised = money(raised)
        formatted_goal = money(state.goal)
        accepts = (
            c.accepts_gifts and c.status == "active" and deadline.phase is not DeadlinePhase.ENDED
        )
        return {
            "slug": c.slug,
            # Stored text without control or direction characters: rows written before the
            # input rules (or by hand) must not put a NUL into the JSON or the page.
            "title": displayable(c.title),
            "currency": c.currency,
            "locale": locale,
            "dir": babel_locale.text_direction,
            "raised": raised,
            "goal": state.goal,
            "scale_max": state.scale_max,
            "percent": state.percent,
            "bar_percent": state.bar_percent,
            "goal_reached": state.goal_reached,
            "status": c.status if accepts or c.status != "active" else "closed",
            "donors": c.donors,
            "milestones": [
                {
                    "amount": m.amount,
                    "label": displayable(m.label) if m.label else m.label,
                    "stretch": m.stretch,
                    "reached": raised >= m.amount,
                    "formatted": money(m.amount),
                    "compact": format_money_compact(m.amount, c.currency, locale),
                    "shown": m in state.ticks,
                }
                for m in milestones
            ],
            "deadline": c.deadline.isoformat() if c.deadline else None,
            "deadline_state": deadline.phase.value,
            "donate_url": f"{self.public_url}/donate/{c.slug}",
            "formatted": {
                "raised": formatted_raised,
                "goal": formatted_goal,
                "zero": money(0),
                "scale_max": money(state.scale_max),
                "percent": format_percent(state.percent / 100, locale=babel_locale),
                "valuetext": words["valuetext"].format(
                    raised=formatted_raised, goal=formatted_goal
                ),
                "donors": words[plural].format(n=format_decimal(c.donors, locale=babel_locale)),
                "deadline": deadline_text,
                "button": words["button"],
                "reached": words["reached"],
                "closed": words["closed"],
            },
            "updated_at": c.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def json(self, c: CampaignData, locale: str, today: date) -> Encoded:
        return Encoded.of(_dump(self.view(c, locale, today)), "application/json")

    def svg(self, c: CampaignData, locale: str, today: date) -> Encoded:
        body = self.jinja.get_template("badge.svg").render(v=self.view(c, locale, today))
        return Encoded.of(body.encode(), "image/svg+xml; charset=utf-8")

    def html(self, c: CampaignData, locale: str, today: date, options: EmbedOptions) -> Encoded:
        body = self.jinja.get_template("embed.html").render(
            v=self.view(c, locale, today), options=options, css=self.css
        )
        return Encoded.of(body.encode(), "text/html; charset=utf-8")


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


NOT_FOUND = _dump({"error": "not_found"})


@dataclass
class Snapshot:
    """Every campaign's bar at one moment, with the answers rendered so far."""

    renderer: Renderer
    campaigns: dict[str, CampaignData]
    today: date
    fingerprint: tuple[int, int]
    _cache: dict[tuple[Any, ...], Encoded | None] = field(default_factory=dict)

    def _remember(self, key: tuple[Any, ...], value: Encoded | None) -> Encoded | None:
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[key] = value
        return value

    def json(self, slug: str, locale: str) -> Encoded | None:
        key = ("json", slug, locale)
        if key in self._cache:
            return self._cache[key]
        c = self.campaigns.get(slug)
        return self._remember(key, self.renderer.json(c, locale, self.today) if c else None)

    def svg(self, slug: str, locale: str) -> Encoded | None:
        key = ("svg", slug, locale)
        if key in self._cache:
            return self._cache[key]
        c = self.campaigns.get(slug)
        return self._remember(key, self.renderer.svg(c, locale, self.today) if c else None)

    def html(self, slug: str, locale: str, options: EmbedOptions) -> Encoded | None:
        key = ("html", slug, locale, options)
        if key in self._cache:
            return self._cache[key]
        c = self.campaigns.get(slug)
        return self._remember(
            key, self.renderer.html(c, locale, self.today, options) if c else None
        )

    def batch(self, query: str, default_locale: str) -> Encoded:
        """`c=slug:locale,slug:locale` -> {"items": {"slug:locale": view | {"error": ...}}}."""
        key = ("batch", query)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        pairs = [p for p in query.split(",") if p]
        if not pairs:
            raise BadRequest("name at least one campaign: ?c=slug:locale")
        if len(pairs) > MAX_BATCH:
            raise BadRequest(f"at most {MAX_BATCH} campaigns per request")
        parts = []
        for pair in dict.fromkeys(pairs):
            slug, _, requested = pair.partition(":")
            check_slug(slug)
            locale = resolve_locale(requested, default_locale)
            item = self.json(slug, locale)
            parts.append(_dump(pair) + b":" + (item.body if item else NOT_FOUND))
        encoded = Encoded.of(b'{"items":{' + b",".join(parts) + b"}}", "application/json")
        self._remember(key, encoded)
        return encoded
