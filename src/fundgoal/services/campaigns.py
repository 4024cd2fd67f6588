"""Campaign use cases: create and validate, read progress, compare stored and derived totals."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session

from .. import ledger
from ..errors import Conflict, Invalid, NotFound
from ..models import Campaign, CampaignStatus, utcnow
from ..money import Money, normalize_currency
from ..progress import Milestone, OverGoalPolicy, validate_milestones
from ..stores import audit, campaigns

SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


def check_slug(slug: str) -> str:
    if not SLUG_RE.fullmatch(slug):
        raise Invalid(
            "a slug is 1-64 lower-case letters, digits and inner hyphens (like spring-appeal)"
        )
    return slug


def milestones_of(campaign: Campaign) -> list[Milestone]:
    return [
        Milestone(int(m["amount"]), m.get("label") or None, bool(m.get("stretch", False)))
        for m in campaign.milestones
    ]


def milestones_json(milestones: list[Milestone]) -> list[dict[str, Any]]:
    return [{"amount": m.amount, "label": m.label, "stretch": m.stretch} for m in milestones]


def parse_milestones(text: str, currency: str) -> list[Milestone]:
    """'2500,5000' in major units (the command line's form) -> milestones in minor units."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise Invalid("give at least one milestone, like --milestones 2500,5000")
    return validate_milestones([Milestone(Money.from_major(p, currency).minor) for p in parts])


@dataclass
class CampaignSpec:
    slug: str
    title: str
    currency: str
    milestones: list[Milestone]
    description: str = ""
    deadline: date | None = None
    over_goal_policy: OverGoalPolicy = OverGoalPolicy.FILL
    preset_amounts: list[int] = field(default_factory=list)  # minor units
    min_amount: int | None = None
    max_amount: int | None = None
    donor_wall: bool = True
    theme: dict[str, Any] = field(default_factory=dict)


def _default_presets(currency: str) -> list[int]:
    one = Money.from_major(1, currency).minor
    return [10 * one, 25 * one, 50 * one, 100 * one]


def create(
    session: Session, spec: CampaignSpec, *, actor: str, admin_id: int | None = None
) -> Campaign:
    check_slug(spec.slug)
    title = spec.title.strip()
    if not title or len(title) > 200:
        raise Invalid("a title is 1 to 200 characters")
    currency = normalize_currency(spec.currency)
    validate_milestones(spec.milestones)
    if campaigns.by_slug(session, spec.slug) is not None:
        raise Conflict(f"a campaign called {spec.slug!r} already exists")
    one = Money.from_major(1, currency).minor
    minimum = spec.min_amount if spec.min_amount is not None else one
    maximum = spec.max_amount if spec.max_amount is not None else 10_000 * one
    if minimum <= 0 or maximum < minimum:
        raise Invalid("the minimum gift must be positive and not above the maximum")
    campaign = campaigns.add(
        session,
        Campaign(
            slug=spec.slug,
            title=title,
            description=spec.description,
            currency=currency,
            milestones=milestones_json(spec.milestones),
            over_goal_policy=spec.over_goal_policy.value,
            deadline=spec.deadline,
            preset_amounts=spec.preset_amounts or _default_presets(currency),
            min_amount=minimum,
            max_amount=maximum,
            donor_wall=spec.donor_wall,
            theme=spec.theme,
        ),
    )
    audit.record(
        session,
        actor=actor,
        admin_id=admin_id,
        action="campaign.create",
        entity="campaign",
        entity_id=spec.slug,
        after=campaign_summary(campaign),
    )
    return campaign


def campaign_summary(campaign: Campaign) -> dict[str, Any]:
    return campaign.model_dump(
        mode="json",
        include={
            "slug",
            "title",
            "description",
            "currency",
            "milestones",
            "over_goal_policy",
            "deadline",
            "status",
            "preset_amounts",
            "min_amount",
            "max_amount",
            "donor_wall",
            "theme",
        },
    )


def get(session: Session, slug: str) -> Campaign:
    campaign = campaigns.by_slug(session, slug)
    if campaign is None:
        raise NotFound(f"no campaign called {slug!r}")
    return campaign


def set_status(
    session: Session,
    slug: str,
    status: CampaignStatus,
    *,
    actor: str,
    admin_id: int | None = None,
    reason: str | None = None,
) -> Campaign:
    campaign = get(session, slug)
    if campaign.status == CampaignStatus.ARCHIVED and status != CampaignStatus.ARCHIVED:
        raise Conflict("an archived campaign is final")
    before = campaign.status
    campaign.status = status.value
    campaign.version += 1
    campaign.updated_at = utcnow()
    session.add(campaign)
    audit.record(
        session,
        actor=actor,
        admin_id=admin_id,
        action=f"campaign.{status.value}",
        entity="campaign",
        entity_id=slug,
        before={"status": before},
        after={"status": status.value},
        reason=reason,
    )
    session.flush()
    return campaign


@dataclass(frozen=True)
class TotalsReport:
    campaign: Campaign
    stored: ledger.Totals
    derived: ledger.Totals

    @property
    def consistent(self) -> bool:
        return (self.stored.raised, self.stored.donors) == (
            self.derived.raised,
            self.derived.donors,
        )


def totals_report(session: Session, slug: str) -> TotalsReport:
    campaign = get(session, slug)
    assert campaign.id is not None
    return TotalsReport(campaign, ledger.stored(campaign), ledger.recompute(session, campaign.id))
