"""Slow or numerous clients cannot starve the live service: a connection cap and a header deadline.

:class:`GuardedSite` listens like aiohttp's ``TCPSite`` but wraps each connection's protocol:

* at most ``max_connections`` connections are served at once; a connection beyond the cap is
  answered ``503 Service Unavailable`` (after its request head, or after the header deadline)
  and closed, without reaching the application;
* a connection must deliver its first request head within ``header_timeout`` seconds, or it is
  answered ``408 Request Timeout`` and closed (slowloris). Later requests on a kept-alive
  connection are bounded by aiohttp's ``keepalive_timeout``, and request bodies by the
  handler's own body timeout (``serve.py``);
* a request aiohttp cannot parse is answered 400 without quoting it back. Such answers are not
  counted in ``slo_*`` (no path is known, so no API request); the middleware counts the rest.

The application tells the guard that a request head arrived by calling :func:`request_started`
(its middleware does, for every request).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

MAX_HEAD_BYTES = 16 * 1024


class _QuietRequestHandler(RequestHandler):
    """aiohttp's protocol, except that a request it cannot parse (400) is not quoted back: its
    answer would carry the offending header line, an API key included."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status == 400:
            message = "malformed HTTP request"
        return super().handle_error(request, status, exc, message)


def _quiet(handler: RequestHandler) -> RequestHandler:
    # The server builds its protocol itself; the subclass adds no state, so its class can be swapped.
    # An aiohttp whose layout differs refuses the swap: the handler stays as it is (logs are redacted).
    with contextlib.suppress(TypeError):
        handler.__class__ = _QuietRequestHandler
    return handler


@dataclass(frozen=True)
class ServerLimits:
    header_timeout: float = 10.0  # seconds to deliver the first request head
    body_timeout: float = 10.0  # seconds to deliver a request body
    keepalive_timeout: float = 15.0  # idle seconds between requests on one connection
    lingering_time: float = 2.0  # seconds to drain an unread body after an early answer, then close
    max_connections: int = 1024
    max_field_size: int = 8190  # bytes of one header line (aiohttp's default)
    max_headers: int = 64

    def handler_kwargs(self) -> dict[str, Any]:
        """The aiohttp request handler's own limits (``web.AppRunner(**kwargs)``)."""
        return {
            "keepalive_timeout": self.keepalive_timeout,
            "lingering_time": self.lingering_time,
            "max_field_size": self.max_field_size,
            "max_line_size": self.max_field_size,
            "max_headers": self.max_headers,
        }


def _answer(status: str) -> bytes:
    body = f'{{"detail":"{status.split(" ", 1)[1].lower()}"}}'
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n{body}"
    ).encode()


class _Guarded(asyncio.Protocol):
    """One admitted connection: forwards everything to aiohttp's protocol, with a head deadline."""

    def __init__(self, gate: Gate, inner: asyncio.Protocol) -> None:
        self.gate = gate
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.gate.limits.header_timeout, self._head_timeout)
        self.inner.connection_made(transport)

    def request_started(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _head_timeout(self) -> None:
        self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.gate.head_timeouts += 1
            self.transport.write(_answer("408 Request Timeout"))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.request_started()
        self.gate.open -= 1
        self.inner.connection_lost(exc)


class _Refused(asyncio.Protocol):
    """A connection beyond the cap: read its request head (so the client sees the answer rather
    than a reset), answer 503, close."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.head = b""
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.timer = asyncio.get_running_loop().call_later(self.gate.limits.header_timeout, self._refuse)

    def data_received(self, data: bytes) -> None:
        self.head = (self.head + data)[:MAX_HEAD_BYTES]
        if b"\r\n\r\n" in self.head or len(self.head) >= MAX_HEAD_BYTES:
            self._refuse()

    def _refuse(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is None or self.transport.is_closing():
            return
        self.gate.refused += 1
        self.transport.write(_answer("503 Service Unavailable"))
        self.transport.close()
        line = self.head.split(b"\r\n", 1)[0].split(b" ")
        self.gate.on_refused(line[1].decode("latin-1") if len(line) > 1 else "")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()


class Gate:
    """The protocol factory: aiohttp's protocol behind a guard, or a refusal beyond the cap."""

    def __init__(self, server: web.Server, limits: ServerLimits, on_refused: Callable[[str], None]) -> None:
        self.server = server
        self.limits = limits
        self.on_refused = on_refused  # called with the refused request's path ("" if unknown)
        self.open = 0
        self.refused = 0
        self.head_timeouts = 0

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.limits.max_connections:
            return _Refused(self)
        self.open += 1
        return _Guarded(self, _quiet(self.server()))


def request_started(request: web.BaseRequest) -> None:
    """Stop the connection's header deadline: its request head arrived."""
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    if isinstance(protocol, _Guarded):
        protocol.request_started()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections pass through a :class:`Gate`."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        limits: ServerLimits,
        on_refused: Callable[[str], None],
        *,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        assert runner.server is not None
        self.gate = Gate(runner.server, limits, on_refused)
        self.host, self.requested_port = host, port

    @property
    def port(self) -> int:
        server = cast(asyncio.Server | None, self._server)
        sockets = server.sockets if server is not None else ()
        return int(sockets[0].getsockname()[1]) if sockets else self.requested_port

    @property
    def name(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.gate, self.host, self.requested_port, backlog=self._backlog
        )
