"""Form fields -> service arguments, collecting every problem so the page can show them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from starlette.datastructures import FormData

from ...errors import DomainError, Invalid
from ...models import Campaign
from ...money import MAX_MINOR, Money, MoneyError, parse_amount
from ...progress import Milestone, OverGoalPolicy
from ...services.campaigns import CampaignSpec


class FormError(Invalid):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def error_messages(exc: DomainError) -> list[str]:
    """What a re-rendered form lists: every field's message, or the one domain error."""
    return exc.errors if isinstance(exc, FormError) else [exc.message]


@dataclass
class MilestoneRow:
    amount: str = ""
    label: str = ""
    kind: str = "goal"  # goal | stretch


@dataclass
class CampaignForm:
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
    def blank(cls) -> CampaignForm:
        return cls(milestones=[MilestoneRow(), MilestoneRow()])

    @classmethod
    def of(cls, c: Campaign) -> CampaignForm:
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

    @classmethod
    def parse(cls, form: FormData) -> CampaignForm:
        def text(name: str, limit: int = 5000) -> str:
            value = form.get(name, "")
            return (value if isinstance(value, str) else "").strip()[:limit]

        amounts = [str(v) for v in form.getlist("ms_amount")]
        labels = [str(v) for v in form.getlist("ms_label")]
        kinds = [str(v) for v in form.getlist("ms_kind")]
        rows = [
            MilestoneRow(
                a.strip()[:40],
                (labels[i] if i < len(labels) else "").strip()[:200],
                kinds[i] if i < len(kinds) else "goal",
            )
            for i, a in enumerate(amounts[:50])
        ]
        return cls(
            slug=text("slug", 100).lower(),
            title=text("title", 300),
            description=text("description", 6000),
            currency=text("currency", 10).upper(),
            milestones=rows,
            deadline=text("deadline", 20),
            policy=text("policy", 20),
            presets=text("presets", 500),
            min_amount=text("min_amount", 40),
            max_amount=text("max_amount", 40),
            donor_wall=form.get("donor_wall") == "on",
            locale=text("locale", 20),
            theme=text("theme", 20),
            accent=text("accent", 20).lower(),
            compact=form.get("compact") == "on",
            reason=text("reason", 1000),
        )

    def spec(self, currency: str | None = None) -> CampaignSpec:
        """The service's input, or FormError listing every field that is wrong."""
        errors: list[str] = []
        code = currency or self.currency

        def amount(label: str, raw: str) -> int | None:
            try:
                return parse_amount(raw, code, "en", max_minor=MAX_MINOR).minor
            except MoneyError as exc:
                errors.append(f"{label}: {exc.message}")
                return None

        try:
            Money.from_major(1, code)
        except MoneyError as exc:
            errors.append(f"Currency: {exc.message}")
            code = ""
        milestones: list[Milestone] = []
        if code:
            for n, row in enumerate(self.milestones, start=1):
                if not row.amount and not row.label:
                    continue  # an empty spare row
                minor = amount(f"Milestone {n}", row.amount)
                if minor is not None:
                    milestones.append(Milestone(minor, row.label or None, row.kind == "stretch"))
        if not milestones and not errors:
            errors.append("Milestones: add at least one (the last one is the goal)")
        deadline = None
        if self.deadline:
            try:
                deadline = date.fromisoformat(self.deadline)
            except ValueError:
                errors.append("Deadline: use a date like 2026-12-31")
        try:
            policy = OverGoalPolicy(self.policy)
        except ValueError:
            errors.append("Over-goal policy: choose cap, fill or stretch")
            policy = OverGoalPolicy.FILL
        presets: list[int] = []
        if code and self.presets:
            for part in self.presets.replace(";", ",").split(","):
                if part.strip():
                    value = amount("Preset amounts", part.strip())
                    if value is not None:
                        presets.append(value)
        low = amount("Minimum gift", self.min_amount) if code and self.min_amount else None
        high = amount("Maximum gift", self.max_amount) if code and self.max_amount else None
        if errors:
            raise FormError(errors)
        return CampaignSpec(
            slug=self.slug,
            title=self.title,
            currency=code,
            milestones=milestones,
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


@dataclass
class GiftForm:
    campaign: str = ""
    amount: str = ""
    date: str = ""
    donor_name: str = ""
    donor_email: str = ""
    source: str = "bank_transfer"
    note: str = ""
    original_amount: str = ""
    original_currency: str = ""
    exchange_rate: str = ""
    reason: str = ""

    @classmethod
    def parse(cls, form: FormData) -> GiftForm:
        def text(name: str, limit: int = 2000) -> str:
            value = form.get(name, "")
            return (value if isinstance(value, str) else "").strip()[:limit]

        return cls(
            campaign=text("campaign", 100),
            amount=text("amount", 40),
            date=text("date", 40),
            donor_name=text("donor_name", 300),
            donor_email=text("donor_email", 400),
            source=text("source", 40),
            note=text("note", 2100),
            original_amount=text("original_amount", 40),
            original_currency=text("original_currency", 10).upper(),
            exchange_rate=text("exchange_rate", 40),
            reason=text("reason", 1000),
        )

    @classmethod
    def of(cls, entry: Any, slug: str) -> GiftForm:
        original = ""
        if entry.original_amount is not None and entry.original_currency:
            original = major_text(entry.original_amount, entry.original_currency)
        return cls(
            campaign=slug,
            amount=major_text(entry.amount, entry.currency),
            date=entry.occurred_at.date().isoformat(),
            donor_name=entry.donor_name or "",
            donor_email=entry.donor_email or "",
            source=entry.source,
            note=entry.note or "",
            original_amount=original,
            original_currency=entry.original_currency or "",
            exchange_rate=entry.exchange_rate or "",
        )

    def values(self, currency: str) -> dict[str, Any]:
        """Arguments for services.gifts.record_offline_gift, or FormError."""
        errors: list[str] = []
        amount = original = None
        try:
            amount = parse_amount(self.amount, currency, "en", max_minor=MAX_MINOR)
        except MoneyError as exc:
            errors.append(f"Amount: {exc.message}")
        occurred = None
        try:
            day = date.fromisoformat(self.date) if self.date else None
            if day is not None:
                occurred = datetime.combine(day, time(12), UTC)
        except ValueError:
            errors.append("Date: use a date like 2026-11-24")
        if day_in_future(occurred):
            errors.append("Date: a gift received in the future? Check the date")
        if self.original_amount or self.original_currency or self.exchange_rate:
            if self.original_currency and self.original_currency != currency:
                try:
                    original = parse_amount(
                        self.original_amount, self.original_currency, "en", max_minor=MAX_MINOR
                    )
                except MoneyError as exc:
                    errors.append(f"Amount received: {exc.message}")
                if not self.exchange_rate:
                    errors.append("Exchange rate: give the rate used for the conversion")
            elif not self.original_currency:
                errors.append("Currency received: give the currency the gift arrived in")
        email = self.donor_email or None
        if email:
            from ...services.admins import EMAIL_RE

            if not EMAIL_RE.fullmatch(email.lower()):
                errors.append("Donor email: not an email address")
        if errors:
            raise FormError(errors)
        return {
            "amount": amount,
            "occurred_at": occurred,
            "donor_name": self.donor_name or None,
            "donor_email": email,
            "source": self.source,
            "note": self.note or None,
            "original": original,
            "exchange_rate": self.exchange_rate or None,
        }


def day_in_future(moment: datetime | None) -> bool:
    return moment is not None and moment.date() > datetime.now(UTC).date()


def major_text(minor: int, currency: str) -> str:
    """Minor units as a person types them: 2500 for 250000 cents, 12.5 for 1250."""
    value = Money(minor, currency).major
    if value == value.to_integral_value():
        return str(int(value))
    return str(value.normalize())
