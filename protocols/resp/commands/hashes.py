# Hash commands, hashes being dicts of bytes: HSET/HGET and friends, counters,
# HGETALL/HKEYS/HVALS, HSCAN.
from __future__ import annotations

import math

from .._app import RespApp
from .._args import parse_float, parse_int
from .._client import Client
from .._keyspace import Database
from .._reply import OK, ErrorReply, Reply
from .keys import scan_items
from .strings import format_float

commands = RespApp(builtins=False)

Hash = dict[bytes, bytes]


def _get_hash(db: Database, key: bytes) -> Hash | None:
    value: Hash | None = db.get_typed(key, dict)
    return value


def _hash_for_write(db: Database, key: bytes) -> Hash:
    fields = _get_hash(db, key)
    if fields is None:
        fields = {}
        db.set(key, fields)
    return fields


def _set_fields(client: Client, argv: list[bytes], command: str) -> int:
    if len(argv) % 2:
        raise ErrorReply(f"ERR wrong number of arguments for '{command}' command")
    db, key = client.db, argv[1]
    fields = _hash_for_write(db, key)
    before = len(fields)
    for field, value in zip(argv[2::2], argv[3::2], strict=True):
        fields[field] = value
    db.touch(key)
    return len(fields) - before


@commands.command(
    "hset", arity=-4, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="hash"
)
def hset(client: Client, argv: list[bytes]) -> Reply:
    """Set the string value of a hash field."""
    return _set_fields(client, argv, "hset")


@commands.command(
    "hmset", arity=-4, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="hash"
)
def hmset(client: Client, argv: list[bytes]) -> Reply:
    """Set multiple hash fields to multiple values."""
    _set_fields(client, argv, "hmset")
    return OK


@commands.command(
    "hsetnx", arity=4, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="hash"
)
def hsetnx(client: Client, argv: list[bytes]) -> Reply:
    """Set the value of a hash field, only if the field does not exist."""
    db, key = client.db, argv[1]
    fields = _get_hash(db, key)
    if fields is not None and argv[2] in fields:
        return 0
    _hash_for_write(db, key)[argv[2]] = argv[3]
    db.touch(key)
    return 1


@commands.command("hget", arity=3, flags=["readonly", "fast"], keys=(1, 1, 1), group="hash")
def hget(client: Client, argv: list[bytes]) -> Reply:
    """Get the value of a hash field."""
    fields = _get_hash(client.db, argv[1])
    return None if fields is None else fields.get(argv[2])


@commands.command("hmget", arity=-3, flags=["readonly", "fast"], keys=(1, 1, 1), group="hash")
def hmget(client: Client, argv: list[bytes]) -> Reply:
    """Get the values of all the given hash fields."""
    fields = _get_hash(client.db, argv[1]) or {}
    return [fields.get(field) for field in argv[2:]]


@commands.command("hdel", arity=-3, flags=["write", "fast"], keys=(1, 1, 1), group="hash")
def hdel(client: Client, argv: list[bytes]) -> Reply:
    """Delete one or more hash fields."""
    db, key = client.db, argv[1]
    fields = _get_hash(db, key)
    if fields is None:
        return 0
    removed = sum(1 for field in argv[2:] if fields.pop(field, None) is not None)
    if removed:
        db.touch(key)
        db.drop_if_empty(key)
    return removed


@commands.command("hexists", arity=3, flags=["readonly", "fast"], keys=(1, 1, 1), group="hash")
def hexists(client: Client, argv: list[bytes]) -> Reply:
    """Determine if a hash field exists."""
    return int(argv[2] in (_get_hash(client.db, argv[1]) or {}))


@commands.command("hgetall", arity=2, flags=["readonly"], keys=(1, 1, 1), group="hash")
def hgetall(client: Client, argv: list[bytes]) -> Reply:
    """Get all the fields and values in a hash."""
    return dict(_get_hash(client.db, argv[1]) or {})


@commands.command("hkeys", arity=2, flags=["readonly"], keys=(1, 1, 1), group="hash")
def hkeys(client: Client, argv: list[bytes]) -> Reply:
    """Get all the fields in a hash."""
    return list(_get_hash(client.db, argv[1]) or {})


@commands.command("hvals", arity=2, flags=["readonly"], keys=(1, 1, 1), group="hash")
def hvals(client: Client, argv: list[bytes]) -> Reply:
    """Get all the values in a hash."""
    return list((_get_hash(client.db, argv[1]) or {}).values())


@commands.command("hlen", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="hash")
def hlen(client: Client, argv: list[bytes]) -> Reply:
    """Get the number of fields in a hash."""
    return len(_get_hash(client.db, argv[1]) or {})


@commands.command("hstrlen", arity=3, flags=["readonly", "fast"], keys=(1, 1, 1), group="hash")
def hstrlen(client: Client, argv: list[bytes]) -> Reply:
    """Get the length of the value of a hash field."""
    return len((_get_hash(client.db, argv[1]) or {}).get(argv[2], b""))


@commands.command(
    "hincrby", arity=4, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="hash"
)
def hincrby(client: Client, argv: list[bytes]) -> Reply:
    """Increment the integer value of a hash field by the given number."""
    by = parse_int(argv[3])
    db, key = client.db, argv[1]
    current = (_get_hash(db, key) or {}).get(argv[2])
    number = 0 if current is None else parse_int(current, "ERR hash value is not an integer")
    result = number + by
    if not -(2**63) <= result < 2**63:
        raise ErrorReply("ERR increment or decrement would overflow")
    _hash_for_write(db, key)[argv[2]] = b"%d" % result
    db.touch(key)
    return result


@commands.command(
    "hincrbyfloat", arity=4, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="hash"
)
def hincrbyfloat(client: Client, argv: list[bytes]) -> Reply:
    """Increment the float value of a hash field by the given amount."""
    by = parse_float(argv[3])
    db, key = client.db, argv[1]
    current = (_get_hash(db, key) or {}).get(argv[2])
    number = 0.0 if current is None else parse_float(current, "ERR hash value is not a float")
    result = number + by
    if math.isnan(result) or math.isinf(result):
        raise ErrorReply("ERR increment would produce NaN or Infinity")
    encoded = format_float(result)
    _hash_for_write(db, key)[argv[2]] = encoded
    db.touch(key)
    return encoded


@commands.command("hscan", arity=-3, flags=["readonly"], keys=(1, 1, 1), group="hash")
def hscan(client: Client, argv: list[bytes]) -> Reply:
    """Incrementally iterate hash fields and associated values."""
    fields = _get_hash(client.db, argv[1]) or {}
    cursor, found = scan_items(client, fields, argv[2], argv[3:])
    return [cursor, [item for field in found for item in (field, fields[field])]]
