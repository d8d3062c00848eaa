# Redis glob patterns (KEYS, SCAN MATCH, CONFIG GET, PSUBSCRIBE), matched as
# Redis's stringmatchlen does: * ? [abc] [^a] [a-z] and \ escapes, on bytes.
from __future__ import annotations

import functools
import re
from collections.abc import Callable

__all__ = ["compile_glob"]


@functools.lru_cache(maxsize=512)
def compile_glob(pattern: bytes, nocase: bool = False) -> Callable[[bytes], bool]:
    """A predicate telling whether a byte string matches `pattern`."""
    if pattern == b"*":
        return lambda _: True
    regex = re.compile(_translate(pattern), re.DOTALL | (re.IGNORECASE if nocase else 0))
    return lambda subject: regex.fullmatch(subject) is not None


def _translate(pattern: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i : i + 1]
        if ch == b"*":
            while i + 1 < n and pattern[i + 1 : i + 2] == b"*":
                i += 1
            out += b".*"
        elif ch == b"?":
            out += b"."
        elif ch == b"\\" and i + 1 < n:
            i += 1
            out += re.escape(pattern[i : i + 1])
        elif ch == b"[":
            i, charset = _charset(pattern, i + 1)
            out += charset
            continue
        else:
            out += re.escape(ch)
        i += 1
    return bytes(out)


def _charset(pattern: bytes, i: int) -> tuple[int, bytes]:
    """Translate a [...] set starting after '['; returns (next index, regex)."""
    n = len(pattern)
    negate = i < n and pattern[i : i + 1] == b"^"
    if negate:
        i += 1
    items = bytearray()
    while i < n and pattern[i : i + 1] != b"]":
        ch = pattern[i : i + 1]
        if ch == b"\\" and i + 1 < n:
            i += 1
            items += re.escape(pattern[i : i + 1])
        elif i + 2 < n and pattern[i + 1 : i + 2] == b"-" and pattern[i + 2 : i + 3] != b"]":
            low, high = sorted((pattern[i], pattern[i + 2]))
            items += re.escape(bytes([low])) + b"-" + re.escape(bytes([high]))
            i += 2
        else:
            items += re.escape(ch)
        i += 1
    # Redis treats an unterminated set as ending at the pattern's end
    i += 1
    if not items:
        return i, b"[^\\s\\S]" if not negate else b"[\\s\\S]"
    return i, b"[" + (b"^" if negate else b"") + bytes(items) + b"]"
