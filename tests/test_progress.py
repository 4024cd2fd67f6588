from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundgoal.progress import (
    DeadlinePhase,
    Milestone,
    MilestoneError,
    OverGoalPolicy,
    bar_state,
    deadline_state,
    goal,
    next_milestone,
    percent,
    reached,
    validate_milestones,
)

DEMO = [Milestone(250_000, "Halfway"), Milestone(500_000)]


def test_reference_picture() -> None:
    state = bar_state(146_000, DEMO, OverGoalPolicy.FILL)
    assert state.goal == 500_000
    assert state.percent == 29.2
    assert state.bar_percent == 29.2
    assert state.next_milestone == Milestone(250_000, "Halfway")
    assert not state.goal_reached
    assert [t.amount for t in state.ticks] == [250_000, 500_000]


def test_reached_and_next() -> None:
    assert reached(300_000, DEMO) == [DEMO[0]]
    assert next_milestone(300_000, DEMO) == DEMO[1]
    assert next_milestone(600_000, DEMO) is None


def test_over_goal_policies() -> None:
    cap = bar_state(650_000, DEMO, OverGoalPolicy.CAP)
    fill = bar_state(650_000, DEMO, OverGoalPolicy.FILL)
    assert cap.bar_percent == fill.bar_percent == 100.0
    assert cap.percent == fill.percent == 130.0
    assert cap.goal_reached
    assert fill.goal_reached
    stretched = [
        *DEMO,
        Milestone(750_000, "Data desk", stretch=True),
        Milestone(1_000_000, stretch=True),
    ]
    assert goal(stretched) == 500_000
    before = bar_state(400_000, stretched, OverGoalPolicy.STRETCH)
    assert before.scale_max == 500_000
    assert before.bar_percent == 80.0
    assert [t.amount for t in before.ticks] == [250_000, 500_000]
    after = bar_state(650_000, stretched, OverGoalPolicy.STRETCH)
    assert after.scale_max == 750_000
    assert after.bar_percent == pytest.approx(86.7)
    assert [t.amount for t in after.ticks] == [250_000, 500_000, 750_000]
    beyond = bar_state(2_000_000, stretched, OverGoalPolicy.STRETCH)
    assert beyond.scale_max == 1_000_000
    assert beyond.bar_percent == 100.0


def test_negative_raised_never_shows_negative() -> None:
    assert percent(-500, 1000) == 0.0


@pytest.mark.parametrize(
    ("milestones", "message"),
    [
        ([], "at least one"),
        ([Milestone(0)], "positive"),
        ([Milestone(500), Milestone(200)], "increase"),
        ([Milestone(500), Milestone(500)], "increase"),
        ([Milestone(500, stretch=True)], "must be a goal"),
        ([Milestone(100), Milestone(200, stretch=True), Milestone(300)], "after the goal"),
        ([Milestone(100, "x" * 81)], "80 characters"),
    ],
)
def test_milestone_validation(milestones: list[Milestone], message: str) -> None:
    with pytest.raises(MilestoneError, match=message):
        validate_milestones(milestones)


def test_deadline_states() -> None:
    noon = datetime(2026, 11, 24, 12, 0)
    assert deadline_state(None, noon).phase is DeadlinePhase.NONE
    assert deadline_state(date(2026, 12, 1), noon).days_left == 7
    assert deadline_state(date(2026, 11, 24), noon).phase is DeadlinePhase.LAST_DAY
    assert deadline_state(date(2026, 11, 23), noon).phase is DeadlinePhase.ENDED


@given(
    amounts=st.lists(st.integers(1, 10**9), min_size=1, max_size=6, unique=True),
    raised=st.integers(-(10**6), 2 * 10**9),
    policy=st.sampled_from(list(OverGoalPolicy)),
)
def test_bar_is_always_drawable(amounts: list[int], raised: int, policy: OverGoalPolicy) -> None:
    milestones = [Milestone(a) for a in sorted(amounts)]
    state = bar_state(raised, milestones, policy)
    assert 0.0 <= state.bar_percent <= 100.0
    assert state.goal_reached == (raised >= state.goal)
    assert all(t.amount <= state.scale_max for t in state.ticks)
