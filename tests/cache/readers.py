"""Many readers at once, over TLS connections opened before the first request is written, so a
burst reaches nginx within a few milliseconds (a client that connects as it goes would spread
it out, and would let a cache without a lock pass by luck)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from .http1 import Message, read_response

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    path: str
    status: int
    cache_status: str | None
    body: bytes
    set_cookie: bool


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: the test's thread may already have a running loop
    (Playwright's sync API keeps one for the browser tests' whole session)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _request(path: str, *, close: bool) -> bytes:
    connection = "close" if close else "keep-alive"
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n\r\n".encode()


def _answer(path: str, response: Message) -> Answer:
    return Answer(
        path,
        response.status,
        response.headers.get("x-cache-status"),
        response.body,
        any(name.lower() == "set-cookie" for name, _ in response.raw_headers),
    )


async def _open(port: int, tls: ssl.SSLContext) -> Connection:
    return await asyncio.open_connection("127.0.0.1", port, ssl=tls, server_hostname="127.0.0.1")


async def _close(connection: Connection) -> None:
    writer = connection[1]
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):  # nginx may have closed first
        await writer.wait_closed()


async def _burst(port: int, tls: ssl.SSLContext, paths: list[str], count: int) -> list[Answer]:
    connections = await asyncio.gather(*(_open(port, tls) for _ in range(count)))
    try:
        targets = [paths[i % len(paths)] for i in range(count)]
        for (_, writer), path in zip(connections, targets, strict=True):
            writer.write(_request(path, close=True))  # no await in between: one burst
        responses = await asyncio.gather(
            *(read_response(reader, "GET") for reader, _ in connections)
        )
        return [_answer(p, r) for p, r in zip(targets, responses, strict=True)]
    finally:
        await asyncio.gather(*(_close(c) for c in connections))


def burst(port: int, tls: ssl.SSLContext, paths: list[str], count: int) -> list[Answer]:
    """`count` simultaneous GETs spread over `paths`, one per pre-opened connection."""
    return _run(_burst(port, tls, paths, count))


async def _reader(port: int, tls: ssl.SSLContext, path: str, until: float) -> list[Answer]:
    answers = []
    connection = await _open(port, tls)
    try:
        while time.monotonic() < until:
            reader, writer = connection
            writer.write(_request(path, close=False))
            response = await read_response(reader, "GET")
            answers.append(_answer(path, response))
            if response.headers.get("connection", "").lower() == "close":
                await _close(connection)
                connection = await _open(port, tls)
    finally:
        await _close(connection)
    return answers


async def _readers(
    port: int, tls: ssl.SSLContext, path: str, count: int, seconds: float
) -> list[Answer]:
    until = time.monotonic() + seconds
    runs = await asyncio.gather(*(_reader(port, tls, path, until) for _ in range(count)))
    return [answer for run in runs for answer in run]


def steady_readers(
    port: int, tls: ssl.SSLContext, path: str, count: int, seconds: float
) -> list[Answer]:
    """`count` keep-alive readers asking for `path` back to back for `seconds`."""
    return _run(_readers(port, tls, path, count, seconds))
