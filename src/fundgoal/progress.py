"""Pure progress arithmetic: milestones, percent, the over-goal policy and deadline state.

No I/O and no formatting here: the widget, the donation page and the dashboard all ask these
functions, so a bar never disagrees with the page it links to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from .errors import Invalid


class OverGoalPolicy(StrEnum):
    CAP = "cap"  # the bar stops full at the goal; the raised amount is still shown truthfully
    FILL = "fill"  # keep counting past 100%: the bar stays full and the percent keeps rising
    STRETCH = "stretch"  # once the goal is met the bar rescales to the next stretch milestone


@dataclass(frozen=True, slots=True)
class Milestone:
    amount: int  # minor units
    label: str | None = None
    # A stretch milestone lies beyond the goal; it is only shown once the goal is met (or
    # always, under the FILL policy, as a tick past the end is meaningless and is dropped).
    stretch: bool = False


class MilestoneError(Invalid):
    """The milestones given cannot describe a campaign; the message says why."""


def validate_milestones(milestones: list[Milestone]) -> list[Milestone]:
    """Strictly increasing positive amounts, at least one goal milestone, stretch ones last."""
    if not milestones:
        raise MilestoneError("a campaign needs at least one milestone (the last one is the goal)")
    previous = 0
    seen_stretch = False
    for milestone in milestones:
        if milestone.amount <= 0:
            raise MilestoneError("milestone amounts must be positive")
        if milestone.amount <= previous:
            raise MilestoneError("milestone amounts must increase")
        if milestone.stretch:
            seen_stretch = True
        elif seen_stretch:
            raise MilestoneError("stretch milestones must come after the goal")
        if milestone.label is not None and len(milestone.label) > 80:
            raise MilestoneError("milestone labels are at most 80 characters")
        previous = milestone.amount
    if all(m.stretch for m in milestones):
        raise MilestoneError("at least one milestone must be a goal, not a stretch milestone")
    return milestones


def goal(milestones: list[Milestone]) -> int:
    """The campaign goal: the last milestone that is not a stretch milestone."""
    return [m for m in milestones if not m.stretch][-1].amount


def percent(raised: int, target: int) -> float:
    """Raised as a percentage of target, one decimal, never negative (refunds can't go below 0)."""
    if target <= 0:
        return 0.0
    return round(max(raised, 0) * 100 / target, 1)


def reached(raised: int, milestones: list[Milestone]) -> list[Milestone]:
    return [m for m in milestones if raised >= m.amount]


def next_milestone(raised: int, milestones: list[Milestone]) -> Milestone | None:
    return next((m for m in milestones if raised < m.amount), None)


@dataclass(frozen=True, slots=True)
class BarState:
    """What a bar should draw: its scale, how full it is, and which ticks to show."""

    goal: int
    scale_max: int
    percent: float  # of the goal, uncapped: 134.0 means 134% of the goal was raised
    bar_percent: float  # how full the drawn bar is, 0..100
    goal_reached: bool
    ticks: list[Milestone]
    next_milestone: Milestone | None


def bar_state(raised: int, milestones: list[Milestone], policy: OverGoalPolicy) -> BarState:
    target = goal(milestones)
    goal_milestones = [m for m in milestones if not m.stretch]
    scale = target
    ticks = goal_milestones
    if policy is OverGoalPolicy.STRETCH and raised >= target:
        # Rescale to the first stretch milestone not yet reached (or the last one, when all
        # are): the bar keeps telling readers there is something left to do.
        stretches = [m for m in milestones if m.stretch]
        if stretches:
            upcoming = next((m for m in stretches if raised < m.amount), stretches[-1])
            scale = upcoming.amount
            ticks = [m for m in milestones if m.amount <= scale]
    fill = percent(raised, scale)
    return BarState(
        goal=target,
        scale_max=scale,
        percent=percent(raised, target),
        bar_percent=min(fill, 100.0),
        goal_reached=raised >= target,
        ticks=ticks,
        next_milestone=next_milestone(raised, milestones),
    )


class DeadlinePhase(StrEnum):
    NONE = "none"
    OPEN = "open"
    LAST_DAY = "last_day"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class DeadlineState:
    phase: DeadlinePhase
    days_left: int | None = None  # whole days after today, while open


def deadline_state(deadline: date | None, now: datetime) -> DeadlineState:
    """A deadline is inclusive: a campaign ending 2026-12-31 still takes gifts that whole day."""
    if deadline is None:
        return DeadlineState(DeadlinePhase.NONE)
    today = now.date()
    if today > deadline:
        return DeadlineState(DeadlinePhase.ENDED)
    if today == deadline:
        return DeadlineState(DeadlinePhase.LAST_DAY, 0)
    return DeadlineState(DeadlinePhase.OPEN, (deadline - today).days)
