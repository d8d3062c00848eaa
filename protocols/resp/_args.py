# Reading command arguments the way Redis does: integers and floats with
# Redis's exact errors, option words matched case-insensitively.
from __future__ import annotations

import math
import re

from ._reply import ErrorReply

__all__ = [
    "NOT_FLOAT",
    "NOT_INTEGER",
    "SYNTAX",
    "parse_float",
    "parse_int",
    "parse_timeout",
]

NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(rb"0|-?[1-9][0-9]{0,19}")


def parse_int(arg: bytes, message: str = NOT_INTEGER) -> int:
    """A signed 64-bit integer as Redis's string2ll accepts it: no sign but
    '-', no leading zeros, no spaces."""
    if _INTEGER.fullmatch(arg) is None:
        raise ErrorReply(message)
    value = int(arg)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ErrorReply(message)
    return value


def parse_float(arg: bytes, message: str = NOT_FLOAT) -> float:
    """A double as Redis's strtold accepts it (inf allowed, nan refused)."""
    if not arg or arg != arg.strip() or b"_" in arg:
        raise ErrorReply(message)
    try:
        value = float(arg)
    except ValueError:
        raise ErrorReply(message) from None
    if math.isnan(value):
        raise ErrorReply(message)
    return value


def parse_timeout(arg: bytes) -> float | None:
    """A blocking command's timeout in seconds; None means wait forever (0)."""
    try:
        value = float(arg)
    except ValueError:
        raise ErrorReply("ERR timeout is not a float or out of range") from None
    if math.isnan(value) or math.isinf(value):
        raise ErrorReply("ERR timeout is not a float or out of range")
    if value < 0:
        raise ErrorReply("ERR timeout is negative")
    return None if value == 0 else value
