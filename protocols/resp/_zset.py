# Sorted sets, sans-IO: the ZSet value type (a dict member -> score beside a
# SortedList of (score, member), so rank and range operations are O(log n)),
# and Redis's number and range syntax: scores parsed as string2d and strtod
# parse them, score and lex range bounds, scores formatted as Redis replies
# them (%.17g) and as ZSCAN shows them, Score (the reply value of a score).
from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from sortedcontainers import SortedList

from ._reply import ErrorReply
from ._replytypes import Score, format_score

__all__ = [
    "MAX_LISTPACK_ENTRIES",
    "MAX_LISTPACK_VALUE",
    "NOT_FLOAT",
    "NOT_LEX_RANGE",
    "NOT_SCORE_RANGE",
    "LexRange",
    "Score",
    "ScoreRange",
    "ZSet",
    "format_score",
    "parse_lex_range",
    "parse_score",
    "parse_score_range",
    "scan_score",
]

NOT_FLOAT: Final = "ERR value is not a valid float"
NOT_SCORE_RANGE: Final = "ERR min or max is not a float"
NOT_LEX_RANGE: Final = "ERR min or max not valid string range item"

# Redis's defaults for zset-max-listpack-entries and -value: a sorted set this
# small is a listpack (OBJECT ENCODING, ZSCAN in one page, -0 stored as 0)
MAX_LISTPACK_ENTRIES: Final = 128
MAX_LISTPACK_VALUE: Final = 64
_LISTPACK_INT_LIMIT: Final = float(2**62)  # double2ll(): integral scores stored as integers

# -- numbers -----------------------------------------------------------------

# What C's strtod() reads (glibc, C locale), tried in this order at the start
# of the text: hexadecimal, infinity, NaN, decimal.
_HEX: Final = re.compile(
    rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
)
_INF: Final = re.compile(rb"([+-]?)inf(?:inity)?", re.IGNORECASE)
_NAN: Final = re.compile(rb"[+-]?nan(?:\([0-9A-Za-z_]*\))?", re.IGNORECASE)
_DECIMAL: Final = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_C_SPACE: Final = b" \t\n\v\f\r"
_NONZERO_DIGIT: Final = re.compile(rb"[1-9a-fA-F]")


def _strtod(text: bytes) -> tuple[float, int, bool]:
    """C's strtod(): the value of the longest number at the start of `text`
    (after white space), how many bytes it took (0 if none), and whether errno
    would be ERANGE (overflow, or underflow to zero)."""
    start = len(text) - len(text.lstrip(_C_SPACE))
    for pattern in (_HEX, _INF, _NAN, _DECIMAL):
        match = pattern.match(text, start)
        if match is not None:
            break
    else:
        return 0.0, 0, False
    number = match.group()
    if pattern is _INF:
        return (-math.inf if match.group(1) == b"-" else math.inf), match.end(), False
    if pattern is _NAN:
        return math.nan, match.end(), False
    if pattern is _HEX:
        try:
            value = float.fromhex(number.decode())
        except OverflowError:
            value = -math.inf if number.startswith(b"-") else math.inf
        mantissa = number.lower().split(b"x", 1)[1].split(b"p", 1)[0]
    else:
        value = float(number)
        mantissa = number.lower().split(b"e", 1)[0]
    out_of_range = math.isinf(value) or (value == 0 and bool(_NONZERO_DIGIT.search(mantissa)))
    return value, match.end(), out_of_range


def parse_score(arg: bytes, message: str = NOT_FLOAT) -> float:
    """A score, increment or weight, as Redis's string2d() reads it: all of
    the argument, no leading space, no overflow or underflow to 0, no NaN."""
    if not arg or arg[0] in _C_SPACE:
        raise ErrorReply(message)
    value, used, out_of_range = _strtod(arg)
    if used != len(arg) or out_of_range or math.isnan(value):
        raise ErrorReply(message)
    return value


# -- ranges ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreRange:
    """min..max of ZRANGEBYSCORE and friends; `(` makes a bound exclusive."""

    min: float
    max: float
    min_exclusive: bool = False
    max_exclusive: bool = False

    def empty(self) -> bool:
        return self.min > self.max or (
            self.min == self.max and (self.min_exclusive or self.max_exclusive)
        )


def _score_bound(arg: bytes) -> tuple[float, bool]:
    text = arg.split(b"\0", 1)[0]  # zslParseRange() reads a C string
    exclusive = text[:1] == b"("
    if exclusive:
        text = text[1:]
    value, used, _ = _strtod(text)  # "" is 0, as for Redis; overflow is inf
    if used != len(text) or math.isnan(value):
        raise ErrorReply(NOT_SCORE_RANGE)
    return value, exclusive


def parse_score_range(min_arg: bytes, max_arg: bytes) -> ScoreRange:
    low, low_ex = _score_bound(min_arg)
    high, high_ex = _score_bound(max_arg)
    return ScoreRange(low, high, low_ex, high_ex)


@dataclass(frozen=True, slots=True)
class LexRange:
    """min..max of ZRANGEBYLEX and friends. A kind is -1 for "-", 1 for "+",
    0 for a string (`value`), `[` inclusive or `(` exclusive."""

    min_kind: int
    min_value: bytes
    min_exclusive: bool
    max_kind: int
    max_value: bytes
    max_exclusive: bool

    def above_min(self, member: bytes) -> bool:
        if self.min_kind:
            return self.min_kind < 0
        if self.min_exclusive:
            return member > self.min_value
        return member >= self.min_value

    def below_max(self, member: bytes) -> bool:
        if self.max_kind:
            return self.max_kind > 0
        if self.max_exclusive:
            return member < self.max_value
        return member <= self.max_value

    def empty(self) -> bool:
        if self.min_kind or self.max_kind:
            if self.min_kind == self.max_kind:
                order = 0
            elif self.min_kind < 0 or self.max_kind > 0:
                order = -1
            else:
                order = 1
        else:
            order = (self.min_value > self.max_value) - (self.min_value < self.max_value)
        return order > 0 or (order == 0 and (self.min_exclusive or self.max_exclusive))


def _lex_bound(arg: bytes) -> tuple[int, bytes, bool]:
    first = arg[:1]
    if first in (b"-", b"+"):
        if arg[1:2] not in (b"", b"\0"):  # C string: "+" then anything after a NUL
            raise ErrorReply(NOT_LEX_RANGE)
        return (-1 if first == b"-" else 1), b"", True
    if first in (b"(", b"["):
        return 0, arg[1:], first == b"("
    raise ErrorReply(NOT_LEX_RANGE)


def parse_lex_range(min_arg: bytes, max_arg: bytes) -> LexRange:
    return LexRange(*_lex_bound(min_arg), *_lex_bound(max_arg))


# -- the value type ----------------------------------------------------------


def scan_score(value: float, listpack: bool) -> bytes:
    """A score as ZSCAN shows it: a listpack keeps integral scores as integers
    (1e+17 is 100000000000000000), a skiplist writes %.17Lg."""
    if listpack and -_LISTPACK_INT_LIMIT <= value <= _LISTPACK_INT_LIMIT and value.is_integer():
        return b"%d" % value
    return format_score(value)


class ZSet:
    """A sorted set: members (bytes) ordered by score, then by member bytes.

    `listpack` tracks the encoding Redis would use, which shows in OBJECT
    ENCODING and ZSCAN and in one rounding: a listpack stores -0 as 0."""

    __slots__ = ("_order", "_scores", "listpack")

    def __init__(self, size_hint: int = 0, member_len_hint: int = 0) -> None:
        self._scores: dict[bytes, float] = {}
        self._order = SortedList()  # (score, member), ties ordered as memcmp()
        self.listpack = size_hint <= MAX_LISTPACK_ENTRIES and member_len_hint <= MAX_LISTPACK_VALUE

    @classmethod
    def from_scores(cls, scores: Mapping[bytes, float]) -> ZSet:
        """A sorted set for a store command's result: a listpack if small enough."""
        zset = cls()
        zset._scores = dict(scores)
        zset._order = SortedList((score, member) for member, score in scores.items())
        zset.listpack = len(scores) <= MAX_LISTPACK_ENTRIES and all(
            len(member) <= MAX_LISTPACK_VALUE for member in scores
        )
        if zset.listpack:
            zset._normalize_zeros()
        return zset

    def __copy__(self) -> ZSet:
        twin = ZSet()
        twin._scores = dict(self._scores)
        twin._order = SortedList(self._order)
        twin.listpack = self.listpack
        return twin

    def __len__(self) -> int:
        return len(self._scores)

    def __contains__(self, member: object) -> bool:
        return member in self._scores

    def __iter__(self) -> Iterator[bytes]:
        """Members, lowest score first."""
        for _, member in self._order:  # (compiled, a generator expression would be a list)
            yield member

    @property
    def scores(self) -> Mapping[bytes, float]:
        """member -> score, read only."""
        return self._scores

    @property
    def encoding(self) -> bytes:
        return b"listpack" if self.listpack else b"skiplist"

    def expect(self, count: int) -> None:
        """About to add up to `count` members: a listpack becomes a skiplist
        when they could not fit (zsetTypeMaybeConvert)."""
        if count > MAX_LISTPACK_ENTRIES:
            self.listpack = False

    def _normalize_zeros(self) -> None:
        for member, score in list(self._scores.items()):
            if score == 0 and math.copysign(1.0, score) < 0:
                self.set(member, 0.0)

    # -- members ---------------------------------------------------------------

    def score(self, member: bytes) -> float | None:
        return self._scores.get(member)

    def set(self, member: bytes, score: float) -> None:
        """Add `member` or change its score (never NaN)."""
        old = self._scores.get(member)
        if old is None and self.listpack and not self._fits(member):
            self.listpack = False
        if self.listpack and score == 0:
            score = 0.0  # a listpack keeps the integer 0 for -0
        if old is not None:
            self._order.remove((old, member))
        self._scores[member] = score
        self._order.add((score, member))

    def _fits(self, new_member: bytes) -> bool:
        """Whether a listpack can take one more member (or becomes a skiplist)."""
        return len(self._scores) < MAX_LISTPACK_ENTRIES and len(new_member) <= MAX_LISTPACK_VALUE

    def remove(self, member: bytes) -> bool:
        score = self._scores.pop(member, None)
        if score is None:
            return False
        self._order.remove((score, member))
        return True

    def rank(self, member: bytes) -> int | None:
        """0-based position from the lowest score, or None."""
        score = self._scores.get(member)
        if score is None:
            return None
        return int(self._order.index((score, member)))

    def at(self, index: int) -> tuple[bytes, float]:
        score, member = self._order[index]
        return member, score

    def pop(self, highest: bool) -> tuple[bytes, float]:
        score, member = self._order.pop(-1 if highest else 0)
        del self._scores[member]
        return member, score

    def random_member(self) -> tuple[bytes, float]:
        return self.at(random.randrange(len(self._scores)))

    def items(self, start: int = 0, stop: int | None = None) -> list[tuple[bytes, float]]:
        """(member, score) pairs of positions start..stop-1, lowest score first."""
        return [(member, score) for score, member in self._order.islice(start, stop)]

    def items_reversed(self, start: int, stop: int) -> list[tuple[bytes, float]]:
        """Positions stop-1 down to start, highest score first."""
        return [(member, score) for score, member in self._order.islice(start, stop, reverse=True)]

    def delete_positions(self, start: int, stop: int) -> int:
        """Remove positions start..stop-1; returns how many were removed."""
        if start >= stop:
            return 0
        for _, member in self._order.islice(start, stop):
            del self._scores[member]
        del self._order[start:stop]
        return stop - start

    # -- ranges ----------------------------------------------------------------

    def rank_span(self, start: int, end: int) -> tuple[int, int] | None:
        """ZRANGE's start and end (negative counts from the end, both
        included) as positions start..stop-1, or None if empty."""
        length = len(self._scores)
        if start < 0:
            start += length
        if end < 0:
            end += length
        start = max(start, 0)
        if start > end or start >= length:
            return None
        return start, min(end, length - 1) + 1

    def _first_at_least(self, score: float, exclusive: bool) -> int:
        """Position of the first member whose score is >= score (> if exclusive)."""
        if exclusive:
            if score == math.inf:
                return len(self._order)
            score = math.nextafter(score, math.inf)
        return int(self._order.bisect_left((score,)))

    def score_span(self, spec: ScoreRange) -> tuple[int, int]:
        """Positions start..stop-1 of the members with scores in range."""
        if spec.empty() or not self._scores:
            return 0, 0
        start = self._first_at_least(spec.min, spec.min_exclusive)
        stop = self._first_at_least(spec.max, not spec.max_exclusive)
        return start, max(start, stop)

    def lex_span(self, spec: LexRange, *, reverse: bool = False) -> tuple[int, int]:
        """Positions start..stop-1 of the members in a lex range. Lex ranges
        mean something when all scores are equal; with mixed scores this is
        what Redis does on a listpack: a run of the score order, found from
        the first member (or from the last member, `reverse`)."""
        order, length = self._order, len(self._scores)
        if spec.empty() or not length:
            return 0, 0
        if order[0][0] == order[-1][0]:  # one score: a binary search
            score = order[0][0]
            start = self._lex_position(score, spec.min_kind, spec.min_value, spec.min_exclusive)
            stop = self._lex_position(score, spec.max_kind, spec.max_value, not spec.max_exclusive)
            return start, max(start, stop)
        if not (spec.above_min(order[-1][1]) and spec.below_max(order[0][1])):
            return 0, 0
        if reverse:
            last = length - 1
            while last >= 0 and not spec.below_max(order[last][1]):
                last -= 1
            first = last
            while first >= 0 and spec.above_min(order[first][1]):
                first -= 1
            return first + 1, last + 1
        first = 0
        while first < length and not spec.above_min(order[first][1]):
            first += 1
        last = first
        while last < length and spec.below_max(order[last][1]):
            last += 1
        return first, last

    def _lex_position(self, score: float, kind: int, value: bytes, after: bool) -> int:
        """Where `value` falls among members of score `score`: before equal
        members, or after them if `after`; "-" is 0, "+" the end."""
        if kind:
            return 0 if kind < 0 else len(self._order)
        if after:
            return int(self._order.bisect_right((score, value)))
        return int(self._order.bisect_left((score, value)))
