# RESP replies, sans-IO: the Python values command handlers return, and their
# encoding in RESP2 or RESP3 (the connection's protocol, set by HELLO).
#
#   bytes / str      bulk string            int        integer
#   None             null ($-1 / _)         float      double (RESP2: bulk string)
#   bool             boolean (RESP2: 1/0)   list/tuple array
#   dict             map (RESP2: flat array of key, value, ...)
#   set/frozenset    set (RESP2: array)     Status     simple string (+OK)
#   ErrorReply       error (-ERR ...)       NULL_ARRAY null array (*-1 / _)
#   Push             push frame (RESP2: array), what pub/sub sends
#   SetReply         set (RESP2: array) of members that need not be hashable
#   Frames           several replies back to back (SUBSCRIBE: one per channel)
# Status, Push, SetReply and Frames subclass builtins: they live in
# _replytypes.py, which stays Python when the hot modules are compiled.
from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Any, Final, TypeAlias

from ._replytypes import Frames, PairsMap, Push, Score, SetReply, Status, format_score

__all__ = [
    "NULL_ARRAY",
    "OK",
    "PONG",
    "QUEUED",
    "ErrorReply",
    "Frames",
    "NullArray",
    "Push",
    "Reply",
    "SetReply",
    "Status",
    "encode",
    "map_pairs",
]


class ErrorReply(Exception):
    """An error reply; raise it from a handler or return it. The text starts
    with its code: "ERR syntax error", "WRONGTYPE Operation against ..."."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NullArray:
    """RESP2's null array (*-1), RESP3's null: BLPOP timing out, EXEC aborted."""

    __slots__ = ()


Reply: TypeAlias = Any  # any of the values in the table at the top

OK: Final = Status("OK")
PONG: Final = Status("PONG")
QUEUED: Final = Status("QUEUED")
NULL_ARRAY: Final = NullArray()


def _format_double(value: float) -> bytes:
    """A double as Redis 7.0 replies it (addReplyDouble: %.17g; inf, -inf,
    nan): 0.1 is 0.10000000000000001, -0.0 is -0, 1e17 is 1e+17."""
    if math.isnan(value):
        return b"nan"
    return format_score(value)


def map_pairs(value: dict[Any, Any]) -> Collection[tuple[Any, Any]]:
    """A map reply's pairs, a PairsMap's as listed, repeated keys too (tested
    by type: PairsMap overrides nothing of dict, see _replytypes)."""
    if type(value) is PairsMap:
        return value.pairs
    return value.items()


def encode(value: Reply, protocol: int = 2) -> bytes:
    """The RESP bytes for one reply."""
    kind = type(value)  # the common replies first, without building a list
    if kind is bytes:
        return b"$%d\r\n%b\r\n" % (len(value), value)
    if value is OK:
        return b"+OK\r\n"
    if kind is int:
        return b":%d\r\n" % value
    if value is None:
        return b"_\r\n" if protocol == 3 else b"$-1\r\n"
    parts: list[bytes] = []
    (_encode3 if protocol == 3 else _encode2)(value, parts.append)
    return b"".join(parts)


def _bulk(data: bytes, out: Callable[[bytes], None]) -> None:
    out(b"$%d\r\n%b\r\n" % (len(data), data))


def _common(value: Reply, out: Callable[[bytes], None]) -> bool:
    """Encode the types RESP2 and RESP3 write alike; False if not one of them."""
    kind = type(value)
    if kind is bytes:
        _bulk(value, out)
    elif kind is Status:
        out(b"+%b\r\n" % value.encode())
    elif kind is str:
        _bulk(value.encode(), out)
    elif kind is int:
        out(b":%d\r\n" % value)
    elif isinstance(value, ErrorReply):
        message = value.message.replace("\r", " ").replace("\n", " ")
        out(b"-%b\r\n" % message.encode("utf-8", "surrogateescape"))  # bytes kept as sent
    elif kind is bytearray or kind is memoryview:
        _bulk(bytes(value), out)
    else:
        return False
    return True


def _encode2(value: Reply, out: Callable[[bytes], None]) -> None:
    if _common(value, out):
        return
    if type(value) is Frames:
        for item in value:
            _encode2(item, out)
        return
    if value is None:
        out(b"$-1\r\n")
    elif isinstance(value, bool):
        out(b":1\r\n" if value else b":0\r\n")
    elif type(value) is Score:  # before float: compiled, a float is just its value
        _bulk(format_score(value), out)
    elif isinstance(value, float):
        _bulk(_format_double(value), out)
    elif isinstance(value, NullArray):
        out(b"*-1\r\n")
    elif isinstance(value, dict):
        pairs = map_pairs(value)
        out(b"*%d\r\n" % (2 * len(pairs)))
        for key, item in pairs:
            _encode2(key, out)
            _encode2(item, out)
    elif isinstance(value, (list, tuple, set, frozenset)):
        out(b"*%d\r\n" % len(value))
        for item in value:
            _encode2(item, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as a RESP reply")


def _encode3(value: Reply, out: Callable[[bytes], None]) -> None:
    if _common(value, out):
        return
    if type(value) is Frames:
        for item in value:
            _encode3(item, out)
        return
    if value is None or isinstance(value, NullArray):
        out(b"_\r\n")
    elif isinstance(value, bool):
        out(b"#t\r\n" if value else b"#f\r\n")
    elif type(value) is Score:  # before float: compiled, a float is just its value
        out(b",%b\r\n" % format_score(value))
    elif isinstance(value, float):
        out(b",%b\r\n" % _format_double(value))
    elif isinstance(value, dict):
        pairs = map_pairs(value)
        out(b"%%%d\r\n" % len(pairs))
        for key, item in pairs:
            _encode3(key, out)
            _encode3(item, out)
    elif isinstance(value, (set, frozenset, SetReply)):
        out(b"~%d\r\n" % len(value))
        for item in value:
            _encode3(item, out)
    elif isinstance(value, Push):
        out(b">%d\r\n" % len(value))
        for item in value:
            _encode3(item, out)
    elif isinstance(value, (list, tuple)):
        out(b"*%d\r\n" % len(value))
        for item in value:
            _encode3(item, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as a RESP reply")
