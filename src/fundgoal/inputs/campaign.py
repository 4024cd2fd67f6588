"""The campaign use case: the form as typed (`CampaignText`, the dashboard's form and the
command line's arguments) and the checked values the services take (`CampaignSpec`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from ..errors import Invalid
from ..models import Campaign
from ..money import MAX_MINOR, MoneyError, known_locale, major_text, normalize_currency
from ..money import parse_amount as _parse_amount
from ..progress import Milestone, OverGoalPolicy, validate_milestones
from . import numbers
from .base import InputError, InputModel, refuse
from .text import Text, check_text, column_length, is_slug

MAX_MILESTONES = 50
MAX_PRESETS = 8
MAX_LABEL = 80  # a tick's label on a bar a few hundred pixels wide
THEMES = ("auto", "light", "dark")
ACCENT_RE = re.compile(r"#[0-9a-f]{6}")
TITLE = column_length(Campaign, "title")
DESCRIPTION = column_length(Campaign, "description")
SLUG_MESSAGE = "a slug is 1-64 lower-case letters, digits and inner hyphens (like spring-appeal)"


def check_slug(slug: str) -> str:
    if not is_slug(slug):
        raise Invalid(SLUG_MESSAGE)
    return slug


def check_theme(theme: dict[str, Any]) -> dict[str, Any]:
    """The widget defaults an admin picks: locale, theme, accent colour, compact."""
    locale = str(theme.get("locale") or "en")
    if len(locale) > 35 or known_locale(locale) is None:
        raise Invalid(f"{locale[:35]!r} is not a locale (like en, fr or pt-BR)")
    chosen = str(theme.get("theme") or "auto")
    if chosen not in THEMES:
        raise Invalid("the theme is light, dark or auto")
    accent = str(theme.get("accent") or "#0b6e4f").lower()
    if not ACCENT_RE.fullmatch(accent):
        raise Invalid("the accent colour is a hex colour like #0b6e4f")
    compact = bool(theme.get("compact"))
    return {"locale": locale, "theme": chosen, "accent": accent, "compact": compact}


def _minor(value: int | None) -> int | None:
    if value is not None and not 0 < value <= MAX_MINOR:
        raise refuse("must be a positive amount within the largest we store")
    return value


class CampaignSpec(InputModel):
    """A campaign's settings, checked: what campaigns.create and campaigns.update take."""

    labels: ClassVar[dict[str, str]] = {
        "slug": "Slug",
        "title": "Title",
        "currency": "Currency",
        "milestones": "Milestones",
        "description": "Description",
        "deadline": "Deadline",
        "over_goal_policy": "Over-goal policy",
        "preset_amounts": "Preset amounts",
        "min_amount": "Minimum gift",
        "max_amount": "Maximum gift",
        "theme": "Widget",
    }

    slug: str
    title: Annotated[str, Text(TITLE, visible=True, required=True)]
    currency: str
    milestones: list[Milestone]
    description: Annotated[str, Text(DESCRIPTION, multiline=True)] = ""
    deadline: date | None = None
    over_goal_policy: OverGoalPolicy = OverGoalPolicy.FILL
    preset_amounts: list[Annotated[int, AfterValidator(_minor)]] = Field(default_factory=list)
    min_amount: Annotated[int | None, AfterValidator(_minor)] = None
    max_amount: Annotated[int | None, AfterValidator(_minor)] = None
    donor_wall: bool = True
    theme: dict[str, Any] = Field(default_factory=dict)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not is_slug(value):
            raise refuse(SLUG_MESSAGE)
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return normalize_currency(value[:10])
        except MoneyError as exc:
            raise refuse(exc.message) from None

    @field_validator("milestones")
    @classmethod
    def _milestones(cls, value: list[Milestone]) -> list[Milestone]:
        if len(value) > MAX_MILESTONES:
            raise refuse(f"at most {MAX_MILESTONES} milestones")
        for m in value:
            if not 0 < m.amount <= MAX_MINOR:
                raise refuse("milestone amounts must be positive and within the largest we store")
            if m.label is not None:
                try:
                    check_text(m.label, max_length=MAX_LABEL, visible=True)
                except PydanticCustomError as exc:
                    raise refuse(f"a milestone label has {exc.message()}") from None
        try:
            return validate_milestones(value)
        except Invalid as exc:
            raise refuse(exc.message) from None

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, value: date | None) -> date | None:
        problem = numbers.year_problem(value.year) if value is not None else None
        if problem:
            raise refuse(problem)
        return value

    @field_validator("preset_amounts")
    @classmethod
    def _presets(cls, value: list[int]) -> list[int]:
        if len(value) > MAX_PRESETS:
            raise refuse(f"at most {MAX_PRESETS} preset amounts")
        return value

    @field_validator("theme")
    @classmethod
    def _theme(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return {}
        try:
            return check_theme(value)
        except Invalid as exc:
            raise refuse(exc.message) from None


@dataclass
class MilestoneRow:
    amount: str = ""
    label: str = ""
    kind: str = "goal"  # goal | stretch


@dataclass
class CampaignText:
    """The campaign form's values as typed (shown again, unchanged, when they are refused)."""

    slug: str = ""
    title: str = ""
    description: str = ""
    currency: str = "USD"
    milestones: list[MilestoneRow] = field(default_factory=list)
    deadline: str = ""
    policy: str = "fill"
    presets: str = ""
    min_amount: str = ""
    max_amount: str = ""
    donor_wall: bool = True
    locale: str = "en"
    theme: str = "auto"
    accent: str = "#0b6e4f"
    compact: bool = False
    reason: str = ""

    @classmethod
    def blank(cls) -> Self:
        return cls(milestones=[MilestoneRow(), MilestoneRow()])

    @classmethod
    def of(cls, c: Campaign) -> Self:
        def major(minor: int) -> str:
            return major_text(minor, c.currency)

        theme = c.theme or {}
        return cls(
            slug=c.slug,
            title=c.title,
            description=c.description,
            currency=c.currency,
            milestones=[
                MilestoneRow(
                    major(int(m["amount"])),
                    m.get("label") or "",
                    "stretch" if m.get("stretch") else "goal",
                )
                for m in c.milestones
            ],
            deadline=c.deadline.isoformat() if c.deadline else "",
            policy=c.over_goal_policy,
            presets=", ".join(major(p) for p in c.preset_amounts),
            min_amount=major(c.min_amount),
            max_amount=major(c.max_amount),
            donor_wall=c.donor_wall,
            locale=str(theme.get("locale", "en")),
            theme=str(theme.get("theme", "auto")),
            accent=str(theme.get("accent", "#0b6e4f")),
            compact=bool(theme.get("compact", False)),
        )

    def spec(self, currency: str | None = None) -> CampaignSpec:
        """The checked settings, or InputError listing every field that is wrong."""
        errors: list[str] = []
        code = currency or self.currency

        def amount(label: str, raw: str) -> int | None:
            try:
                return _parse_amount(raw, code, "en", max_minor=MAX_MINOR).minor
            except MoneyError as exc:
                errors.append(f"{label}: {exc.message}")
                return None

        try:
            code = normalize_currency(code[:10])
        except MoneyError as exc:
            errors.append(f"Currency: {exc.message}")
            code = ""
        milestones: list[Milestone] = []
        if code:
            for n, row in enumerate(self.milestones[:MAX_MILESTONES], start=1):
                if not row.amount.strip() and not row.label.strip():
                    continue  # an empty spare row
                minor = amount(f"Milestone {n}", row.amount)
                if minor is not None:
                    label = row.label.strip() or None
                    milestones.append(Milestone(minor, label, row.kind == "stretch"))
        if not milestones and not errors:
            errors.append("Milestones: add at least one (the last one is the goal)")
        deadline = None
        if self.deadline.strip():
            try:
                deadline = numbers.parse_date(self.deadline)
            except Invalid as exc:
                errors.append(f"Deadline: {exc.message}")
        try:
            policy = OverGoalPolicy(self.policy)
        except ValueError:
            errors.append("Over-goal policy: choose cap, fill or stretch")
            policy = OverGoalPolicy.FILL
        presets: list[int] = []
        if code and self.presets:
            for part in self.presets.replace(";", ",").split(",")[: MAX_PRESETS + 1]:
                if part.strip():
                    value = amount("Preset amounts", part.strip())
                    if value is not None:
                        presets.append(value)
        low = amount("Minimum gift", self.min_amount) if code and self.min_amount else None
        high = amount("Maximum gift", self.max_amount) if code and self.max_amount else None
        try:
            spec = CampaignSpec(
                slug=self.slug,
                title=self.title,
                currency=code or "USD",
                milestones=milestones or [Milestone(1)],
                description=self.description,
                deadline=deadline,
                over_goal_policy=policy,
                preset_amounts=presets,
                min_amount=low,
                max_amount=high,
                donor_wall=self.donor_wall,
                theme={
                    "locale": self.locale or "en",
                    "theme": self.theme or "auto",
                    "accent": self.accent or "#0b6e4f",
                    "compact": self.compact,
                },
            )
        except InputError as exc:
            errors.extend(exc.errors)
            raise InputError({str(n): e for n, e in enumerate(errors)}) from None
        if errors:
            raise InputError({str(n): e for n, e in enumerate(errors)})
        return spec
