"""What every request handler needs, built once per app: settings, engine, templates."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.requests import Request

from ..config import Settings
from ..resources import templates_dir


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    jinja: Environment

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> AppContext:
        jinja = Environment(
            loader=FileSystemLoader(templates_dir()),
            autoescape=select_autoescape(["html", "xml", "svg"]),
            auto_reload=False,
        )
        jinja.globals["public_url"] = settings.public_url
        return cls(settings=settings, engine=engine, jinja=jinja)


def ctx(request: Request) -> AppContext:
    context: AppContext = request.app.state.ctx
    return context
