# The sans-IO RESP request parser: what Redis 7 accepts, what it rejects and with which words,
# whether bytes arrive at once, one at a time or in random pieces. The tables and the Hypothesis
# strategies are shared with test_parser_vs_redis.py, which sends the same bytes to a real
# redis-server and to netsvc's RESP server and compares the replies byte for byte.
from __future__ import annotations

import math
import sys
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.resp._parser import ProtocolError, QueryBufferLimit, RequestParser


def mbulk(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def split(data: bytes, how: str) -> list[bytes]:
    return [data] if how == "whole" else [data[i : i + 1] for i in range(len(data))]


def parse(chunks: list[bytes], parser: RequestParser | None = None) -> list[list[bytes]]:
    parser = parser or RequestParser()
    commands = []
    for chunk in chunks:
        parser.feed(chunk)
        while (command := parser.next_command()) is not None:
            commands.append(command)
    return commands


def slow_parser(**kwargs: Any) -> RequestParser:
    """A parser that never takes a hiredis path: the plain port of Redis's state machine."""
    parser = RequestParser(**kwargs)
    parser._hiredis = False
    return parser


SET = mbulk(b"SET", b"key", b"value")
MANY = [b"x%d" % i for i in range(98)]
MANY_PUSHED = (
    mbulk(b"DEL", b"many")
    + mbulk(b"RPUSH", b"many", *MANY)
    + mbulk(b"LRANGE", b"many", b"0", b"-1")
)
VALID: list[tuple[str, bytes, list[list[bytes]]]] = [
    ("multibulk", SET, [[b"SET", b"key", b"value"]]),
    ("pipelined", SET * 3, [[b"SET", b"key", b"value"]] * 3),
    (
        "binary-safe",
        mbulk(b"SET", b"k", b"a\r\nb\r\n\x00\xff*1\r\n"),
        [[b"SET", b"k", b"a\r\nb\r\n\x00\xff*1\r\n"]],
    ),
    ("empty bulk", b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n", [[b"GET", b""]]),
    (
        "*0 and *-1 are skipped",
        b"*0\r\n*-1\r\n*-99\r\n" + SET + b"*0\r\n",
        [[b"SET", b"key", b"value"]],
    ),
    ("unsafe bytes in data", mbulk(b"SET", b"k", b"+OK=(~|"), [[b"SET", b"k", b"+OK=(~|"]]),
    (
        "bulk terminator not checked",
        b"*1\r\n$3\r\nfooXY" + SET,
        [[b"foo"], [b"SET", b"key", b"value"]],
    ),
    ("byte after header \\r not checked", b"*1\rX$1\rYa\r\n", [[b"a"]]),
    ("inline", b"PING\r\n", [[b"PING"]]),
    ("inline LF only", b"SET a b\n", [[b"SET", b"a", b"b"]]),
    ("empty lines skipped", b"\r\n\n   \r\n\t\n" + b"PING\r\n", [[b"PING"]]),
    ("inline blanks", b"  SET   a\tb  \r\n", [[b"SET", b"a", b"b"]]),
    ("\\v \\f inside a token", b"a\vb \fc\r\n", [[b"a\vb", b"c"]]),
    # the same with a command whose reply shows the token (the one above is an unknown command)
    ("\\v \\f inside a token, echoed", b"\fECHO \va\vb\f\r\n", [[b"ECHO", b"a\vb\f"]]),
    (
        "double quotes",
        b'SET "a b" "\\x41\\x4a\\n\\r\\t\\b\\a\\"\\\\\\q"\r\n',
        [[b"SET", b"a b", b'AJ\n\r\t\b\a"\\q']],
    ),
    ("bad \\x escape", b'ECHO "\\xZZ"\r\n', [[b"ECHO", b"xZZ"]]),
    ("single quotes", b"ECHO 'a \\' \"b\\n' ''\r\n", [[b"ECHO", b"a ' \"b\\n", b""]]),
    ("quote inside a token", b'ECHO a"b c"\r\n', [[b"ECHO", b"ab c"]]),
    ("empty quoted", b'ECHO ""\r\n', [[b"ECHO", b""]]),
    (
        "inline then multibulk",
        b"PING\r\n" + SET + b"ECHO x\r\n" + SET,
        [[b"PING"], [b"SET", b"key", b"value"], [b"ECHO", b"x"], [b"SET", b"key", b"value"]],
    ),
    ("looks like RESP3 but inline", b"~1\r\n:0\r\n", [[b"~1"], [b":0"]]),
    (
        "after multibulk, an inline :0",
        SET + b":0\r\n" + SET,
        [[b"SET", b"key", b"value"], [b":0"], [b"SET", b"key", b"value"]],
    ),
    # Reads taken whole: RESP3 types hiredis reads as bulk strings or arrays are not requests.
    (
        "push after a request",
        SET + b">1\r\n$1\r\na\r\n",
        [[b"SET", b"key", b"value"], [b">1"], [b"$1"], [b"a"]],
    ),
    (
        "set after a request",
        SET + b"~1\r\n$1\r\na\r\n",
        [[b"SET", b"key", b"value"], [b"~1"], [b"$1"], [b"a"]],
    ),
    (
        "attribute after a request",
        SET + b"|1\r\n$1\r\na\r\n",
        [[b"SET", b"key", b"value"], [b"|1"], [b"$1"], [b"a"]],
    ),
    (
        "map after a request",
        SET + b"%1\r\n$1\r\na\r\n",
        [[b"SET", b"key", b"value"], [b"%1"], [b"$1"], [b"a"]],
    ),
    # Redis and hiredis skip the two bytes after a bulk unchecked: a marker may follow any byte.
    (
        "set after a junk terminator",
        b"*1\r\n$4\r\nPINGXY~1\r\n$1\r\na\r\n",
        [[b"PING"], [b"~1"], [b"$1"], [b"a"]],
    ),
    (
        "map after a junk terminator",
        b"*1\r\n$4\r\nPINGXY%1\r\n$4\r\nECHO\r\n$1\r\nv\r\n",
        [[b"PING"], [b"%1"], [b"$4"], [b"ECHO"], [b"$1"], [b"v"]],
    ),
    ("empty bulk where a request starts", b"*0\r\n$0\r\n\r\n", [[b"$0"]]),
    (
        "many requests in a read",
        SET * 16 + mbulk(b"GET", b"k"),
        [[b"SET", b"key", b"value"]] * 16 + [[b"GET", b"k"]],
    ),
    ("many args", mbulk(*[b"x%d" % i for i in range(100)]), [[b"x%d" % i for i in range(100)]]),
    (
        "many args, echoed",  # the list's replies show every argument
        MANY_PUSHED,
        [[b"DEL", b"many"], [b"RPUSH", b"many", *MANY], [b"LRANGE", b"many", b"0", b"-1"]],
    ),
    ("big bulk", mbulk(b"SET", b"k", b"v" * 100_000), [[b"SET", b"k", b"v" * 100_000]]),
]


@pytest.mark.parametrize("how", ["whole", "bytewise"])
@pytest.mark.parametrize(("data", "expected"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid(data: bytes, expected: list[list[bytes]], how: str) -> None:
    if how == "bytewise" and len(data) > 5000:
        data = data[:5000] + data[5000:]  # a big bulk dribbled byte by byte still works, slowly
    assert parse(split(data, how)) == expected
    assert parse(split(data, how), slow_parser()) == expected


ErrorCase = tuple[str, bytes, str, dict[str, Any]]


def error_cases(max_inline: int = 100, max_bulk: int = 10) -> list[ErrorCase]:
    """(id, input, Redis's error text, RequestParser options) for each protocol error; the
    cases about limits are built for the given limits (the differential test asks for Redis's)."""
    return [
        ("mbulk count not a number", b"*x\r\n", "invalid multibulk length", {}),
        ("mbulk count leading zero", b"*01\r\n", "invalid multibulk length", {}),
        ("mbulk count plus", b"*+1\r\n", "invalid multibulk length", {}),
        ("mbulk count empty", b"*\r\n", "invalid multibulk length", {}),
        ("mbulk count -0", b"*-0\r\n", "invalid multibulk length", {}),
        ("mbulk count > INT_MAX", b"*2147483648\r\n", "invalid multibulk length", {}),
        ("mbulk count overflow", b"*99999999999999999999\r\n", "invalid multibulk length", {}),
        ("expected $", b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "expected '$', got 'f'", {}),
        ("integer element", b"*1\r\n:1\r\n", "expected '$', got ':'", {}),
        ("status element", b"*2\r\n$1\r\na\r\n+OK\r\n", "expected '$', got '+'", {}),
        ("nested array", b"*1\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'", {}),
        ("RESP3 set element", b"*1\r\n~1\r\n$1\r\na\r\n", "expected '$', got '~'", {}),
        ("verbatim element", b"*1\r\n=7\r\ntxt:abc\r\n", "expected '$', got '='", {}),
        ("empty header line", b"*1\r\n\r\n", "expected '$', got ' '", {}),
        ("latin-1 byte", b"*1\r\n\xe9\r\n", "expected '$', got '\xe9'", {}),
        ("after a good request", SET + b"*1\r\n_\r\n", "expected '$', got '_'", {}),
        (
            "status after a junk terminator",
            b"*2\r\n$3\r\nGETXY+OK\r\n",
            "expected '$', got '+'",
            {},
        ),
        (
            "verbatim after a junk terminator",
            b"*2\r\n$3\r\nGETXY=7\r\ntxt:abc\r\n",
            "expected '$', got '='",
            {},
        ),
        (
            "big number after a junk terminator",
            b"*2\r\n$3\r\nGETXY(12\r\n",
            "expected '$', got '('",
            {},
        ),
        ("big number element", SET + b"*1\r\n(12\r\n", "expected '$', got '('", {}),
        ("push element", SET + b"*1\r\n>1\r\n$1\r\na\r\n", "expected '$', got '>'", {}),
        (
            "status element, later request",
            SET * 3 + b"*1\r\n+PING\r\n",
            "expected '$', got '+'",
            {},
        ),
        ("bulk length not a number", b"*1\r\n$x\r\n", "invalid bulk length", {}),
        ("null bulk", b"*1\r\n$-1\r\n", "invalid bulk length", {}),
        ("bulk length leading zero", b"*1\r\n$03\r\nabc\r\n", "invalid bulk length", {}),
        ("bulk length > proto-max-bulk-len", b"*1\r\n$536870913\r\n", "invalid bulk length", {}),
        (
            "bulk length > max_bulk",
            b"*1\r\n$%d\r\n" % (max_bulk + 1),
            "invalid bulk length",
            {"max_bulk": max_bulk},
        ),
        ("unbalanced double quote", b'SET "a\r\n', "unbalanced quotes in request", {}),
        ("unbalanced single quote", b"SET 'a\r\n", "unbalanced quotes in request", {}),
        ("text after closing quote", b'SET "a"b\r\n', "unbalanced quotes in request", {}),
        ("text after closing single quote", b"SET 'a'b\r\n", "unbalanced quotes in request", {}),
        ("backslash at the end", b'SET "a\\\r\n', "unbalanced quotes in request", {}),
        (
            "too big inline",
            b"A" * (max_inline + 1),
            "too big inline request",
            {"max_inline": max_inline},
        ),
        (
            "too big mbulk count",
            b"*" + b"1" * max_inline,
            "too big mbulk count string",
            {"max_inline": max_inline},
        ),
        (
            "too big bulk count",
            b"*1\r\n$" + b"1" * max_inline,
            "too big bulk count string",
            {"max_inline": max_inline},
        ),
        (
            "NUL hides the line end",
            b"PING\x00\r\n" + b"x" * max_inline,
            "too big inline request",
            {"max_inline": max_inline},
        ),
        (
            "NUL in a header",
            b"*1\r\n$1\x00\r\na\r\n" + b"x" * max_inline,
            "too big bulk count string",
            {"max_inline": max_inline},
        ),
        (
            "unauth multibulk length",
            b"*11\r\n",
            "unauthenticated multibulk length",
            {"authenticated": False},
        ),
        (
            "unauth bulk length",
            b"*1\r\n$16385\r\n",
            "unauthenticated bulk length",
            {"authenticated": False},
        ),
        (
            "unauth: invalid wins",
            b"*1\r\n$536870913\r\n",
            "invalid bulk length",
            {"authenticated": False},
        ),
    ]


ERRORS = error_cases()


@pytest.mark.parametrize("how", ["whole", "bytewise"])
@pytest.mark.parametrize(
    ("data", "message", "kwargs"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors(data: bytes, message: str, kwargs: dict[str, Any], how: str) -> None:
    for parser in (RequestParser(**kwargs), slow_parser(**kwargs)):
        with pytest.raises(ProtocolError) as info:
            parse(split(data, how), parser)
        assert str(info.value) == "ERR Protocol error: " + message
        with pytest.raises(ProtocolError):  # the parser stays failed
            parser.next_command()


def test_too_big_only_without_line_end() -> None:
    # Redis checks the size only while no line end is buffered, as here.
    assert parse([b"ECHO " + b"a" * 200 + b"\r\n"], RequestParser(max_inline=100)) == [
        [b"ECHO", b"a" * 200]
    ]
    # and counts only the bytes after the requests already parsed
    assert (
        parse([SET * 10 + b"*1"], RequestParser(max_inline=100))
        == [[b"SET", b"key", b"value"]] * 10
    )


def test_before_auth_limits_then_auth() -> None:
    parser = RequestParser(authenticated=False)
    assert parse([mbulk(*[b"a"] * 10) + mbulk(b"x" * 16384)], parser) == [
        [b"a"] * 10,
        [b"x" * 16384],
    ]
    parser.feed(mbulk(b"AUTH", b"pw") + mbulk(*[b"a"] * 11))
    assert parser.next_command() == [b"AUTH", b"pw"]
    parser.authenticated = True
    assert parser.next_command() == [b"a"] * 11


def test_deauth_reparses_pipelined_requests() -> None:
    parser = RequestParser()
    parser.feed(mbulk(b"RESET") + mbulk(*[b"a"] * 11))
    assert parser.next_command() == [b"RESET"]
    parser.authenticated = False
    with pytest.raises(ProtocolError, match="unauthenticated multibulk length"):
        parser.next_command()


def test_query_buffer_limit() -> None:
    parser = RequestParser(max_buffer=100)
    parser.feed(b"*1\r\n$200\r\n" + b"x" * 80)
    assert parser.next_command() is None
    parser.feed(b"x" * 20)  # 80 + 20 bytes unparsed: at the limit
    assert parser.next_command() is None
    parser.feed(b"x")
    with pytest.raises(ProtocolError) as info:
        parser.next_command()
    assert str(info.value) == "ERR Protocol error: client reached max query buffer length"
    parser = RequestParser(authenticated=False)  # 1 MiB before authentication, as Redis
    parser.feed(b"x" * (1024 * 1024))
    parser.feed(b"x")
    with pytest.raises(ProtocolError, match="max query buffer"):
        parser.next_command()


def test_query_buffer_a_big_bulk_then_the_next_request() -> None:
    # Redis reads a bulk of 32 KiB or more no further than its end: the bytes after it in the
    # same read are not in its query buffer yet (test_parser_vs_redis.py: "a bulk up to the
    # limit, the next request in the same read")
    size = 40_000
    parser = RequestParser(max_buffer=size + 2)
    parser.feed(b"*1\r\n$%d\r\n" % size)
    assert parser.next_command() is None
    parser.feed(b"x" * size + b"\r\n" + SET)
    assert parser.next_command() == [b"x" * size]
    assert parser.next_command() == [b"SET", b"key", b"value"]
    parser = RequestParser(max_buffer=size + 2)  # bytes past the bulk count at the next feed
    parser.feed(b"*1\r\n$%d\r\n" % size)
    assert parser.next_command() is None
    parser.feed(b"x" * size + b"\r\nP")
    parser.feed(b"ING\r\n")
    with pytest.raises(QueryBufferLimit, match="max query buffer"):
        parser.next_command()
    parser = RequestParser(max_buffer=1000)  # a smaller bulk: Redis reads past its end
    parser.feed(b"*1\r\n$900\r\n")
    assert parser.next_command() is None
    parser.feed(b"x" * 900 + b"\r\n" + b"PING\r\n" * 20)
    with pytest.raises(QueryBufferLimit):
        parser.next_command()


@pytest.mark.parametrize("how", ["whole", "buffered"])
def test_a_command_handed_out_is_not_kept(how: str) -> None:
    # a 1 MB PUBLISH or EVAL must not stay in memory until the client's next
    # request: once next_command() has said None, the parser holds no command
    parser = RequestParser()
    big = b"x" * 1_000_000
    request = b"*2\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n" % (len(big), big)
    if how == "whole":
        parser.feed(request)
    else:  # split across reads: the buffered path
        parser.feed(request[:10])
        assert parser.next_command() is None
        parser.feed(request[10:])
    command = parser.next_command()
    assert command == [b"PUBLISH", big]
    assert parser.next_command() is None
    assert sys.getrefcount(command) == 2  # this name and getrefcount's argument only


def test_has_partial() -> None:
    parser = RequestParser()
    assert not parser.has_partial
    parser.feed(SET + SET[:7])
    assert parser.next_command() == [b"SET", b"key", b"value"]
    assert parser.next_command() is None
    assert parser.has_partial
    parser.feed(SET[7:])
    assert parser.next_command() == [b"SET", b"key", b"value"]
    assert parser.next_command() is None
    assert not parser.has_partial


def dribbled_parse_seconds(bulks: int, tries: int = 5) -> float:
    """The CPU time to parse a request of `bulks` tiny bulks fed 3 bytes at a
    time, best of `tries`: CPU time, so other processes on a busy machine do
    not count, and the best, so a garbage collection or a cold cache does not."""
    data = mbulk(*[b"ab"] * bulks) + b"PING\r\n"
    chunks = [data[i : i + 3] for i in range(0, len(data), 3)]
    best = math.inf
    for _ in range(tries):
        parser = RequestParser()
        start = time.process_time()
        commands = parse(chunks, parser)
        best = min(best, time.process_time() - start)
        assert commands == [[b"ab"] * bulks, [b"PING"]]
    return best


def test_dribbled_request_is_linear() -> None:
    # Eight times the bulks must cost about eight times the time (7 to 12 seen,
    # on a loaded machine too); a parser that is quadratic in the request's
    # size costs 40 to 64 times (rescanning or re-summing what it holds).
    small, large = dribbled_parse_seconds(4_000), dribbled_parse_seconds(32_000)
    assert large < 20 * small, f"{large / small:.1f} times the time for 8 times the bulks"


def test_huge_count_allocates_nothing() -> None:
    parser = RequestParser()
    parser.feed(b"*2147483647\r\n$1\r\na\r\n")
    assert parser.next_command() is None
    assert parser.has_partial


@pytest.mark.parametrize(
    "data",
    [
        b"*1\r\n$4\r\nPING\r\n>2147483647\r\n",  # a push count: hiredis allocates it too
        b"*1\r\n$4\r\nPINGXY>2147483647\r\n",  # after an unchecked bulk terminator
        b"*1\r\n$4\r\nPINGXY*2147483647\r\n",
    ],
)
def test_huge_push_or_array_count_after_a_request_is_an_inline_command(data: bytes) -> None:
    # Redis reads these as inline commands; hiredis would allocate 2**31 slots (16 GB)
    assert parse([data])[0] == [b"PING"]


def cut(data: bytes, draw: st.DataObject, max_cuts: int) -> list[bytes]:
    """`data` cut at up to `max_cuts` random points (empty pieces included)."""
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=max_cuts)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


RANDOM_BYTES = st.binary(max_size=200)
RANDOM_MAX_INLINE = 64  # so that random input reaches the inline limits too


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RANDOM_BYTES, st.data())
def test_random_bytes_only_protocol_errors(data: bytes, draw: st.DataObject) -> None:
    chunks = cut(data, draw, 5)
    results = []
    for parser in (
        RequestParser(max_inline=RANDOM_MAX_INLINE),
        slow_parser(max_inline=RANDOM_MAX_INLINE),
    ):
        try:
            results.append(parse(chunks, parser))
        except ProtocolError as exc:
            results.append(str(exc))
    assert results[0] == results[1]  # the hiredis path decides as the plain port does


_TOKEN_TEXT = (
    b"*1\r\n|*2\r\n|*0\r\n|*-1\r\n|$1\r\na\r\n|$0\r\n\r\n|$3\r\n\r\n*\r\n|:0\r\n|+OK\r\n"
    b"|=5\r\ntxt:a\r\n|~1\r\n|_\r\n|PING\r\n|\r\n|$2\r\nab|XY|\r|\n|$|*|1|*1000\r\n|$1\r\n\x00\r\n"
    b"|'a'|\"|>1\r\n|%1\r\n|(12\r\n|#t\r\n|,1.5\r\n|-ERR x\r\n|$-1\r\n|!1\r\nx\r\n|$03\r\nabc\r\n"
)
_TOKENS = st.sampled_from([*_TOKEN_TEXT.split(b"|"), b"|1\r\n"])  # the last: an attribute
TOKEN_STREAMS = st.lists(_TOKENS, max_size=30).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(TOKEN_STREAMS, st.data())
def test_fast_path_agrees_with_redis_port(data: bytes, draw: st.DataObject) -> None:
    step = draw.draw(st.integers(1, max(1, len(data))))
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    results = []
    for parser in (RequestParser(), slow_parser()):
        try:
            results.append(parse(chunks, parser))
        except ProtocolError as exc:
            results.append(str(exc))
    assert results[0] == results[1]


COMMAND_LISTS = st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=8), max_size=20)


@settings(max_examples=200, deadline=None)
@given(COMMAND_LISTS, st.data())
def test_multibulk_round_trip(commands: list[list[bytes]], draw: st.DataObject) -> None:
    data = b"".join(mbulk(*c) for c in commands)
    chunks = cut(data, draw, 10)
    assert parse([data]) == commands
    assert parse(chunks) == commands
    assert parse(split(data, "bytewise")) == commands
