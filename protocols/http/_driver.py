# One HTTP/1.1 connection, driven by a sans-IO parser (h11, or httptools
# behind h11's interface: _parse.py): events in from Connection.receive(),
# bytes out through Connection.send(). It owns keep-alive and pipelining
# (one request at a time, in order), streamed bodies both ways, Expect:
# 100-continue, HEAD, the error responses a hardened server gives (400, 408,
# 413, 431, 500), the checks where h11 is lax (_strict.py: Host, target,
# control characters in values, a chunked body's framing, read ahead of the
# app), the proxy headers of a trusted peer (_forwarded.py), watching for the
# client's close while a request is served, the access log, and the
# hand-over of an upgrade request to a WebSocket (_websocket.py).
from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import h11
import trio

from netsvc import (
    Connection,
    ConnectionLost,
    PeerCertificate,
    ReceiveTimeout,
    SendTimeout,
    SocketAddress,
)

from ._forwarded import read_forwarded
from ._messages import Headers, Request, Response, host_port, split_absolute
from ._parse import REASONS, ParserEvent, RequestHead, data_of, new_parser, no_context
from ._strict import ChunkedBody, FramingError, check_head, transfer_coding_status
from ._websocket import BadHandshake, WebSocket, open_websocket, wants_websocket

if TYPE_CHECKING:
    from ._service import HttpService

__all__ = ["BodyTooLarge", "HttpConnection"]

access_log: Final = logging.getLogger("netsvc.http.access")

DRAIN_LIMIT: Final = 64 * 1024  # unread request body we read and drop to keep the connection
# A chunked body is read this far ahead of the app (or to its first chunk's
# end, if that comes first) and its framing checked, so that a body
# malformed from the start never reaches the app.
READ_AHEAD_LIMIT: Final = 64 * 1024
# While a request is served, what the client sends next (a pipelined request)
# is read into h11's buffer up to this much; then the watch for its close
# stops (a client that is sending is not leaving), as uvicorn pauses reading.
PIPELINE_LIMIT: Final = 64 * 1024
# How long the first request.is_disconnected() waits for the watch's first
# look at the connection (what a client that has left sent is there at once).
FIRST_LOOK: Final = 0.01


_date_cache: tuple[int, bytes] = (0, b"")


def _date_header() -> bytes:
    """The Date header's value, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True).encode())
    return _date_cache[1]


class BodyTooLarge(Exception):
    """The request body grew past max_body_size."""


# A native or ASGI application, as the driver calls it: given the request
# head and a way to read the body, produce the response through `respond`.
Dispatch = Callable[["HttpConnection", Request], Awaitable[None]]


class _Watch:
    """A task reading the connection while a request is served, to see the
    client's close (see HttpConnection.watch)."""

    __slots__ = ("done", "looked", "scope")

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.looked = trio.Event()  # its first read returned
        self.done = trio.Event()


class _BodyChunks:
    """A request body's chunks as the app reads them: an async iterator, not
    an async generator, which mypyc does not compile."""

    __slots__ = ("connection", "request")

    def __init__(self, connection: HttpConnection, request: Request) -> None:
        self.connection = connection
        self.request = request

    def __aiter__(self) -> _BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.connection.read_body(self.request)
        if chunk is None:
            raise StopAsyncIteration
        return chunk


class HttpConnection:
    def __init__(self, service: HttpService, conn: Connection) -> None:
        self.service = service
        self.conn = conn
        settings = service.settings
        self.max_body = settings.max_body_size
        self.max_header_size = settings.max_header_size
        self.access_log = settings.access_log
        # what its requests share (see RequestSource)
        self.root_path = settings.root_path
        self.state = service.state
        self.parser = new_parser(service.parser, settings.max_header_size)
        self.scheme = "https" if conn.tls else "http"
        self.server: tuple[str, int | None] | None = host_port(conn.local)
        # the peer may speak for the client (X-Forwarded-For...): decided once
        self.proxy_trusted = settings.proxy_headers != "off" and (
            service.runtime.trusted_proxies.trusts(conn.peer)
        )
        # -- the request being served
        self.body_left = False  # the current request's EndOfMessage is still to be read
        self.response_started = False
        self.head_request = False  # the request being served is a HEAD: no body in its answer
        self.response_complete = False  # its EndOfMessage has been sent
        self.client_gone = False  # the client closed the connection while it was served
        self.sent_bytes = 0
        self.status = 0
        self._pending = b""  # a response head waiting to go out with the first body bytes
        self._received = 0  # body bytes read
        self._held: list[bytes] = []  # body chunks read ahead of the app
        self._chunked: ChunkedBody | None = None  # the check of a chunked body's framing
        self._framing_error: h11.RemoteProtocolError | None = None
        self._head_reads: list[bytes] = []  # the reads of the head being parsed
        self._watch: _Watch | None = None
        self._over: trio.Event | None = None  # set when the response is complete or the client gone
        self._stream_scope: trio.CancelScope | None = None  # a native streamed body's
        self._has_body = False
        self.serving: Request | None = None  # the request the app has now; None between them
        # the app's read of the body in progress: its cancel scope, and an
        # event set when it has ended
        self._app_read: tuple[trio.CancelScope, trio.Event] | None = None

    @property
    def peer_certificate(self) -> PeerCertificate | None:
        return self.conn.peer_certificate

    async def next_event(self) -> ParserEvent:
        h = self.parser
        if self._framing_error is not None:
            raise self._framing_error
        while True:
            event = h.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.conn.receive()
            if not data:
                self.client_gone = True
            chunked = self._chunked
            if chunked is not None and not chunked.done:
                self._check_framing(chunked, data)  # before h11 sees a byte of it
            elif not self.body_left:  # a request head's
                self._head_reads.append(data)  # kept for transfer_coding_status
            h.receive_data(data)

    def _check_framing(self, chunked: ChunkedBody, data: bytes) -> None:
        try:
            chunked.feed(data)
        except FramingError as exc:  # answered as h11's own errors: 400 and close
            self._framing_error = h11.RemoteProtocolError(str(exc), 400)
            raise no_context(self._framing_error) from None

    async def run(self) -> None:
        h = self.parser
        while True:
            try:
                event = await self.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                if status == 501:  # h11 refuses every Transfer-Encoding but chunked with 501
                    status = transfer_coding_status(b"".join(self._head_reads)) or status
                await self.send_error(status, str(exc))
                return
            except ReceiveTimeout as exc:
                if exc.phase == "request":  # a slow request head: say so; idle: just close
                    await self.send_error(408, "the request did not arrive in time")
                return
            if type(event) is not RequestHead:
                return  # ConnectionClosed (the client left, or shutdown between requests)
            self._head_reads.clear()
            if not await self.handle(event):
                return
            if h.our_state is h11.MUST_CLOSE or h.their_state is not h11.DONE:
                return
            h.start_next_cycle()
            self.response_started = False  # a bad next head is answered (send_error)
            self.head_request = False

    async def handle(self, event: RequestHead) -> bool:
        """Serve one request; False when the connection must close after it."""
        started = time.perf_counter() if self.access_log else 0.0
        conn = self.conn
        self.response_started = self.response_complete = self.client_gone = False
        self.head_request = event.method == b"HEAD"
        self.sent_bytes = self.status = self._received = 0
        self._over = None
        self._held.clear()
        refused = refusal(event, max_header_size=self.max_header_size, max_body=self.max_body)
        if refused is not None:
            conn.parsed(1, partial=False)  # a request, though refused
            await self.send_error(*refused)
            return False
        length = event.length
        self.body_left = True  # until h11's EndOfMessage is read (at once if there is no body)
        has_body = self._has_body = length is None or length > 0
        request = self.make_request(event)
        if event.upgrade and wants_websocket(event.http_version, event.headers):
            websocket_handler = self.service.websocket_handler(conn, request)
            if websocket_handler is not None:  # else plain HTTP: the app decides
                await self.upgrade(request, websocket_handler, has_body, started)
                return False
        if has_body:
            conn.body_follows()
            if length is None and not await self.check_chunked_body():
                conn.parsed(1, partial=False)
                return False
        keep = True
        self.serving = request
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
        finally:
            self.serving = None  # what the app does with the request from now on is moot
            if self._app_read is not None:
                await self._end_app_read()
            if self._watch is not None or self._over is not None:
                await self.stop_watching()
        state = self.parser.our_state
        if keep and state is not h11.DONE:
            # MUST_CLOSE: the response is complete, on a connection that ends
            # with it (HTTP/1.0, Connection: close, shutdown)
            if state is not h11.MUST_CLOSE and not self.client_gone:
                conn.log.error(
                    "handler for %s %s left its response unfinished", request.method, request.path
                )
            keep = False
        if keep and self.body_left:
            if not has_body and type(self.parser.next_event()) is h11.EndOfMessage:
                self.body_left = False  # no body: h11 has the end already, no read needed
            else:
                keep = await self.drain_body()
        self._chunked = None
        trailing = self.parser.trailing_data[0]  # the next request's first bytes, if pipelined
        if trailing:
            self._head_reads.append(trailing)
        conn.parsed(1, partial=bool(trailing))
        if self.access_log:
            self.log_access(request, self.status, started)
        return keep

    def make_request(self, event: RequestHead) -> Request:
        """The Request handlers see, with what a trusted proxy says of the
        client if the request has proxy headers."""
        peer, scheme, host, server = self.conn.peer, self.scheme, None, self.server
        target, headers = event.target, event.headers
        if target[:1] != b"/" and target != b"*":
            # absolute-form: RFC 9112 3.2.2 has the server use its authority
            # and ignore the Host header, so the app sees it as the Host
            authority = split_absolute(target)[0].encode("latin-1")
            headers = [(name, authority if name == b"host" else value) for name, value in headers]
            if (b"host", authority) not in headers:  # HTTP/1.0 need not send one
                headers.append((b"host", authority))
        if event.forwarded and self.proxy_trusted:
            settings = self.service.settings
            forwarded = read_forwarded(
                headers,
                self._trusted,
                kind=settings.proxy_headers,
                host=settings.forwarded_host,
            )
            if forwarded is not None:
                if forwarded.client is not None:
                    peer = SocketAddress("tcp", host=forwarded.client[0], port=forwarded.client[1])
                scheme = forwarded.scheme or scheme
                if forwarded.host is not None:
                    host, server = forwarded.host, _server_of(forwarded.host, scheme)
        method, version = _ascii[event.method], _ascii[event.http_version]
        return Request(method, target, version, Headers(headers), peer, scheme, host, server, self)

    def _trusted(self, ip: str) -> bool:
        return self.service.runtime.trusted_proxies.trusts(SocketAddress("tcp", host=ip))

    def log_access(self, request: Request, status: int, started: float) -> None:
        if self.access_log:
            access_log.info(
                '%s "%s %s HTTP/%s" %d %d %.1fms',
                request.peer,
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
                trailing_data=self.parser.trailing_data[0],
                answered=answered,
            )
        except BadHandshake as exc:
            await self.send_error(exc.status, str(exc), exc.headers)
            answered(exc.status)
            return
        await websocket._run(handler)

    # -- request body --------------------------------------------------------

    async def check_chunked_body(self) -> bool:
        """Before the app sees a chunked body: check the framing of what has
        arrived with the head, and read on to the first chunk's end (or
        READ_AHEAD_LIMIT bytes) unless the client waits for a 100 Continue.
        A body malformed from the start is answered here (400; 413, 408)
        and never reaches the app. False if it was refused."""
        chunked = self._chunked = ChunkedBody(self.max_header_size)
        try:
            self._check_framing(chunked, self.parser.trailing_data[0])
            if self.parser.they_are_waiting_for_100_continue:
                return True
            while not (chunked.chunks or chunked.done) and self._received < READ_AHEAD_LIMIT:
                chunk = await self._next_chunk()
                if chunk is None:
                    break
                self._held.append(chunk)
        except BodyTooLarge:
            await self.send_error(413, f"the body is larger than {self.max_body} bytes")
            return False
        except h11.RemoteProtocolError as exc:
            await self.send_error(exc.error_status_hint, str(exc))
            return False
        except ReceiveTimeout:
            await self.send_error(408, "the request body did not arrive in time")
            return False
        return True

    async def _next_chunk(self) -> bytes | None:
        """The body's next bytes from h11; None at its end."""
        event = await self.next_event()
        if type(event) is not h11.Data:  # EndOfMessage
            self.body_left = False
            if self._stream_scope is not None:
                self.watch()  # a streamed response is being sent: watch it now
            return None
        data = data_of(event)
        self._received += len(data)
        if self._received > self.max_body:
            raise BodyTooLarge()
        return data

    async def read_body(self, request: Request) -> bytes | None:
        """For the app: `request`'s body's next chunk as it arrives, bounded
        by max_body_size; None at its end. Once the request has been served,
        a read (in a task the app left behind) raises h11.RemoteProtocolError,
        as if the client had left, and one still waiting then is cancelled so:
        the driver reads on (the rest of the body, the next request) itself."""
        if request is not self.serving:
            raise h11.RemoteProtocolError("the request was served before its body was read")
        with trio.CancelScope() as scope:
            self._app_read = reading = (scope, trio.Event())
            try:
                return await self._read_body()
            finally:
                self._app_read = None
                reading[1].set()
        raise h11.RemoteProtocolError("the request was served before its body was read")

    async def _end_app_read(self) -> None:
        """Cancel the app's body read still in progress, and wait until it
        has ended, so that it and the driver never read at once."""
        if self._app_read is not None:
            scope, ended = self._app_read
            scope.cancel()
            await ended.wait()

    async def _read_body(self) -> bytes | None:
        if not self.body_left:
            return None
        if self._pending:  # a response head is waiting: the client may wait for it first
            pending, self._pending = self._pending, b""
            await self.conn.send(pending)
        elif self.parser.they_are_waiting_for_100_continue:
            h = self.parser
            await self.conn.send(h.send(h11.InformationalResponse(status_code=100, headers=[])))
        if self._held:
            return self._held.pop(0)
        return await self._next_chunk()

    def body_chunks(self, request: Request) -> AsyncIterator[bytes]:
        """For the app: `request`'s body as it arrives; bounded by max_body_size."""
        return _BodyChunks(self, request)

    async def drain_body(self) -> bool:
        """Read and drop a body the handler left unread, if it is small."""
        drained = 0
        try:
            while (chunk := await self._read_body()) is not None:
                drained += len(chunk)
                if drained > DRAIN_LIMIT:
                    return False
        except (BodyTooLarge, ReceiveTimeout, h11.RemoteProtocolError):
            return False
        return True

    # -- the client's close, while a request is served -------------------------

    def watch(self) -> bool:
        """Watch the connection for the client's close until the request has
        been served: a task reads it, putting what a client sends next (a
        pipelined request) into h11's buffer for later, up to
        PIPELINE_LIMIT. Its end (or a reset) marks the client gone, ends the
        waits of wait_disconnect() and cancels a native streamed body.
        False if it cannot be watched: the request's body is not read yet
        (its bytes are the app's to read)."""
        if self._watch is not None or self.client_gone:
            return True
        if (
            self.body_left
            and not self._has_body
            and type(self.parser.next_event()) is h11.EndOfMessage
        ):
            self.body_left = False  # no body: h11 has its end already
        nursery = self.service.nursery
        if self.body_left or nursery is None:
            return False
        # each read now waits for progress at most request_timeout (and is
        # read again), and shutdown does not cut it short: the request is in flight
        self.conn.body_follows()
        self._watch = watch = _Watch()
        nursery.start_soon(self._watch_for_close, watch)
        return True

    async def _watch_for_close(self, watch: _Watch) -> None:
        read = 0
        try:
            with watch.scope:
                while read < PIPELINE_LIMIT:
                    try:
                        data = await self.conn.receive(PIPELINE_LIMIT - read)
                    except ReceiveTimeout:
                        watch.looked.set()
                        continue
                    watch.looked.set()
                    if not data:
                        self._client_left()
                        return
                    read += len(data)
                    self.parser.receive_data(data)  # the next request's: for the next cycle
        except Exception:  # a bug: logged, and the server's nursery must not end with it
            self.conn.log.exception("watching the connection for the client's close failed")
        finally:
            watch.done.set()

    def _client_left(self) -> None:
        self.client_gone = True
        self.parser.receive_data(b"")  # pipelined requests before the end are still answered
        if self._over is not None:
            self._over.set()
        if self._stream_scope is not None:
            self._stream_scope.cancel()

    async def stop_watching(self) -> None:
        """End the watch (before the next read of the connection) and the waits on it."""
        if self._over is not None:
            self._over.set()
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.scope.cancel()
            with trio.CancelScope(shield=True):
                await watch.done.wait()

    async def is_disconnected(self, request: Request) -> bool:
        """request.is_disconnected(): starts the watch, and gives its first
        look at the connection a moment (FIRST_LOOK). True once the request
        has been served."""
        if request is not self.serving:
            return True
        if not self.client_gone and self._watch is None and self.watch():
            await self._first_look()
        return self.client_gone

    async def _first_look(self) -> None:
        """Give the watch watch() has just started its first look (FIRST_LOOK).
        A method of its own: in the caller, mypy (and mypyc's compiled type
        check) take self._watch for None still."""
        watch = self._watch
        if watch is not None:
            with trio.move_on_after(FIRST_LOOK):
                await watch.looked.wait()

    async def wait_disconnect(self) -> None:
        """Wait until the response is complete or the client has left: what
        the ASGI http.disconnect message says (the body must have been read)."""
        if self.response_complete or self.client_gone:
            return
        if self._over is None:
            self._over = trio.Event()
        self.watch()
        await self._over.wait()

    # -- response ------------------------------------------------------------

    async def respond(self, response: Response, *, head: bool) -> None:
        """Send a whole native Response (streaming its body if it is iterable).
        A body of bytes (or none) goes out with its head in one write."""
        headers = []
        has_length = False
        for name, value in response.headers:
            encoded = name.encode("latin-1")
            has_length = has_length or encoded.lower() == b"content-length"
            headers.append((encoded, value.encode("latin-1")))
        body = response.body
        status = response.status
        if status in (204, 304) or status < 200:  # never a body (RFC 9110)
            body = b""
        elif isinstance(body, bytes):
            if not has_length:
                headers.append((b"content-length", b"%d" % len(body)))
            if head:
                body = b""
        else:
            await self.start_response(status, headers)
            if not head:
                if isinstance(body, AsyncIterable):
                    await self.stream(body)
                else:
                    for chunk in _sync_chunks(body):
                        await self.send_body(_chunk_bytes(chunk), more=True, head=head)
            await self.send_body(b"", more=False, head=head)
            return
        # start_response() and send_body() in one step
        data = self.parser.send_whole(status, self._complete(headers), body)
        self.response_started, self.status = True, status
        self.sent_bytes += len(body)
        await self.conn.send(data)
        self.response_complete = True
        if self._over is not None:
            self._over.set()

    async def stream(self, body: AsyncIterable[bytes]) -> None:
        """Send a body as it is produced, watching for the client's close:
        when it comes, the body's iteration is cancelled, and an async
        generator closed at once (its `finally` runs)."""
        iterator: AsyncIterator[Any] = aiter(body)  # chunks: see _chunk_bytes
        scope = self._stream_scope = trio.CancelScope()
        try:
            with scope:
                self.watch()  # if the request body is still to be read, once it is
                async for chunk in iterator:
                    await self.send_body(_chunk_bytes(chunk), more=True, head=False)
        finally:
            self._stream_scope = None
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        if scope.cancelled_caught:
            raise ConnectionLost("the client closed the connection")

    async def start_response(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        # h11 checks the head first (and is unchanged if it refuses): a bad one is a 500
        self._pending = self.parser.send_head(status, self._complete(headers))
        self.response_started, self.status = True, status

    def _complete(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """A response's headers with its Date (and Connection: close)."""
        headers.append((b"date", _date_header()))  # no Server header: nothing to tell a scanner
        if self.conn.closing or self.parser.they_are_waiting_for_100_continue:
            # shutting down, or the client may never send the body it announced
            headers.append((b"connection", b"close"))
        return headers

    async def send_body(self, chunk: bytes, *, more: bool, head: bool) -> None:
        """Send a body chunk (nothing for HEAD); more=False ends the message. The
        response head waits to go out with the first chunk: one write, not two."""
        h = self.parser
        data = self._pending
        self._pending = b""
        if chunk and not head:
            data += h.send_data(chunk)
            self.sent_bytes += len(chunk)
        if not more:
            data += h.send_end()
        if data:
            await self.conn.send(data)
        if not more:
            self.response_complete = True
            if self._over is not None:
                self._over.set()

    async def send_error(
        self, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        """A plain-text error response and Connection: close, if one can still
        be sent; `headers` are added to it."""
        h = self.parser
        self.status = status
        if self.response_started or h.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = b"%d %b: %b\n" % (status, REASONS.get(status, b"Error"), message.encode())
        head = [
            *headers,
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
            (b"date", _date_header()),
            (b"connection", b"close"),
        ]
        if self.head_request:  # its head only (the parser refuses a body to HEAD)
            body = b""
        try:
            data = h.send_whole(status, head, body)
        except h11.LocalProtocolError:
            return
        self.response_started, self.sent_bytes = True, len(body)
        await self.conn.send(data)


class _Ascii(dict[bytes, str]):
    """A method or HTTP version as str: `_ascii[token]`. The few that exist
    are decoded once (a lookup is a dict's own: no call on a hit)."""

    def __missing__(self, token: bytes) -> str:
        text = token.decode("ascii", errors="replace")
        if len(self) < 64:
            self[token] = text
        return text


_ascii: Final = _Ascii()


def refusal(event: RequestHead, *, max_header_size: int, max_body: int) -> tuple[int, str] | None:
    """The status and reason a request head h11 accepted is refused with
    (431, 501, 400, 413), or None. The differential tests run it too, as
    the driver does."""
    if event.size > max_header_size:  # h11 only limits a head that arrives in pieces
        return 431, f"the request head is larger than {max_header_size} bytes"
    if event.method == b"CONNECT":  # a 2xx would make h11 switch to a tunnel
        return 501, "CONNECT (a tunnel) is not supported by this server"
    length = event.length
    problem = check_head(
        event.method,
        event.target,
        event.http_version,
        event.host,
        chunked=length is None,
        has_length=event.has_length,
        control=event.control,
    )
    if problem is not None:
        return 400, problem
    if length is not None and length > max_body:
        return 413, f"the body is larger than {max_body} bytes"
    return None


def _server_of(host: str, scheme: str) -> tuple[str, int | None]:
    """A Host value (`example.com:8080`, `[::1]`) as (host, port), the
    scheme's default port when it has none."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:]
    else:
        name, _, port = host.partition(":")
    return name, int(port) if port else (443 if scheme == "https" else 80)


def _sync_chunks(body: Iterable[bytes] | bytes | str) -> Iterable[Any]:
    """A streamed body's chunks (see _chunk_bytes)."""
    assert not isinstance(body, (bytes, str))
    return body


def _chunk_bytes(chunk: object) -> bytes:
    """A streamed body's chunk as bytes: bytes, bytearray or memoryview (the
    compiled send_body takes bytes only). Anything else is the app's error:
    bytes() would make an int into that many zero bytes."""
    if type(chunk) is bytes:
        return chunk
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"a response body's chunks must be bytes, not {type(chunk).__name__}")
