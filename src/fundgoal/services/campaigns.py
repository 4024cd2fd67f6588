"""Campaign use cases: create and validate, read progress, compare stored and derived totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from .. import ledger
from ..errors import Conflict, Invalid, NotFound
from ..inputs.campaign import MAX_MILESTONES, CampaignSpec, check_slug, check_theme
from ..inputs.text import is_slug
from ..models import Campaign, CampaignStatus, utcnow
from ..money import MAX_MINOR, Money, MoneyError, parse_amount
from ..progress import Milestone, validate_milestones
from ..stores import audit, campaigns
from ..stores import donations as donation_store


def milestones_of(campaign: Campaign) -> list[Milestone]:
    return [
        Milestone(int(m["amount"]), m.get("label") or None, bool(m.get("stretch", False)))
        for m in campaign.milestones
    ]


def milestones_json(milestones: list[Milestone]) -> list[dict[str, Any]]:
    return [{"amount": m.amount, "label": m.label, "stretch": m.stretch} for m in milestones]


def parse_milestones(text: str, currency: str) -> list[Milestone]:
    """'2500,5000' in major units (the command line's form) -> milestones in minor units."""
    parts = [p.strip() for p in text.split(",")[: MAX_MILESTONES + 1] if p.strip()]
    if not parts:
        raise Invalid("give at least one milestone, like --milestones 2500,5000")
    try:
        amounts = [parse_amount(p, currency, "en", max_minor=MAX_MINOR).minor for p in parts]
    except MoneyError as exc:
        raise Invalid(f"milestones: {exc.message}") from None
    return validate_milestones([Milestone(a) for a in amounts])


# CampaignSpec, check_slug and check_theme are the campaign input's (inputs/campaign.py).
__all__ = ["CampaignSpec", "check_slug", "check_theme"]


def _default_presets(currency: str) -> list[int]:
    one = Money.from_major(1, currency).minor
    return [10 * one, 25 * one, 50 * one, 100 * one]


def create(
    session: Session, spec: CampaignSpec, *, actor: str, admin_id: int | None = None
) -> Campaign:
    # The spec's own rules (slug, title, lengths, milestones, theme) were checked when it was
    # built (inputs/campaign.py); what needs the database is checked here.
    title, currency = spec.title, spec.currency
    if campaigns.by_slug(session, spec.slug) is not None:
        raise Conflict(f"a campaign called {spec.slug!r} already exists")
    presets, minimum, maximum = check_amounts(
        currency, spec.preset_amounts, spec.min_amount, spec.max_amount
    )
    theme = spec.theme
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
            preset_amounts=presets,
            min_amount=minimum,
            max_amount=maximum,
            donor_wall=spec.donor_wall,
            theme=theme,
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
    campaign = campaigns.by_slug(session, slug) if is_slug(slug) else None
    if campaign is None:
        raise NotFound(f"no campaign called {slug[:64]!r}")
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
    if campaign.status == status.value:
        raise Conflict(f"the campaign is already {status.value}")
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


def check_amounts(
    currency: str, presets: list[int], minimum: int | None, maximum: int | None
) -> tuple[list[int], int, int]:
    one = Money.from_major(1, currency).minor
    low = minimum if minimum is not None else one
    high = maximum if maximum is not None else 10_000 * one
    if low <= 0 or high < low:
        raise Invalid("the minimum gift must be positive and not above the maximum")
    if len(presets) > 8:
        raise Invalid("at most 8 preset amounts")
    for amount in presets:
        if not low <= amount <= high:
            raise Invalid("every preset amount must lie between the minimum and maximum gift")
    if sorted(set(presets)) != presets:
        raise Invalid("preset amounts must increase, without repeats")
    return presets or [p for p in _default_presets(currency) if low <= p <= high], low, high


def update(
    session: Session,
    slug: str,
    spec: CampaignSpec,
    *,
    actor: str,
    admin_id: int | None = None,
    reason: str | None = None,
) -> Campaign:
    """Replace the campaign's editable settings; the slug never changes (embeds name it).

    The currency is fixed once any ledger entry exists: its amounts are in that currency.
    Every change bumps `version`, so every worker's widget snapshot rebuilds.
    """
    campaign = get(session, slug)
    if campaign.status == CampaignStatus.ARCHIVED:
        raise Conflict("an archived campaign is final; it can no longer be edited")
    assert campaign.id is not None
    title, currency = spec.title, spec.currency
    if currency != campaign.currency and donation_store.has_entries(session, campaign.id):
        raise Conflict(
            f"the currency stays {campaign.currency}: the campaign already has donations"
        )
    presets, low, high = check_amounts(
        currency, spec.preset_amounts, spec.min_amount, spec.max_amount
    )
    theme = check_theme(spec.theme)
    before = campaign_summary(campaign)
    campaign.title = title
    campaign.description = spec.description
    campaign.currency = currency
    campaign.milestones = milestones_json(spec.milestones)
    campaign.over_goal_policy = spec.over_goal_policy.value
    campaign.deadline = spec.deadline
    campaign.preset_amounts = presets
    campaign.min_amount, campaign.max_amount = low, high
    campaign.donor_wall = spec.donor_wall
    campaign.theme = theme
    after = campaign_summary(campaign)
    if after == before:
        return campaign
    campaign.version += 1
    campaign.updated_at = utcnow()
    session.add(campaign)
    changed = [k for k in after if after[k] != before.get(k)]
    audit.record(
        session,
        actor=actor,
        admin_id=admin_id,
        action="campaign.edit",
        entity="campaign",
        entity_id=slug,
        before={k: before.get(k) for k in changed},
        after={k: after[k] for k in changed},
        reason=reason,
    )
    session.flush()
    return campaign


def repair_totals(
    session: Session, slug: str, *, actor: str, admin_id: int | None = None
) -> ledger.Totals:
    """Set stored totals to the ledger's recomputed ones, recording both in the audit log."""
    campaign = get(session, slug)
    assert campaign.id is not None
    before = {"raised": campaign.raised, "donors": campaign.donors}
    totals = ledger.repair(session, campaign.id)
    audit.record(
        session,
        actor=actor,
        admin_id=admin_id,
        action="campaign.repair_totals",
        entity="campaign",
        entity_id=slug,
        before=before,
        after={"raised": totals.raised, "donors": totals.donors},
        reason="stored totals disagreed with the ledger",
    )
    return totals
