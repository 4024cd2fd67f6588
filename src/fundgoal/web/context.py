"""What every request handler needs, built once per app: settings, engine, templates, snapshots."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..config import Settings
from ..inputs.text import displayable
from ..resources import templates_dir
from ..services.snapshot_file import SnapshotFile
from ..services.snapshots import SnapshotKeeper
from ..widget import Renderer
from ..widget_build import built
from .middleware import MetricSet


def _displayable(value: Any) -> Any:
    """Every value a template prints: stored text loses control and direction characters (a
    NUL from an old row must not reach a page); markup the templates built is left alone."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return displayable(value)
    return value


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    jinja: Environment
    snapshots: SnapshotKeeper
    metrics: MetricSet
    # Migrations the database still lacks, asked once the database first answers (a worker
    # may start while it is away); None until then. Not empty: /readyz answers 503.
    schema_pending: list[str] | None = None

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> AppContext:
        jinja = Environment(
            loader=FileSystemLoader(templates_dir()),
            autoescape=select_autoescape(["html", "xml", "svg"]),
            auto_reload=False,
            finalize=_displayable,
        )
        jinja.globals["public_url"] = settings.public_url
        # The embed page inlines the script's own stylesheet (minified): both forms look alike.
        renderer = Renderer(jinja, settings.public_url, built().stylesheet)
        path = settings.snapshot_path()
        saved = (
            None
            if path is None
            else SnapshotFile(path, engine.url.render_as_string(hide_password=True))
        )
        keeper = SnapshotKeeper(
            engine,
            renderer,
            saved=saved,
            # Stale means "several polls in a row did not reach the database".
            max_age=max(settings.snapshot_max_age_seconds, 3 * settings.snapshot_check_seconds),
            # A refresh's turn ends within one database step.
            wait_seconds=settings.db_timeouts.step,
        )
        return cls(
            settings=settings,
            engine=engine,
            jinja=jinja,
            snapshots=keeper,
            metrics=MetricSet(),
        )

    async def campaigns_changed(self) -> None:
        """Call after committing a change a bar shows: this worker's snapshot updates at once
        (other workers notice within snapshot_check_seconds)."""
        await run_in_threadpool(partial(self.snapshots.refresh, since=time.monotonic()))


def ctx(request: Request) -> AppContext:
    context: AppContext = request.app.state.ctx
    return context
