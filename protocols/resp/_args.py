# Reading command arguments the way Redis does: integers and floats with
# Redis's exact errors, option words matched case-insensitively.
from __future__ import annotations

import math
import re
import time
from typing import Final

from ._reply import ErrorReply

__all__ = [
    "INT64_MAX",
    "NOT_FLOAT",
    "NOT_INTEGER",
    "SYNTAX",
    "parse_float",
    "parse_int",
    "parse_milliseconds",
    "parse_mpop",
    "parse_timeout",
]

NOT_INTEGER: Final = "ERR value is not an integer or out of range"
NOT_FLOAT: Final = "ERR value is not a valid float"
SYNTAX: Final = "ERR syntax error"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER: Final = re.compile(rb"0|-?[1-9][0-9]{0,19}")


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


def parse_milliseconds(arg: bytes) -> int:
    """A timeout in milliseconds (WAIT, CLIENT PAUSE) as Redis 7.2's
    getTimeoutFromObjectOrReply reads one: an integer, not negative, whose
    end (from now) fits in 64 bits."""
    value = parse_int(arg, "ERR timeout is not an integer or out of range")
    if value < 0:
        raise ErrorReply("ERR timeout is negative")
    if value > INT64_MAX - int(time.time() * 1000):
        raise ErrorReply("ERR timeout is out of range")
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


def parse_mpop(
    argv: list[bytes], numkeys_index: int, ends: tuple[bytes, bytes]
) -> tuple[list[bytes], bool, int]:
    """LMPOP's, BLMPOP's, ZMPOP's and BZMPOP's arguments from numkeys on
    (numkeys key... end [COUNT count], `ends` the two words the end may be:
    LEFT/RIGHT, MIN/MAX): the keys, whether the end is the second word, and
    the count (1 without COUNT), with Redis's errors in Redis's order."""
    numkeys = parse_int(argv[numkeys_index], "ERR numkeys should be greater than 0")
    if numkeys < 1:
        raise ErrorReply("ERR numkeys should be greater than 0")
    where = numkeys_index + numkeys + 1
    if where >= len(argv):
        raise ErrorReply(SYNTAX)
    end = argv[where].lower()
    if end not in ends:
        raise ErrorReply(SYNTAX)
    count = None
    index = where + 1
    while index < len(argv):
        if count is None and argv[index].lower() == b"count" and index + 1 < len(argv):
            count = parse_int(argv[index + 1], "ERR count should be greater than 0")
            if count < 1:
                raise ErrorReply("ERR count should be greater than 0")
            index += 2
        else:
            raise ErrorReply(SYNTAX)
    return argv[numkeys_index + 1 : where], end == ends[1], 1 if count is None else count
