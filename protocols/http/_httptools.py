# The server side of one HTTP/1.1 connection on httptools (llhttp, a C
# parser), sans-IO, offering what the driver uses of h11.Connection (see
# _parse.ServerParser) with h11's events, states and errors, so that a
# request is refused or served the same by both parsers. llhttp parses each
# request head's header lines; the rest is here, where it must match h11:
# the request line (h11's grammar), obs-fold and bare LF line ends (h11
# accepts both), the Host, Content-Length and Transfer-Encoding rules (h11's
# own Request event checks them; a request's head is a _parse.RequestHead
# with the headers h11's event would have), a body's framing (its Content-Length, or
# _strict.ChunkedBody, which checks and decodes a chunked body), keep-alive,
# Expect: 100-continue, an Upgrade left pending, and the responses written
# as h11 writes them (its framing headers, Connection: close, chunked).
from __future__ import annotations

import re
from typing import Final, NoReturn, TypeAlias

import h11
import httptools
from h11._state import MIGHT_SWITCH_PROTOCOL

from ._parse import (
    END_OF_MESSAGE,
    FORWARDED,
    ParserEvent,
    RequestHead,
    data_of,
    no_context,
    response_event,
)
from ._strict import REQUEST_LINE, ChunkedBody, FramingError, has_control

__all__ = ["HttptoolsConnection"]

# the end of a request head: a blank line, with or without its CR (as h11)
_HEAD_END: Final = re.compile(rb"\n\r?\n")
# llhttp gets this request line (the real one is checked here, as h11 does)
# and the head's header lines: it only parses those
_LINE_FOR_LLHTTP: Final = b"GET / HTTP/1.1\r\n"
_CR: Final = ord("\r")
_LF: Final = ord("\n")
_FOLD: Final = re.compile(rb"\n[ \t]")  # a header line continued (obs-fold)
# a header's value as h11 reads one (RFC 9110 5.5, with control characters)
_VALUE: Final = rb"[^\x00\s]+(?:[ \t]+[^\x00\s]+)*"
_FIELD_VALUE: Final = re.compile(rb"(?:%s)?" % _VALUE)
_BARE_CR: Final = re.compile(rb"\r(?!\n)")
_TOKEN: Final = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2, a field's name
_FRAMING_LINE: Final = re.compile(
    rb"(content-length|transfer-encoding):[ \t]*(%s)?[ \t]*\r?" % _VALUE, re.IGNORECASE
)

_IDLE: Final = h11.IDLE
_SEND_RESPONSE: Final = h11.SEND_RESPONSE
_SEND_BODY: Final = h11.SEND_BODY
_DONE: Final = h11.DONE
_MUST_CLOSE: Final = h11.MUST_CLOSE
_CLOSED: Final = h11.CLOSED
_ERROR: Final = h11.ERROR
_MIGHT_SWITCH: Final = MIGHT_SWITCH_PROTOCOL  # not in h11's __all__, but one of its states
# h11's STATE_TRIGGERED_TRANSITIONS when one side has closed or failed:
# (client, server) states become these
_CLOSING: Final = {
    (_CLOSED, _DONE): (_CLOSED, _MUST_CLOSE),
    (_CLOSED, _IDLE): (_CLOSED, _MUST_CLOSE),
    (_ERROR, _DONE): (_ERROR, _MUST_CLOSE),
    (_DONE, _CLOSED): (_MUST_CLOSE, _CLOSED),
    (_IDLE, _CLOSED): (_MUST_CLOSE, _CLOSED),
    (_DONE, _ERROR): (_MUST_CLOSE, _ERROR),
}


# the request headers the adapter takes note of (each other one costs a lookup)
_NOTED: Final = (
    frozenset(
        {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade"}
    )
    | FORWARDED
)

# A response head as written for a request: its bytes, its body's framing
# (None: Content-Length, "chunked", or "http/1.0": to the connection's end),
# the Content-Length, and whether the connection is kept alive after it.
_Written: TypeAlias = tuple[bytes, str | None, int, bool]
# heads written, by status, request (HEAD or not, HTTP version), keep-alive
# and headers
_written: Final[dict[tuple[object, ...], _Written]] = {}
_WRITTEN_KEPT: Final = 256


class _HeadParser:
    """llhttp reading a head's header lines, as strict as it is but on what
    h11 decides itself (a Transfer-Encoding's codings, which Content-Length
    and Transfer-Encoding may come together, line ends); with
    `lenient_values`, any value (to be checked by the caller). llhttp
    never sees a body: once a head announces one, llhttp would wait for it,
    so the next head needs a new parser; after a head without one (a GET),
    on a kept-alive connection (llhttp refuses anything after Connection:
    close), llhttp is ready for the next (`ready`)."""

    __slots__ = ("fields", "parser", "ready")

    def __init__(self, *, lenient_values: bool = False) -> None:
        self.fields: list[tuple[bytes, bytes]] = []
        self.ready = False  # llhttp ended the last head's message, keeping the connection
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(
            lenient_optional_cr_before_lf=True,  # a bare LF ends a line, as in h11
            lenient_chunked_length=True,  # h11 and _strict.check_head refuse both
            lenient_transfer_encoding=True,  # h11 refuses any but chunked (501)
            lenient_headers=lenient_values,
        )

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))

    def on_message_complete(self) -> None:
        # asked now: llhttp clears the message's flags once this returns
        self.ready = self.parser.should_keep_alive()

    def read(self, lines: bytes) -> list[tuple[bytes, bytes]]:
        """The fields of `lines` (a head's, after its request line, to its
        end); raises httptools.HttpParserError."""
        self.fields = []
        self.ready = False
        try:
            self.parser.feed_data(
                _LINE_FOR_LLHTTP + lines
            )  # one call, even with the copy: cheaper than two
        except httptools.HttpParserUpgrade:
            self.ready = False  # llhttp stops at the end of the head of an Upgrade request
        return self.fields


def _fields_as_h11_reads_them(lines: bytes, error: Exception) -> list[tuple[bytes, bytes]]:
    """Header lines llhttp refused (`error`), read as h11 reads them, for
    the errors to be h11's, in its order: a malformed line (400), then the
    framing headers (its Request event: 400, or 501 for a coding), then the
    driver's checks (a control character in a value: 400). llhttp refuses
    some Content-Length values h11 takes (5, 5), so those lines and the
    Transfer-Encoding ones are taken as they are, in their place; the others
    are read by llhttp, but their values checked here, as h11 does."""
    if _BARE_CR.search(lines):  # which lenient llhttp may take for a line's end
        raise h11.LocalProtocolError(f"illegal header line: {error}")
    framing: list[tuple[bytes, bytes] | None] = []  # None: a line llhttp parses
    others = []
    for line in lines.split(b"\n"):
        match = _FRAMING_LINE.fullmatch(line)
        if match is not None:
            framing.append((match[1], match[2] or b""))
        else:
            others.append(line)
            if line not in (b"", b"\r"):  # not the blank line ending the head
                framing.append(None)
    try:
        parsed = _HeadParser(lenient_values=True).read(b"\n".join(others))
    except httptools.HttpParserError as exc:
        raise no_context(h11.LocalProtocolError(f"illegal header line: {exc}")) from None
    for name, value in parsed:
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value.strip(b" \t")):
            raise h11.LocalProtocolError(f"illegal header line: {name!r}: {value!r}")
    if len(parsed) != framing.count(None):  # a line llhttp did not take as one
        raise h11.LocalProtocolError(f"illegal header line: {error}")
    fields = iter(parsed)
    return [field or next(fields) for field in framing]


class HttptoolsConnection:
    """h11.Connection(h11.SERVER)'s behaviour for the driver, on httptools.
    A request head still incomplete past `max_incomplete_event_size` bytes is
    a 431, as in h11. Responses to a CONNECT or a 101 (a protocol switch)
    are not supported: the driver refuses CONNECT, and a WebSocket takes
    the connection over with the bytes in trailing_data."""

    def __init__(self, *, max_incomplete_event_size: int = 16 * 1024) -> None:
        self._max_head = max_incomplete_event_size
        self._buffer = bytearray()
        self._closed = False  # the client's end has been received
        self._searched = 0  # how far the buffer has been searched for a head's end
        self._head_parser: _HeadParser | None = None  # llhttp, ready for the next head
        self._error: h11.RemoteProtocolError | None = None
        # h11's states and 100-continue flag, as attributes (h11's are
        # properties: a call for each of the reads a request makes)
        self.their_state: type[h11._util.Sentinel] = _IDLE
        self.our_state: type[h11._util.Sentinel] = _IDLE
        self.they_are_waiting_for_100_continue = False
        self._keep_alive = True
        self._switch_proposed = False  # an Upgrade header (or CONNECT) not yet answered
        self._method = b""  # the request's
        self._http_version: bytes | None = None  # the client's (None before a request)
        # the request body: Content-Length bytes still to come, or its decoder
        self._left = 0
        self._chunked: ChunkedBody | None = None
        self._body_error: FramingError | None = None  # found after some of the data
        # the response: None for Content-Length framing (_length bytes
        # still to send), "chunked", or "http/1.0" (ends with the connection)
        self._framing: str | None = None
        self._length = 0

    # -- states, as h11's (the attributes above) ---------------------------------

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        return bytes(self._buffer), self._closed

    def _settle(self) -> None:
        """h11's state-triggered transitions (h11/_state.py)."""
        if (
            self._keep_alive
            and not self._switch_proposed
            and self.their_state is not _MIGHT_SWITCH
            and (self.their_state, self.our_state) not in _CLOSING
        ):
            return  # the usual case: none applies
        while True:
            before = (self.their_state, self.our_state)
            if self._switch_proposed and self.their_state is _DONE:
                self.their_state = _MIGHT_SWITCH
            if not self._switch_proposed and self.their_state is _MIGHT_SWITCH:
                self.their_state = _DONE
            if not self._keep_alive:
                if self.their_state is _DONE:
                    self.their_state = _MUST_CLOSE
                if self.our_state is _DONE:
                    self.our_state = _MUST_CLOSE
            self.their_state, self.our_state = _CLOSING.get(
                (self.their_state, self.our_state), (self.their_state, self.our_state)
            )
            if (self.their_state, self.our_state) == before:
                return

    def start_next_cycle(self) -> None:
        if self.their_state is not _DONE or self.our_state is not _DONE:
            raise h11.LocalProtocolError(
                f"not in a reusable state: client {self.their_state}, server {self.our_state}"
            )
        self.their_state = self.our_state = _IDLE
        self._method = b""

    # -- receiving -------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if data:
            if self._closed:
                raise RuntimeError("received close, then received more data?")
            self._buffer += data
        else:
            self._closed = True

    def next_event(self) -> ParserEvent:
        if self._error is not None:
            raise self._error
        if not self._buffer and self.their_state is _IDLE and not self._closed:
            return h11.NEED_DATA  # between requests, nothing read yet: the usual wait
        try:
            event = self._next_event()
        except h11.LocalProtocolError as exc:  # the client's error, as h11 says
            self._fail(str(exc), exc.error_status_hint)
        except FramingError as exc:
            self._fail(str(exc), 400)
        if event is h11.NEED_DATA:
            if len(self._buffer) > self._max_head:
                self._fail("Receive buffer too long", 431)
            if self._closed:
                self._fail("peer unexpectedly closed", 400)
        return event

    def _fail(self, message: str, status: int) -> NoReturn:
        """The client's error: raised now and at every later next_event()."""
        self._error = h11.RemoteProtocolError(message, status)
        self.their_state = _ERROR
        self._settle()
        raise no_context(self._error) from None

    def _next_event(self) -> ParserEvent:
        state = self.their_state
        if state is _SEND_BODY:
            return self._read_body()
        if state is _IDLE:
            request = self._read_head()
            if request is not None:
                return request
        elif (state is _DONE and self._buffer) or state is _MIGHT_SWITCH:
            return h11.PAUSED
        elif self._buffer:  # MUST_CLOSE, CLOSED
            raise h11.LocalProtocolError("Got data when expecting EOF")
        if self._closed and not self._buffer:
            self.their_state = _CLOSED
            self._settle()
            return h11.ConnectionClosed()
        return h11.NEED_DATA

    def _read_head(self) -> RequestHead | None:
        buffer = self._buffer
        if not buffer:  # between requests on a kept-alive connection
            return None
        first = buffer[0]  # an int: slicing a bytearray copies it (2% of a GET)
        if first == _LF or (first == _CR and buffer[1:2] == b"\n"):  # no request line
            del buffer[: buffer.index(b"\n") + 1]  # as h11 does
            raise h11.LocalProtocolError("no request line received")
        end = _HEAD_END.search(buffer, self._searched)
        if end is None:
            self._searched = max(0, len(buffer) - 2)
            if buffer and buffer[0] < 0x21:  # as h11: TLS on a plain port, say
                raise h11.LocalProtocolError("illegal request line")
            return None
        head = bytes(buffer[: end.end()])
        del buffer[: end.end()]
        self._searched = 0
        line_end = head.find(b"\n")
        line = head[: line_end - 1 if head[line_end - 1] == 13 else line_end]
        match = REQUEST_LINE.fullmatch(line)
        if match is None:
            raise h11.LocalProtocolError(f"illegal request line: {line!r}")
        method, target, http_version = match.groups()
        return self._start_request(method, target, http_version, head[line_end + 1 :])

    def _header_fields(self, lines: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
        """A head's header fields (its lines after the request line), parsed
        by llhttp; and whether their values are still to be checked for
        control characters (llhttp refuses them, but the lines it refused
        are read otherwise)."""
        if lines[:1] in (b" ", b"\t") or _FOLD.search(lines):
            lines = _unfold(lines)
        parser = self._head_parser or _HeadParser()
        self._head_parser = None
        try:
            fields = parser.read(lines)
        except httptools.HttpParserError as exc:
            # a value h11 takes or refuses otherwise (a Content-Length of
            # 5, 5; a coding it does not know, a 501; a control character)
            return _fields_as_h11_reads_them(lines, exc), True
        if parser.ready:  # a new parser was a sixth of a head's parse and answer (callgrind)
            self._head_parser = parser
        return fields, False

    def _start_request(
        self, method: bytes, target: bytes, http_version: bytes, lines: bytes
    ) -> RequestHead:
        """The head of a request whose header lines are `lines`, checked as
        h11's Request event checks one (its normalize_and_validate of parsed
        headers, then its Host rule), or its error: names lower-case; values
        without the whitespace around them; a Content-Length's values must
        agree, and one header is kept; a Transfer-Encoding's value is
        lower-case, and chunked only (501); one Host, none in HTTP/1.0
        allowed. Then the state it leaves the connection in, as in h11. All
        in one pass over the headers (see RequestHead)."""
        fields, unchecked = self._header_fields(lines)
        headers = []
        size = len(target)
        length: bytes | None = None
        host: bytes | None = None
        hosts = 0
        chunked = upgrade = forwarded = switch = expect = False
        close = old = http_version < b"1.1"
        for raw_name, raw_value in fields:
            name = raw_name.lower()
            value = raw_value.rstrip(b" \t")
            if name in _NOTED:  # the few that matter here; the rest are only counted
                if name == b"host":
                    hosts += 1
                    host = value
                elif name == b"content-length":
                    lengths = {item.strip() for item in value.split(b",")}
                    if len(lengths) != 1:
                        raise h11.LocalProtocolError("conflicting Content-Length headers")
                    value = lengths.pop()
                    if not value.isdigit() or len(value) > 20:  # h11's [0-9]+, 20 digits at most
                        raise h11.LocalProtocolError("bad Content-Length")
                    if length is not None:
                        if length != value:
                            raise h11.LocalProtocolError("conflicting Content-Length headers")
                        continue  # h11 keeps the first
                    length = value
                elif name == b"transfer-encoding":
                    if chunked:
                        raise h11.LocalProtocolError(
                            "multiple Transfer-Encoding headers", error_status_hint=501
                        )
                    value = value.lower()
                    if value != b"chunked":
                        raise h11.LocalProtocolError(
                            "Only Transfer-Encoding: chunked is supported", error_status_hint=501
                        )
                    chunked = True
                elif name == b"connection":
                    close = close or b"close" in _tokens(value)
                elif name == b"expect":
                    expect = expect or b"100-continue" in _tokens(value)
                elif name == b"upgrade":
                    upgrade = True
                    switch = switch or bool(_tokens(value))
                else:  # X-Forwarded-*, Forwarded
                    forwarded = True
            size += len(name) + len(value) + 4
            headers.append((name, value))
        if http_version == b"1.1" and hosts == 0:
            raise h11.LocalProtocolError("Missing mandatory Host: header")
        if hosts > 1:
            raise h11.LocalProtocolError("Found multiple Host: headers")
        control = unchecked and any(has_control(value) for _, value in headers)
        # the state it leaves the connection in
        self._method, self._http_version = method, http_version
        self._left = 0 if length is None else int(length)
        self._chunked = ChunkedBody(self._max_head) if chunked else None
        if close:
            self._keep_alive = False
        if expect and not old:
            self.they_are_waiting_for_100_continue = True
        if switch or method == b"CONNECT":
            self._switch_proposed = True
        self.their_state = _SEND_BODY
        if self.our_state is _IDLE:
            self.our_state = _SEND_RESPONSE
        return RequestHead(
            method,
            target,
            http_version,
            headers,
            size,
            None if chunked else self._left,
            length is not None,
            host,
            upgrade,
            forwarded,
            control,
        )

    def _read_body(self) -> h11.Data | h11.EndOfMessage | type[h11.NEED_DATA]:
        buffer = self._buffer
        chunked = self._chunked
        if chunked is None:  # Content-Length
            if not self._left:
                return self._end_of_message(END_OF_MESSAGE)
            if not buffer:
                return h11.NEED_DATA
            data = bytes(buffer[: self._left])
            del buffer[: self._left]
            self._left -= len(data)
            # the client sent the body without waiting (as h11)
            self.they_are_waiting_for_100_continue = False
            return h11.Data(data=data)
        if self._body_error is not None:
            raise self._body_error
        pieces: list[bytes] = []
        while buffer and not pieces and not chunked.done:
            try:
                taken = chunked.feed(bytes(buffer), pieces)
            except FramingError as exc:
                if not pieces:
                    raise
                self._body_error = exc  # after the data before it, as h11 does
                break
            del buffer[:taken]
        if pieces:
            # the client sent the body without waiting (as h11)
            self.they_are_waiting_for_100_continue = False
            return h11.Data(data=b"".join(pieces))
        if chunked.done:
            trailers = h11.EndOfMessage(headers=chunked.trailers, _parsed=True)
            return self._end_of_message(trailers)
        return h11.NEED_DATA

    def _end_of_message(self, event: h11.EndOfMessage) -> h11.EndOfMessage:
        self.their_state = _DONE
        self.they_are_waiting_for_100_continue = False
        self._settle()
        return event

    # -- sending ---------------------------------------------------------------

    def send_data(self, data: bytes) -> bytes:
        if self.our_state is _SEND_BODY and (
            self._framing is not None or len(data) <= self._length
        ):
            return self._send_data(data)  # the usual case, which cannot fail
        return self.send(h11.Data(data=data))  # refused as h11 refuses it

    def send_end(self) -> bytes:
        return self.send(END_OF_MESSAGE)

    def send_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        """send(response_event(status, headers)), but what the head comes to on
        a connection in this state (a server sends the same head again and
        again) is written once, and kept."""
        state = self.our_state
        if (state is not _SEND_RESPONSE and state is not _IDLE) or self._method == b"CONNECT":
            return self.send(response_event(status, headers))  # refused as h11 refuses it
        key = (status, self._method == b"HEAD", self._http_version, self._keep_alive, *headers)
        written = _written.get(key)
        if written is None:
            # h11 checks the head (a bad one raises here, the state unchanged)
            written = self._write_response(response_event(status, headers))
            if len(_written) >= _WRITTEN_KEPT:  # the date changes every second: old heads go
                _written.clear()
            _written[key] = written
        return self._response_sent(written)

    def send_whole(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
        head = self.send_head(status, headers)
        if self._framing is None and self._length == len(body):  # the usual case
            self.our_state = _DONE
            self._settle()
            return head + body if body else head
        return head + (self.send_data(body) if body else b"") + self.send_end()

    def send(
        self, event: h11.Response | h11.InformationalResponse | h11.Data | h11.EndOfMessage
    ) -> bytes:
        try:
            return self._send(event)
        except h11.LocalProtocolError:
            self.our_state = _ERROR
            self._settle()
            raise

    def _send(
        self, event: h11.Response | h11.InformationalResponse | h11.Data | h11.EndOfMessage
    ) -> bytes:
        state = self.our_state
        kind = type(event)
        if kind is h11.Data and state is _SEND_BODY:
            assert isinstance(event, h11.Data)
            return self._send_data(data_of(event))
        if kind is h11.EndOfMessage and state is _SEND_BODY:
            data = b"0\r\n\r\n" if self._framing == "chunked" else b""
            if self._framing is None and self._length:
                raise h11.LocalProtocolError("Too little data for declared Content-Length")
            self.our_state = _DONE
            self._settle()
            return data
        if kind is h11.Response and state in (_IDLE, _SEND_RESPONSE):
            assert isinstance(event, h11.Response)
            return self._send_response(event)
        if kind is h11.InformationalResponse and state is _SEND_RESPONSE:
            assert isinstance(event, h11.InformationalResponse)
            if event.status_code == 101:
                raise h11.LocalProtocolError("a protocol switch is not supported here")
            self.they_are_waiting_for_100_continue = False
            return _head(event.status_code, event.reason, event.headers.raw_items())
        raise h11.LocalProtocolError(
            f"can't handle event type {kind.__name__} when role=SERVER and state={state}"
        )

    def _send_data(self, data: bytes) -> bytes:
        if self._framing is None:
            self._length -= len(data)
            if self._length < 0:
                raise h11.LocalProtocolError("Too much data for declared Content-Length")
            return data
        if self._framing == "chunked":
            return b"%x\r\n%b\r\n" % (len(data), data) if data else b""
        return data

    def _send_response(self, response: h11.Response) -> bytes:
        if self._method == b"CONNECT" and 200 <= response.status_code < 300:
            raise h11.LocalProtocolError("a protocol switch is not supported here")
        return self._response_sent(self._write_response(response))

    def _response_sent(self, written: _Written) -> bytes:
        """The state a response head leaves the connection in; its bytes."""
        head, self._framing, self._length, self._keep_alive = written
        self._switch_proposed = False  # denied: the client's state may move on
        self.they_are_waiting_for_100_continue = False
        self.our_state = _SEND_BODY
        self._settle()
        return head

    def _write_response(self, response: h11.Response) -> _Written:
        """h11's head for `response` (Connection._clean_up_response_headers_
        for_sending): its framing headers for this request and client, and
        Connection: close when the connection ends with it; with the body's
        framing and whether the connection is kept alive after it."""
        keep_alive = self._keep_alive
        status = response.status_code
        items = response.headers.raw_items()
        # a HEAD's framing headers are a GET's
        if _framing(b"GET" if self._method == b"HEAD" else self._method, status, items)[0]:
            items = _without(items, b"content-length")  # the length is unknown
            items = _without(items, b"transfer-encoding")
            if self._http_version is None or self._http_version < b"1.1":
                if self._method != b"HEAD":  # the body ends with the connection
                    keep_alive = False
            else:
                items.append((b"Transfer-Encoding", b"chunked"))
        if not keep_alive:
            items = _with_close(items)
        elif any(n.lower() == b"connection" and b"close" in _tokens(v) for n, v in items):
            keep_alive = False
        framing, length = _framing(self._method, status, items)
        return _head(status, response.reason, items), framing, length, keep_alive


def _framing(
    method: bytes, status: int, items: list[tuple[bytes, bytes]]
) -> tuple[str | None, int]:
    """A response's body framing, as h11's _body_framing: (None, its length)
    for a Content-Length (0: no body), or ("chunked", 0), or ("http/1.0",
    0) for a body that ends with the connection."""
    if status in (204, 304) or method == b"HEAD":
        return None, 0
    length = None
    for name, value in items:
        lower = name.lower()
        if lower == b"transfer-encoding":
            return "chunked", 0
        if lower == b"content-length" and length is None:
            length = int(value.split(b",")[0])
    return ("http/1.0", 0) if length is None else (None, length)


def _without(items: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    return [(n, v) for n, v in items if n.lower() != name]


def _head(status: int, reason: bytes, items: list[tuple[bytes, bytes]]) -> bytes:
    """A response head as h11 writes it (a Host field first)."""
    lines = [b"HTTP/1.1 %d %b\r\n" % (status, reason)]
    lines += [b"%b: %b\r\n" % (n, v) for n, v in items if n.lower() == b"host"]
    lines += [b"%b: %b\r\n" % (n, v) for n, v in items if n.lower() != b"host"]
    lines.append(b"\r\n")
    return b"".join(lines)


def _with_close(items: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Connection: close in `items`, as h11's set_comma_header writes it:
    the Connection fields go, and one comes last with their tokens but
    keep-alive, and close."""
    tokens = {b"close"}
    kept = []
    for name, value in items:
        if name.lower() == b"connection":
            tokens.update(_tokens(value))
        else:
            kept.append((name, value))
    tokens.discard(b"keep-alive")
    return kept + [(b"Connection", token) for token in sorted(tokens)]


def _tokens(value: bytes) -> list[bytes]:
    """A comma-separated header value's items, lower-cased (h11's get_comma_header)."""
    return [item.strip().lower() for item in value.split(b",") if item.strip()]


def _unfold(lines: bytes) -> bytes:
    """Header lines with each obs-fold continuation joined to its line by a
    space, as h11 does (RFC 9112 5.2); a continuation with no line before it
    is an error."""
    unfolded: list[bytearray] = []
    for line in lines.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            if not unfolded:
                raise h11.LocalProtocolError("continuation line at start of headers")
            unfolded[-1] += b" " + line.lstrip(b" \t")
        else:
            unfolded.append(bytearray(line))
    return b"\r\n".join(unfolded)
