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

from ._socketstream import Interrupted, SocketStream
from ._stats import Counters

__all__ = [
    "Connection",
    "ConnectionLimits",
    "ConnectionLost",
    "ReceiveTimeout",
    "SendTimeout",
    "Watchdog",
]

KiB = 1024
SECONDS = 1.0

# The phases of a connection, which decide receive()'s deadline.
IDLE, REQUEST, BODY = "idle", "request", "body"
CLOSING = "closing"  # the interrupt that ends an idle receive at shutdown

_LOG = logging.getLogger("netsvc.connection")


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


class Watchdog:
    """Enforces every connection's deadlines from one task: each tick it reads
    the clock once and interrupts the waits that are past their deadline, so
    the hot path of a connection only stores numbers. Deadlines are kept to
    within one tick."""

    TICK = 0.05  # seconds

    def __init__(self) -> None:
        self.now = 0.0  # trio's clock, read each tick; set when run() starts
        self.connections: set[Connection] = set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.now = trio.current_time()
        task_status.started()
        while True:
            await trio.sleep(self.TICK)
            self.now = now = trio.current_time()
            for conn in self.connections:
                if conn.next_deadline <= now:
                    conn.expire(now)


class Connection:
    """A client connection, handed to `Service.handle`.

    Reading: `await receive()` returns bytes, or b"" when the client closed its
    side or when the server is shutting down and the connection is between
    requests (`closing` then tells which). The plugin marks request
    boundaries so the core can apply the right deadline:

    - idle (between requests): `receive()` waits at most `idle_timeout` and
      returns b"" at shutdown; its first bytes start a request.
    - request (its first byte has arrived): it must be complete within
      `request_timeout` of that byte; `request_complete()` ends it.
    - body (after `request_complete(body_follows=True)`): a request body is
      streamed; each `receive()` waits at most `request_timeout` for progress
      and is not cut short by shutdown. `request_complete()` ends it.

    Writing: `await send(data)` may be called from several tasks at once; one
    send that cannot finish within `send_timeout` breaks the connection.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        transport: SocketStream,
        watchdog: Watchdog,
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
        self.state: dict[str, Any] = {}
        """Free for the plugin: per-connection data it wants the core to carry."""
        self._stream = stream
        self._transport = transport
        self._watchdog = watchdog
        self._send_gate = _SendGate()
        self._closing = trio.Event()
        self._phase = IDLE
        self._request_started = 0.0
        self._idle_wait = False  # receive() is waiting between requests
        self._receive_deadline = math.inf
        self._send_deadline = math.inf
        self.next_deadline = math.inf  # the earlier of the two, for the watchdog
        self._broken: str | None = None  # why sending is no longer possible
        self._log: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger that adds this connection's peer and id to each record."""
        if self._log is None:
            self._log = logging.LoggerAdapter(_LOG, {"peer": self.peer, "conn": self.id})
        return self._log

    # -- deadlines (the watchdog's side) -------------------------------------

    def _set_deadlines(self, receive: float, send: float) -> None:
        self._receive_deadline = receive
        self._send_deadline = send
        self.next_deadline = min(receive, send)

    def expire(self, now: float) -> None:
        """Called by the watchdog: interrupt the waits whose deadline has passed."""
        if self._receive_deadline <= now:
            self._transport.interrupt("read", "deadline")
            self._receive_deadline = math.inf
        if self._send_deadline <= now:
            self._transport.interrupt("write", "deadline")
            self._send_deadline = math.inf
        self.next_deadline = min(self._receive_deadline, self._send_deadline)

    # -- reading -------------------------------------------------------------

    async def receive(self, max_bytes: int | None = None) -> bytes:
        """The next bytes from the client; b"" at its end, or at shutdown
        between requests."""
        phase = self._phase
        now = self._watchdog.now
        if phase == IDLE:
            if self._closing.is_set():
                return b""
            limit = self.idle_timeout
            deadline = math.inf if limit is None else now + limit
            self._idle_wait = True
        else:
            limit = self.request_timeout
            start = self._request_started if phase == REQUEST else now
            deadline = math.inf if limit is None else start + limit
        self._set_deadlines(deadline, self._send_deadline)
        try:
            data = await self._stream.receive_some(max_bytes or self.receive_size)
        except Interrupted as exc:
            if exc.reason == CLOSING or (phase == IDLE and self._closing.is_set()):
                return b""
            assert limit is not None
            raise ReceiveTimeout("idle" if phase == IDLE else "request", limit) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""  # a reset is the client's end too
        finally:
            self._idle_wait = False
            self._set_deadlines(math.inf, self._send_deadline)
        if phase == IDLE and data:
            self._phase = REQUEST
            self._request_started = self._watchdog.now
        return bytes(data)

    def request_complete(self, *, more_buffered: bool = False, body_follows: bool = False) -> None:
        """A whole request (or its head, with `body_follows`) has been received.

        With `more_buffered`, the plugin already holds the start of the next
        request, so its deadline starts now; otherwise the connection is idle.
        """
        if body_follows:
            self._phase = BODY
        elif more_buffered:
            self._phase = REQUEST
            self._request_started = self._watchdog.now
        else:
            self._phase = IDLE

    @property
    def in_request(self) -> bool:
        """True from a request's first byte until request_complete()."""
        return self._phase != IDLE

    # -- writing -------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Send all of `data`. The send must finish within `send_timeout` of
        getting its turn (other tasks may be sending); one that does not leaves
        the stream cut mid-message, so the connection is broken: this send
        raises SendTimeout and every later one ConnectionLost."""
        if self._broken is not None:
            raise ConnectionLost(self._broken)
        await self._send_gate.acquire()
        try:
            if self._broken is not None:
                raise ConnectionLost(self._broken)
            limit = self.send_timeout
            deadline = math.inf if limit is None else self._watchdog.now + limit
            self._set_deadlines(self._receive_deadline, deadline)
            await self._stream.send_all(data)
        except Interrupted:
            self._broken = f"a send did not finish within {self.send_timeout:g}s"
            raise SendTimeout(f"{self._broken} (the client is not reading)") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._broken = str(exc) or "connection lost"
            raise ConnectionLost(self._broken) from exc
        finally:
            self._set_deadlines(self._receive_deadline, math.inf)
            self._send_gate.release()

    async def aclose(self, linger: float, linger_bytes: int) -> None:
        """Close gracefully (the server calls this when the handler returns).

        Waits for other tasks' sends to finish, then shuts down our side and
        drains what the client still sends for up to `linger` seconds, so the
        kernel does not answer it with a reset that would destroy our last reply.
        """
        with trio.move_on_after(linger):
            await self._send_gate.acquire()
            try:
                if self._broken is None:
                    self._broken = "the connection is closed"
                    await close_gracefully(self._stream, linger_bytes)
            finally:
                self._send_gate.release()
        await trio.aclose_forcefully(self._stream)

    # -- shutdown ------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once the server has started shutting down (or the connection
        was asked to end with begin_closing())."""
        return self._closing.is_set()

    async def wait_closing(self) -> None:
        """Wait until the server starts shutting down."""
        await self._closing.wait()

    def begin_closing(self) -> None:
        """Ask this connection to end: a receive() waiting between requests
        returns b"" now and later ones at once. The server calls it at
        shutdown; a plugin may call it to disconnect a client (CLIENT KILL)."""
        self._closing.set()
        if self._idle_wait:
            self._transport.interrupt("read", CLOSING)


class _SendGate:
    """A lock for sends whose uncontended acquire does not yield to the
    scheduler (trio.Lock's does, which costs a scheduling round per send);
    send_all itself is the checkpoint."""

    __slots__ = ("_busy", "_waiters")

    def __init__(self) -> None:
        self._busy = False
        self._waiters: trio.lowlevel.ParkingLot | None = None

    async def acquire(self) -> None:
        while self._busy:
            if self._waiters is None:
                self._waiters = trio.lowlevel.ParkingLot()
            await self._waiters.park()
        self._busy = True

    def release(self) -> None:
        self._busy = False
        if self._waiters:
            self._waiters.unpark()


async def close_gracefully(stream: trio.abc.Stream, linger_bytes: int) -> None:
    """Shut down our side, drain up to `linger_bytes` the client still sends,
    close. The caller bounds the time."""
    try:
        if isinstance(stream, trio.SocketStream):
            await stream.send_eof()
            drained = 0
            while drained < linger_bytes:
                data = await stream.receive_some(65536)
                if not data:
                    break
                drained += len(data)
        await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
        pass
