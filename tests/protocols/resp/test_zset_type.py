# The sorted set value type and Redis's number and range syntax, without a
# server (protocols/resp/_zset.py): scores read as C's strtod() reads them
# (checked against the C library itself), formatted as Redis formats them,
# range bounds, and ZSet's order, ranks, spans and encoding bookkeeping.
from __future__ import annotations

import copy
import ctypes
import ctypes.util
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocols.resp._reply import ErrorReply, encode
from protocols.resp._zset import (
    NOT_FLOAT,
    NOT_LEX_RANGE,
    NOT_SCORE_RANGE,
    Score,
    ScoreRange,
    ZSet,
    _strtod,
    format_score,
    parse_lex_range,
    parse_score,
    parse_score_range,
    scan_score,
)

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.strtod.restype = ctypes.c_double
_libc.strtod.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
ERANGE = 34


def c_strtod(text: bytes) -> tuple[float, int, bool]:
    buffer = ctypes.create_string_buffer(text)
    end = ctypes.c_char_p()
    ctypes.set_errno(0)
    value = _libc.strtod(buffer, ctypes.byref(end))
    out_of_range = ctypes.get_errno() == ERANGE and (math.isinf(value) or value == 0)
    used = ctypes.cast(end, ctypes.c_void_p).value or 0
    start = ctypes.cast(buffer, ctypes.c_void_p).value or 0
    return value, used - start, out_of_range


NUMBER_TEXT = st.text(alphabet="0123456789.eEpPxXaAfF+-infINFtyTYn() \t", max_size=14)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(NUMBER_TEXT.map(str.encode))
@example(b"0x1p")
@example(b"0x.p1")
@example(b"0x.8")
@example(b"1e+")
@example(b"nan(abc)x")
@example(b"NAN()")
@example(b"infinityx")
@example(b"  -0x1.8p1")
@example(b"0x")
@example(b"-.e1")
@example(b"1e400")
@example(b"0x1p-1080")
@example(b"0x1p2000")
@example(b"1e-330")
@example(b"1e-400")
@example(b"0e-999")
@example(b"0x0p-9999")
@example(b"(")
@example(b"")
@example(b" ")
@example(b"\t+.5e-3x")
def test_strtod_reads_what_c_reads(text: bytes) -> None:
    ours, theirs = _strtod(text), c_strtod(text)
    assert ours[1:] == theirs[1:]
    assert ours[0] == theirs[0] or (math.isnan(ours[0]) and math.isnan(theirs[0]))
    if ours[0] == 0:
        assert math.copysign(1, ours[0]) == math.copysign(1, theirs[0])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"1", 1.0),
        (b"-0", -0.0),
        (b"0.1", 0.1),
        (b"1e17", 1e17),
        (b".5", 0.5),
        (b"5.", 5.0),
        (b"+5", 5.0),
        (b"0x10", 16.0),
        (b"0x1p-3", 0.125),
        (b"inf", math.inf),
        (b"-INF", -math.inf),
        (b"+Infinity", math.inf),
        (b"-1e-320", -1e-320),  # subnormal: allowed
    ],
)
def test_scores_redis_accepts(text: bytes, value: float) -> None:
    parsed = parse_score(text)
    assert parsed == value and math.copysign(1, parsed) == math.copysign(1, value)


@pytest.mark.parametrize(
    "text",
    [
        *(b"", b" 1", b"1 ", b"\t1", b"1\x00", b"(1", b"abc", b"1e", b"0x", b"1_0", b"infin"),
        *(b"nan", b"-nan", b"1e999", b"-1e999", b"1e-400"),
    ],
)
def test_scores_redis_refuses(text: bytes) -> None:
    with pytest.raises(ErrorReply) as refused:
        parse_score(text)
    assert refused.value.message == NOT_FLOAT


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (b"1", b"2", ScoreRange(1, 2)),
        (b"(1", b"(2", ScoreRange(1, 2, True, True)),
        (b"", b"(", ScoreRange(0, 0, False, True)),  # strtod("") is 0, as in Redis
        (b" 1", b"1e999", ScoreRange(1, math.inf)),  # leading space and overflow allowed
        (b"2\x00junk", b"-inf", ScoreRange(2, -math.inf)),  # a C string ends at NUL
    ],
)
def test_score_ranges(low: bytes, high: bytes, expected: ScoreRange) -> None:
    assert parse_score_range(low, high) == expected


@pytest.mark.parametrize(
    ("low", "high"), [(b"nan", b"1"), (b"1", b"x"), (b"((1", b"2"), (b" ", b"1")]
)
def test_bad_score_ranges(low: bytes, high: bytes) -> None:
    with pytest.raises(ErrorReply) as refused:
        parse_score_range(low, high)
    assert refused.value.message == NOT_SCORE_RANGE


@pytest.mark.parametrize("bound", [b"", b"a", b"+x", b"-x", b"1"])
def test_bad_lex_bounds(bound: bytes) -> None:
    with pytest.raises(ErrorReply) as refused:
        parse_lex_range(bound, b"+")
    assert refused.value.message == NOT_LEX_RANGE


@pytest.mark.parametrize(
    ("low", "high", "empty"),
    [
        (b"-", b"+", False),
        (b"+", b"-", True),
        (b"-", b"-", True),
        (b"[a", b"[a", False),
        (b"(a", b"[a", True),
        (b"[b", b"[a", True),
        (b"[", b"+", False),
        (b"+\x00tail", b"+", True),
    ],
)
def test_lex_ranges_empty_as_redis_says(low: bytes, high: bytes, empty: bool) -> None:
    assert parse_lex_range(low, high).empty() is empty


@pytest.mark.parametrize(
    ("value", "text", "listpack_text"),
    [
        (0.1, b"0.10000000000000001", b"0.10000000000000001"),
        (3.0, b"3", b"3"),
        (-0.0, b"-0", b"0"),
        (1e17, b"1e+17", b"100000000000000000"),
        (2.0**62, b"4.6116860184273879e+18", b"4611686018427387904"),
        (2.0**63, b"9.2233720368547758e+18", b"9.2233720368547758e+18"),
        (1e-5, b"1.0000000000000001e-05", b"1.0000000000000001e-05"),
        (math.inf, b"inf", b"inf"),
        (-math.inf, b"-inf", b"-inf"),
    ],
)
def test_score_formats(value: float, text: bytes, listpack_text: bytes) -> None:
    assert format_score(value) == text == scan_score(value, listpack=False)
    assert scan_score(value, listpack=True) == listpack_text
    assert encode(Score(value), 2) == b"$%d\r\n%b\r\n" % (len(text), text)
    assert encode(Score(value), 3) == b",%b\r\n" % text


def test_order_ties_by_member_bytes() -> None:
    zset = ZSet()
    for member, score in [(b"b", 1.0), (b"a", 1.0), (b"", 1.0), (b"\xff", 0.0), (b"ab", 1.0)]:
        zset.set(member, score)
    assert list(zset) == [b"\xff", b"", b"a", b"ab", b"b"]
    assert [zset.rank(member) for member in zset] == [0, 1, 2, 3, 4]
    zset.set(b"\xff", 2.0)  # a new score moves it
    assert list(zset) == [b"", b"a", b"ab", b"b", b"\xff"]
    assert zset.rank(b"nope") is None
    assert zset.remove(b"a") and not zset.remove(b"a")
    assert zset.items() == [(b"", 1.0), (b"ab", 1.0), (b"b", 1.0), (b"\xff", 2.0)]
    assert zset.pop(highest=True) == (b"\xff", 2.0) and len(zset) == 3


def test_spans() -> None:
    zset = ZSet()
    for index, member in enumerate([b"a", b"b", b"c", b"d"]):
        zset.set(member, float(index))
    assert zset.rank_span(0, -1) == (0, 4)
    assert zset.rank_span(-2, 100) == (2, 4)
    assert zset.rank_span(3, 1) is None
    assert zset.score_span(parse_score_range(b"(0", b"2")) == (1, 3)
    assert zset.score_span(parse_score_range(b"-inf", b"(inf")) == (0, 4)
    assert zset.score_span(parse_score_range(b"(inf", b"inf")) == (0, 0)
    assert zset.lex_span(parse_lex_range(b"[b", b"+")) == (1, 4)  # mixed scores: a run
    assert zset.delete_positions(1, 3) == 2 and list(zset) == [b"a", b"d"]


def test_listpack_bookkeeping() -> None:
    zset = ZSet(1, 1)
    zset.set(b"m", -0.0)
    assert zset.encoding == b"listpack" and math.copysign(1, zset.scores[b"m"]) == 1  # -0 is 0
    for index in range(127):
        zset.set(b"%d" % index, float(index))
    assert zset.encoding == b"listpack" and len(zset) == 128
    zset.set(b"one more", 1.0)
    assert zset.encoding == b"skiplist"
    zset.set(b"n", -0.0)
    assert math.copysign(1, zset.scores[b"n"]) == -1  # a skiplist keeps -0
    for index in range(120):
        zset.remove(b"%d" % index)
    assert zset.encoding == b"skiplist"  # never back, as in Redis
    assert ZSet(1, 65).encoding == b"skiplist"
    assert ZSet.from_scores({b"a": -0.0}).encoding == b"listpack"
    twin = copy.copy(zset)
    twin.set(b"only in the copy", 5.0)
    assert b"only in the copy" not in zset and twin.encoding == zset.encoding
