# Serving an ASGI 3 application: the http scope (request body in, response
# out through the h11 driver, http.disconnect once the response is complete
# or the client has left), the websocket scope (ASGI messages onto the
# WebSocket of _websocket.py, the websocket.http.response extension
# included) and the lifespan scope (startup before the listeners accept,
# shutdown after the last connection), as the ASGI spec says; root_path, and
# client, scheme and server as a trusted proxy reports them.
from __future__ import annotations

import inspect
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import h11
import trio

from netsvc import AppError, Connection, ConnectionLost, SendTimeout

from ._messages import Request, host_port
from ._websocket import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from ._driver import HttpConnection

__all__ = ["AsgiApp", "is_asgi_app"]

log = logging.getLogger("netsvc.http.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]
# The http scope: spec 2.3's http.disconnect (receive() returns it once the
# response is complete or the client has closed the connection, which is
# watched for while the app runs), and 2.4's OSError from send() once the
# client has gone. It says 2.3, as uvicorn does: told 2.4, Starlette's
# StreamingResponse stops listening for http.disconnect and counts on send()
# failing, so a Server-Sent-Events generator waiting for its next event
# would outlive its client until that event comes.
ASGI = {"version": "3.0", "spec_version": "2.3"}
# The websocket scope implements the HTTP & WebSocket spec up to 2.5: accept
# headers (2.1), close reasons (2.3), send() after the close raises an OSError
# (2.4), disconnect reasons (2.5).
WEBSOCKET_ASGI = {"version": "3.0", "spec_version": "2.5"}


class ClientDisconnected(OSError):
    """send() after the client went away (ASGI 2.4 asks for an OSError)."""


def is_asgi_app(obj: object) -> bool:
    """An ASGI 3 application is an async callable taking (scope, receive, send)."""
    if not callable(obj):
        return False
    target = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else type(obj).__call__
    if not inspect.iscoroutinefunction(target) and not inspect.iscoroutinefunction(obj):
        return False
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return True
    return len(parameters) == 3


class AsgiApp:
    """Wraps an ASGI application for the HTTP service."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self.state: dict[str, Any] = {}  # the lifespan state, copied into each request scope
        self._lifespan_queue: trio.MemorySendChannel[Message] | None = None
        self._lifespan_events: trio.MemoryReceiveChannel[Message] | None = None
        self._supports_lifespan = True
        self._lifespan_ended = trio.Event()

    # -- lifespan ------------------------------------------------------------

    async def startup(self, nursery: trio.Nursery) -> None:
        to_app, from_server = trio.open_memory_channel[Message](1)
        to_server, from_app = trio.open_memory_channel[Message](1)
        self._lifespan_queue, self._lifespan_events = to_app, from_app
        scope: Scope = {"type": "lifespan", "asgi": ASGI, "state": self.state}
        spoke = False  # the app sent a lifespan message: it does lifespan
        reported = False  # it sent a *.failed message: the server reports that
        ended = self._lifespan_ended = trio.Event()

        async def send(message: Message) -> None:
            nonlocal spoke, reported
            spoke = True
            reported = reported or str(message.get("type", "")).endswith(".failed")
            await to_server.send(message)

        async def run() -> None:
            try:
                await self.app(scope, from_server.receive, send)
            except Exception as exc:
                if reported:  # already said in one line; the traceback is for debugging
                    log.debug("the ASGI app's lifespan task ended with %r", exc, exc_info=True)
                elif spoke:
                    log.exception("the ASGI app's lifespan task failed")
                else:  # apps that do not do lifespan raise at once...
                    log.info("the ASGI app does not handle lifespan (%r); going on without", exc)
            else:
                if not spoke:  # ...or return at once
                    log.info("the ASGI app does not handle lifespan; going on without")
            finally:
                ended.set()
                if not spoke:
                    self._supports_lifespan = False
                    await to_server.send({"type": "lifespan.unsupported"})

        nursery.start_soon(run)
        await to_app.send({"type": "lifespan.startup"})
        reply = await from_app.receive()
        if reply["type"] == "lifespan.startup.failed":
            raise AppError(f"the ASGI app's startup failed: {reply.get('message', '')}")

    async def shutdown(self) -> None:
        if not self._supports_lifespan or self._lifespan_queue is None:
            return
        assert self._lifespan_events is not None
        with trio.move_on_after(30):
            if self._lifespan_ended.is_set():
                return  # the lifespan task is already gone (its error was logged)
            async with trio.open_nursery() as nursery:

                async def reply() -> None:
                    assert self._lifespan_events is not None
                    message = await self._lifespan_events.receive()
                    if message["type"] == "lifespan.shutdown.failed":
                        log.error("the ASGI app's shutdown failed: %s", message.get("message", ""))
                    nursery.cancel_scope.cancel()

                async def gone() -> None:
                    await self._lifespan_ended.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(reply)
                nursery.start_soon(gone)
                await self._lifespan_queue.send({"type": "lifespan.shutdown"})

    # -- http ----------------------------------------------------------------

    async def __call__(self, connection: HttpConnection, request: Request) -> None:
        conn = connection.conn
        path, raw_path = _paths(request)
        scope: Scope = {
            "type": "http",
            "asgi": ASGI,
            "http_version": request.http_version,
            "method": request.method,
            "scheme": request.scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": request.query_string,
            "root_path": request.root_path,
            "headers": request.headers.raw,
            "client": host_port(request.peer),
            "server": request.server,
            "state": dict(self.state),
        }
        if conn.tls:
            scope["extensions"] = {"tls": _tls_extension(conn)}
        head = request.method == "HEAD"
        body_error: Exception | None = None  # why the request body stopped, if it did

        async def receive() -> Message:
            nonlocal body_error
            if connection.serving is not request:  # a task the app left behind
                return {"type": "http.disconnect"}
            if body_error is None and connection.body_left:
                try:
                    chunk = await connection.read_body(request)
                except h11.RemoteProtocolError as exc:  # malformed, or the client left mid-body
                    body_error = exc
                    return {"type": "http.disconnect"}
                except Exception as exc:  # too large, too slow: the app hears it once
                    body_error = exc
                    raise
                more = connection.body_left
                return {"type": "http.request", "body": chunk or b"", "more_body": more}
            if body_error is None:  # the whole body has been received
                # until the response is complete or the client leaves; at once
                # (no checkpoint) if one is so: Starlette's is_disconnected()
                # asks with a cancelled receive()
                await connection.wait_disconnect()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if connection.serving is not request:  # must not touch the next request
                raise RuntimeError(f"{message.get('type')!r} sent after the app returned")
            if connection.client_gone:
                raise ClientDisconnected("the client closed the connection")
            kind = message["type"]
            try:
                if kind == "http.response.start":
                    headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", [])]
                    await connection.start_response(int(message["status"]), headers)
                elif kind == "http.response.body":
                    more = bool(message.get("more_body", False))
                    chunk = bytes(message.get("body", b""))
                    await connection.send_body(chunk, more=more, head=head)
            except (ConnectionLost, SendTimeout) as exc:
                raise ClientDisconnected(str(exc)) from exc  # ASGI 2.4: an OSError

        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if body_error is not None:  # the app failed on a bad body, as ASGI allows:
                raise body_error from None  # answered as the native path does (400, 408, 413)
            lost = _lost_client(exc)
            if lost is None:
                raise
            raise lost from None  # the client left: the connection ends quietly
        if not connection.response_started:
            if body_error is not None:  # the app gave up on a bad body
                raise body_error
            if connection.client_gone:
                return  # and nobody to answer
            raise RuntimeError("the ASGI app returned without sending a response")

    # -- websocket -----------------------------------------------------------

    async def websocket(self, websocket: WebSocket, conn: Connection) -> None:
        """Serve a WebSocket upgrade with the app's websocket scope. The app
        answers websocket.connect with websocket.accept, websocket.close (403)
        or a websocket.http.response; returning without one is a 403."""
        request = websocket.request
        path, raw_path = _paths(request)
        extensions: dict[str, Any] = {"websocket.http.response": {}}
        if conn.tls:
            extensions["tls"] = _tls_extension(conn)
        scope: Scope = {
            "type": "websocket",
            "asgi": WEBSOCKET_ASGI,
            "http_version": request.http_version,
            "scheme": "wss" if request.scheme == "https" else "ws",
            "path": path,
            "raw_path": raw_path,
            "query_string": request.query_string,
            "root_path": request.root_path,
            "headers": request.headers.raw,
            "client": host_port(request.peer),
            "server": request.server,
            "subprotocols": websocket.subprotocols,
            "state": dict(self.state),
            "extensions": extensions,
        }
        connected = False

        async def receive() -> Message:
            nonlocal connected
            if not connected:
                connected = True
                return {"type": "websocket.connect"}
            await websocket._wait_handshake()  # messages flow once the app has accepted
            try:
                message = await websocket.receive()
            except WebSocketDisconnect as exc:
                return {"type": "websocket.disconnect", "code": exc.code, "reason": exc.reason}
            if isinstance(message, str):
                return {"type": "websocket.receive", "text": message}
            return {"type": "websocket.receive", "bytes": message}

        async def send(message: Message) -> None:
            kind = message["type"]
            try:
                if kind == "websocket.accept":
                    headers = [(bytes(n), bytes(v)) for n, v in message.get("headers") or ()]
                    await websocket._accept_raw(message.get("subprotocol"), headers)
                elif kind == "websocket.send":
                    data = message.get("bytes")
                    if data is None:
                        data = message.get("text")
                    if data is None:
                        raise RuntimeError("websocket.send has neither 'bytes' nor 'text'")
                    await websocket.send(data)
                elif kind == "websocket.close":
                    code = message.get("code")
                    await websocket.close(
                        1000 if code is None else int(code), message.get("reason") or ""
                    )
                elif kind == "websocket.http.response.start":
                    headers = [(bytes(n), bytes(v)) for n, v in message.get("headers") or ()]
                    await websocket._deny_start(int(message["status"]), headers)
                elif kind == "websocket.http.response.body":
                    body = bytes(message.get("body", b""))
                    await websocket._deny_body(body, more=bool(message.get("more_body", False)))
                else:
                    raise RuntimeError(f"unexpected ASGI message {kind!r} on a WebSocket")
            except WebSocketDisconnect as exc:
                raise ClientDisconnected(str(exc)) from exc  # ASGI 2.4: an OSError

        try:
            await self.app(scope, receive, send)
        except ClientDisconnected as exc:
            if not isinstance(exc.__cause__, WebSocketDisconnect):
                raise
            # the app let send()'s error end it: the WebSocket is closed, an ordinary end


# the ASGI TLS extension's tls_version: the version's number on the wire
TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def _tls_extension(conn: Connection) -> dict[str, Any]:
    """The ASGI TLS extension: the client's certificate (--client-certs), if
    it sent one, and the TLS version. The server's certificate and the
    cipher suite's number are not known here (None, as the spec allows)."""
    certificate = conn.peer_certificate
    return {
        "server_cert": None,
        "client_cert_chain": [certificate.pem] if certificate else [],
        "client_cert_name": certificate.rfc4514_name() if certificate else None,
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(conn.tls_version or ""),
        "cipher_suite": None,
    }


def _paths(request: Request) -> tuple[str, bytes]:
    """The scope's `path` and `raw_path`: with a root_path, they start with
    it (as ASGI says: the app takes it off), whether the request's path had
    it (a proxy that passes the prefix on) or not (one that strips it,
    where uvicorn's --root-path is used)."""
    root = request.root_path
    if not root:
        return request.path, request.raw_path
    received = urllib.parse.unquote(request.raw_path.decode("latin-1"))
    if received == root or received.startswith(root + "/"):
        return received, request.raw_path
    return root + received, urllib.parse.quote(root).encode("ascii") + request.raw_path


def _lost_client(exc: BaseException) -> BaseException | None:
    """If an app's exception comes from a send() the client's leaving made
    fail (a ClientDisconnected, maybe wrapped by the framework, or in an
    exception group of such), what the driver is to see: the send's own
    error, or ConnectionLost."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, ClientDisconnected):
            cause = current.__cause__
            if isinstance(cause, (ConnectionLost, SendTimeout)):
                return cause
            return ConnectionLost(str(current))
        if isinstance(current, BaseExceptionGroup):
            lost = [_lost_client(inner) for inner in current.exceptions]
            return lost[0] if all(lost) else None
        current = current.__cause__ or current.__context__
        seen += 1
    return None
