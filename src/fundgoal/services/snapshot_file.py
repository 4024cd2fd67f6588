"""The last good widget snapshot on local disk, so a worker started while the database is away
can still serve the bars.

One JSON file, shared by every worker of an installation: written to a temporary file in the
same directory and renamed over the old one (a reader sees the old file or the new one, never a
mix), carrying a format number, the database it came from and a digest of its content. Any
doubt (unreadable, truncated, edited, another format, another database) and it is not served:
a wrong total is worse than a 503.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..progress import Milestone, OverGoalPolicy
from ..widget import CampaignData

log = logging.getLogger("fundgoal.snapshots")

FORMAT = 1  # bump when CampaignData changes shape: an older file is then ignored
MAX_BYTES = 64 * 1024 * 1024  # far above any real installation; bounds what a start reads


@dataclass(frozen=True)
class Saved:
    campaigns: dict[str, CampaignData]
    fingerprint: tuple[int, int]
    saved_at: datetime


def _campaign(c: CampaignData) -> dict[str, Any]:
    return {
        "slug": c.slug,
        "title": c.title,
        "currency": c.currency,
        "raised": c.raised,
        "donors": c.donors,
        "milestones": [[m.amount, m.label, m.stretch] for m in c.milestones],
        "policy": c.policy.value,
        "deadline": c.deadline.isoformat() if c.deadline else None,
        "status": c.status,
        "updated_at": c.updated_at.isoformat(),
        "version": c.version,
        "accepts_gifts": c.accepts_gifts,
    }


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError("not an integer")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _from(raw: dict[str, Any]) -> CampaignData:
    deadline = raw["deadline"]
    return CampaignData(
        slug=_str(raw["slug"]),
        title=_str(raw["title"]),
        currency=_str(raw["currency"]),
        raised=_int(raw["raised"]),
        donors=_int(raw["donors"]),
        milestones=tuple(
            Milestone(_int(amount), None if label is None else _str(label), stretch is True)
            for amount, label, stretch in raw["milestones"]
        ),
        policy=OverGoalPolicy(raw["policy"]),
        deadline=None if deadline is None else date.fromisoformat(_str(deadline)),
        status=_str(raw["status"]),
        updated_at=datetime.fromisoformat(_str(raw["updated_at"])),
        version=_int(raw["version"]),
        accepts_gifts=raw["accepts_gifts"] is True,
    )


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class SnapshotFile:
    def __init__(self, path: Path, database: str) -> None:
        self.path = path
        self.database = database  # the URL without its password: a file from elsewhere is refused
        self._warned = False

    def save(
        self, campaigns: dict[str, CampaignData], fingerprint: tuple[int, int], at: datetime
    ) -> bool:
        """Write atomically; False (logged once) when the disk refuses: serving goes on."""
        body = {
            "format": FORMAT,
            "database": self.database,
            "saved_at": at.isoformat(),
            "fingerprint": list(fingerprint),
            "campaigns": [_campaign(c) for c in campaigns.values()],
        }
        text = json.dumps({**body, "digest": _digest(body)}, ensure_ascii=True)
        # Unique per process and thread: every worker writes the same file.
        temporary = self.path.with_name(
            f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "w", encoding="ascii") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            if not self._warned:
                self._warned = True
                log.warning("cannot keep the widget snapshot at %s: %s", self.path, exc)
            return False
        return True

    def load(self) -> Saved | None:
        """The saved snapshot, or None (logged) when there is none or it cannot be trusted."""
        try:
            with open(self.path, "rb") as source:
                raw = source.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the saved widget snapshot %s: %s", self.path, exc)
            return None
        try:
            if len(raw) > MAX_BYTES:
                raise ValueError("too large")
            document = json.loads(raw)
            digest = document.pop("digest")
            if document.get("format") != FORMAT:
                raise ValueError(f"format {document.get('format')!r}, not {FORMAT}")
            if document.get("database") != self.database:
                raise ValueError("it was saved for another database")
            if digest != _digest(document):
                raise ValueError("its digest does not match its content")
            campaigns = [_from(item) for item in document["campaigns"]]
            count, versions = document["fingerprint"]
            saved = Saved(
                campaigns={c.slug: c for c in campaigns},
                fingerprint=(_int(count), _int(versions)),
                saved_at=datetime.fromisoformat(_str(document["saved_at"])),
            )
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            log.warning("not serving the saved widget snapshot %s: %s", self.path, exc)
            return None
        return saved
