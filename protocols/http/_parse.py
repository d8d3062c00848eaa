# The seam between the driver and an HTTP/1.1 parser (--http-parser
# auto|h11|httptools): what the driver uses of h11.Connection (ServerParser),
# which parsers there are, and which one `auto` picks. h11 is the reference
# parser; httptools (llhttp, in C) is optional (pip install 'netsvc[fast]')
# and wrapped in _httptools.py to give h11's events, states and errors, so
# that the driver is the same for both.
from __future__ import annotations

import functools
import importlib
from typing import Protocol

import h11

__all__ = ["AUTO", "PARSERS", "ServerParser", "available", "new_parser", "resolve"]

PARSERS = ("auto", "h11", "httptools")
# what `auto` picks: the first of these that is installed
AUTO = ("httptools", "h11")


class ServerParser(Protocol):
    """The server side of one HTTP/1.1 connection, sans-IO: what the driver
    uses of h11.Connection(h11.SERVER). States are h11's (h11.IDLE,
    h11.DONE...), events h11's, and a malformed request raises
    h11.RemoteProtocolError with an error_status_hint."""

    @property
    def our_state(self) -> object: ...

    @property
    def their_state(self) -> object: ...

    @property
    def trailing_data(self) -> tuple[bytes, bool]: ...

    @property
    def they_are_waiting_for_100_continue(self) -> bool: ...

    def receive_data(self, data: bytes) -> None: ...

    def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]: ...

    def send(
        self, event: h11.Response | h11.InformationalResponse | h11.Data | h11.EndOfMessage
    ) -> bytes: ...

    def start_next_cycle(self) -> None: ...


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
    return h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)
