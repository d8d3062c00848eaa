# What RFC 9110/9112 require of a request where h11 is lax, checked around
# it (h11 itself is not patched), sans-IO: a chunked body's framing byte for
# byte ahead of h11 (chunk lines, extensions, the CRLF after each chunk's
# data, the trailer section), which Transfer-Encoding refusals are a 400
# rather than a 501, and a request head's Host, target and framing headers.
# Every refusal here is a 400 and a close: a message whose framing is in
# doubt leaves the connection's byte stream in doubt too.
from __future__ import annotations

import functools
import ipaddress
import re
from typing import Final

__all__ = [
    "REQUEST_LINE",
    "ChunkedBody",
    "FramingError",
    "check_head",
    "has_control",
    "transfer_coding_status",
    "valid_host",
]

# RFC 9110 5.6.2: token = 1*tchar
_TOKEN: Final = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
# RFC 9110 5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
_QUOTED: Final = rb'"(?:[\t !\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_BWS: Final = rb"[ \t]*"
# RFC 9112 7.1: chunk-size [ chunk-ext ] CRLF, with
#   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
# less what h11 refuses, so that both parsers refuse the same: a size of more
# than 20 digits, and whitespace between the size and the first `;`.
_CHUNK_LINE: Final = re.compile(
    rb"[0-9A-Fa-f]{1,20}(?![ \t])(?:%s;%s%s(?:%s=%s(?:%s|%s))?)*"
    % (_BWS, _BWS, _TOKEN, _BWS, _BWS, _TOKEN, _QUOTED)
)
# RFC 9112 5: field-line = field-name ":" OWS field-value OWS (no obs-fold in trailers)
_FIELD_LINE: Final = re.compile(rb"%s:[\t \x21-\x7e\x80-\xff]*" % _TOKEN)
# RFC 3986 3.2.2 reg-name (unreserved / pct-encoded / sub-delims), less the comma:
# a Host with a comma is a list of hosts, which RFC 9110 5.3 makes of two Host lines
_REG_NAME: Final = re.compile(rb"(?:[-A-Za-z0-9._~!$&'()*+;=]|%[0-9A-Fa-f]{2})*")
# absolute-form, as clients send it to a server (and to proxies): http(s) only
_ABSOLUTE_FORM: Final = re.compile(rb"https?://", re.IGNORECASE)
# RFC 9112 3: request-line = method SP request-target SP HTTP-version, as h11
# reads it (a target of visible ASCII), for a parser that does not check it
REQUEST_LINE: Final = re.compile(rb"(%s) ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])" % _TOKEN)
# RFC 9110 5.5: control characters (but HTAB) are not field-vchars; h11 lets
# those other than NUL, CR and LF through, httptools refuses them all
_CONTROL: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

# states of ChunkedBody
_SIZE: Final = 0
_DATA: Final = 1
_DATA_END: Final = 2
_TRAILER: Final = 3
_DONE: Final = 4


class FramingError(ValueError):
    """A request's framing is invalid: answered 400, and the connection closed."""


class ChunkedBody:
    """Checks a chunked request body (RFC 9112 7.1) as its bytes arrive, before
    h11 parses them. h11 accepts any bytes after a chunk size's `;` (control
    characters, a NUL, a bare `;`), whitespace after the size, and a bare LF
    ending the trailer section; the rest (a bad size, a missing CRLF after a
    chunk's data) both refuse, but this check runs ahead of h11, so the
    driver can refuse a body malformed from the start before the app is
    called. Feed it every byte from the body's first; what follows the
    body's end (a pipelined request) is not looked at. `chunks` counts the
    chunks complete so far, `done` says the body has ended; lines (a chunk
    line, the trailer section) are bounded by `max_line` bytes. It refuses
    what h11 refuses too (whitespace before a chunk extension's `;`, which
    RFC 9112 allows, and a size of more than 20 digits), so that it is the
    whole check of a chunked body for the httptools parser, which decodes
    the body with it (`feed`'s `data`, and `trailers`)."""

    def __init__(self, max_line: int) -> None:
        self.chunks = 0
        self.done = False
        self._max_line = max_line
        self._state = _SIZE
        self._line = bytearray()  # the line being read (chunk line or trailer field)
        self._left = 0  # data bytes of the current chunk still to come
        self._crlf = 0  # bytes of the CRLF after a chunk's data already seen
        self._trailer_size = 0
        self.trailers: list[tuple[bytes, bytes]] = []  # the trailer section's fields

    def feed(self, data: bytes, out: list[bytes] | None = None) -> int:
        """Check the next bytes of the body; raises FramingError. The chunks'
        data is appended to `out`, if given. Returns how many bytes of
        `data` are the body's: all of them until its end."""
        i, n = 0, len(data)
        while i < n and self._state != _DONE:
            state = self._state
            if state == _DATA:
                take = min(self._left, n - i)
                if out is not None:
                    out.append(data[i : i + take])
                i += take
                self._left -= take
                if not self._left:
                    self._state, self._crlf = _DATA_END, 0
            elif state == _DATA_END:
                if data[i] != b"\r\n"[self._crlf]:
                    raise FramingError("a chunk's data is not followed by CRLF")
                i += 1
                self._crlf += 1
                if self._crlf == 2:
                    self.chunks += 1
                    self._state = _SIZE
            else:  # a line: the chunk line, or a field or the end of the trailer section
                end = data.find(b"\n", i)
                self._line += data[i : n if end < 0 else end + 1]
                i = n if end < 0 else end + 1
                if len(self._line) > self._max_line:
                    what = "chunk line" if state == _SIZE else "trailer section"
                    raise FramingError(f"{what} longer than {self._max_line} bytes")
                if end >= 0:
                    line, self._line = bytes(self._line), bytearray()
                    self._end_line(line)
        return i

    def _end_line(self, line: bytes) -> None:
        if not line.endswith(b"\r\n"):
            raise FramingError("a line of a chunked body must end with CRLF, not a bare LF")
        content = line[:-2]
        if self._state == _SIZE:
            if not _CHUNK_LINE.fullmatch(content):
                raise FramingError(f"invalid chunk line {content[:80]!r}")
            size = int(content.split(b";", 1)[0].rstrip(b" \t"), 16)
            if size:
                self._state, self._left = _DATA, size
            else:
                self._state = _TRAILER  # the last chunk; the trailer section follows
            return
        self._trailer_size += len(line)
        if self._trailer_size > self._max_line:
            raise FramingError(f"trailer section longer than {self._max_line} bytes")
        if not content:
            self._state, self.done = _DONE, True
        elif not _FIELD_LINE.fullmatch(content):
            raise FramingError(f"invalid trailer field {content[:80]!r}")
        else:
            name, _, value = content.partition(b":")
            self.trailers.append((name, value.strip(b" \t")))


def transfer_coding_status(head: bytes) -> int | None:
    """For a request head h11 refused for its Transfer-Encoding (which it says
    with 501): 400 if chunked is not the final coding, or is there twice
    (RFC 9112 6.3: the body's length cannot be known), 501 when it is a
    valid list with a coding this server does not decode (gzip, chunked);
    None if `head` has no Transfer-Encoding line."""
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    codings: list[bytes] | None = None
    for line in block.split(b"\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"transfer-encoding":
            codings = codings or []
            for item in value.split(b","):
                coding = item.split(b";", 1)[0].strip().lower()
                if coding:  # empty list elements are ignored (RFC 9110 5.6.1)
                    codings.append(coding)
    if codings is None:
        return None
    if not codings or codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
        return 400
    return 501


@functools.lru_cache(maxsize=1024)  # a client sends the same Host again and again
def valid_host(value: bytes) -> bool:
    """A Host header's value (RFC 9110 7.2: uri-host [ ":" port ]): no
    userinfo, path, query or list; an IPv6 address in brackets; a port of
    at most 65535. Empty is valid (a URI without an authority)."""
    if value.startswith(b"["):
        literal, bracket, rest = value[1:].partition(b"]")
        if not bracket:
            return False
        try:
            ipaddress.IPv6Address(literal.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return False
    else:
        host, colon, port = value.partition(b":")
        if not _REG_NAME.fullmatch(host):
            return False
        rest = colon + port
    if not rest:
        return True
    if rest[:1] != b":":
        return False
    port = rest[1:]
    return not port or (port.isdigit() and len(port) <= 5 and int(port) <= 65535)


def has_control(value: bytes) -> bool:
    """Whether a header's value has a control character (RFC 9110 5.5)."""
    return _CONTROL.search(value) is not None


def check_head(
    method: bytes,
    target: bytes,
    http_version: bytes,
    host: bytes | None,
    *,
    chunked: bool,
    has_length: bool,
    control: bool = False,
) -> str | None:
    """Why a request head h11 accepted is a 400 after all, or None. `host`
    is its Host header's value (h11 has made sure there is at most one, and
    one in HTTP/1.1); `chunked` and `has_length` say whether it has a
    Transfer-Encoding and a Content-Length header, `control` whether a
    header's value has a control character."""
    if control:  # RFC 9110 5.5; httptools refuses it too
        return "a header value has a control character"
    if chunked and has_length:  # RFC 9112 6.3: a request smuggling attempt, maybe
        return "a request has a Transfer-Encoding or a Content-Length, not both"
    if chunked and http_version == b"1.0":  # RFC 9112 6.1: its framing is faulty
        return "Transfer-Encoding in an HTTP/1.0 request"
    if host is not None and not valid_host(host):
        return f"invalid Host {host[:100].decode('latin-1')!r}"
    if target == b"*":
        if method != b"OPTIONS":  # RFC 9112 3.2.4
            return f"the target * is for OPTIONS only, not {method.decode('latin-1')}"
    elif not target.startswith(b"/"):
        if not _ABSOLUTE_FORM.match(target):
            return f"invalid request target {target[:100].decode('latin-1')!r}"
        # absolute-form: its authority stands for the Host header (RFC 9112
        # 3.2.2), so it is held to the same rules, and an http(s) URI with
        # no host is invalid (RFC 9110 4.2.1)
        authority = _authority(target)
        if authority[:1] in (b"", b":") or not valid_host(authority):
            return f"invalid authority in the target {target[:100].decode('latin-1')!r}"
    return None


def _authority(target: bytes) -> bytes:
    """An absolute-form target's authority: from `://` to the path or query."""
    rest = target.partition(b"://")[2]
    return rest[: min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))]
