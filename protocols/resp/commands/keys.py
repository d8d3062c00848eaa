# Generic key commands: DEL, UNLINK, EXISTS, TYPE, KEYS, SCAN, RENAME(NX),
# RANDOMKEY, COPY, MOVE, TOUCH, OBJECT (ENCODING, REFCOUNT, IDLETIME, FREQ),
# and the expiry family (EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT with
# NX/XX/GT/LT, TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST). As in Redis,
# EXISTS, TYPE, the TTLs, OBJECT, KEYS and SCAN look at keys without
# counting as an access (OBJECT IDLETIME and FREQ); TOUCH counts as one.
from __future__ import annotations

import copy as copy_module
import re
from collections import deque
from collections.abc import Collection
from typing import Final

from .._app import RespApp
from .._args import SYNTAX, parse_int
from .._client import Client
from .._glob import compile_glob
from .._keyspace import Value, now_ms, type_name
from .._reply import OK, ErrorReply, Reply, Status
from .._stream import Stream
from .._zset import ZSet

commands = RespApp(builtins=False)

SCAN_DEFAULT_COUNT: Final = 10
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_INT_STRING: Final = re.compile(rb"0|-?[1-9][0-9]{0,18}")


@commands.command("del", arity=-2, flags=["write"], keys=(1, -1, 1), group="generic")
def delete(client: Client, argv: list[bytes]) -> Reply:
    """Delete a key."""
    return sum(1 for key in argv[1:] if client.db.delete(key))


@commands.command("unlink", arity=-2, flags=["write", "fast"], keys=(1, -1, 1), group="generic")
def unlink(client: Client, argv: list[bytes]) -> Reply:
    """Delete a key (Redis frees it in the background; here it is the same as DEL)."""
    return sum(1 for key in argv[1:] if client.db.delete(key))


@commands.command("exists", arity=-2, flags=["readonly", "fast"], keys=(1, -1, 1), group="generic")
def exists(client: Client, argv: list[bytes]) -> Reply:
    """Determine if a key exists."""
    return sum(1 for key in argv[1:] if client.db.exists(key))


@commands.command("touch", arity=-2, flags=["readonly", "fast"], keys=(1, -1, 1), group="generic")
def touch(client: Client, argv: list[bytes]) -> Reply:
    """Alters the last access time of a key(s). Returns the number of existing keys specified."""
    db = client.db
    return sum(1 for key in argv[1:] if db.get(key) is not None)


@commands.command("type", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="generic")
def type_(client: Client, argv: list[bytes]) -> Reply:
    """Determine the type stored at key."""
    value = client.db.peek(argv[1])
    return Status("none" if value is None else type_name(value))


@commands.command("keys", arity=2, flags=["readonly"], group="generic")
def keys(client: Client, argv: list[bytes]) -> Reply:
    """Find all keys matching the given pattern."""
    db = client.db
    matches = compile_glob(argv[1])
    # as Redis 7.0: an expired key is left out, not removed (keyIsExpired)
    return [key for key in db.data if matches(key) and not db.is_expired(key)]


@commands.command("scan", arity=-2, flags=["readonly"], group="generic")
def scan(client: Client, argv: list[bytes]) -> Reply:
    """Incrementally iterate the keys space."""
    cursor = _cursor(argv[1])
    pattern, count, kind = _scan_options(argv[2:], allow_type=True)
    db = client.db
    next_cursor, page = client.server.scan_page(cursor, lambda: list(db.data), count)
    matches = compile_glob(pattern) if pattern is not None else None
    found = []
    for key in page:
        value = db.peek(key)
        if value is None or (matches is not None and not matches(key)):
            continue
        if kind is not None and type_name(value) != kind:
            continue
        found.append(key)
    return [str(next_cursor).encode(), found]


SMALL_COLLECTION: Final = 128  # Redis answers such small hashes and sets in one page


def scan_items(
    client: Client, collection: Collection[bytes], cursor_arg: bytes, options: list[bytes]
) -> tuple[bytes, list[bytes]]:
    """HSCAN/SSCAN: a page of a hash's fields or a set's members, filtered."""
    cursor = _cursor(cursor_arg)
    pattern, count, _ = _scan_options(options, allow_type=False)
    if len(collection) <= SMALL_COLLECTION:
        next_cursor, page = 0, list(collection)
    else:
        next_cursor, page = client.server.scan_page(cursor, lambda: list(collection), count)
    if pattern is not None:
        matches = compile_glob(pattern)
        page = [item for item in page if matches(item)]
    present = [item for item in page if item in collection]
    return str(next_cursor).encode(), present


def _cursor(arg: bytes) -> int:
    if not arg.isdigit() or int(arg) >= 2**64:
        raise ErrorReply("ERR invalid cursor")
    return int(arg)


def _scan_options(args: list[bytes], *, allow_type: bool) -> tuple[bytes | None, int, str | None]:
    pattern: bytes | None = None
    count = SCAN_DEFAULT_COUNT
    kind: str | None = None
    if len(args) % 2:
        raise ErrorReply(SYNTAX)
    for option, value in zip(args[::2], args[1::2], strict=True):
        option = option.lower()
        if option == b"match":
            pattern = None if value == b"*" else value
        elif option == b"count":
            count = parse_int(value)
            if count < 1:
                raise ErrorReply(SYNTAX)
        elif option == b"type" and allow_type:
            kind = value.lower().decode(errors="replace")
        else:
            raise ErrorReply(SYNTAX)
    return pattern, count, kind


def _rename(client: Client, argv: list[bytes], *, only_new: bool) -> bool:
    db, source, target = client.db, argv[1], argv[2]
    value = db.get(source)
    if value is None:
        raise ErrorReply("ERR no such key")
    if source == target:
        return not only_new
    if only_new and db.exists(target):
        return False
    ttl = db.expires.get(source)
    db.delete(source)
    db.set(target, value)
    if ttl is not None:
        db.set_expiry(target, ttl)
    return True


@commands.command("rename", arity=3, flags=["write"], keys=(1, 2, 1), group="generic")
def rename(client: Client, argv: list[bytes]) -> Reply:
    """Rename a key."""
    _rename(client, argv, only_new=False)
    return OK


@commands.command("renamenx", arity=3, flags=["write", "fast"], keys=(1, 2, 1), group="generic")
def renamenx(client: Client, argv: list[bytes]) -> Reply:
    """Rename a key, only if the new key does not exist."""
    return int(_rename(client, argv, only_new=True))


@commands.command("randomkey", arity=1, flags=["readonly"], group="generic")
def randomkey(client: Client, argv: list[bytes]) -> Reply:
    """Return a random key from the keyspace."""
    return client.db.random_key()


@commands.command("copy", arity=-3, flags=["write", "denyoom"], keys=(1, 2, 1), group="generic")
def copy(client: Client, argv: list[bytes]) -> Reply:
    """Copy a key."""
    source, target = argv[1], argv[2]
    target_db = client.db
    replace = False
    index = 3
    while index < len(argv):
        option = argv[index].lower()
        if option == b"db" and index + 1 < len(argv):
            number = parse_int(argv[index + 1])
            if not 0 <= number < len(client.server.keyspace.databases):
                raise ErrorReply("ERR DB index is out of range")
            target_db = client.server.keyspace[number]
            index += 2
        elif option == b"replace":
            replace = True
            index += 1
        else:
            raise ErrorReply(SYNTAX)
    if source == target and target_db is client.db:
        raise ErrorReply("ERR source and destination objects are the same")
    value = client.db.get(source)
    if value is None:
        return 0
    if target_db.exists(target):
        if not replace:
            return 0
        target_db.delete(target)
    target_db.set(target, copy_module.copy(value))
    ttl = client.db.expires.get(source)
    if ttl is not None:
        target_db.set_expiry(target, ttl)
    return 1


@commands.command("move", arity=3, flags=["write", "fast"], keys=(1, 1, 1), group="generic")
def move(client: Client, argv: list[bytes]) -> Reply:
    """Move a key to another database."""
    index = parse_int(argv[2])
    if not INT32_MIN <= index <= INT32_MAX:  # Redis reads an int
        raise ErrorReply(
            f"ERR value is out of range, value must between {INT32_MIN} and {INT32_MAX}"
        )
    databases = client.server.keyspace.databases
    if not 0 <= index < len(databases):
        raise ErrorReply("ERR DB index is out of range")
    source, target, key = client.db, databases[index], argv[1]
    if target is source:
        raise ErrorReply("ERR source and destination objects are the same")
    if source.get(key) is None or target.get(key) is not None:
        return 0
    source.move(key, target)
    return 1


OBJECT_HELP: Final = [
    Status(line)
    for line in (
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    )
]
SHARED_REFCOUNT: Final = (
    2**31 - 1
)  # what Redis reports for its shared objects (OBJ_SHARED_REFCOUNT)
SHARED_INTEGERS: Final = (
    10000  # Redis shares the integers 0..9999 between keys (OBJ_SHARED_INTEGERS)
)
LFU_NOT_SELECTED: Final = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
    "that when switching between policies at runtime LRU and LFU data will take some time to "
    "adjust."
)
LFU_SELECTED: Final = (
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)


@commands.command("object", arity=-2, group="generic")
def object_(client: Client, argv: list[bytes]) -> Reply:
    """A container for object introspection commands."""
    sub = argv[1].lower()
    if sub not in (b"help", b"encoding", b"refcount", b"idletime", b"freq"):
        return client.server.unknown_subcommand(argv)
    if len(argv) != (2 if sub == b"help" else 3):
        raise ErrorReply(f"ERR wrong number of arguments for 'object|{sub.decode()}' command")
    if sub == b"help":
        return OBJECT_HELP
    db, key = client.db, argv[2]
    value = db.peek(key)  # looking is no access
    if value is None:
        return None
    if sub == b"encoding":
        return encoding(value)
    if sub == b"refcount":
        return SHARED_REFCOUNT if _shared_integer(client, value) else 1
    lfu = db.lfu
    if sub == b"idletime":
        if lfu is not None:
            raise ErrorReply(LFU_SELECTED)
        return db.idle_seconds(key)
    if lfu is None:
        raise ErrorReply(LFU_NOT_SELECTED)
    return db.frequency(key, lfu)


def _shared_integer(client: Client, value: Value) -> bool:
    """Whether Redis would hold this value as one of its shared integers: a
    string that is an integer in 0..9999, unless maxmemory is set with an
    LRU or LFU policy (which needs each key's own access time)."""
    if not isinstance(value, bytes) or encoding(value) != b"int":
        return False
    if not 0 <= int(value) < SHARED_INTEGERS:
        return False
    config = client.server.config.parameters
    policy = config[b"maxmemory-policy"].value
    return config[b"maxmemory"].value == b"0" or not policy.endswith((b"-lru", b"-lfu"))


def encoding(value: Value) -> bytes:
    """The encoding Redis 7.2 would report for a value of this shape."""
    if isinstance(value, ZSet):
        return value.encoding
    if isinstance(value, Stream):
        return b"stream"
    if isinstance(value, bytes):
        if len(value) <= 20 and _INT_STRING.fullmatch(value):
            return b"int"
        return b"embstr" if len(value) <= 44 else b"raw"
    small = len(value) <= 128
    if isinstance(value, deque):
        return b"listpack" if small and all(len(item) <= 64 for item in value) else b"quicklist"
    if isinstance(value, dict):
        fits = all(len(k) <= 64 and len(v) <= 64 for k, v in value.items())
        return b"listpack" if small and fits else b"hashtable"
    if len(value) <= 512 and all(_INT_STRING.fullmatch(member) for member in value):
        return b"intset"
    return b"listpack" if small and all(len(m) <= 64 for m in value) else b"hashtable"


# -- expiry ------------------------------------------------------------------


def _expire(client: Client, argv: list[bytes], *, unit_ms: int, absolute: bool) -> Reply:
    command = argv[0].lower().decode(errors="replace")
    amount = parse_int(argv[2])
    flags = {arg.lower() for arg in argv[3:]}
    for arg in argv[3:]:
        if arg.lower() not in (b"nx", b"xx", b"gt", b"lt"):
            raise ErrorReply(f"ERR Unsupported option {arg.decode(errors='replace')}")
    if b"nx" in flags and flags & {b"xx", b"gt", b"lt"}:
        raise ErrorReply("ERR NX and XX, GT or LT options at the same time are not compatible")
    if {b"gt", b"lt"} <= flags:
        raise ErrorReply("ERR GT and LT options at the same time are not compatible")
    limit = (2**63 - 1) // unit_ms
    if not -limit <= amount <= limit:
        raise ErrorReply(f"ERR invalid expire time in '{command}' command")
    when = amount * unit_ms + (0 if absolute else now_ms())
    if when >= 2**63:
        raise ErrorReply(f"ERR invalid expire time in '{command}' command")
    db, key = client.db, argv[1]
    if db.get(key) is None:
        return 0
    current = db.expires.get(key)
    if (b"nx" in flags and current is not None) or (b"xx" in flags and current is None):
        return 0
    if b"gt" in flags and (current is None or when <= current):
        return 0  # no TTL counts as infinite
    if b"lt" in flags and current is not None and when >= current:
        return 0
    db.set_expiry(key, when)
    return 1


@commands.command("expire", arity=-3, flags=["write", "fast"], keys=(1, 1, 1), group="generic")
def expire(client: Client, argv: list[bytes]) -> Reply:
    """Set a key's time to live in seconds."""
    return _expire(client, argv, unit_ms=1000, absolute=False)


@commands.command("pexpire", arity=-3, flags=["write", "fast"], keys=(1, 1, 1), group="generic")
def pexpire(client: Client, argv: list[bytes]) -> Reply:
    """Set a key's time to live in milliseconds."""
    return _expire(client, argv, unit_ms=1, absolute=False)


@commands.command("expireat", arity=-3, flags=["write", "fast"], keys=(1, 1, 1), group="generic")
def expireat(client: Client, argv: list[bytes]) -> Reply:
    """Set the expiration for a key as a UNIX timestamp."""
    return _expire(client, argv, unit_ms=1000, absolute=True)


@commands.command("pexpireat", arity=-3, flags=["write", "fast"], keys=(1, 1, 1), group="generic")
def pexpireat(client: Client, argv: list[bytes]) -> Reply:
    """Set the expiration for a key as a UNIX timestamp specified in milliseconds."""
    return _expire(client, argv, unit_ms=1, absolute=True)


def _ttl(client: Client, key: bytes, *, unit_ms: int, absolute: bool) -> int:
    db = client.db
    if not db.exists(key):
        return -2
    when = db.expires.get(key)
    if when is None:
        return -1
    if absolute:
        return when // unit_ms
    left = max(0, when - now_ms())
    return (left + unit_ms // 2) // unit_ms if unit_ms > 1 else left


@commands.command("ttl", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="generic")
def ttl(client: Client, argv: list[bytes]) -> Reply:
    """Get the time to live for a key in seconds."""
    return _ttl(client, argv[1], unit_ms=1000, absolute=False)


@commands.command("pttl", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="generic")
def pttl(client: Client, argv: list[bytes]) -> Reply:
    """Get the time to live for a key in milliseconds."""
    return _ttl(client, argv[1], unit_ms=1, absolute=False)


@commands.command(
    "expiretime", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="generic"
)
def expiretime(client: Client, argv: list[bytes]) -> Reply:
    """Get the expiration Unix timestamp for a key."""
    return _ttl(client, argv[1], unit_ms=1000, absolute=True)


@commands.command(
    "pexpiretime", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="generic"
)
def pexpiretime(client: Client, argv: list[bytes]) -> Reply:
    """Get the expiration Unix timestamp for a key in milliseconds."""
    return _ttl(client, argv[1], unit_ms=1, absolute=True)


@commands.command("persist", arity=2, flags=["write", "fast"], keys=(1, 1, 1), group="generic")
def persist(client: Client, argv: list[bytes]) -> Reply:
    """Remove the expiration from a key."""
    if client.db.get(argv[1]) is None:
        return 0
    return int(client.db.persist(argv[1]))
