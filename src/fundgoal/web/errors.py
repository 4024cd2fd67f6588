"""One handler turns domain errors into 4xx answers, an unavailable database into a 503;
anything else is a logged 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from .. import db
from ..errors import DomainError

log = logging.getLogger("fundgoal.web")


def _wants_json(request: Request) -> bool:
    path = request.url.path
    accept = request.headers.get("accept", "")
    return (
        path.startswith("/api/")
        or path.startswith("/webhooks/")
        or ("application/json" in accept and "text/html" not in accept)
    )


def error_response(request: Request, status: int, code: str, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": code, "message": message}, status_code=status)
    context = request.app.state.ctx
    body = context.jinja.get_template("error.html").render(status=status, message=message)
    return HTMLResponse(body, status_code=status)


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return error_response(request, exc.status, exc.code, exc.message)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(request, exc.status_code, "http_error", str(exc.detail))


async def database_error(request: Request, exc: Exception) -> Response:
    """The database did not answer in time, or not at all: 503 (retry later), not a bug."""
    reason = db.unavailable(exc)
    if reason is None:
        return await server_error(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, reason)
    answer = error_response(
        request, 503, "unavailable", "The database is not answering just now; please try again."
    )
    answer.headers["retry-after"] = "5"
    return answer


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "internal", "Something went wrong on our side.")


handlers: Mapping[Any, Any] = {
    DomainError: domain_error,
    HTTPException: http_error,
    SQLAlchemyError: database_error,
    Exception: server_error,
}
