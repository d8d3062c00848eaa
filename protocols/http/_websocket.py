# WebSockets (RFC 6455) on a connection the HTTP driver has upgraded, driven
# by wsproto, the sans-IO WebSocket core of the h11 family. This module owns
# the handshake's check and answer (101, or a refusal in HTTP), frames in from
# Connection.receive() and out through Connection.send(), messages reassembled
# and bounded in size, the inbox of messages the handler has not read yet
# (bounded in count and bytes, with the client's end still watched for while
# it is full), ping/pong keepalive, the closing handshake, a 1001 close at
# shutdown, and the WebSocket object a handler drives (the ASGI adaptor in
# _asgi.py drives the same object).
from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Protocol

import h11
import trio
import wsproto
import wsproto.utilities
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    TextMessage,
)
from wsproto.events import Request as Offer
from wsproto.extensions import Extension, PerMessageDeflate

from netsvc import Connection, ConnectionLost, SendTimeout

from ._messages import Headers, Request, Response
from ._settings import HttpSettings

__all__ = [
    "BadHandshake",
    "WebSocket",
    "WebSocketDisconnect",
    "open_websocket",
    "wants_websocket",
]

# Close codes (RFC 6455 section 7.4.1)
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
ABNORMAL_CLOSURE = 1006  # never sent: the connection ended without a close frame
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
# the codes RFC 6455 defines for an endpoint to send; 3000-4999 are the applications'
SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})

MAX_QUEUE = 16  # messages received but not yet read by the handler (see _Inbox)
# bytes handed to wsproto at a time: with permessage-deflate, what one feed can
# inflate to before the size limit is checked again is bounded by about 1000x this
FEED_SIZE = 16 * 1024
# While the handler lags (its inbox has no room), the reader still reads up
# to this much more from the socket, kept as it came (neither parsed nor
# inflated), to see the client's end (EOF, reset) as the HTTP driver's watch
# does (its PIPELINE_LIMIT): a client that leaves with no more than this
# unread is seen leaving at once. But a client's end that comes after more
# (one that sent until TCP pushed back, then closed) cannot be read without
# reading all that, so
READ_AHEAD = 64 * 1024
# ...while it lags, an unsolicited pong (RFC 6455 5.5.3: a heartbeat that
# needs no answer) goes to the client at most this often, seconds: the kernel
# of a client that has closed its socket answers it with a reset, and the
# next one fails, which ends the WebSocket (1006) within about twice this.
PROBE_INTERVAL = 1.0


class WebSocketDisconnect(Exception):
    """The WebSocket is closed. `code` and `reason` come from the close frame
    that ended it, whichever side sent it first; 1006 when the connection was
    lost without one (or the handshake was refused)."""

    def __init__(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class _Inbox:
    """The messages received and not yet read by the handler, bounded twice:
    MAX_QUEUE messages, and `max_bytes` bytes in all (ws-max-message-size:
    one message of the largest size), each message counted by its decoded
    size (text by its UTF-8 bytes). What the byte bound buys: a handler that
    reads slowly, or never, holds one max-size message's worth per
    connection, not MAX_QUEUE of them (with permessage-deflate, 16 x 16 MiB
    from a few hundred KB on the wire). The reader asks fits() before it
    puts a message, or reads on with part of one, and waits for room
    otherwise, so that TCP pushes back on the client; an empty inbox always
    has room. Like a trio memory channel, except for the byte bound: once
    closed, get() returns what is left, then raises EndOfChannel."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0  # the decoded bytes of the messages held
        self.closed = False
        self._messages: deque[tuple[str | bytes, int]] = deque()
        self._handler = trio.lowlevel.ParkingLot()  # receive() waiting for a message
        self._reader = trio.lowlevel.ParkingLot()  # the reader waiting for room

    def fits(self, size: int) -> bool:
        """There is room for a message of `size` bytes."""
        messages = self._messages
        return not messages or (len(messages) < MAX_QUEUE and self.size + size <= self.max_bytes)

    async def wait_for_room(self, size: int) -> None:
        """Wait until fits(size), or the inbox is closed."""
        while not (self.closed or self.fits(size)):
            await self._reader.park()

    def put(self, message: str | bytes, size: int) -> None:
        self._messages.append((message, size))
        self.size += size
        if self._handler:
            self._handler.unpark()

    def get_nowait(self) -> str | bytes:
        """The oldest message; trio.WouldBlock if there is none, and
        trio.EndOfChannel if there is none and never will be."""
        if not self._messages:
            raise trio.EndOfChannel if self.closed else trio.WouldBlock
        message, size = self._messages.popleft()
        self.size -= size
        if self._reader:
            self._reader.unpark()  # it checks fits() again
        return message

    async def get(self) -> str | bytes:
        while True:
            try:
                return self.get_nowait()
            except trio.WouldBlock:
                await self._handler.park()

    def close(self) -> None:
        """No more messages: get() raises EndOfChannel once the inbox is empty."""
        self.closed = True
        self._handler.unpark_all()
        self._reader.unpark_all()


class BadHandshake(Exception):
    """A WebSocket upgrade request that RFC 6455 does not allow: answered
    with `status` (400, or 426 for another protocol version) and `headers`."""

    def __init__(
        self, message: str, status: int = 400, headers: Iterable[tuple[bytes, bytes]] = ()
    ):
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


class Responder(Protocol):
    """How a refused handshake is answered: the HTTP driver's response path."""

    async def start_response(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...

    async def send_body(self, chunk: bytes, *, more: bool, head: bool) -> None: ...

    async def send_error(self, status: int, message: str) -> None: ...


def wants_websocket(http_version: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """The request asks to switch to WebSocket: HTTP/1.1 with `Upgrade:
    websocket` and `Connection: upgrade`, the test uvicorn makes. Whether the
    rest of the handshake is valid is wsproto's to say (open_websocket)."""
    if http_version != b"1.1":
        return False
    upgrade = connection_upgrade = False
    for name, value in headers:
        if name == b"upgrade":
            upgrade = upgrade or value.strip().lower() == b"websocket"
        elif name == b"connection":
            tokens = (token.strip().lower() for token in value.split(b","))
            connection_upgrade = connection_upgrade or b"upgrade" in tokens
    return upgrade and connection_upgrade


def open_websocket(
    request: Request,
    *,
    conn: Connection,
    settings: HttpSettings,
    responder: Responder,
    trailing_data: bytes,
    answered: Callable[[int], None],
) -> WebSocket:
    """Check an upgrade request's handshake (raising BadHandshake) and make
    the WebSocket a handler will accept or refuse. `trailing_data` is what
    the client sent after the request head (frames, if it did not wait for
    the 101); `answered(status)` is called once the handshake is answered."""
    if request.method != "GET":
        raise BadHandshake("a WebSocket handshake is a GET request")
    handshake = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    try:
        handshake.initiate_upgrade_connection(request.headers.raw, request.target)
        events = list(handshake.events())
    except wsproto.utilities.RemoteProtocolError as exc:
        hint = exc.event_hint  # the refusal wsproto suggests: 400, or 426 and its version
        if not isinstance(hint, RejectConnection) or hint.status_code != 426:
            raise BadHandshake(f"bad WebSocket handshake: {exc}") from None
        headers = [(bytes(name), bytes(value)) for name, value in hint.headers]
        raise BadHandshake("this server speaks WebSocket version 13 only", 426, headers) from None
    except (UnicodeError, h11.ProtocolError) as exc:  # a Host or target wsproto cannot decode
        raise BadHandshake(f"bad WebSocket handshake: {exc}") from None
    (offer,) = events
    assert isinstance(offer, Offer)
    return WebSocket(request, offer, handshake, conn, settings, responder, trailing_data, answered)


class WebSocket:
    """One WebSocket, as a handler sees it:

        @app.websocket("/echo")
        async def echo(ws):
            await ws.accept()
            async for message in ws:  # str (text) or bytes (binary)
                await ws.send(message)

    `receive()` and `send()` raise WebSocketDisconnect (with the close code)
    once the WebSocket is closed; `async for` just ends. A handler that
    returns without accepting refuses the handshake with 403 (or with its
    own response: `deny()`); one that returns while the WebSocket is open
    closes it with 1000; one that raises closes it with 1011 (500 before
    accepting). The server answers pings, sends its own (ws-ping-interval),
    and closes with 1001 at shutdown.

    Messages wait for the handler up to 16 of them, and up to
    ws-max-message-size bytes in all; past that the server reads no more,
    and TCP slows the client down. A client that leaves meanwhile is still
    noticed (1006, after the messages already waiting).
    """

    def __init__(
        self,
        request: Request,
        offer: Offer,
        handshake: wsproto.WSConnection,
        conn: Connection,
        settings: HttpSettings,
        responder: Responder,
        trailing_data: bytes,
        answered: Callable[[int], None],
    ) -> None:
        self.request = request
        """The handshake request: path, query, headers, peer, path_params, state."""
        self.subprotocols: list[str] = list(offer.subprotocols)
        """The subprotocols the client offered, in its order of preference."""
        self.subprotocol: str | None = None
        """The subprotocol accept() chose."""
        self.close_code: int | None = None
        """How the WebSocket ended (None while it has not): see WebSocketDisconnect."""
        self.close_reason = ""
        self._ws = handshake
        self._conn = conn
        self._settings = settings
        self._responder = responder
        self._trailing = trailing_data
        self._answered_callback = answered
        self._answered = False  # accepted or refused (or the refusal has started)
        self._handshake_done = trio.Event()  # the answer is complete
        self._accepted = False
        self._denial_status: int | None = None  # while a refusal's body is being sent
        self._closed = trio.Event()  # closed, either way: no more messages either way
        self._inbox = _Inbox(settings.ws_max_message_size)
        # the message being reassembled from fragments, as bytes (text
        # encoded back: a str per fragment would cost ~50 bytes each, which
        # a client sending 1-character fragments multiplies by 25)
        self._parts = bytearray()
        self._size = 0  # its decoded size so far
        self._read_ahead = bytearray()  # read while the inbox had no room, not yet parsed
        self._probe_at = -math.inf  # when the next pong goes out while the handler lags
        self._lagging = False  # the reader waits for room in the inbox
        self._eof = False  # the read-ahead met the client's end: all it sent is read
        self._probe_sleep = trio.CancelScope()  # the probe's wait for its next pong
        self._ping_payload = b""
        self._pong = trio.Event()  # the keepalive's wait: a matching pong, or the end
        self._nursery: trio.Nursery | None = None

    # -- what the handshake asked ---------------------------------------------

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def path_params(self) -> dict[str, str]:
        return self.request.path_params

    @property
    def query(self) -> dict[str, list[str]]:
        return self.request.query

    @property
    def headers(self) -> Headers:
        return self.request.headers

    # -- the handshake's answer ---------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> None:
        """Complete the handshake (101), with one of the client's
        `subprotocols` if it offered any, and extra response headers."""
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]
        await self._accept_raw(subprotocol, encoded)

    async def _accept_raw(
        self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """accept() with headers as bytes, as ASGI gives them."""
        self._check_unanswered("accept()")
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(
                f"subprotocol {subprotocol!r} was not offered by the client "
                f"(it offered {self.subprotocols or 'none'})"
            )
        extensions: list[Extension] = []
        if self._settings.ws_per_message_deflate:
            extensions.append(PerMessageDeflate())
        try:
            data = self._ws.send(
                AcceptConnection(
                    subprotocol=subprotocol, extensions=extensions, extra_headers=headers
                )
            )
        except (h11.LocalProtocolError, wsproto.utilities.LocalProtocolError) as exc:
            raise ValueError(f"cannot accept the WebSocket: {exc}") from None
        self._answered = self._accepted = True
        self.subprotocol = subprotocol
        # Between messages a WebSocket may stay quiet for hours: the idle
        # deadline of HTTP keep-alive would cut it, so it is lifted, and the
        # ping keepalive finds the peers that are gone.
        self._conn.idle_timeout = None
        self._finish_handshake(101)
        await self._transmit_or_raise(data)
        assert self._nursery is not None, "a WebSocket is served through _run()"
        self._nursery.start_soon(self._read_frames)
        self._nursery.start_soon(self._close_at_shutdown)
        if self._settings.ws_ping_interval > 0:
            self._nursery.start_soon(self._keepalive)

    async def deny(self, response: Response) -> None:
        """Refuse the handshake with this HTTP response (not 403): a 401 that
        asks for credentials, a redirect... Its body must be bytes or str."""
        if not isinstance(response.body, bytes):
            raise TypeError("deny() sends a Response whose body is bytes or str, not a stream")
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers
        ]
        if not any(name.lower() == b"content-length" for name, _ in headers):
            headers.append((b"content-length", b"%d" % len(response.body)))
        await self._deny_start(response.status, headers)
        await self._deny_body(response.body, more=False)

    async def _deny_start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Start refusing the handshake with an HTTP response (ASGI's
        websocket.http.response.start); the connection closes after it."""
        self._check_unanswered("a denial response")
        if not 200 <= status <= 599:
            raise ValueError(f"a denial response's status must be 200-599, got {status}")
        if not any(name.lower() == b"connection" for name, _ in headers):
            headers.append((b"connection", b"close"))
        try:
            await self._responder.start_response(status, headers)
        except h11.LocalProtocolError as exc:  # h11 checks the head before it changes state
            raise ValueError(f"cannot send the denial response: {exc}") from None
        self._answered = True
        self._denial_status = status

    async def _deny_body(self, chunk: bytes, *, more: bool) -> None:
        """The denial response's body (websocket.http.response.body)."""
        status = self._denial_status
        if status is None:
            raise RuntimeError("a denial response's body must follow its start")
        try:
            await self._responder.send_body(chunk, more=more, head=False)
        except (ConnectionLost, SendTimeout) as exc:
            self._denial_status = None
            self._lost(exc)
            self._refused(status)
            raise self._disconnect() from None
        if not more:
            self._denial_status = None
            self._refused(status)

    async def _refuse(self, status: int, message: str) -> None:
        """Refuse the handshake with a plain-text error response."""
        self._answered = True
        try:
            await self._responder.send_error(status, message)
        except (ConnectionLost, SendTimeout) as exc:
            self._lost(exc)
        self._refused(status)

    def _refused(self, status: int) -> None:
        self._closed.set()
        self._inbox.close()
        self.close_code = ABNORMAL_CLOSURE  # as uvicorn says it to an ASGI app
        self._finish_handshake(status)

    def _check_unanswered(self, what: str) -> None:
        if self._answered:
            raise RuntimeError(f"{what} after the WebSocket handshake was answered")

    def _finish_handshake(self, status: int) -> None:
        self._handshake_done.set()
        self._answered_callback(status)

    # -- messages ------------------------------------------------------------

    async def receive(self) -> str | bytes:
        """The next message: str for a text message, bytes for a binary one.
        Raises WebSocketDisconnect once the WebSocket is closed."""
        if not self._answered:
            raise RuntimeError("receive() before accept()")
        try:
            # a message already here is taken without a trip through trio's
            # scheduler: the inbox holds at most MAX_QUEUE, so the handler
            # yields (in its own sends, or when the inbox is empty) soon enough
            return self._inbox.get_nowait()
        except trio.WouldBlock:
            pass
        except trio.EndOfChannel:
            raise self._disconnect() from None
        try:
            return await self._inbox.get()
        except trio.EndOfChannel:
            raise self._disconnect() from None

    async def _wait_handshake(self) -> None:
        """Wait until the handshake is answered (ASGI: a receive() after
        websocket.connect waits for the app's own answer)."""
        if not self._handshake_done.is_set():  # else no trip through the scheduler
            await self._handshake_done.wait()

    async def send(self, message: str | bytes) -> None:
        """Send a text (str) or binary (bytes) message. Raises
        WebSocketDisconnect if the WebSocket is closed."""
        if not self._accepted:
            raise RuntimeError("send() before accept()")
        event: TextMessage | BytesMessage
        if isinstance(message, str):
            event = TextMessage(data=message)
        elif isinstance(message, (bytes, bytearray)):
            event = BytesMessage(data=message)
        else:
            raise TypeError(f"a WebSocket message is str or bytes, not {type(message).__name__}")
        if self._closed.is_set():
            raise self._disconnect()
        await self._transmit_or_raise(self._ws.send(event))

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the WebSocket with `code` and `reason`; before accept(),
        refuse the handshake with 403. Closing a closed WebSocket does nothing."""
        if not self._answered:
            await self._refuse(403, "the WebSocket handshake was refused")
        elif self._accepted:
            if not (code in SENDABLE_CODES or 3000 <= code <= 4999):
                raise ValueError(f"{code} is not a close code an endpoint may send")
            await self._send_close(code, reason)

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        """The messages until the WebSocket closes (close_code says how)."""
        while True:
            try:
                message = await self.receive()
            except WebSocketDisconnect:
                return
            yield message

    def _disconnect(self) -> WebSocketDisconnect:
        return WebSocketDisconnect(self.close_code or ABNORMAL_CLOSURE, self.close_reason)

    # -- serving: the handler, and the connection-level tasks ------------------

    async def _run(self, handler: Callable[[WebSocket], Awaitable[object]]) -> None:
        """Serve this WebSocket with `handler` until both are done."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await handler(self)
            except WebSocketDisconnect:
                pass  # the handler let a closed WebSocket end it: an ordinary end
            except Exception:
                self._conn.counters.error()
                self._conn.log.exception("WebSocket handler for %s failed", self.request.path)
                if not self._answered:
                    await self._refuse(500, "internal server error")
                elif self._accepted:
                    await self._send_close(INTERNAL_ERROR, "internal server error")
                # else a denial response cut short: the connection closes on it
                return
            if not self._answered:
                await self._refuse(403, "the WebSocket handshake was refused")
            elif self._denial_status is not None:
                self._conn.log.error(
                    "WebSocket handler for %s left its denial response unfinished",
                    self.request.path,
                )
            elif self._accepted:
                await self._send_close(NORMAL_CLOSURE, "")
            # the tasks accept() started end by themselves now the WebSocket is closed

    async def _read_frames(self) -> None:
        """Bytes from the client into wsproto; messages to the handler's
        inbox, pings answered, pongs noted, until the WebSocket closes. Each
        read goes into a connection that stays idle as the core sees it
        (its messages counted as requests), so no request deadline cuts a
        message that takes long to arrive. While the handler's inbox has no
        room, this waits (_wait_for_room), and what was read meanwhile is
        parsed next."""
        conn = self._conn
        data = self._trailing
        while True:
            messages = 0
            for start in range(0, len(data), FEED_SIZE):
                self._ws.receive_data(data[start : start + FEED_SIZE])
                messages += await self._handle_events()
                if self._closed.is_set():
                    break
            conn.parsed(messages, partial=False)
            if self._closed.is_set():
                return
            if self._read_ahead:
                data, self._read_ahead = bytes(self._read_ahead), bytearray()
                continue
            data = b"" if self._eof else await conn.receive()
            if not data:
                if not conn.closing:  # at shutdown _close_at_shutdown says goodbye
                    self._end(ABNORMAL_CLOSURE, "")  # the client left without a close frame
                return

    async def _handle_events(self) -> int:
        """Act on what wsproto has parsed; the number of complete messages."""
        messages = 0
        for event in self._ws.events():
            if self._closed.is_set():
                break  # closed meanwhile: the rest is dropped, as RFC 6455 allows
            if isinstance(event, (TextMessage, BytesMessage)):
                messages += await self._message_part(event)
            elif isinstance(event, Ping):
                await self._transmit(self._ws.send(event.response()))
            elif isinstance(event, Pong):
                if event.payload == self._ping_payload:
                    self._pong.set()
            elif isinstance(event, CloseConnection):
                await self._close_received(event)
        return messages

    async def _message_part(self, event: TextMessage | BytesMessage) -> int:
        """Add a fragment to the message being reassembled; 1 if it completed one."""
        data = event.data
        self._size += len(data.encode()) if isinstance(data, str) else len(data)
        limit = self._settings.ws_max_message_size
        if self._size > limit:
            self._parts = bytearray()
            await self._send_close(MESSAGE_TOO_BIG, f"the message is larger than {limit} bytes")
            return 0
        if not self._inbox.fits(self._size):  # a message being assembled counts too
            await self._wait_for_room(self._size)
            if self._closed.is_set():
                return 0
        if not event.message_finished:
            self._parts += data.encode() if isinstance(data, str) else data
            return 0
        message: str | bytes
        if not self._parts:  # one frame: the common case
            message = data if isinstance(data, str) else bytes(data)
        elif isinstance(data, str):
            message = self._parts.decode() + data  # whole characters: wsproto split them so
        else:
            message = bytes(self._parts + data)
        self._inbox.put(message, self._size)  # it fits: checked above
        self._parts, self._size = bytearray(), 0
        return 1

    async def _wait_for_room(self, size: int) -> None:
        """Wait until the handler has taken enough of its inbox for a
        message of `size` bytes, or the WebSocket closes, parsing nothing
        more meanwhile: TCP pushes back on the client. The client's end is
        still watched for: read ahead (all it sent is then in hand, and
        parsed as the handler takes its messages, a close frame's code
        included), or, past READ_AHEAD, met by a probe (the client's reset,
        which also drops what the client's kernel had not delivered: the
        handler hears 1006 after the messages its inbox holds)."""
        now = trio.current_time()
        if self._probe_at < now - PROBE_INTERVAL:  # not lagging a moment ago: lagging anew
            self._probe_at = now + PROBE_INTERVAL
        self._lagging = True
        reading = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            if not self._eof:
                nursery.start_soon(self._read_ahead_for_end, reading)
                nursery.start_soon(self._probe_for_end)
            await self._inbox.wait_for_room(size)
            self._lagging = False
            # the read-ahead's receive() is cancelled (which loses nothing); a
            # probe only while it sleeps: a send cut short would break the
            # connection (one under way ends within the send timeout)
            reading.cancel()
            self._probe_sleep.cancel()

    async def _read_ahead_for_end(self, scope: trio.CancelScope) -> None:
        """Read on, up to READ_AHEAD bytes kept for _read_frames, to see
        the client's EOF or reset (a cancelled receive() loses nothing, as
        the HTTP driver's watch relies on too), until `scope` is cancelled."""
        conn = self._conn
        conn.parsed(0, partial=False)  # idle as the core sees it: no request deadline
        with scope:
            while len(self._read_ahead) < READ_AHEAD:
                data = await conn.receive(READ_AHEAD - len(self._read_ahead))
                conn.parsed(0, partial=False)
                if not data:
                    self._eof = True  # what the client sent is in hand: no need to probe
                    self._probe_sleep.cancel()
                    return
                self._read_ahead += data

    async def _probe_for_end(self) -> None:
        """A pong every PROBE_INTERVAL while the handler lags (see there):
        a send that fails ends the WebSocket with 1006."""
        while self._lagging and not (self._eof or self._closed.is_set()):
            with trio.CancelScope() as self._probe_sleep:
                await trio.sleep_until(self._probe_at)
            if not self._lagging or self._eof or self._closed.is_set():
                return
            self._probe_at = trio.current_time() + PROBE_INTERVAL
            if not await self._transmit(self._ws.send(Pong())):
                return

    async def _close_received(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state is ConnectionState.REMOTE_CLOSING:  # the client closes: answer in kind
            data = self._ws.send(event.response())
            self._end(event.code, event.reason or "")
            await self._transmit(data)
        elif state is ConnectionState.OPEN:
            # not a close frame: wsproto found a protocol error (1002, 1007 for
            # text that is not UTF-8...) and says with which code to close
            await self._send_close(event.code, event.reason or "")
        # else the client's answer to our close: the handshake is complete

    async def _keepalive(self) -> None:
        """A ping every ws-ping-interval seconds; a client whose pong does not
        come within ws-ping-timeout is closed with 1011, as websockets does."""
        interval = self._settings.ws_ping_interval
        timeout = self._settings.ws_ping_timeout
        while True:
            with trio.move_on_after(interval):
                await self._closed.wait()
                return
            self._ping_payload = os.urandom(4)
            self._pong = trio.Event()
            if not await self._transmit(self._ws.send(Ping(payload=self._ping_payload))):
                return
            if timeout <= 0:
                continue
            with trio.move_on_after(timeout):
                await self._pong.wait()  # _end() sets it too
            if self._closed.is_set():
                return
            if self._eof:  # no pong can come: the reader ends it once the handler catches up
                return
            if not self._pong.is_set():
                self._conn.log.info("closing the WebSocket: no pong within %gs", timeout)
                await self._send_close(INTERNAL_ERROR, "keepalive ping timeout")
                return

    async def _close_at_shutdown(self) -> None:
        await self._conn.wait_closing()
        if not self._closed.is_set():
            await self._send_close(GOING_AWAY, "server shutting down")

    # -- ending ----------------------------------------------------------------

    async def _send_close(self, code: int, reason: str) -> None:
        """Close from our side with `code` (nothing if already closed). The
        client's answering close frame is read and dropped by the core's
        graceful close, which waits for the client's end of the connection."""
        if self._ws.state is not ConnectionState.OPEN:
            return
        data = self._ws.send(CloseConnection(code=code, reason=reason))
        self._end(code, reason)
        await self._transmit(data)

    def _end(self, code: int, reason: str) -> None:
        """The WebSocket is closed (the first reason given is the one kept):
        the handler's receive() gets WebSocketDisconnect once it has read the
        messages that came before, and the connection-level tasks end."""
        if self._closed.is_set():
            return
        self.close_code, self.close_reason = code, reason
        self._closed.set()
        self._inbox.close()
        self._pong.set()  # wakes the keepalive
        self._conn.disconnect()  # no more reading: the reader's receive() returns b""

    async def _transmit(self, data: bytes) -> bool:
        """Send frames; False (and the WebSocket ended with 1006) if the
        client is gone or stopped reading (send timeout)."""
        try:
            await self._conn.send(data)
        except (ConnectionLost, SendTimeout) as exc:
            self._lost(exc)
            return False
        return True

    async def _transmit_or_raise(self, data: bytes) -> None:
        if not await self._transmit(data):
            raise self._disconnect()

    def _lost(self, exc: ConnectionLost | SendTimeout) -> None:
        if isinstance(exc, SendTimeout):  # logged as the core logs it for any connection
            self._conn.log.info("closing: %s", exc)
        self._end(ABNORMAL_CLOSURE, "")
