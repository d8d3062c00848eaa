# String commands: GET, SET and its variants, MGET/MSET, counters, APPEND,
# STRLEN, GETRANGE/SETRANGE. Values are bytes; counters parse them each time,
# as Redis does for strings that are not integer-encoded.
from __future__ import annotations

import decimal
import math
from typing import Final

from .._app import RespApp
from .._args import NOT_INTEGER, SYNTAX, parse_float, parse_int
from .._client import Client
from .._keyspace import Database, now_ms
from .._reply import OK, ErrorReply, Reply

commands = RespApp(builtins=False)

INVALID_EXPIRE: Final = "ERR invalid expire time in '{}' command"
OVERFLOW: Final = "ERR increment or decrement would overflow"
TOO_BIG: Final = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
MAX_EXPIRE_MS: Final = 2**63 // 2  # keeps now + ttl far from overflowing, like Redis's checks


def _get_string(db: Database, key: bytes) -> bytes | None:
    value: bytes | None = db.get_typed(key, bytes)
    return value


def _expire_at(command: str, option: bytes, arg: bytes) -> int:
    """The absolute expiry in ms for EX/PX/EXAT/PXAT `arg`."""
    amount = parse_int(arg)
    if amount <= 0:
        raise ErrorReply(INVALID_EXPIRE.format(command))
    unit = 1000 if option in (b"ex", b"exat") else 1
    if amount > MAX_EXPIRE_MS // unit:
        raise ErrorReply(INVALID_EXPIRE.format(command))
    when = amount * unit
    return when if option in (b"exat", b"pxat") else now_ms() + when


@commands.command("get", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="string")
def get(client: Client, argv: list[bytes]) -> Reply:
    """Get the value of a key."""
    return client.db.get_typed(argv[1], bytes)


@commands.command("set", arity=-3, flags=["write", "denyoom"], keys=(1, 1, 1), group="string")
def set_(client: Client, argv: list[bytes]) -> Reply:
    """Set the string value of a key."""
    condition = expiry_option = None
    expire_at: int | None = None
    keep_ttl = want_old = False
    index = 3
    while index < len(argv):
        option = argv[index].lower()
        has_value = index + 1 < len(argv)
        if option in (b"nx", b"xx") and condition is None:
            condition = option
        elif option == b"get" and not want_old:
            want_old = True
        elif option == b"keepttl" and expiry_option is None:
            keep_ttl = True
            expiry_option = option
        elif option in (b"ex", b"px", b"exat", b"pxat") and expiry_option is None and has_value:
            expiry_option = option
            index += 1
            expire_at = _expire_at("set", option, argv[index])
        else:
            raise ErrorReply(SYNTAX)
        index += 1
    db, key = client.db, argv[1]
    old = _get_string(db, key) if want_old else None  # WRONGTYPE before any change
    if condition is not None or keep_ttl:
        exists = db.exists(key)  # also drops an expired key: KEEPTTL must not keep its TTL
        if condition is not None and (condition == b"nx") == exists:
            return old if want_old else None
    db.set(key, argv[2], keep_ttl=keep_ttl)
    if expire_at is not None:
        db.set_expiry(key, expire_at)
    return old if want_old else OK


@commands.command(
    "setnx", arity=3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="string"
)
def setnx(client: Client, argv: list[bytes]) -> Reply:
    """Set the value of a key, only if the key does not exist."""
    if client.db.exists(argv[1]):
        return 0
    client.db.set(argv[1], argv[2])
    return 1


def _set_with_ttl(client: Client, argv: list[bytes], command: str, option: bytes) -> Reply:
    expire_at = _expire_at(command, option, argv[2])
    client.db.set(argv[1], argv[3])
    client.db.set_expiry(argv[1], expire_at)
    return OK


@commands.command("setex", arity=4, flags=["write", "denyoom"], keys=(1, 1, 1), group="string")
def setex(client: Client, argv: list[bytes]) -> Reply:
    """Set the value and expiration of a key."""
    return _set_with_ttl(client, argv, "setex", b"ex")


@commands.command("psetex", arity=4, flags=["write", "denyoom"], keys=(1, 1, 1), group="string")
def psetex(client: Client, argv: list[bytes]) -> Reply:
    """Set the value and expiration in milliseconds of a key."""
    return _set_with_ttl(client, argv, "psetex", b"px")


@commands.command(
    "getset", arity=3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="string"
)
def getset(client: Client, argv: list[bytes]) -> Reply:
    """Set the string value of a key and return its old value."""
    old = _get_string(client.db, argv[1])
    client.db.set(argv[1], argv[2])
    return old


@commands.command("getdel", arity=2, flags=["write", "fast"], keys=(1, 1, 1), group="string")
def getdel(client: Client, argv: list[bytes]) -> Reply:
    """Get the value of a key and delete the key."""
    old = _get_string(client.db, argv[1])
    if old is not None:
        client.db.delete(argv[1])
    return old


@commands.command("getex", arity=-2, flags=["write", "fast"], keys=(1, 1, 1), group="string")
def getex(client: Client, argv: list[bytes]) -> Reply:
    """Get the value of a key and optionally set its expiration."""
    db, key = client.db, argv[1]
    expire_at: int | None = None
    persist = False
    options = [arg.lower() for arg in argv[2:]]
    if options:
        if options[0] == b"persist" and len(options) == 1:
            persist = True
        elif options[0] in (b"ex", b"px", b"exat", b"pxat") and len(options) == 2:
            expire_at = _expire_at("getex", options[0], argv[3])
        else:
            raise ErrorReply(SYNTAX)
    value = _get_string(db, key)
    if value is not None:
        if persist:
            db.persist(key)
        elif expire_at is not None:
            db.set_expiry(key, expire_at)
    return value


@commands.command("mget", arity=-2, flags=["readonly", "fast"], keys=(1, -1, 1), group="string")
def mget(client: Client, argv: list[bytes]) -> Reply:
    """Get the values of all the given keys."""
    db = client.db
    values = []
    for key in argv[1:]:
        value = db.get(key)
        values.append(value if isinstance(value, bytes) else None)
    return values


@commands.command("mset", arity=-3, flags=["write", "denyoom"], keys=(1, -1, 2), group="string")
def mset(client: Client, argv: list[bytes]) -> Reply:
    """Set multiple keys to multiple values."""
    if len(argv) % 2 == 0:
        raise ErrorReply("ERR wrong number of arguments for 'mset' command")
    for key, value in zip(argv[1::2], argv[2::2], strict=True):
        client.db.set(key, value)
    return OK


@commands.command("msetnx", arity=-3, flags=["write", "denyoom"], keys=(1, -1, 2), group="string")
def msetnx(client: Client, argv: list[bytes]) -> Reply:
    """Set multiple keys to multiple values, only if none of the keys exist."""
    if len(argv) % 2 == 0:
        raise ErrorReply("ERR wrong number of arguments for 'msetnx' command")
    if any(client.db.exists(key) for key in argv[1::2]):
        return 0
    for key, value in zip(argv[1::2], argv[2::2], strict=True):
        client.db.set(key, value)
    return 1


def _increment(client: Client, key: bytes, by: int) -> Reply:
    db = client.db
    current = _get_string(db, key)
    number = 0 if current is None else parse_int(current, NOT_INTEGER)
    result = number + by
    if not -(2**63) <= result < 2**63:
        raise ErrorReply(OVERFLOW)
    db.set(key, b"%d" % result, keep_ttl=True)
    return result


@commands.command(
    "incr", arity=2, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="string"
)
def incr(client: Client, argv: list[bytes]) -> Reply:
    """Increment the integer value of a key by one."""
    return _increment(client, argv[1], 1)


@commands.command(
    "decr", arity=2, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="string"
)
def decr(client: Client, argv: list[bytes]) -> Reply:
    """Decrement the integer value of a key by one."""
    return _increment(client, argv[1], -1)


@commands.command(
    "incrby", arity=3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="string"
)
def incrby(client: Client, argv: list[bytes]) -> Reply:
    """Increment the integer value of a key by the given amount."""
    return _increment(client, argv[1], parse_int(argv[2]))


@commands.command(
    "decrby", arity=3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="string"
)
def decrby(client: Client, argv: list[bytes]) -> Reply:
    """Decrement the integer value of a key by the given number."""
    by = parse_int(argv[2])
    if by == -(2**63):
        raise ErrorReply("ERR decrement would overflow")
    return _increment(client, argv[1], -by)


def format_float(value: float) -> bytes:
    """A float as Redis writes INCRBYFLOAT results: plain notation, no trailing zeros."""
    text = format(decimal.Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.encode()


@commands.command(
    "incrbyfloat", arity=3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="string"
)
def incrbyfloat(client: Client, argv: list[bytes]) -> Reply:
    """Increment the float value of a key by the given amount."""
    db, key = client.db, argv[1]
    current = _get_string(db, key)
    number = 0.0 if current is None else parse_float(current)
    result = number + parse_float(argv[2])
    if math.isnan(result) or math.isinf(result):
        raise ErrorReply("ERR increment would produce NaN or Infinity")
    encoded = format_float(result)
    db.set(key, encoded, keep_ttl=True)
    return encoded


@commands.command(
    "append", arity=3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="string"
)
def append(client: Client, argv: list[bytes]) -> Reply:
    """Append a value to a key."""
    db, key = client.db, argv[1]
    current = _get_string(db, key) or b""
    if len(current) + len(argv[2]) > client.server.settings.max_bulk:
        raise ErrorReply(TOO_BIG)
    db.set(key, current + argv[2], keep_ttl=True)
    return len(current) + len(argv[2])


@commands.command("strlen", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="string")
def strlen(client: Client, argv: list[bytes]) -> Reply:
    """Get the length of the value stored in a key."""
    return len(_get_string(client.db, argv[1]) or b"")


@commands.command("getrange", arity=4, flags=["readonly"], keys=(1, 1, 1), group="string")
def getrange(client: Client, argv: list[bytes]) -> Reply:
    """Get a substring of the string stored at a key."""
    start, end = parse_int(argv[2]), parse_int(argv[3])
    value = _get_string(client.db, argv[1]) or b""
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    start = max(0, start + size if start < 0 else start)
    end = max(0, end + size if end < 0 else end)
    end = min(end, size - 1)
    return b"" if start > end or size == 0 else value[start : end + 1]


@commands.command("setrange", arity=4, flags=["write", "denyoom"], keys=(1, 1, 1), group="string")
def setrange(client: Client, argv: list[bytes]) -> Reply:
    """Overwrite part of a string at key starting at the specified offset."""
    db, key, patch = client.db, argv[1], argv[3]
    offset = parse_int(argv[2])
    if offset < 0:
        raise ErrorReply("ERR offset is out of range")
    current = _get_string(db, key)
    if not patch:
        return len(current or b"")
    if offset + len(patch) > client.server.settings.max_bulk:
        raise ErrorReply(TOO_BIG)
    value = bytearray(current or b"")
    if len(value) < offset:
        value.extend(b"\0" * (offset - len(value)))
    value[offset : offset + len(patch)] = patch
    db.set(key, bytes(value), keep_ttl=True)
    return len(value)
