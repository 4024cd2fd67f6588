"""The OpenAPI description of the public JSON API and the webhook endpoint, at /openapi.json.

Written by hand, next to the code it describes, because the widget's fast path is not a
Starlette route that a generator could introspect. Schemathesis fuzzes the app against it in
the test suite (tests/web/test_openapi.py): no 500s, every answer conforms.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
_MILESTONE = {
    "type": "object",
    "required": ["amount", "label", "reached", "formatted"],
    "properties": {
        "amount": {"type": "integer", "minimum": 1, "description": "minor units"},
        "label": {"type": ["string", "null"]},
        "stretch": {"type": "boolean"},
        "reached": {"type": "boolean"},
        "formatted": {"type": "string"},
        "compact": {"type": "string"},
        "shown": {"type": "boolean"},
    },
}
_PROGRESS = {
    "type": "object",
    "required": [
        "slug",
        "title",
        "currency",
        "raised",
        "goal",
        "milestones",
        "percent",
        "donors",
        "formatted",
        "updated_at",
    ],
    "properties": {
        "slug": {"type": "string"},
        "title": {"type": "string"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "locale": {"type": "string"},
        "dir": {"type": "string", "enum": ["ltr", "rtl"]},
        "raised": {"type": "integer", "minimum": 0, "description": "minor units"},
        "goal": {"type": "integer", "minimum": 1, "description": "minor units"},
        "scale_max": {"type": "integer", "minimum": 1},
        "percent": {"type": "number", "minimum": 0},
        "bar_percent": {"type": "number", "minimum": 0, "maximum": 100},
        "goal_reached": {"type": "boolean"},
        "status": {"type": "string", "enum": ["active", "closed", "archived"]},
        "donors": {"type": "integer", "minimum": 0},
        "milestones": {"type": "array", "items": _MILESTONE},
        "deadline": {"type": ["string", "null"], "format": "date"},
        "deadline_state": {"type": "string", "enum": ["none", "open", "last_day", "ended"]},
        "donate_url": {"type": "string"},
        "formatted": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_SLUG_RE = "[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
_LOCALE_RE = "[A-Za-z0-9_-]{1,35}"
_SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{_SLUG_RE}$"},
}
_LOCALE = {
    "name": "locale",
    "in": "query",
    "required": False,
    "description": "a BCP 47 / CLDR locale; unknown ones fall back to the default",
    "schema": {"type": "string", "pattern": f"^{_LOCALE_RE}$"},
}
_PAIR = f"{_SLUG_RE}(?::{_LOCALE_RE})?"


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "fundgoal public API",
        "version": __version__,
        "description": "Campaign progress for the embeddable bar, and the Stripe webhook.",
    },
    "paths": {
        "/api/campaigns/{slug}": {
            "get": {
                "summary": "A campaign's progress",
                "parameters": [_SLUG, _LOCALE],
                "responses": {
                    "200": _json(_PROGRESS, "progress, amounts in minor units"),
                    "304": {"description": "not modified (If-None-Match)"},
                    "400": _json(_ERROR, "malformed slug or locale"),
                    "404": _json(_ERROR, "no such campaign"),
                    "503": _json(_ERROR, "progress not loaded yet"),
                },
            }
        },
        "/api/campaigns": {
            "get": {
                "summary": "Several campaigns' progress in one request (the loader's form)",
                "parameters": [
                    {
                        "name": "c",
                        "in": "query",
                        "required": True,
                        "description": "comma-separated slug:locale pairs, at most 24",
                        "schema": {"type": "string", "pattern": f"^{_PAIR}(?:,{_PAIR}){{0,23}}$"},
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {
                                    "type": "object",
                                    "additionalProperties": {
                                        "oneOf": [
                                            _PROGRESS,
                                            {
                                                "type": "object",
                                                "required": ["error"],
                                                "properties": {"error": {"const": "not_found"}},
                                                "additionalProperties": False,
                                            },
                                        ]
                                    },
                                }
                            },
                        },
                        "progress by key",
                    ),
                    "304": {"description": "not modified"},
                    "400": _json(_ERROR, "malformed request"),
                    "503": _json(_ERROR, "progress not loaded yet"),
                },
            }
        },
        "/webhooks/stripe": {
            "post": {
                "summary": "Stripe events, verified with the Stripe-Signature header",
                "parameters": [
                    {
                        "name": "Stripe-Signature",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": _json({"type": "object"}, "accepted (applied, duplicate or ignored)"),
                    "400": _json(_ERROR, "unsigned, forged, stale or malformed"),
                    "404": _json(_ERROR, "webhooks are disabled (no secret configured)"),
                    "413": _json(_ERROR, "body too large"),
                    "500": _json(_ERROR, "could not apply; Stripe retries"),
                    "503": _json(_ERROR, "webhooks are disabled or the database is unavailable"),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness and database reachability",
                "responses": {
                    "200": _json({"type": "object", "required": ["status"]}, "healthy"),
                    "503": _json({"type": "object", "required": ["status"]}, "degraded"),
                },
            }
        },
    },
}


async def openapi(_request: Request) -> Response:
    return JSONResponse(SPEC, headers={"access-control-allow-origin": "*"})


routes = [Route("/openapi.json", openapi)]
