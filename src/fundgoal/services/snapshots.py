"""Keeps this process's widget Snapshot current with the database.

`refresh()` asks one cheap question (stores.campaigns.fingerprint: a count and a sum of
versions); only when the answer changed, or the calendar day did (deadline countdowns), does it
load the campaigns and swap in a new Snapshot. The web layer calls it on a timer (every
`snapshot_check_seconds`, so other workers' writes show within a second) and right after its own
writes (so a donor sees their gift at once). If the database is down, the last good snapshot
keeps answering and `status()` says how stale it is.

Nothing waits on the database while holding something a reader or shutdown needs: readers take
`current` without a lock, `status()` reads plain fields, `close()` only sets a flag. The lock
only makes refreshes take turns (so a burst of writers shares one), and a refresh's own wait
on the database is bounded by the engine's timeouts, so a turn is never waited for longer than
`wait_seconds`. The last good snapshot is also kept on disk (snapshot_file) for a worker that
starts while the database is away; it serves it, and reports it, until the database answers.
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
from .snapshot_file import SnapshotFile

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
    source: str | None  # "database", "disk" (saved by an earlier run, not confirmed yet), None
    stale: bool  # not confirmed by the database within max_age: readiness fails


class SnapshotKeeper:
    def __init__(
        self,
        engine: Engine,
        renderer: Renderer,
        *,
        today: Callable[[], date] = lambda: utcnow().date(),
        saved: SnapshotFile | None = None,
        max_age: float = 5.0,
        wait_seconds: float = 30.0,
    ) -> None:
        self._engine = engine
        self._renderer = renderer
        self._today = today
        self._saved = saved
        self.max_age = max_age
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()  # refreshes take turns; readers and close() never wait
        self.current: Snapshot | None = None
        self._confirmed_at: float | None = None
        self._error: str | None = None
        self._persisted: Snapshot | None = None
        self.rebuilds = 0
        self.last_rebuild_seconds = 0.0
        self._closed = False
        # When the last successful refresh began reading: any commit before that is in it.
        self._read_since = float("-inf")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop refreshing. Waits for nothing: a refresh running in a thread ends within the
        engine's timeouts and its result is simply not used."""
        self._closed = True

    def refresh(self, *, force: bool = False, since: float | None = None) -> bool:
        """Bring the snapshot up to date; True when a new one was swapped in.

        `since` (time.monotonic() taken after the caller's commit) lets concurrent writers
        share one refresh: under a burst of webhooks they queue on the lock, and a refresh that
        began reading after their commit already shows it, so the rest need not ask again.
        """
        if self._closed or (since is not None and self._read_since >= since):
            return False
        if not self._lock.acquire(timeout=self.wait_seconds):
            return False  # the turn ahead is stuck longer than its own bounds allow: give up
        try:
            if self._closed or (since is not None and self._read_since >= since):
                return False
            try:
                return self._refresh(force)
            except SQLAlchemyError as exc:
                self._error = exc.__class__.__name__
                log.warning("snapshot refresh failed; serving the last good one: %s", self._error)
                return False
        finally:
            self._lock.release()

    def _refresh(self, force: bool) -> bool:
        today = self._today()
        reading = time.monotonic()
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
                self._read_since = reading
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
        self._read_since = reading
        return True

    def _confirmed(self, at: float) -> None:
        self._confirmed_at = at
        self._error = None

    def load_saved(self) -> bool:
        """With nothing loaded (the database did not answer at start), serve the snapshot an
        earlier run saved, if it can be trusted. It counts as stale until confirmed."""
        if self.current is not None or self._saved is None:
            return False
        saved = self._saved.load()
        if saved is None:
            return False
        self.current = Snapshot(self._renderer, saved.campaigns, self._today(), saved.fingerprint)
        self._persisted = self.current  # it is what the file holds
        log.warning(
            "serving the widget snapshot saved at %s (%d campaigns) until the database answers",
            saved.saved_at.isoformat(timespec="seconds"),
            len(saved.campaigns),
        )
        return True

    def persist(self) -> bool:
        """Save the current snapshot if the database confirmed it and it is not saved yet.
        Called by the poller, off the request path (a disk write is not a reader's cost)."""
        current = self.current
        if (
            self._saved is None
            or current is None
            or current is self._persisted
            or self._confirmed_at is None
            or self._closed
        ):
            return False
        self._persisted = current
        return self._saved.save(current.campaigns, current.fingerprint, utcnow())

    def status(self) -> SnapshotStatus:
        confirmed = self._confirmed_at
        age = None if confirmed is None else time.monotonic() - confirmed
        loaded = self.current is not None
        return SnapshotStatus(
            loaded=loaded,
            healthy=self._error is None and loaded and confirmed is not None,
            age_seconds=age,
            error=self._error,
            source=None if not loaded else "disk" if confirmed is None else "database",
            stale=age is None or age > self.max_age,
        )
