"""The embedded default's demo campaign: the reference picture, built from real ledger entries."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from ..models import Campaign, utcnow
from ..money import Money
from ..progress import Milestone, OverGoalPolicy
from ..stores import campaigns
from . import campaigns as campaign_service
from . import gifts

DEMO_SLUG = "demo"
# Offline gifts adding up to the reference picture's 1,460 USD; the total is the ledger's sum,
# not a number written into the campaign.
DEMO_GIFTS = (
    ("Ada", 500, "bank_transfer"),
    ("Grace", 250, "cheque"),
    ("Linus", 400, "cash"),
    ("Margaret", 200, "bank_transfer"),
    ("Anonymous reader", 110, "cash"),
)


def seed_demo(session: Session) -> Campaign:
    """Create the demo campaign once; later calls leave it (and its donations) as they are."""
    existing = campaigns.by_slug(session, DEMO_SLUG)
    if existing is not None:
        return existing
    campaign = campaign_service.create(
        session,
        campaign_service.CampaignSpec(
            slug=DEMO_SLUG,
            title="Keep local news free",
            description="Our newsroom is funded by readers. Help us reach this year's goal.",
            currency="USD",
            milestones=[
                Milestone(250_000, "Halfway: a new reporter for the city council"),
                Milestone(500_000, "Goal: a year of investigations"),
            ],
            over_goal_policy=OverGoalPolicy.FILL,
            deadline=(utcnow() + timedelta(days=30)).date(),
            preset_amounts=[1_000, 2_500, 5_000, 10_000],
        ),
        actor="demo",
    )
    start = utcnow() - timedelta(days=len(DEMO_GIFTS))
    for day, (name, dollars, source) in enumerate(DEMO_GIFTS):
        gifts.record_offline_gift(
            session,
            campaign,
            Money.from_major(dollars, "USD"),
            actor="demo",
            source=source,
            donor_name=name,
            donor_email=f"{name.split()[0].lower()}@example.org",
            occurred_at=start + timedelta(days=day),
            note="demo data",
        )
    return campaign
