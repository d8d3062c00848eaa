# Request and Response as native handlers see them. A Request's body is
# streamed from the connection on demand; a Response's body may be bytes, str,
# or an (async) iterable of chunks, streamed out as it is produced.
from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, Protocol

from netsvc import PeerCertificate, SocketAddress

__all__ = ["Headers", "Request", "Response", "host_port", "split_absolute", "to_response"]

Body = bytes | str | Iterable[bytes] | AsyncIterable[bytes]


class Headers:
    """Request headers: case-insensitive lookup over the (name, value) pairs
    as received; names are lower-case bytes, as h11 gives them."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower().encode("latin-1")
        for header, value in self.raw:
            if header == key:
                return value.decode("latin-1")
        return default

    def get_all(self, name: str) -> list[str]:
        key = name.lower().encode("latin-1")
        return [value.decode("latin-1") for header, value in self.raw if header == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"


class RequestSource(Protocol):
    """Where a Request's body comes from, and word of the client's close
    (the driver's connection), with what requests share."""

    @property
    def root_path(self) -> str: ...

    @property
    def state(self) -> dict[str, Any]: ...

    @property
    def peer_certificate(self) -> PeerCertificate | None: ...

    def body_chunks(self, request: Request) -> AsyncIterator[bytes]: ...

    async def is_disconnected(self, request: Request) -> bool: ...


class Request:
    """One HTTP request. Read the body once: `await request.body()`,
    `await request.json()`, or `async for chunk in request.stream()`.

    Behind a trusted proxy (--http-proxy-headers), `peer`, `scheme` and
    `host` are the client's as the proxy reports them. With --http-root-path,
    `path` is the path below `root_path` (the prefix taken off if present).

    The server builds them: the constructor is its own, not an API."""

    def __init__(
        self,
        method: str,
        target: bytes,
        http_version: str,
        headers: Headers,
        peer: SocketAddress,
        scheme: str,
        host: str | None,
        server: tuple[str, int | None] | None,
        source: RequestSource,
    ) -> None:
        # the driver builds one per request, its arguments by position: a
        # call with a keyword for each cost as much as the rest of it
        self.method = method
        self.target = target
        """The request target as received: path and query, percent-encoded."""
        authority = None
        if not target.startswith(b"/") and target != b"*":  # absolute-form: http://host/path
            authority, target_path = split_absolute(target)
        else:
            target_path = target
        raw_path, _, query = target_path.partition(b"?")
        self.raw_path = raw_path
        """The path as received, percent-encoded (root_path not taken off)."""
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = urllib.parse.unquote(path)
        root_path = self.root_path = source.root_path
        """The prefix the app is served under (--http-root-path), "" if none."""
        if root_path and path.startswith(root_path):
            rest = path[len(root_path) :]
            if not rest or rest.startswith("/"):  # "/api" is under "/api", "/apix" is not
                path = rest or "/"
        self.path = path
        """The decoded path the routes see: below root_path."""
        self.query_string = query
        self.http_version = http_version
        self.headers = headers
        self.peer = peer
        """The client's address (behind a trusted proxy: the one it reports)."""
        self.scheme = scheme
        """"http" or "https", as the client used it (behind a trusted proxy: as it reports)."""
        self.server = server
        """(host, port) of the server as the client reached it: the listener's
        address, or the host a trusted proxy reports; None on a Unix socket."""
        self._host = host if host is not None or authority is None else authority
        self.peer_certificate = source.peer_certificate
        """The client's verified TLS certificate (--client-certs), or None."""
        self.path_params: dict[str, str] = {}
        self.state = source.state
        """The server's shared state (`runtime`, and whatever the app puts there)."""
        self._source = source
        self._body: bytes | None = None

    @property
    def host(self) -> str:
        """The host the client asked for, as in a Host header (`example.com`,
        `example.com:8080`): the one a trusted proxy reports, else the one
        of an absolute-form target (`GET http://example.com/ HTTP/1.1`), else
        the request's Host header; "" if it has none."""
        if self._host is None:
            self._host = self.headers.get("host") or ""
        return self._host

    async def is_disconnected(self) -> bool:
        """True once the client has closed the connection. Known once the
        request's body has been read: from the first call on, the
        connection is watched (and all along while a streamed response is
        sent, whose body is cancelled when the client leaves)."""
        return await self._source.is_disconnected(self)

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.query_string.decode("latin-1"), keep_blank_values=True)

    async def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk (once)."""
        async for chunk in self._source.body_chunks(self):
            yield chunk

    async def body(self) -> bytes:
        if self._body is None:
            self._body = b"".join([chunk async for chunk in self._source.body_chunks(self)])
        return self._body

    async def json(self) -> Any:
        return json.loads(await self.body())

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path.decode('latin-1')!r} from {self.peer}>"


class Response:
    """A response: status, headers, and a body of bytes, str (UTF-8), or an
    iterable / async iterable of byte chunks (streamed, chunked encoding)."""

    def __init__(
        self,
        body: Body = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> None:
        self.status = status
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if isinstance(body, str):
            body = body.encode()
            content_type = content_type or "text/plain; charset=utf-8"
        elif isinstance(body, (bytearray, memoryview)):  # whole, not streamed byte by byte
            body = bytes(body)
        if content_type is not None and not any(n.lower() == "content-type" for n, _ in pairs):
            pairs.append(("content-type", content_type))
        self.headers = pairs
        self.body = body

    @classmethod
    def json(
        cls, data: Any, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        encoded = json.dumps(data, separators=(",", ":")).encode()
        return cls(encoded, status=status, headers=headers, content_type="application/json")

    @classmethod
    def text(cls, text: str, *, status: int = 200) -> Response:
        return cls(text, status=status)


def host_port(address: SocketAddress) -> tuple[str, int] | None:
    """An address as ASGI's `client` and `server` give it: None for a Unix socket."""
    return (address.host, address.port) if address.transport == "tcp" else None


def split_absolute(target: bytes) -> tuple[str, bytes]:
    """An absolute-form target's authority and its path and query (RFC 9112
    3.2.2: the server uses these, not the Host header)."""
    rest = target.partition(b"://")[2]
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    path = rest[cut:]
    return rest[:cut].decode("latin-1"), path if path.startswith(b"/") else b"/" + path


def to_response(result: Any) -> Response:
    """What a native handler returned, as a Response."""
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status=204)
    if isinstance(result, bytes):
        return Response(result, content_type="application/octet-stream")
    if isinstance(result, str):
        return Response(result)
    if isinstance(result, (dict, list)):
        return Response.json(result)
    if isinstance(result, (AsyncIterable, Iterable)):
        return Response(result, content_type="application/octet-stream")
    raise TypeError(
        f"a handler returned {type(result).__name__}; return a Response, bytes, str, dict or list"
    )
