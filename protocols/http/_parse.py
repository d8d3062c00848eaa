# The seam between the driver and an HTTP/1.1 parser (--http-parser
# auto|h11|httptools): what the driver uses of a parser (ServerParser), which
# parsers there are, and which one `auto` picks. h11 is the reference parser,
# wrapped here (H11Parser) to give a request's head as a RequestHead;
# httptools (llhttp, in C) is optional (pip install 'netsvc[fast]') and
# wrapped in _httptools.py to give h11's events, states and errors
# otherwise, so that the driver is the same for both.
from __future__ import annotations

import functools
import http
import importlib
from typing import Any, Final, Protocol, TypeAlias

import h11

from ._strict import has_control

__all__ = [
    "AUTO",
    "END_OF_MESSAGE",
    "FORWARDED",
    "PARSERS",
    "REASONS",
    "H11Parser",
    "ParserEvent",
    "RequestHead",
    "ServerParser",
    "available",
    "data_of",
    "new_parser",
    "no_context",
    "resolve",
    "response_event",
    "scan_head",
]

PARSERS: Final = ("auto", "h11", "httptools")
# what `auto` picks: the first of these that is installed
AUTO: tuple[str, ...] = ("httptools", "h11")


class RequestHead:
    """A request's head as h11's Request event has it, checked as h11 checks
    one (its method, target, Host, Content-Length and Transfer-Encoding),
    with its headers as a list: names lower-case, one Content-Length, a
    Transfer-Encoding's value lower-case. A plain class, not h11's event:
    building that one validates the head again, a third of what the
    httptools parser spends on a request (callgrind).

    With it, what the driver needs of the head, found in the parser's one
    pass over the headers (one pass, not one per layer: each cost as much
    as a header's parse): `size` as the 431 limit counts it, `length` the
    body's declared length (None: chunked), whether it has a Content-Length
    header (`has_length`), its Host header's value (h11 allows one at
    most), whether it has an Upgrade header (a WebSocket handshake, maybe)
    and proxy headers (X-Forwarded-*, Forwarded), and whether a value has a
    control character (`control`: h11 lets them through)."""

    __slots__ = (
        "control",
        "forwarded",
        "has_length",
        "headers",
        "host",
        "http_version",
        "length",
        "method",
        "size",
        "target",
        "upgrade",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        http_version: bytes,
        headers: list[tuple[bytes, bytes]],
        size: int,
        length: int | None,
        has_length: bool,
        host: bytes | None,
        upgrade: bool,
        forwarded: bool,
        control: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.size = size
        self.length = length
        self.has_length = has_length
        self.host = host
        self.upgrade = upgrade
        self.forwarded = forwarded
        self.control = control

    def __repr__(self) -> str:
        return (
            f"RequestHead(method={self.method!r}, target={self.target!r}, "
            f"http_version={self.http_version!r}, headers={self.headers!r})"
        )


FORWARDED: Final = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"}
)


def scan_head(
    method: bytes, target: bytes, http_version: bytes, headers: list[tuple[bytes, bytes]]
) -> RequestHead:
    """The RequestHead of a head whose headers h11 has checked."""
    size = len(target)
    length: int | None = 0
    chunked = has_length = upgrade = forwarded = control = False
    host = None
    for name, value in headers:
        size += len(name) + len(value) + 4
        control = control or has_control(value)
        if name == b"content-length":
            length, has_length = int(value), True
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"host":
            host = value
        elif name == b"upgrade":
            upgrade = True
        elif name in FORWARDED:
            forwarded = True
    if chunked:
        length = None
    return RequestHead(
        method,
        target,
        http_version,
        headers,
        size,
        length,
        has_length,
        host,
        upgrade,
        forwarded,
        control,
    )


ParserEvent: TypeAlias = (
    RequestHead
    | h11.Data
    | h11.EndOfMessage
    | h11.ConnectionClosed
    | type[h11.NEED_DATA]
    | type[h11.PAUSED]
)


class ServerParser(Protocol):
    """The server side of one HTTP/1.1 connection, sans-IO: h11.Connection(
    h11.SERVER)'s interface, as the driver uses it. States are h11's
    (h11.IDLE, h11.DONE...), events h11's but for RequestHead, and a
    malformed request raises h11.RemoteProtocolError with an
    error_status_hint. send_head(), send_data() and send_end() are
    send(h11.Response(...)), send(h11.Data(...)) and send(h11.EndOfMessage())
    without an event to build, send_whole() a response with its whole body."""

    @property
    def our_state(self) -> object: ...

    @property
    def their_state(self) -> object: ...

    @property
    def trailing_data(self) -> tuple[bytes, bool]: ...

    @property
    def they_are_waiting_for_100_continue(self) -> bool: ...

    def receive_data(self, data: bytes) -> None: ...

    def next_event(self) -> ParserEvent: ...

    def send(
        self, event: h11.Response | h11.InformationalResponse | h11.Data | h11.EndOfMessage
    ) -> bytes: ...

    def send_data(self, data: bytes) -> bytes: ...

    def send_end(self) -> bytes: ...

    def send_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        """send(response_event(status, headers))."""
        ...

    def send_whole(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
        """send_head(status, headers), send_data(body) (if any) and send_end()
        in one call."""
        ...

    def start_next_cycle(self) -> None: ...


END_OF_MESSAGE: Final = h11.EndOfMessage()  # a body's end without trailers (events are immutable)
REASONS: Final = {status.value: status.phrase.encode() for status in http.HTTPStatus}

_events: Final[dict[tuple[object, ...], h11.Response]] = {}
_EVENTS_KEPT: Final = 256


def response_event(status: int, headers: list[tuple[bytes, bytes]]) -> h11.Response:
    """h11's Response event for a head, validated once: h11 spends more time
    checking a head's headers than writing them, and a server sends the same
    head (status, content type, length, this second's date) again and again.
    Events are immutable, so one can be sent on any connection. A bad head
    raises h11.LocalProtocolError (every time)."""
    key = (status, *headers)
    event = _events.get(key)
    if event is None:
        event = h11.Response(status_code=status, headers=headers, reason=REASONS.get(status, b""))
        if len(_events) >= _EVENTS_KEPT:  # the date changes every second: old heads go
            _events.clear()
        _events[key] = event
    return event


def data_of(event: Any) -> bytes:
    """A Data event's bytes. h11 gives a bytearray where its type says bytes,
    which compiled code checks (TypeError): `event` is Any so that it is not."""
    return bytes(event.data)


def no_context(exc: Exception) -> Exception:
    """`exc`, to be raised `from None`, as the pure build raises it: mypyc's
    compiled raise ignores `from`, and would show the error being handled as
    its context in a logged traceback."""
    exc.__cause__ = None  # sets __suppress_context__ too
    return exc


class H11Parser:
    """h11.Connection(h11.SERVER) as a ServerParser."""

    __slots__ = ("_h11", "_waiting")

    def __init__(self, max_head: int) -> None:
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)
        # between requests with nothing read: next_event() is NEED_DATA until
        # receive_data() (h11's own answer costs 4% of a request, compiled)
        self._waiting = True

    @property
    def our_state(self) -> object:
        return self._h11.our_state

    @property
    def their_state(self) -> object:
        return self._h11.their_state

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        return self._h11.trailing_data

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        return self._h11.they_are_waiting_for_100_continue

    def receive_data(self, data: bytes) -> None:
        self._waiting = False
        self._h11.receive_data(data)

    def next_event(self) -> ParserEvent:
        if self._waiting:
            return h11.NEED_DATA
        event = self._h11.next_event()
        if type(event) is h11.Request:
            # h11's Headers is a Sequence of (name, value), iterated a
            # __getitem__ call at a time: its (raw name, name, value)
            # triples (private, in every h11 since 0.10) are listed in one
            # go, 3% of a request
            headers = [(name, value) for _, name, value in event.headers._full_items]
            return scan_head(event.method, event.target, event.http_version, headers)
        assert isinstance(event, (h11.Data, h11.EndOfMessage, h11.ConnectionClosed)) or (
            event is h11.NEED_DATA or event is h11.PAUSED
        )
        return event

    def send(
        self, event: h11.Response | h11.InformationalResponse | h11.Data | h11.EndOfMessage
    ) -> bytes:
        data = self._h11.send(event)
        assert data is not None  # None only for ConnectionClosed
        return data

    def send_data(self, data: bytes) -> bytes:
        return self.send(h11.Data(data=data))

    def send_end(self) -> bytes:
        return self.send(END_OF_MESSAGE)

    def send_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        return self.send(response_event(status, headers))

    def send_whole(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
        data = self.send(response_event(status, headers))
        if body:
            data += self.send(h11.Data(data=body))
        return data + self.send(END_OF_MESSAGE)

    def start_next_cycle(self) -> None:
        self._h11.start_next_cycle()
        data, closed = self._h11.trailing_data
        self._waiting = not data and not closed


@functools.cache
def available(name: str) -> bool:
    """Whether parser `name` can be used here (h11 always can)."""
    if name != "httptools":
        return name == "h11"
    try:
        httptools = importlib.import_module("httptools")
    except ImportError:
        return False
    # the lenient modes _httptools.py sets (llhttp's, as h11 reads) came in 0.6.3
    return hasattr(httptools.HttpRequestParser, "set_dangerous_leniencies")


def resolve(name: str) -> str:
    """The parser `name` stands for: `auto` is the first of AUTO installed."""
    if name == "auto":
        return next(parser for parser in AUTO if available(parser))
    return name


def new_parser(name: str, max_head: int) -> ServerParser:
    """A parser for one connection: `name` is h11 or httptools (resolved);
    a request head still incomplete past `max_head` bytes is a 431."""
    if name == "httptools":
        from ._httptools import HttptoolsConnection

        return HttptoolsConnection(max_incomplete_event_size=max_head)
    return H11Parser(max_head)
