# The sans-IO RESP request parser: bytes a Redis client sends in, commands (list[bytes]) out,
# accepting and rejecting input exactly as Redis 7 does (networking.c processInlineBuffer /
# processMultibulkBuffer, sds.c sdssplitargs, util.c string2ll). No I/O, no trio.
#
# Three paths, all with Redis's results. A read of whole, ordinary requests (what request-reply
# and pipelining clients send) goes to hiredis at once and is checked with no Python per
# request (_take_whole). Otherwise runs of multibulk requests in the buffer go to hiredis and
# are checked in bulk (_fast): hiredis also accepts RESP reply types Redis refuses in a request,
# but those come back as non-bytes objects (caught by type checks) except '+' '(' '=' '~' '|' '>',
# whose bytes are therefore cut out of the run. Everything else (inline requests, anomalies,
# limits, a request split across reads) goes through a pure-Python port of the Redis state
# machine (_slow).
from __future__ import annotations

import re
from collections import deque
from itertools import chain
from typing import Any, Final

import hiredis

__all__ = ["ProtocolError", "QueryBufferLimit", "RequestParser"]

_INT_MAX: Final = 2**31 - 1
_UNAUTH_MAX_COUNT: Final = 10  # processMultibulkBuffer: ll > 10 && authRequired(c)
_UNAUTH_MAX_BULK: Final = 16384  # processMultibulkBuffer: ll > 16384 && authRequired(c)
_UNAUTH_MAX_QUERYBUF: Final = 1024 * 1024  # readQueryFromClient: > 1024*1024 && authRequired(c)
_BIG_ARG: Final = 32 * 1024  # PROTO_MBULK_BIG_ARG: Redis reads a bulk this long to its end only
# types hiredis turns into bytes or a list (a push is a list subclass, allocated as long as
# its header says, like an array)
_UNSAFE: Final = (b"+", b"(", b"=", b"~", b"|", b">")
_UNSAFE_RE: Final = re.compile(rb"[+(=~|>]|\*[0-9]{4}")
_BIG_COUNT_RE: Final = re.compile(rb"\*[0-9]{4}")  # 1000 or more: the slow path takes it
_PROBE: Final = b"*0\r\n"  # an empty request: hiredis returns it as [] only at a request boundary
_MORE: Final = object()  # hiredis's "not enough data": unlike False, no reply compares equal to it
_INT: Final = re.compile(rb"-?[1-9][0-9]*|0")
_SPACE: Final = b" \t\n\v\f\r"  # C isspace()
_ESCAPES: Final = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
# What hiredis may raise on input Redis refuses anyway: its own protocol error, and the errors
# of building Python objects for RESP3 types (a map keyed by a list is unhashable, say).
_HIREDIS_FAILURES: Final = (hiredis.ProtocolError, TypeError, ValueError, OverflowError)
_QBUF_ERROR: Final = "ERR Protocol error: client reached max query buffer length"


class ProtocolError(Exception):
    """str(exc) is Redis's exact error text without '-' and CRLF, e.g.
    "ERR Protocol error: invalid multibulk length". The server sends it and closes the connection.
    A byte quoted in the text (expected '$', got 'x') is the character of the same code point:
    encode the text as latin-1 to send Redis's exact bytes."""


class QueryBufferLimit(ProtocolError):
    """The client passed the query buffer limit. Redis closes such a client without a reply
    (readQueryFromClient logs "Closing client that reached max query buffer length")."""


def _string2ll(s: bytes | bytearray) -> int | None:
    """util.c string2ll(): optional '-', no '+', no spaces, no leading zeros, fits a long long."""
    if len(s) > 20 or not _INT.fullmatch(s):
        return None
    value = int(s)
    return value if -(2**63) <= value < 2**63 else None


def _split_args(line: bytes) -> list[bytes] | None:
    """sds.c sdssplitargs(); None for unbalanced quotes."""
    if not any(c in line for c in (b'"', b"'", b"\v", b"\f")):
        return line.split()  # the same split when nothing is quoted and \v \f are absent
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i == n:
            return args
        cur = bytearray()
        inq = insq = False
        while True:
            c = line[i] if i < n else 0
            nxt = line[i + 1] if i + 1 < n else 0
            if inq:
                if c == 92 and nxt == 120 and i + 3 < n and _HEX.issuperset(line[i + 2 : i + 4]):
                    cur.append(int(line[i + 2 : i + 4], 16))  # \xHH
                    i += 4
                    continue
                if c == 92 and nxt:  # \n \r \t \b \a, any other char stands for itself
                    i += 1
                    cur.append(_ESCAPES.get(nxt, nxt))
                elif c == 34:  # closing quote must be followed by a space or nothing
                    if nxt and nxt not in _SPACE:
                        return None
                    i += 1
                    break
                elif not c:
                    return None
                else:
                    cur.append(c)
            elif insq:
                if c == 92 and nxt == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if nxt and nxt not in _SPACE:
                        return None
                    i += 1
                    break
                elif not c:
                    return None
                else:
                    cur.append(c)
            elif c in b" \n\r\t" or not c:
                break
            elif c == 34:
                inq = True
            elif c == 39:
                insq = True
            else:
                cur.append(c)
            i += 1
        args.append(bytes(cur))


def _reader() -> hiredis.Reader:
    return hiredis.Reader(notEnoughData=_MORE)


_WHOLE_MAX: Final = 16 * 1024  # reads up to this size may be taken whole
# One C-level pass maps every digit to '0' and to '+' every marker of a type that hiredis turns
# into bytes, a list or a dict although Redis refuses it in a request (simple string, verbatim,
# big number; set, push, attribute; map). Then two counts find such a marker anywhere (Redis
# and hiredis skip the two bytes after a bulk string unchecked, so an element or request may
# start after any byte), and array counts of 1000 or more, for which hiredis would allocate a
# huge list before reading the elements.
_WHOLE_SCREEN: Final = bytes.maketrans(b"0123456789+=(~>|%", b"0000000000+++++++")


def _encode(command: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(command) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in command)


class RequestParser:
    def __init__(
        self,
        *,
        max_inline: int = 64 * 1024,
        max_bulk: int = 512 * 1024 * 1024,
        max_buffer: int = 1024 * 1024 * 1024,
        authenticated: bool = True,
    ) -> None:
        self._max_inline = max_inline  # PROTO_INLINE_MAX_SIZE
        self._max_bulk = max_bulk  # proto-max-bulk-len
        self._max_buffer = max_buffer  # client-query-buffer-limit
        self._fast_max = min(max_bulk, _INT_MAX)  # no run this long can break a length limit
        self._authenticated = authenticated
        self._hiredis = True  # the hiredis paths are tried (tests turn them off)
        self._buf = bytearray()
        self._pos = 0  # start of the unparsed bytes
        self._reader = _reader()
        self._whole_reader = _reader()
        self._slow_until = 0  # the fast path is not tried before this offset
        self._scan = 0  # no line end in [_pos, _scan)
        self._stuck = False  # a NUL precedes the line end: strchr() never finds it
        self._left = 0  # bulks still to read in the multibulk request under way
        self._bulklen = -1  # length of the bulk under way, -1 while its header is due
        self._args: list[bytes] = []
        self._args_bytes = 0
        self._ready: list[list[bytes]] = []  # the commands parsed last, handed out in order
        self._taken = 0  # how many of them are handed out
        self._ready_bytes = 0
        self._error: ProtocolError | None = None
        self._whole: list[list[bytes]] | None = None  # the commands of a read feed() took whole

    @property
    def authenticated(self) -> bool:
        """Before authentication Redis's lower limits apply; the server sets this after AUTH."""
        return self._authenticated

    @authenticated.setter
    def authenticated(self, value: bool) -> None:
        if self._authenticated and not value:  # re-parse pending requests with the lower limits
            pending = self._ready[self._taken :]
            self._ready, self._taken = [], 0
            self._buf[self._pos : self._pos] = b"".join(map(_encode, pending))
            self._scan = self._slow_until = 0
        self._authenticated = value

    @property
    def has_partial(self) -> bool:
        """Bytes of an incomplete request are buffered (once next_command() returned None)."""
        return self._left > 0 or self._pos < len(self._buf)

    def feed(self, data: bytes) -> None:
        """Buffer bytes from the client. Never raises: data past the query buffer limit makes
        next_command() raise (Redis closes such a client before parsing what it read)."""
        if self._error is not None:
            return
        if (
            len(data) <= _WHOLE_MAX
            and data[:1] == b"*"
            and self._pos == len(self._buf)
            and not self._left
            and self._whole is None
            and self._authenticated
            and self._hiredis
            and self._take_whole(data)
        ):
            return
        buf, pos = self._buf, self._pos
        if pos:
            del buf[:pos]
            self._pos = 0
            self._scan = max(0, self._scan - pos)
            self._slow_until = max(0, self._slow_until - pos)
        limit = self._max_buffer
        if not self._authenticated:
            limit = min(limit, _UNAUTH_MAX_QUERYBUF)
        unparsed = len(buf) + len(data)
        if self._left and self._bulklen >= _BIG_ARG:
            # Redis reads a big bulk string no further than its end, so what follows it in
            # this read counts only once the bulk is parsed (readQueryFromClient, big_arg)
            unparsed = min(unparsed, max(len(buf), self._bulklen + 2))
        if unparsed + self._args_bytes + self._ready_bytes > limit:
            self._error = QueryBufferLimit(_QBUF_ERROR)
            buf.clear()
            self._args = []
            return
        buf += data

    def _take_whole(self, data: bytes) -> bool:
        """The shape of request-reply and pipelining clients: a read of whole,
        ordinary commands. Parse it with hiredis at once and keep the commands
        if hiredis ends at a request boundary and each is a list of bulk strings
        (hiredis refuses every other spelling of a length, and the screen above
        turns away any read holding a marker of a type hiredis reads as bulk
        strings, arrays or maps although Redis refuses it; values with such
        bytes take the buffered path). No Python runs per command. Otherwise (a command split
        across reads, an anomaly, a limit) the buffered path takes the read."""
        screened = data.translate(_WHOLE_SCREEN)
        if screened.count(b"+") or screened.count(b"*0000"):  # faster than `in` here
            return False
        reader = self._whole_reader
        reader.feed(data)
        # Only a list (or a dict, screened out) of bytes joins: not bytes, an integer, a null,
        # an error, nor a list holding any of those or a nested list.
        try:
            command = reader.gets()
            if not reader.has_data():  # one request, complete unless hiredis wants more
                if command is _MORE:
                    raise TypeError("the request goes on in the next read")
                b"".join(command)
                commands = [command]
            else:  # more requests follow
                commands = [command, *iter(reader.gets, _MORE)]
                reader.feed(_PROBE)  # [] only at a request boundary
                if reader.gets() != []:
                    raise TypeError("not whole requests")
                deque(map(b"".join, commands), 0)
        except _HIREDIS_FAILURES:  # TypeError from join, too
            self._whole_reader = _reader()
            return False
        if len(data) > self._max_bulk and any(
            len(arg) > self._max_bulk for arg in chain.from_iterable(commands)
        ):
            return False
        if not all(commands):  # *0, which Redis skips, or $0 (joins too) where a request starts
            if any(type(command) is not list for command in commands):
                return False
            commands = [command for command in commands if command]
            if not commands:
                return True
        self._whole = commands
        return True

    def next_command(self) -> list[bytes] | None:
        """The next complete command, or None when more bytes are needed. Raises ProtocolError
        (and again on every later call). Empty requests (blank inline lines, *0, *-1) are
        skipped. Commands are parsed a batch at a time (all that a read holds, mostly)."""
        if self._taken < len(self._ready):
            self._taken += 1
            return self._ready[self._taken - 1]
        self._ready, self._taken = [], 0  # all handed out: their memory is not ours to keep
        self._ready_bytes = 0
        try:
            batch = self._parse()
        except ProtocolError as exc:
            self._error = exc  # _parse() raises it on every later call
            raise
        if batch is None:
            return None
        self._ready, self._taken = batch, 1
        return batch[0]

    def _parse(self) -> list[list[bytes]] | None:
        if self._error is not None:
            raise self._error
        if self._whole is not None:
            whole, self._whole = self._whole, None
            return whole
        while True:
            buf, pos = self._buf, self._pos
            if not self._left:
                if pos >= len(buf):
                    return None
                if (
                    buf[pos] == 42  # '*'
                    and self._authenticated
                    and self._hiredis
                    and pos >= self._slow_until
                    and len(buf) - pos <= self._fast_max
                ):
                    batch = self._fast()
                    if batch:
                        return batch
                    if batch is not None:
                        continue  # only empty requests
            command = self._slow()
            if command is None:
                return None
            if command:
                return [command]

    def _drain(self, start: int, end: int) -> tuple[list[Any], bool]:
        """hiredis's replies for buf[start:end], and whether it then sits at a reply boundary."""
        reader = self._reader
        reader.feed(self._buf, start, end - start)  # type: ignore[arg-type]  # any buffer works
        replies = list(iter(reader.gets, _MORE))
        reader.feed(_PROBE)
        try:
            probe = reader.gets()
        except _HIREDIS_FAILURES:  # the probe landed inside a length line, say
            return replies, False
        return replies, type(probe) is list and not probe

    def _fast(self) -> list[list[bytes]] | None:
        """Parse the run of multibulk requests at _pos with hiredis. None: nothing consumed."""
        buf, start = self._buf, self._pos
        cut = len(buf)
        # hiredis allocates a list as long as an array header says: big counts are cut out too.
        if cut - start < 256:  # one regex call is cheaper than six searches on short input
            m = _UNSAFE_RE.search(buf, start)
            cut = m.start() if m else cut
        else:
            for unsafe in _UNSAFE:
                cut = i if (i := buf.find(unsafe, start, cut)) >= 0 else cut
            big = _BIG_COUNT_RE.search(buf, start, cut)
            cut = big.start() if big else cut
        if cut < len(buf):
            self._slow_until = cut + 1  # the slow path parses the request holding that byte
        # Feed the last request on its own, so that its start is known if it is incomplete.
        mid = buf.rfind(b"\r\n*", start, cut)
        mid = cut if mid < 0 else mid + 2
        batch: list[Any] = []
        last: list[Any] = []
        clean = False
        try:
            batch, clean = self._drain(start, mid)
            if clean and mid < cut:
                last, clean = self._drain(mid, cut)
                batch += last
            elif not clean:
                batch = []
        except _HIREDIS_FAILURES:
            batch = []
        # Every request a list, every element bytes: join() refuses anything else.
        ok = bool(batch) and set(map(type, batch)) == {list}
        try:
            if ok:
                deque(map(b"".join, batch), 0)
        except TypeError:
            ok = False
        if not ok:
            self._reader = _reader()
            self._slow_until = max(self._slow_until, cut)
            return None
        end = cut
        if not clean:  # an incomplete request follows the complete ones
            self._reader = _reader()
            end = mid + sum(map(len, map(_encode, last)))
            self._slow_until = max(self._slow_until, end + 1)
        self._pos, self._scan = end, 0
        self._ready_bytes = end - start
        return [c for c in batch if c] if [] in batch else batch

    def _find_line(self, sep: bytes, error: str) -> int:
        """Offset of the `sep` ending the line at _pos, as strchr() finds it, or -1."""
        buf, pos = self._buf, self._pos
        if not self._stuck:
            start = max(pos, self._scan)
            end = buf.find(sep, start)
            if buf.find(b"\0", start, len(buf) if end < 0 else end) >= 0:
                self._stuck = True
            elif end >= 0:
                if sep == b"\n" or end + 1 < len(buf):  # '\r' must have a byte after it
                    return end
                self._scan = end
                return -1
            else:
                self._scan = len(buf)
        if len(buf) - pos > self._max_inline:
            raise ProtocolError(f"ERR Protocol error: {error}")
        return -1

    def _slow(self) -> list[bytes] | None:
        """One request the way Redis parses it: the command, [] for an empty one, or None."""
        buf = self._buf
        if not self._left:
            if buf[self._pos] != 42:
                return self._inline()
            cr = self._find_line(b"\r", "too big mbulk count string")
            if cr < 0:
                return None
            count = _string2ll(buf[self._pos + 1 : cr])
            if count is None or count > _INT_MAX:
                raise ProtocolError("ERR Protocol error: invalid multibulk length")
            if count > _UNAUTH_MAX_COUNT and not self._authenticated:
                raise ProtocolError("ERR Protocol error: unauthenticated multibulk length")
            self._pos, self._scan = cr + 2, 0  # the byte after '\r' is not checked
            if count <= 0:
                return []
            self._left = count
        args = self._args
        while self._left:
            pos = self._pos
            if self._bulklen < 0:
                cr = self._find_line(b"\r", "too big bulk count string")
                if cr < 0:
                    return None
                if buf[pos] != 36:  # '$'; addReplyErrorFormat() maps \r and \n to spaces
                    got = " " if buf[pos] in b"\r\n" else chr(buf[pos])
                    raise ProtocolError(f"ERR Protocol error: expected '$', got '{got}'")
                size = _string2ll(buf[pos + 1 : cr])
                if size is None or size < 0 or size > self._max_bulk:
                    raise ProtocolError("ERR Protocol error: invalid bulk length")
                if size > _UNAUTH_MAX_BULK and not self._authenticated:
                    raise ProtocolError("ERR Protocol error: unauthenticated bulk length")
                self._pos = pos = cr + 2
                self._scan = 0
                self._bulklen = size
            size = self._bulklen
            if len(buf) - pos < size + 2:
                return None
            with memoryview(buf) as view:
                args.append(view[pos : pos + size].tobytes())
            self._args_bytes += size
            self._pos = pos + size + 2  # the two bytes after the bulk are not checked
            self._bulklen = -1
            self._left -= 1
        self._args, self._args_bytes = [], 0
        return args

    def _inline(self) -> list[bytes] | None:
        nl = self._find_line(b"\n", "too big inline request")
        if nl < 0:
            return None
        buf, pos = self._buf, self._pos
        end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
        args = _split_args(bytes(buf[pos:end]))
        if args is None:
            raise ProtocolError("ERR Protocol error: unbalanced quotes in request")
        self._pos, self._scan = nl + 1, 0
        return args
