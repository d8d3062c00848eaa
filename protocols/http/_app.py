# The native application: routes from path patterns and methods to async
# handlers. "/items/{id}" captures one path segment, "/files/{rest:path}" the
# rest of the path. A path that matches with the wrong method gets 405.
# WebSocket routes have patterns of their own: an upgrade request whose path
# none of them matches is served by the HTTP routes, as any request.
from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ._messages import Request
from ._websocket import WebSocket

__all__ = ["HttpApp", "Route", "WebSocketRoute"]

Handler = Callable[[Request], Awaitable[Any]]
WebSocketHandler = Callable[[WebSocket], Awaitable[None]]
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(path))?\}")


@dataclasses.dataclass(frozen=True)
class Route:
    pattern: str
    regex: re.Pattern[str]
    methods: frozenset[str]
    handler: Handler


@dataclasses.dataclass(frozen=True)
class WebSocketRoute:
    pattern: str
    regex: re.Pattern[str]
    handler: WebSocketHandler


def _compile(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("/"):
        raise ValueError(f"a route pattern starts with '/', got {pattern!r}")
    parts, last = [], 0
    for match in _PARAM.finditer(pattern):
        parts.append(re.escape(pattern[last : match.start()]))
        parts.append(f"(?P<{match[1]}>.+)" if match[2] == "path" else f"(?P<{match[1]}>[^/]+)")
        last = match.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("".join(parts))


class HttpApp:
    """Routes to handlers:

        app = HttpApp()

        @app.route("/items/{id}", methods=["GET"])
        async def item(request):
            return {"id": request.path_params["id"]}

        @app.websocket("/chat/{room}")
        async def chat(ws):
            await ws.accept()
            async for message in ws:
                await ws.send(message)

    A handler returns a Response, or bytes/str/dict/list/None (made into one).
    """

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.websocket_routes: list[WebSocketRoute] = []
        self._exact: dict[str, Route] = {}  # patterns without parameters, found in one lookup

    def route(
        self, pattern: str, *, methods: Iterable[str] = ("GET",)
    ) -> Callable[[Handler], Handler]:
        allowed = frozenset(method.upper() for method in methods)
        if not allowed:
            raise ValueError(f"route {pattern!r} allows no methods")

        def register(handler: Handler) -> Handler:
            if not inspect.iscoroutinefunction(handler):
                raise TypeError(f"route {pattern!r}: the handler must be an async function")
            for route in self.routes:
                if route.pattern == pattern and route.methods & allowed:
                    raise ValueError(
                        f"route {pattern!r} {sorted(route.methods & allowed)} is taken"
                    )
            route = Route(pattern, _compile(pattern), allowed, handler)
            self.routes.append(route)
            if not _PARAM.search(pattern) and pattern not in self._exact:
                self._exact[pattern] = route
            return handler

        return register

    def websocket(self, pattern: str) -> Callable[[WebSocketHandler], WebSocketHandler]:
        """Register a WebSocket handler: it gets a WebSocket (see its doc)."""

        def register(handler: WebSocketHandler) -> WebSocketHandler:
            if not inspect.iscoroutinefunction(handler):
                raise TypeError(f"websocket {pattern!r}: the handler must be an async function")
            if any(route.pattern == pattern for route in self.websocket_routes):
                raise ValueError(f"websocket {pattern!r} is taken")
            self.websocket_routes.append(WebSocketRoute(pattern, _compile(pattern), handler))
            return handler

        return register

    def find_websocket(self, path: str) -> tuple[WebSocketRoute | None, dict[str, str]]:
        """The WebSocket route for a path, and its path parameters."""
        for route in self.websocket_routes:
            match = route.regex.fullmatch(path)
            if match is not None:
                return route, match.groupdict()
        return None, {}

    def find(self, method: str, path: str) -> tuple[Route | None, dict[str, str], frozenset[str]]:
        """The route for a request, its path parameters, and (when only the
        method is wrong) the methods the path allows."""
        allowed: frozenset[str] = frozenset()
        route = self._exact.get(path)
        if route is not None and (method in route.methods or _accepts(route, method)):
            return route, {}, allowed
        for route in self.routes:
            match = route.regex.fullmatch(path)
            if match is None:
                continue
            if _accepts(route, method):
                return route, match.groupdict(), allowed
            allowed |= route.methods
        return None, {}, allowed


def _accepts(route: Route, method: str) -> bool:
    return method in route.methods or (method == "HEAD" and "GET" in route.methods)
