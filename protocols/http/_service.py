# The HTTP service: what all connections of one process share (the app,
# settings, state for handlers, the nursery where connections are watched for
# a client's close) and dispatch of a request to a native route (or the
# server-wide OPTIONS *) or to an ASGI application, and of a WebSocket
# upgrade to a native WebSocket route or to the ASGI application's websocket
# scope.
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from netsvc import Access, Connection, Runtime, Service

from ._app import HttpApp
from ._asgi import AsgiApp
from ._driver import HttpConnection
from ._messages import Request, Response, to_response
from ._parse import resolve
from ._settings import HttpSettings
from ._websocket import WebSocket

__all__ = ["HttpService"]

log = logging.getLogger("netsvc.http")

REFUSAL_BODY: Final = b"503 Service Unavailable: too many connections, try again later\n"
REFUSAL: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nretry-after: 1\r\nconnection: close\r\n\r\n%b"
    % (len(REFUSAL_BODY), REFUSAL_BODY)
)
NOT_FOUND: Final = Response(
    b"404 Not Found\n", status=404, content_type="text/plain; charset=utf-8"
)


class HttpService(Service):
    def __init__(self, app: HttpApp | AsgiApp, settings: HttpSettings, runtime: Runtime) -> None:
        self.app = app
        # which kind it is, decided once: dispatch() runs for every request
        self.native = app if isinstance(app, HttpApp) else None
        self.asgi = app if isinstance(app, AsgiApp) else None
        self.settings = settings
        self.parser = resolve(settings.parser)  # h11 or httptools, as `auto` finds them
        self.runtime = runtime
        self.state: dict[str, object] = {"runtime": runtime}
        self.nursery: trio.Nursery | None = None
        """Where the tasks that watch connections for a client's close run."""

    def access(self) -> Access:
        return Access(by_app=True)  # HTTP: the app decides who gets what

    def refusal(self) -> bytes:
        return REFUSAL

    async def start(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        log.info("HTTP/1.1 parser: %s", self.parser)
        if self.asgi is not None:
            await self.asgi.startup(nursery)

    async def stop(self) -> None:
        if self.asgi is not None:
            await self.asgi.shutdown()

    async def handle(self, conn: Connection) -> None:
        await HttpConnection(self, conn).run()

    def websocket_handler(
        self, conn: Connection, request: Request
    ) -> Callable[[WebSocket], Awaitable[None]] | None:
        """What serves a WebSocket upgrade request: a native WebSocket route
        (None if its path has none: the request is then plain HTTP), or the
        ASGI app, which gets every upgrade and decides, as under uvicorn."""
        if self.asgi is not None:
            asgi = self.asgi
            return lambda websocket: asgi.websocket(websocket, conn)
        assert self.native is not None
        route, params = self.native.find_websocket(request.path)
        if route is None:
            return None
        request.path_params = params
        return route.handler

    async def dispatch(self, connection: HttpConnection, request: Request) -> None:
        app = self.native
        if app is None:
            assert self.asgi is not None
            await self.asgi(connection, request)
            return
        if request.target == b"*":  # OPTIONS * (RFC 9110 9.3.7): what the server allows
            allowed = frozenset(method for route in app.routes for method in route.methods)
            allow = ", ".join(sorted(allowed | ({"HEAD"} if "GET" in allowed else set())))
            await connection.respond(Response(status=204, headers={"allow": allow}), head=False)
            return
        route, params, allowed = app.find(request.method, request.path)
        if route is None:
            if allowed:
                allow = ", ".join(sorted(allowed | ({"HEAD"} if "GET" in allowed else set())))
                response = Response(
                    b"405 Method Not Allowed\n",
                    status=405,
                    headers={"allow": allow},
                    content_type="text/plain; charset=utf-8",
                )
            else:
                response = NOT_FOUND
        else:
            request.path_params = params
            response = await route.handler(request)
            if type(response) is not Response:
                response = to_response(response)
        await connection.respond(response, head=request.method == "HEAD")
