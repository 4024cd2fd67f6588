"""Just enough HTTP/1.1 framing to relay and count exchanges (tests/cache/tap.py) and to fire a
burst of requests over connections opened beforehand (tests/cache/test_burst.py).

Bodies are framed by Content-Length or chunked encoding; responses to HEAD, 1xx, 204 and 304
have none; a response with neither runs to the end of the connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Message:
    start: str  # "GET /path HTTP/1.1" or "HTTP/1.1 200 OK"
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names, last one wins
    raw_headers: list[tuple[str, str]] = field(default_factory=list)
    head: bytes = b""  # the bytes of the start line and headers, as received
    body: bytes = b""  # the payload (chunked: decoded)
    wire_body: bytes = b""  # the body bytes as received (chunked: with its framing)

    @property
    def status(self) -> int:
        return int(self.start.split(" ", 2)[1])

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0]

    @property
    def target(self) -> str:
        return self.start.split(" ", 2)[1]


async def read_head(reader: asyncio.StreamReader) -> Message | None:
    """The start line and headers; None on a connection closed between messages."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    lines = head.decode("latin-1").split("\r\n")
    message = Message(start=lines[0], head=head)
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            message.raw_headers.append((name.strip(), value.strip()))
            message.headers[name.strip().lower()] = value.strip()
    return message


async def read_body(reader: asyncio.StreamReader, message: Message, *, to_eof: bool) -> None:
    """Fill message.body / wire_body according to its framing."""
    if message.headers.get("transfer-encoding", "").lower() == "chunked":
        wire, body = bytearray(), bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            wire += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    line = await reader.readuntil(b"\r\n")
                    wire += line
                    if line == b"\r\n":
                        break
                break
            chunk = await reader.readexactly(size + 2)
            wire += chunk
            body += chunk[:-2]
        message.wire_body, message.body = bytes(wire), bytes(body)
    elif "content-length" in message.headers:
        message.body = message.wire_body = await reader.readexactly(
            int(message.headers["content-length"])
        )
    elif to_eof:
        message.body = message.wire_body = await reader.read()


def response_has_body(request_method: str, response: Message) -> bool:
    return not (request_method == "HEAD" or response.status in (204, 304) or response.status < 200)


async def read_request(reader: asyncio.StreamReader) -> Message | None:
    request = await read_head(reader)
    if request is not None:
        await read_body(reader, request, to_eof=False)
    return request


async def read_response(reader: asyncio.StreamReader, request_method: str) -> Message:
    response = await read_head(reader)
    if response is None:
        raise ConnectionError("the server closed the connection without answering")
    if response_has_body(request_method, response):
        await read_body(reader, response, to_eof=True)
    return response
