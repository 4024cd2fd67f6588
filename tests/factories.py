"""Factories for test data: real rows through the real services, sensible defaults."""

from __future__ import annotations

import itertools

from sqlmodel import Session

from fundgoal.models import Campaign
from fundgoal.progress import Milestone, OverGoalPolicy
from fundgoal.services import campaigns

_counter = itertools.count(1)


def make_campaign(
    session: Session,
    *,
    slug: str | None = None,
    currency: str = "USD",
    milestones: tuple[int, ...] = (250_000, 500_000),
    policy: OverGoalPolicy = OverGoalPolicy.FILL,
    title: str | None = None,
    stretch: tuple[int, ...] = (),
) -> Campaign:
    n = next(_counter)
    spec = campaigns.CampaignSpec(
        slug=slug or f"campaign-{n}",
        title=title or f"Campaign {n}",
        currency=currency,
        milestones=[Milestone(a) for a in milestones]
        + [Milestone(a, stretch=True) for a in stretch],
        over_goal_policy=policy,
    )
    return campaigns.create(session, spec, actor="test")
