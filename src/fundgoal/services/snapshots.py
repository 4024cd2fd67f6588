"""Keeps this process's widget Snapshot current with the database.

`refresh()` asks one cheap question (stores.campaigns.fingerprint: a count and a sum of
versions); only when the answer changed, or the calendar day did (deadline countdowns), does it
load the campaigns and swap in a new Snapshot. The web layer calls it on a timer (every
`snapshot_check_seconds`, so other workers' writes show within a second) and right after its own
writes (so a donor sees their gift at once). If the database is down, the last good snapshot
keeps answering and `status()` says how stale it is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from ..models import Campaign, utcnow
from ..progress import OverGoalPolicy
from ..stores import campaigns as campaign_store
from ..widget import CampaignData, Renderer, Snapshot
from .campaigns import milestones_of

log = logging.getLogger("fundgoal.snapshots")


def campaign_data(c: Campaign) -> CampaignData:
    return CampaignData(
        slug=c.slug,
        title=c.title,
        currency=c.currency,
        raised=c.raised,
        donors=c.donors,
        milestones=tuple(milestones_of(c)),
        policy=OverGoalPolicy(c.over_goal_policy),
        deadline=c.deadline,
        status=c.status,
        updated_at=c.updated_at,
        version=c.version,
    )


@dataclass(frozen=True)
class SnapshotStatus:
    loaded: bool
    healthy: bool  # the last refresh reached the database
    age_seconds: float | None  # since the database last confirmed the snapshot
    error: str | None


class SnapshotKeeper:
    def __init__(
        self,
        engine: Engine,
        renderer: Renderer,
        *,
        today: Callable[[], date] = lambda: utcnow().date(),
    ) -> None:
        self._engine = engine
        self._renderer = renderer
        self._today = today
        self._lock = threading.Lock()  # one refresh at a time; readers never wait
        self.current: Snapshot | None = None
        self._confirmed_at: float | None = None
        self._error: str | None = None
        self.rebuilds = 0
        self.last_rebuild_seconds = 0.0
        self._closed = False

    def close(self) -> None:
        """Stop refreshing, waiting for a refresh already running in a thread to finish, so
        no query outlives the app (and its engine) that started it."""
        with self._lock:
            self._closed = True

    def refresh(self, *, force: bool = False) -> bool:
        """Bring the snapshot up to date; True when a new one was swapped in."""
        with self._lock:
            if self._closed:
                return False
            try:
                return self._refresh(force)
            except SQLAlchemyError as exc:
                self._error = exc.__class__.__name__
                log.warning("snapshot refresh failed; serving the last good one: %s", self._error)
                return False

    def _refresh(self, force: bool) -> bool:
        today = self._today()
        with Session(self._engine) as session:
            fingerprint = campaign_store.fingerprint(session)
            current = self.current
            if (
                not force
                and current is not None
                and current.fingerprint == fingerprint
                and current.today == today
            ):
                self._confirmed(time.monotonic())
                return False
            started = time.perf_counter()
            rows = campaign_store.all_campaigns(session)
            # Re-read the fingerprint inside the same read so the pair is consistent enough:
            # a write landing between the two reads only causes one extra rebuild next time.
            data = {c.slug: campaign_data(c) for c in rows}
        self.current = Snapshot(self._renderer, data, today, fingerprint)
        self.rebuilds += 1
        self.last_rebuild_seconds = time.perf_counter() - started
        self._confirmed(time.monotonic())
        return True

    def _confirmed(self, at: float) -> None:
        self._confirmed_at = at
        self._error = None

    def status(self) -> SnapshotStatus:
        age = None if self._confirmed_at is None else time.monotonic() - self._confirmed_at
        return SnapshotStatus(
            loaded=self.current is not None,
            healthy=self._error is None and self.current is not None,
            age_seconds=age,
            error=self._error,
        )
