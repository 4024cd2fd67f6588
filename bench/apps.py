"""The two ASGI apps a benchmark compares, built the same way for uvicorn's --factory."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.services.demo import seed_demo
from fundgoal.web.app import create_app


def project() -> Starlette:
    """fundgoal itself on a seeded database (BENCH_DATABASE_URL)."""
    url = os.environ["BENCH_DATABASE_URL"]
    engine = db.make_engine(url)
    db.upgrade(engine)
    with db.transaction(engine) as session:
        seed_demo(session)
    public_url = os.environ.get("BENCH_PUBLIC_URL", "http://127.0.0.1:8000")
    return create_app(Settings(database_url=url, env="test", public_url=public_url), engine=engine)


def hello() -> Starlette:
    """The baseline: bare Starlette answering a constant, the least an ASGI app can do."""

    async def index(_request: Request) -> Response:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", index), Route("/{path:path}", index)])


def sink() -> Starlette:
    """The webhook baseline: bare Starlette reading a POSTed body and answering 200 JSON."""

    async def accept(request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "applied"})

    async def ok(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/webhooks/stripe", accept, methods=["POST"]), Route("/healthz", ok)]
    )
