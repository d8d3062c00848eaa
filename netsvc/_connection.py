# One client connection as a plugin sees it: the only place that reads from
# and writes to a client's stream. It enforces the connection's deadlines (idle
# and request, from ConnectionLimits), serialises sends from several tasks,
# bounds how long a send may wait for a client that does not read, and tells
# the plugin when the server is shutting down.
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import trio

from ._stats import Counters

__all__ = [
    "Connection",
    "ConnectionLimits",
    "ConnectionLost",
    "ReceiveTimeout",
    "SendTimeout",
]

KiB = 1024
SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """What the core enforces on every connection of a listener.

    A plugin gives its defaults (`Protocol.limits`); the CLI can override each.
    `None` means no limit.
    """

    max_connections: int = 1024
    """Open connections per listener; more are refused with the plugin's message."""
    idle_timeout: float | None = 300 * SECONDS
    """How long a connection may sit between requests."""
    request_timeout: float | None = 30 * SECONDS
    """How long a request may take to arrive once its first byte has."""
    send_timeout: float | None = 30 * SECONDS
    """How long one send may wait for a client that does not read."""
    handshake_timeout: float = 10 * SECONDS
    """How long a TLS handshake may take."""
    receive_size: int = 64 * KiB
    """The most bytes one receive() returns."""

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")
        if self.receive_size < 1:
            raise ValueError(f"receive_size must be at least 1, got {self.receive_size}")
        for name in ("idle_timeout", "request_timeout", "send_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value}")


class ReceiveTimeout(Exception):
    """receive() waited past a deadline: `phase` is "idle" or "request"."""

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(
            f"no complete {'request' if phase == 'request' else 'data'} in {seconds:g}s"
        )
        self.phase = phase
        self.seconds = seconds


class SendTimeout(Exception):
    """send() could not hand its data to a client that stopped reading."""


class ConnectionLost(Exception):
    """The client went away while we were sending."""


class Connection:
    """A client connection, handed to `Service.handle`.

    Reading: `await receive()` returns bytes, or b"" when the client closed its
    side or when the server is shutting down and the connection is between
    requests (`closing` then tells which). Call `request_complete()` each time
    a whole request has been parsed, so the request deadline stops and the idle
    one starts.

    Writing: `await send(data)` may be called from several tasks at once.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        id: int,
        peer: str,
        listener_url: str,
        tls: bool,
        limits: ConnectionLimits,
        counters: Counters,
    ) -> None:
        self.id = id
        self.peer = peer
        self.listener_url = listener_url
        self.tls = tls
        self.counters = counters
        self.idle_timeout = limits.idle_timeout
        self.request_timeout = limits.request_timeout
        self.send_timeout = limits.send_timeout
        self.receive_size = limits.receive_size
        self.log = logging.LoggerAdapter(
            logging.getLogger("netsvc.connection"), {"peer": peer, "conn": id}
        )
        self.state: dict[str, Any] = {}
        """Free for the plugin: per-connection data it wants the core to carry."""
        self._stream = stream
        self._send_lock = trio.Lock()
        self._closing = trio.Event()
        self._idle_since = trio.current_time()
        self._request_started: float | None = None
        self._idle_scope: trio.CancelScope | None = None

    # -- reading -------------------------------------------------------------

    async def receive(self, max_bytes: int | None = None) -> bytes:
        """The next bytes from the client; b"" at its end or at shutdown."""
        size = max_bytes or self.receive_size
        if self._request_started is None:
            return await self._receive_idle(size)
        deadline = _deadline(self._request_started, self.request_timeout)
        with trio.move_on_at(deadline):
            return await self._receive_some(size)
        assert self.request_timeout is not None
        raise ReceiveTimeout("request", self.request_timeout)

    async def _receive_idle(self, size: int) -> bytes:
        if self._closing.is_set():
            return b""
        with trio.CancelScope(deadline=_deadline(self._idle_since, self.idle_timeout)) as scope:
            self._idle_scope = scope
            try:
                data = await self._receive_some(size)
            finally:
                self._idle_scope = None
            if data:
                self._request_started = trio.current_time()
            return data
        if self._closing.is_set():
            return b""
        assert self.idle_timeout is not None
        raise ReceiveTimeout("idle", self.idle_timeout)

    async def _receive_some(self, size: int) -> bytes:
        try:
            return bytes(await self._stream.receive_some(size))
        except trio.BrokenResourceError:
            return b""  # a reset is the client's end too

    def request_complete(self, *, more_buffered: bool = False) -> None:
        """A whole request has been received.

        With `more_buffered`, the plugin already holds the start of the next
        request, so its deadline starts now; otherwise the connection is idle.
        """
        now = trio.current_time()
        if more_buffered:
            self._request_started = now
        else:
            self._request_started = None
            self._idle_since = now

    @property
    def in_request(self) -> bool:
        """True between a request's first byte and request_complete()."""
        return self._request_started is not None

    # -- writing -------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Send all of `data`, waiting at most `send_timeout` for the client."""
        async with self._send_lock:
            with trio.move_on_after(_or_inf(self.send_timeout)):
                try:
                    await self._stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    raise ConnectionLost(str(exc) or "connection lost") from exc
                return
        raise SendTimeout(f"client read nothing for {self.send_timeout:g}s")

    # -- shutdown ------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once the server has started shutting down."""
        return self._closing.is_set()

    async def wait_closing(self) -> None:
        """Wait until the server starts shutting down."""
        await self._closing.wait()

    def begin_closing(self) -> None:
        """Called by the server: wake an idle receive() so it returns b""."""
        self._closing.set()
        if self._idle_scope is not None:
            self._idle_scope.cancel()


def _or_inf(seconds: float | None) -> float:
    return math.inf if seconds is None else seconds


def _deadline(start: float, seconds: float | None) -> float:
    return math.inf if seconds is None else start + seconds
