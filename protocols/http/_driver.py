# One HTTP/1.1 connection, driven by h11 (the sans-IO protocol core): events
# in from Connection.receive(), bytes out through Connection.send(). It owns
# keep-alive and pipelining (one request at a time, in order), streamed
# bodies both ways, Expect: 100-continue, HEAD, the error responses a
# hardened server gives (400, 408, 413, 431, 500), the access log, and the
# hand-over of an upgrade request to a WebSocket (_websocket.py).
from __future__ import annotations

import email.utils
import http
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

import h11

from netsvc import Connection, ConnectionLost, ReceiveTimeout, SendTimeout

from ._messages import Headers, Request, Response
from ._websocket import BadHandshake, WebSocket, open_websocket, wants_websocket

if TYPE_CHECKING:
    from ._service import HttpService

__all__ = ["BodyTooLarge", "HttpConnection"]

access_log = logging.getLogger("netsvc.http.access")

DRAIN_LIMIT = 64 * 1024  # unread request body we read and drop to keep the connection


_REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}
_date_cache: tuple[int, bytes] = (0, b"")


def _date_header() -> bytes:
    """The Date header's value, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True).encode())
    return _date_cache[1]


_heads: dict[tuple[object, ...], h11.Response] = {}
_HEADS_KEPT = 256


def _response_head(status: int, headers: list[tuple[bytes, bytes]]) -> h11.Response:
    """h11's Response event for a head, validated once: h11 spends more time
    checking a head's headers than writing them, and a server sends the same
    head (status, content type, length, this second's date) again and again.
    Events are immutable, so one can be sent on any connection."""
    key = (status, *headers)
    event = _heads.get(key)
    if event is None:
        event = h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b""))
        if len(_heads) >= _HEADS_KEPT:  # the date changes every second: old heads go
            _heads.clear()
        _heads[key] = event
    return event


class BodyTooLarge(Exception):
    """The request body grew past max_body_size."""


# A native or ASGI application, as the driver calls it: given the request
# head and a way to read the body, produce the response through `respond`.
Dispatch = Callable[["HttpConnection", Request], Awaitable[None]]


class HttpConnection:
    def __init__(self, service: HttpService, conn: Connection) -> None:
        self.service = service
        self.conn = conn
        settings = service.settings
        self.max_body = settings.max_body_size
        self.max_header_size = settings.max_header_size
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=settings.max_header_size)
        self.scheme = "https" if conn.tls else "http"
        self.body_left = False  # the current request's EndOfMessage is still to be read
        self.response_started = False
        self.sent_bytes = 0
        self.status = 0
        self._pending = b""  # a response head waiting to go out with the first body bytes

    async def next_event(self) -> object:
        h = self.h11
        while True:
            event = h.next_event()
            if event is not h11.NEED_DATA:
                return event
            h.receive_data(await self.conn.receive())

    async def run(self) -> None:
        h = self.h11
        while True:
            try:
                event = await self.next_event()
            except h11.RemoteProtocolError as exc:
                await self.send_error(exc.error_status_hint, str(exc))
                return
            except ReceiveTimeout as exc:
                if exc.phase == "request":  # a slow request head: say so; idle: just close
                    await self.send_error(408, "the request did not arrive in time")
                return
            if type(event) is not h11.Request:
                return  # ConnectionClosed (the client left, or shutdown between requests)
            if not await self.handle(event):
                return
            if h.our_state is h11.MUST_CLOSE or h.their_state is not h11.DONE:
                return
            h.start_next_cycle()

    async def handle(self, event: h11.Request) -> bool:
        """Serve one request; False when the connection must close after it."""
        started = time.perf_counter() if self.service.settings.access_log else 0.0
        conn = self.conn
        self.response_started, self.sent_bytes, self.status = False, 0, 0
        headers = list(event.headers)  # h11's Headers is a Sequence: iterate it once
        size, length, upgrade = _scan_head(event.target, headers)
        if size > self.max_header_size:  # h11 only limits a head that arrives in pieces
            conn.parsed(1, partial=False)  # a request, though refused
            await self.send_error(
                431, f"the request head is larger than {self.max_header_size} bytes"
            )
            return False
        self.body_left = True  # until h11's EndOfMessage is read (at once if there is no body)
        if event.method == b"CONNECT":  # a 2xx would make h11 switch to a tunnel
            conn.parsed(1, partial=False)
            await self.send_error(501, "CONNECT (a tunnel) is not supported by this server")
            return False
        if length is not None and length > self.max_body:
            conn.parsed(1, partial=False)
            await self.send_error(413, f"the body is larger than {self.max_body} bytes")
            return False
        has_body = length is None or length > 0
        request = Request(
            method=_ascii(event.method),
            target=event.target,
            http_version=_ascii(event.http_version),
            headers=Headers(headers),
            peer=conn.peer,
            scheme=self.scheme,
            body_chunks=self.body_chunks,
            state=self.service.state,
            peer_certificate=conn.peer_certificate,
        )
        if upgrade and wants_websocket(event.http_version, headers):
            websocket_handler = self.service.websocket_handler(conn, request)
            if websocket_handler is not None:  # else plain HTTP: the app decides
                await self.upgrade(request, websocket_handler, has_body, started)
                return False
        if has_body:
            conn.body_follows()
        keep = True
        try:
            await self.service.dispatch(self, request)
        except BodyTooLarge:
            await self.send_error(413, f"the body is larger than {self.max_body} bytes")
            keep = False
        except (ReceiveTimeout, h11.RemoteProtocolError) as exc:
            status = 408 if isinstance(exc, ReceiveTimeout) else exc.error_status_hint
            await self.send_error(status, str(exc))
            keep = False
        except (ConnectionLost, SendTimeout):
            raise  # the client is gone or not reading: the core ends it quietly
        except Exception:
            conn.counters.error()
            conn.log.exception("handler for %s %s failed", request.method, request.path)
            await self.send_error(500, "internal server error")
            keep = False
        state = self.h11.our_state
        if keep and state is not h11.DONE:
            # MUST_CLOSE: the response is complete, on a connection that ends
            # with it (HTTP/1.0, Connection: close, shutdown)
            if state is not h11.MUST_CLOSE:
                conn.log.error(
                    "handler for %s %s left its response unfinished", request.method, request.path
                )
            keep = False
        if keep and self.body_left:
            if not has_body and type(self.h11.next_event()) is h11.EndOfMessage:
                self.body_left = False  # no body: h11 has the end already, no read needed
            else:
                keep = await self.drain_body()
        conn.parsed(1, partial=bool(self.h11.trailing_data[0]))
        self.log_access(request, self.status, started)
        return keep

    def log_access(self, request: Request, status: int, started: float) -> None:
        if self.service.settings.access_log:
            access_log.info(
                '%s "%s %s HTTP/%s" %d %d %.1fms',
                self.conn.peer,
                request.method,
                request.target.decode("latin-1"),
                request.http_version,
                status,
                self.sent_bytes,
                (time.perf_counter() - started) * 1000,
            )

    # -- WebSocket -----------------------------------------------------------

    async def upgrade(
        self,
        request: Request,
        handler: Callable[[WebSocket], Awaitable[None]],
        has_body: bool,
        started: float,
    ) -> None:
        """Serve an upgrade request with a WebSocket handler: wsproto checks
        the handshake and takes the connection over, bytes h11 has already
        read past the request head included; the connection ends with it.
        The access log gets the handshake's answer (101, or a refusal)."""
        conn = self.conn
        conn.parsed(1, partial=False)  # the request is complete; the WebSocket's own reads follow

        def answered(status: int) -> None:
            self.log_access(request, status, started)

        if has_body:
            await self.send_error(400, "a WebSocket handshake has no body")
            answered(400)
            return
        try:
            websocket = open_websocket(
                request,
                conn=conn,
                settings=self.service.settings,
                responder=self,
                trailing_data=self.h11.trailing_data[0],
                answered=answered,
            )
        except BadHandshake as exc:
            await self.send_error(exc.status, str(exc), exc.headers)
            answered(exc.status)
            return
        await websocket._run(handler)

    # -- request body --------------------------------------------------------

    async def body_chunks(self) -> AsyncIterator[bytes]:
        """The request body as it arrives; bounded by max_body_size."""
        h = self.h11
        if not self.body_left:
            return
        if self._pending:  # a response head is waiting: the client may wait for it first
            pending, self._pending = self._pending, b""
            await self.conn.send(pending)
        elif h.they_are_waiting_for_100_continue:
            await self.conn.send(h.send(h11.InformationalResponse(status_code=100, headers=[])))
        received = 0
        while True:
            event = await self.next_event()
            if type(event) is h11.Data:
                received += len(event.data)
                if received > self.max_body:
                    raise BodyTooLarge()
                yield bytes(event.data)
            else:  # EndOfMessage
                self.body_left = False
                return

    async def drain_body(self) -> bool:
        """Read and drop a body the handler left unread, if it is small."""
        drained = 0
        try:
            async for chunk in self.body_chunks():
                drained += len(chunk)
                if drained > DRAIN_LIMIT:
                    return False
        except (BodyTooLarge, ReceiveTimeout, h11.RemoteProtocolError):
            return False
        return True

    # -- response ------------------------------------------------------------

    async def respond(self, response: Response, *, head: bool) -> None:
        """Send a whole native Response (streaming its body if it is iterable)."""
        headers = []
        has_length = False
        for name, value in response.headers:
            encoded = name.encode("latin-1")
            has_length = has_length or encoded.lower() == b"content-length"
            headers.append((encoded, value.encode("latin-1")))
        body = response.body
        if response.status in (204, 304) or response.status < 200:  # never a body (RFC 9110)
            await self.start_response(response.status, headers)
            await self.send_body(b"", more=False, head=True)
            return
        if isinstance(body, bytes):
            if not has_length:
                headers.append((b"content-length", b"%d" % len(body)))
            await self.start_response(response.status, headers)
            await self.send_body(body, more=False, head=head)
            return
        await self.start_response(response.status, headers)
        if not head:
            if isinstance(body, AsyncIterable):
                async for chunk in body:
                    await self.send_body(chunk, more=True, head=head)
            else:
                for chunk in _sync_chunks(body):
                    await self.send_body(chunk, more=True, head=head)
        await self.send_body(b"", more=False, head=head)

    async def start_response(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        headers.append((b"date", _date_header()))  # no Server header: nothing to tell a scanner
        if self.conn.closing or self.h11.they_are_waiting_for_100_continue:
            # shutting down, or the client may never send the body it announced
            headers.append((b"connection", b"close"))
        # h11 checks the head first (and is unchanged if it refuses): a bad one is a 500
        self._pending = self.h11.send(_response_head(status, headers))
        self.response_started, self.status = True, status

    async def send_body(self, chunk: bytes, *, more: bool, head: bool) -> None:
        """Send a body chunk (nothing for HEAD); more=False ends the message. The
        response head waits to go out with the first chunk: one write, not two."""
        h = self.h11
        data = self._pending
        self._pending = b""
        if chunk and not head:
            data += h.send(h11.Data(data=chunk))
            self.sent_bytes += len(chunk)
        if not more:
            data += h.send(h11.EndOfMessage())
        if data:
            await self.conn.send(data)

    async def send_error(
        self, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        """A plain-text error response and Connection: close, if one can still
        be sent; `headers` are added to it."""
        h = self.h11
        self.status = status
        if self.response_started or h.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = b"%d %b: %b\n" % (status, _REASONS.get(status, b"Error"), message.encode())
        head = [
            *headers,
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
            (b"date", _date_header()),
            (b"connection", b"close"),
        ]
        try:
            reason = _REASONS.get(status, b"")
            data = h.send(h11.Response(status_code=status, headers=head, reason=reason))
            data += h.send(h11.Data(data=body)) + h.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return
        self.response_started, self.sent_bytes = True, len(body)
        await self.conn.send(data)


_ascii_cache: dict[bytes, str] = {}


def _ascii(token: bytes) -> str:
    """A method or HTTP version as str; the few that exist are decoded once."""
    text = _ascii_cache.get(token)
    if text is None:
        text = token.decode("ascii", errors="replace")
        if len(_ascii_cache) < 64:
            _ascii_cache[token] = text
    return text


def _scan_head(target: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, int | None, bool]:
    """The request head's size as the 431 limit counts it, the declared body
    length (None for a chunked body; h11 has validated both headers), and
    whether the head has an Upgrade header (a WebSocket handshake, maybe),
    in one pass over the headers."""
    size = len(target)
    length: int | None = 0
    chunked = upgrade = False
    for name, value in headers:
        size += len(name) + len(value) + 4
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"upgrade":
            upgrade = True
    return size, None if chunked else length, upgrade


def _sync_chunks(body: Iterable[bytes] | bytes | str) -> Iterable[bytes]:
    assert not isinstance(body, (bytes, str))
    return body
