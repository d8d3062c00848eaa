# Reply values that subclass Python's builtins: Status (str), Push, SetReply
# and Frames (list), OrderedSet (frozenset), Score (float), PairsMap (dict).
# This module is never compiled (setup.py's HOT_MODULES leaves it out): mypyc
# cannot compile a class that subclasses a builtin. Compiled code also skips
# some overrides: it reads a float as its bare value (a Score passed where a
# float is expected is a plain float) and takes len() of a dict from the dict
# itself (0 for a PairsMap). So the encoder (_reply.py) tests for Score and
# PairsMap by type before it treats a value as a float or a dict.
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = [
    "Frames",
    "OrderedSet",
    "PairsMap",
    "Push",
    "Score",
    "SetReply",
    "Status",
    "format_score",
]


class Status(str):
    """A simple string reply: +OK."""

    __slots__ = ()


class Push(list[Any]):
    """A push frame (RESP3 >), an array in RESP2: pub/sub messages."""

    __slots__ = ()


class SetReply(list[Any]):
    """A set reply (RESP3 ~, a RESP2 array) of members that cannot be in a
    Python set, in the order given: COMMAND INFO's key specifications (maps)."""

    __slots__ = ()


class Frames(list[Any]):
    """Several replies to one command, written one after another."""

    __slots__ = ()


class OrderedSet(frozenset[Any]):
    """A set reply (RESP3 ~, a RESP2 array) whose members are written in the
    order given: COMMAND INFO's flags and categories, ACL GETUSER's flags."""

    __slots__ = ("_order",)
    _order: tuple[Any, ...]

    def __new__(cls, items: Iterable[Any] = ()) -> OrderedSet:
        ordered = tuple(dict.fromkeys(items))
        self = super().__new__(cls, ordered)
        self._order = ordered
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(self._order)


def format_score(value: float) -> bytes:
    """A score as Redis 7.0 replies it (addReplyDouble: %.17g, inf, -inf)."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value


class Score(float):
    """A score in a reply: RESP3 double, RESP2 bulk string, written as Redis
    writes doubles (17 significant digits: ZSCORE of 0.1 is 0.10000000000000001)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return format_score(self).decode()


class PairsMap(dict[Any, Any]):
    """A RESP3 map whose keys may repeat (XREAD of one stream twice): the
    encoder writes its `pairs`. The dict itself stays empty, and no method is
    overridden: compiled code would not call the overrides (len() of it is 0
    there), so pure Python must not depend on them either."""

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        super().__init__()
        self.pairs = pairs
