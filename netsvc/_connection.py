# One client connection as a plugin sees it: how a plugin reads from and
# writes to its client (the server itself only writes a refusal). It enforces
# the connection's deadlines (idle and request, from ConnectionLimits, as the
# plugin reports parsing with parsed()), serialises sends from several tasks,
# bounds how long a send may wait for a client that does not read, tells the
# plugin when the server is shutting down (still reading what the client had
# sent), and closes gracefully when the handler is done. A read idle for
# PARK_AFTER is moved to the parking (_parking.py) by the deadline watchdog.
# serve_inline() serves reads from the core's task (a second Parking, for
# inline waits) by the plugin's synchronous callback, handing back to
# receive() at anything receive() has a rule for. The limits and exceptions
# a plugin holds are plain classes in _limits.py.
from __future__ import annotations

import functools
import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import Any, ClassVar, Final

import trio
from trio._core._run import SystemClock  # trio's default clock: its offset + perf_counter()

from ._address import SocketAddress
from ._limits import ConnectionLimits, ConnectionLost, ReceiveTimeout, SendTimeout
from ._parking import CONTINUE, HANDOVER, PARK_AFTER
from ._socketstream import PARK, Interrupted, SocketStream, close_gracefully
from ._stats import Counters
from ._tls import PeerCertificate

__all__ = [
    "Connection",
    "ConnectionLimits",
    "ConnectionLost",
    "ReceiveTimeout",
    "SendTimeout",
    "Watchdog",
]

KiB = 1024

# The phases of a connection, which decide receive()'s deadline.
# Final: constants the compiled build reads without a lookup in the module's dict
IDLE: Final = "idle"
REQUEST: Final = "request"
BODY: Final = "body"
CLOSING: Final = "closing"  # the interrupt that ends an idle receive at shutdown
# At shutdown, what a connection between requests has already sent is still
# read and answered, up to this many bytes; then receive() returns b"".
SHUTDOWN_READ_LIMIT: Final = 256 * KiB

_LOG: Final = logging.getLogger("netsvc.connection")
# read twice per request: a Final name is a C static in the compiled build,
# where an imported function's name is a dict lookup at each call
_perf_counter: Final = time.perf_counter


class Watchdog:
    """Enforces every connection's deadlines from one task: each tick it
    interrupts the waits that are past their deadline, so the hot path of a
    connection only stores numbers (read from the clock as each wait starts:
    a reading cached by the tick would be as old as any busy stretch of the
    event loop, and cut the next wait that much early). Deadlines are kept to
    within one tick."""

    TICK: ClassVar[float] = 0.05  # seconds

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
    requests (`closing` then tells which). After feeding each read to its
    parser, the plugin calls `parsed(requests, partial=...)`, so the core can
    apply the right deadline:

    - idle (between requests): `receive()` waits at most `idle_timeout`; at
      shutdown it returns what the client already sent, then b"".
    - request (its first byte has arrived): it must be complete within
      `request_timeout` of that byte, however many reads it takes.
    - body (after `body_follows()`): a request body is streamed; each
      `receive()` waits at most `request_timeout` for progress and is not cut
      short by shutdown, until `parsed()` completes the request.

    Writing: `await send(data)` may be called from several tasks at once; a
    send that has not finished `send_timeout` after it was called (waiting for
    other senders included) breaks the connection.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        transport: SocketStream,
        watchdog: Watchdog,
        id: int,
        peer: SocketAddress,
        local: SocketAddress,
        proxy: SocketAddress | None = None,
        listener_url: str,
        tls: bool,
        limits: ConnectionLimits,
        counters: Counters,
        peer_certificate: PeerCertificate | None = None,
        tls_version: str | None = None,
        tls_context: Callable[[], ssl.SSLContext | None] | None = None,
    ) -> None:
        self.id = id
        self.peer = peer
        """The client's address (`str()` it for logs; `.host`, `.port`, `.is_loopback`)."""
        self.local = local
        """Our end's address: the listener's host and port, or Unix socket path
        (behind a PROXY protocol proxy: the address the client connected to)."""
        self.proxy = proxy
        """The proxy's address when a PROXY protocol header (a `+proxy` listener)
        gave `peer` and `local`; None for a direct connection."""
        self.listener_url = listener_url
        self.tls = tls
        self.peer_certificate = peer_certificate
        """The client's certificate (`.common_name`, `.subject`, `.pem`), verified
        against --ca-certs; None without TLS, or when it sent none."""
        self.tls_version = tls_version
        """The TLS version agreed on ("TLSv1.3"); None without TLS."""
        self.counters = counters
        self.idle_timeout = limits.idle_timeout
        self.request_timeout = limits.request_timeout
        self.send_timeout = limits.send_timeout
        self.receive_size = limits.receive_size
        self._handshake_timeout = limits.handshake_timeout
        self._tls_context = tls_context  # the listener's certificate, for start_tls()
        self.state: dict[str, Any] = {}
        """Free for the plugin: per-connection data it wants the core to carry."""
        self._stream = stream
        self._transport = transport
        self._watchdog = watchdog
        self._send_gate = _SendGate()
        self._closing = trio.Event()
        self._is_closing = False  # _closing.is_set(), read per request without a call
        self._clock: trio.abc.Clock | None = None  # trio's, once _now() has found it
        self._clock_offset: float | None = None  # its offset, if it is trio's SystemClock
        self._phase = IDLE
        self._request_started = 0.0
        self._read_while_closing = 0
        self._idle_wait = False  # receive() is waiting between requests
        self._receive_deadline = math.inf
        self._send_deadline = math.inf
        self._park_at = math.inf  # when an idle wait moves to the parking (see _parking)
        self.next_deadline = math.inf  # the earliest of the three, for the watchdog
        self._broken: str | None = None  # why sending is no longer possible
        self._eof = False  # the client's end (or its reset) was read: nothing to drain
        # when the idle wait that serve_inline() hands to receive() began: the
        # idle timeout counts from there, not from the hand-over
        self._idle_since: float | None = None
        self._inline_wait_started = 0.0
        self._inline_holds_gate = False  # _inline_ready took the send gate for this task
        self._log: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger that adds this connection's peer and id to each record."""
        if self._log is None:
            self._log = logging.LoggerAdapter(_LOG, {"peer": str(self.peer), "conn": self.id})
        return self._log

    def _now(self) -> float:
        """trio.current_time(), which finds trio's clock through a thread-local
        on each call: a connection finds it once (it is made outside trio in
        tests), then reads it directly, several times per request. trio's own
        clock is its offset plus perf_counter(), read here without the
        call into its Python method (about 1,000 instructions a read, two
        reads in a RESP GET's 31,500, compiled); any other clock (a test's
        MockClock) is asked."""
        offset = self._clock_offset
        if offset is not None:
            return offset + _perf_counter()
        clock = self._clock
        if clock is None:
            clock = self._clock = trio.lowlevel.current_clock()
            if type(clock) is SystemClock:
                self._clock_offset = clock.offset
        return clock.current_time()

    # -- deadlines (the watchdog's side) -------------------------------------

    def _set_deadlines(self, receive: float, send: float, park: float = math.inf) -> None:
        self._receive_deadline = receive
        self._send_deadline = send
        self._park_at = park
        # the earliest, twice per request: min() would box the floats and
        # make a call (about 1,800 instructions each, compiled; a GET is 31,500)
        soonest = receive if receive < send else send
        self.next_deadline = park if park < soonest else soonest

    def expire(self, now: float) -> None:
        """Called by the watchdog: interrupt the waits whose deadline has passed."""
        if self._receive_deadline <= now:
            self._transport.interrupt("read", "deadline")
            self._receive_deadline = math.inf
        if self._send_deadline <= now:
            self._transport.interrupt("write", "deadline")
            self._send_deadline = math.inf
        if self._park_at <= now:
            self._transport.interrupt("read", PARK)
            self._park_at = math.inf
        self.next_deadline = min(self._receive_deadline, self._send_deadline, self._park_at)

    # -- reading -------------------------------------------------------------

    def _receive_limit(self, phase: str, now: float) -> tuple[float | None, float]:
        """The limit that applies to a read in `phase` starting `now`, and
        its deadline: idle from now, a request from its first byte, a body's
        progress from now."""
        if phase == IDLE:
            limit = self.idle_timeout
            return limit, math.inf if limit is None else now + limit
        limit = self.request_timeout
        start = self._request_started if phase == REQUEST else now
        return limit, math.inf if limit is None else start + limit

    def _parking_time(self, now: float, deadline: float) -> float:
        """When an idle wait starting `now` moves to the parking: after
        PARK_AFTER, unless its deadline comes first (or nothing parks here)."""
        if self._transport.parking is not None and deadline > now + PARK_AFTER:
            return now + PARK_AFTER
        return math.inf

    async def receive(self, max_bytes: int | None = None) -> bytes:
        """The next bytes from the client; b"" at its end, or at shutdown
        between requests."""
        phase = self._phase
        now = self._now()
        park = math.inf
        since, self._idle_since = self._idle_since, None
        limit, deadline = self._receive_limit(phase, since if since is not None else now)
        if phase == IDLE:
            self._idle_wait = True
            park = self._parking_time(now, deadline)
        if phase != BODY and self._is_closing:
            return await self._receive_closing(phase, deadline, max_bytes)
        self._set_deadlines(deadline, self._send_deadline, park)
        try:
            data = await self._stream.receive_some(max_bytes or self.receive_size)
        except Interrupted as exc:
            if exc.reason == CLOSING or (phase == IDLE and self._is_closing):
                # woken for shutdown: what reached the socket meanwhile is still read
                self._idle_wait = False
                self._transport.disarm("read")
                return await self._receive_closing(phase, deadline, max_bytes)
            assert limit is not None
            raise _no_context(
                ReceiveTimeout("idle" if phase == IDLE else "request", limit)
            ) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._eof = True
            return b""  # a reset is the client's end too
        finally:
            self._idle_wait = False
            # an interrupt that came after the data did (in the checkpoint that
            # follows a read) was meant for this wait, not the next one
            self._transport.disarm("read")
            self._set_deadlines(math.inf, self._send_deadline)
        return self._received(phase, data, self._now())

    def _received(self, phase: str, data: bytes | bytearray, now: float) -> bytes:
        """Note what a read at `now` brought: the client's end, or a request's first bytes."""
        if not data:
            self._eof = True
        elif phase == IDLE:
            self._phase = REQUEST
            self._request_started = now
        return data if type(data) is bytes else bytes(data)  # a TLS read's bytearray

    async def _receive_closing(self, phase: str, deadline: float, max_bytes: int | None) -> bytes:
        """receive() once the connection is closing, outside a body: what the
        client sent before it saw us close is still answered, up to
        SHUTDOWN_READ_LIMIT bytes. Between requests that is only what is
        already here (no waiting); a request in flight may finish arriving."""
        left = SHUTDOWN_READ_LIMIT - self._read_while_closing
        if left <= 0:
            return b""
        self._idle_wait = False
        if phase == IDLE:
            self._transport.interrupt("read", CLOSING)  # take what is here, do not wait
        self._set_deadlines(deadline, self._send_deadline)
        try:
            data = await self._stream.receive_some(min(left, max_bytes or self.receive_size))
        except Interrupted as exc:
            if exc.reason == CLOSING:
                return b""
            raise _no_context(ReceiveTimeout(phase, self.request_timeout or 0.0)) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._eof = True
            return b""
        finally:
            self._transport.disarm("read")  # TLS may have answered from its buffer
            self._set_deadlines(math.inf, self._send_deadline)
        self._read_while_closing += len(data)
        return self._received(phase, data, self._now())

    async def serve_inline(self, on_data: Callable[[bytes], bytes | None]) -> bool:
        """Serve the client from the core's own task, without waking this one:
        each read is passed to `on_data`, and what it returns is sent (b"":
        nothing), until `on_data` returns None for a read that needs this
        task (a command that waits, say): then this returns True, and the
        plugin goes on from where `on_data` left off. It returns False when
        the core needs this task instead, before reading more: at a deadline,
        at shutdown, at the client's end, while another task sends, over TLS
        or in a body (and where the OS has no epoll): go on with receive(),
        which applies the same rules as ever (a ReceiveTimeout, what is read
        at shutdown, b"" at the end). The bytes `on_data` returns that the
        client's socket cannot take at once are sent from this task, within
        the send timeout, before serving inline goes on.

        A request then costs no task switch: one trip through the scheduler
        serves a batch of ready connections. `on_data` runs in the core's
        task: it must not block, and must call parsed() as after any read;
        an exception it raises is raised here."""
        inline = self._transport.inline
        if inline is None or self._stream is not self._transport:
            return False
        ready = functools.partial(self._inline_ready, on_data)
        self._idle_since = None
        while True:
            if (
                not inline.open
                or self._broken is not None
                or self._is_closing
                or self._phase == BODY
                or self._transport.interrupted("read")  # a deadline, CLOSING, PARK
            ):
                return False
            self._arm_inline_wait(self._now())
            result: object = None
            try:
                result = await inline.serve_inline(self._transport.socket, ready)
            finally:
                self._idle_wait = False
                self._set_deadlines(math.inf, self._send_deadline)
                if self._inline_holds_gate and not isinstance(result, bytes):
                    # the rest of a reply never reached this task (cancelled): let others send
                    self._inline_holds_gate = False
                    self._send_gate.release()
            if result is None:
                if self._phase == IDLE:  # receive() goes on with the same idle wait
                    self._idle_since = self._inline_wait_started
                return False
            self._transport.disarm("read")  # an interrupt after the data was for that wait
            if result is HANDOVER:
                return True
            assert isinstance(result, bytes)
            # what the socket could not take at once: _inline_ready kept the
            # send gate, so that no other task's send comes in between
            self._inline_holds_gate = False
            await self._send_holding_gate(result, self._now())

    def _arm_inline_wait(self, now: float) -> None:
        """Set the deadlines of the next read, starting `now`, as receive()
        would: a client idle for PARK_AFTER leaves the inline set for the
        parking (through receive(), which the interrupt makes serve_inline()
        hand over to)."""
        phase = self._phase
        _, deadline = self._receive_limit(phase, now)
        park = self._parking_time(now, deadline) if phase == IDLE else math.inf
        self._idle_wait = phase == IDLE  # shutdown interrupts an idle wait only
        self._inline_wait_started = now
        self._set_deadlines(deadline, self._send_deadline, park)

    def _inline_ready(self, on_data: Callable[[bytes], bytes | None]) -> object:
        """One read served inline (the parking's task calls it when the
        socket is readable): CONTINUE, or what ends serve_inline()'s wait."""
        transport = self._transport
        if (
            self._is_closing
            or self._send_gate.busy
            or self._broken is not None
            or transport.interrupted("read")
        ):
            return None  # receive() takes it from here, with its rules
        try:
            data = transport.socket.recv(self.receive_size)
        except BlockingIOError:
            return CONTINUE
        except OSError:
            return None  # a reset: receive() reads the end
        if not data:
            return None  # the client's end, which receive() reads again
        now = self._now()
        self._received(self._phase, data, now)
        self._set_deadlines(math.inf, self._send_deadline)  # data came: that wait is over
        reply = on_data(data)
        if reply is None:
            return HANDOVER  # and nothing else is read until this task has run
        if reply:
            sent = transport.send_now(reply)
            if sent < len(reply):
                self._send_gate.busy = True  # serve_inline() sends the rest, holding it
                self._inline_holds_gate = True
                return reply[sent:]
        if self._phase == BODY or self._is_closing:
            return None
        self._arm_inline_wait(self._now())  # idle from the reply, not the read (a slow command)
        return CONTINUE

    def parsed(self, requests: int, *, partial: bool) -> None:
        """Tell the core what the parser made of the bytes received so far:
        `requests` more requests are complete (counted in the listener's
        counters, whether or not they get a reply), and `partial` says whether
        it holds the start of another. Call it after every read you feed in.

        A request's deadline runs from its first byte to its completion,
        however many reads that takes: a partial request left over by reads
        that completed nothing keeps its deadline; after completed ones, the
        next starts now; with nothing partial the connection is idle.
        """
        if requests:
            self.counters.request(requests)
            if partial:
                self._phase = REQUEST
                self._request_started = self._now()
            else:
                self._phase = IDLE  # no request under way: no clock to read
        elif not partial:
            self._phase = IDLE
        elif self._phase == IDLE:  # bytes that start no request yet (rare: a plugin's own framing)
            self._phase = REQUEST
            self._request_started = self._now()

    def body_follows(self) -> None:
        """The request whose head was just parsed has a body to stream: each
        receive() now waits at most `request_timeout` for progress, and
        shutdown does not cut it short, until `parsed()` completes it."""
        self._phase = BODY

    @property
    def in_request(self) -> bool:
        """True from a request's first byte until `parsed()` says it is done."""
        return self._phase != IDLE

    # -- STARTTLS --------------------------------------------------------------

    @property
    def can_start_tls(self) -> bool:
        """True if start_tls() can work: not TLS yet, and the server has a
        certificate (--certfile) for this plain listener."""
        return not self.tls and self._tls_context is not None and self._tls_context() is not None

    async def start_tls(self) -> None:
        """Switch this connection to TLS now: the protocol has agreed on it
        (XMPP's <proceed/>, SMTP's 220 after STARTTLS) and the client's next
        bytes are a TLS handshake, made with the server's certificate and
        client-certificate settings. Call it from the task that receives, with
        nothing of the client's left unparsed: bytes that came before the
        handshake are plaintext an attacker may have injected. Waits for other
        tasks' sends to finish; the handshake must finish within the
        listener's handshake timeout. Then `tls`, `peer_certificate` and
        `tls_version` describe it. A failed handshake breaks the connection:
        ConnectionLost, with the reason."""
        context = self._tls_context() if self._tls_context is not None else None
        if self.tls or context is None:
            raise RuntimeError("start_tls() needs a plain connection and a certificate")
        if self._broken is not None:
            raise ConnectionLost(self._broken)
        await self._send_gate.acquire()
        try:
            stream = trio.SSLStream(self._transport, context, server_side=True)
            with trio.fail_after(self._handshake_timeout):
                await stream.do_handshake()
        except trio.TooSlowError:
            self._broken = f"no TLS handshake within {self._handshake_timeout:g}s"
            raise _no_context(ConnectionLost(self._broken)) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, Interrupted) as exc:
            self._broken = f"TLS handshake failed: {exc.__cause__ or exc or 'lost'}"
            raise _no_context(ConnectionLost(self._broken)) from None
        finally:
            self._transport.disarm("read")
            self._transport.disarm("write")
            self._send_gate.release()
        self._stream = stream
        self.tls = True
        self.peer_certificate = PeerCertificate.of(stream)
        self.tls_version = stream.version()

    # -- writing -------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Send all of `data`. The send must finish within `send_timeout` of
        this call, time spent waiting for other tasks' sends included; one
        that does not leaves the stream cut mid-message, so the connection is
        broken: this send raises SendTimeout and every later one ConnectionLost.
        """
        if self._broken is not None:
            raise self._lost_before_sending()
        called = self._now()
        await self._send_gate.acquire()
        await self._send_holding_gate(data, called)

    async def _send_holding_gate(self, data: bytes, called: float) -> None:
        """send(), once the send gate is this send's (called at `called`);
        releases the gate."""
        if self._broken is not None:  # broken while this send waited for its turn
            self._send_gate.release()
            raise self._lost_before_sending()
        try:
            limit = self.send_timeout
            # Senders queue in call order, so the one sending has the earliest
            # deadline; a sender whose deadline passed in the queue is
            # interrupted at its first wait.
            deadline = math.inf if limit is None else called + limit
            self._set_deadlines(self._receive_deadline, deadline, self._park_at)
            before = self._transport.bytes_sent
            await self._stream.send_all(data)
        except Interrupted:
            self._broken = f"a send did not finish within {self.send_timeout:g}s"
            timeout = SendTimeout(f"{self._broken} (the client is not reading)")
            timeout.sent = self._sent_since(before)
            raise _no_context(timeout) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._broken = str(exc) or "connection lost"
            lost = ConnectionLost(self._broken)
            lost.sent = self._sent_since(before)
            lost.__cause__ = exc  # as `from exc` does, which mypyc's compiled raise ignores
            raise lost from exc
        except BaseException:
            # cancelled: part of `data` may have gone out, and nothing may follow it
            self._broken = "a send was cancelled"
            raise
        finally:
            self._transport.disarm("write")  # a deadline that passed as the send finished
            self._set_deadlines(self._receive_deadline, math.inf, self._park_at)
            self._send_gate.release()

    def _lost_before_sending(self) -> ConnectionLost:
        lost = ConnectionLost(self._broken)
        lost.sent = 0
        return lost

    def _sent_since(self, before: int) -> int | None:
        """Bytes of a failed send that went out: known on plain sockets only
        (over TLS, what goes out is records, not the data)."""
        return self._transport.bytes_sent - before if self._stream is self._transport else None

    async def aclose(self, linger: float, linger_bytes: int) -> None:
        """Close gracefully (the server calls this when the handler returns).

        Waits for other tasks' sends to finish, then closes our side (TLS:
        close_notify first) and drains what the client still sends, for up to
        `linger` seconds in all, so the kernel does not answer it with a
        reset that would destroy our last reply.
        """
        if self._eof and self._stream is self._transport and not self._send_gate.busy:
            # plain TCP, the client has finished and all it sent was read:
            # nothing can make a reset, so close at once (10,000 clients that
            # leave together must not cost the server rounds of scheduling each)
            self._broken = self._broken or "the connection is closed"
            self._transport.close_now()
            return
        with trio.move_on_after(linger):
            await self._send_gate.acquire()
            try:
                if self._broken is None:
                    self._broken = "the connection is closed"
                    await close_gracefully(self._stream, self._transport, linger_bytes)
            finally:
                self._send_gate.release()
        self._transport.close_now()  # TLS's state goes with its socket

    # -- shutdown ------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once the server has started shutting down (or the connection
        was asked to end with begin_closing())."""
        return self._is_closing

    async def wait_closing(self) -> None:
        """Wait until the server starts shutting down."""
        await self._closing.wait()

    def begin_closing(self) -> None:
        """Ask this connection to end gracefully, as at shutdown: a receive()
        between requests returns what the client already sent (up to
        SHUTDOWN_READ_LIMIT bytes), then b"". The server calls it at shutdown."""
        self._is_closing = True
        self._closing.set()
        if self._idle_wait:
            self._transport.interrupt("read", CLOSING)

    def disconnect(self) -> None:
        """End this connection now (CLIENT KILL, a client too slow to keep):
        receive() returns b"" from now on, in a request or not, without
        reading more. Sends still work, for a last word."""
        self._read_while_closing = SHUTDOWN_READ_LIMIT
        self._phase = IDLE
        self._is_closing = True
        self._closing.set()
        self._transport.interrupt("read", CLOSING)


def _no_context(exc: Exception) -> Exception:
    """`exc`, raised `from None`, as the pure build raises it: mypyc's compiled
    raise ignores `from`, and would show the exception being handled (an
    internal Interrupted, or trio's error at a TLS handshake) as its context
    in a logged traceback."""
    exc.__cause__ = None  # sets __suppress_context__ too
    return exc


class _SendGate:
    """A lock for sends whose uncontended acquire does not yield to the
    scheduler (trio.Lock's does, which costs a scheduling round per send);
    send_all itself is the checkpoint."""

    __slots__ = ("_waiters", "busy")

    def __init__(self) -> None:
        self.busy = False
        self._waiters: trio.lowlevel.ParkingLot | None = None

    async def acquire(self) -> None:
        if self.busy:
            if self._waiters is None:
                self._waiters = trio.lowlevel.ParkingLot()
            await self._waiters.park()  # release() hands the gate over: still busy
            return
        self.busy = True

    def release(self) -> None:
        if self._waiters:  # to the next in line, so none can barge in: call order holds
            self._waiters.unpark()
        else:
            self.busy = False
