# List commands, lists being deques: pushes and pops at both ends, ranges,
# LINDEX/LSET/LREM/LTRIM/LINSERT/LPOS, LMOVE, LMPOP, and the blocking BLPOP,
# BRPOP, BLMOVE and BLMPOP (see _blocking.py).
from __future__ import annotations

from collections import deque
from typing import Any

from .._app import RespApp, keys_counted
from .._args import SYNTAX, parse_int, parse_mpop, parse_timeout
from .._blocking import Take
from .._client import Client
from .._keyspace import Database
from .._reply import NULL_ARRAY, OK, ErrorReply, Reply

commands = RespApp(builtins=False)

List = deque[bytes]


def _get_list(db: Database, key: bytes) -> List | None:
    value: List | None = db.get_typed(key, deque)
    return value


def _push(client: Client, argv: list[bytes], *, left: bool, only_existing: bool) -> Reply:
    db, key = client.db, argv[1]
    items = _get_list(db, key)
    if items is None:
        if only_existing:
            return 0
        items = deque()
        db.set(key, items)
    if left:
        items.extendleft(argv[2:])
    else:
        items.extend(argv[2:])
    db.touch(key)
    return len(items)


@commands.command(
    "lpush", arity=-3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="list"
)
def lpush(client: Client, argv: list[bytes]) -> Reply:
    """Prepend one or multiple elements to a list."""
    return _push(client, argv, left=True, only_existing=False)


@commands.command(
    "rpush", arity=-3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="list"
)
def rpush(client: Client, argv: list[bytes]) -> Reply:
    """Append one or multiple elements to a list."""
    return _push(client, argv, left=False, only_existing=False)


@commands.command(
    "lpushx", arity=-3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="list"
)
def lpushx(client: Client, argv: list[bytes]) -> Reply:
    """Prepend an element to a list, only if the list exists."""
    return _push(client, argv, left=True, only_existing=True)


@commands.command(
    "rpushx", arity=-3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="list"
)
def rpushx(client: Client, argv: list[bytes]) -> Reply:
    """Append an element to a list, only if the list exists."""
    return _push(client, argv, left=False, only_existing=True)


def _pop(client: Client, argv: list[bytes], *, left: bool) -> Reply:
    if len(argv) > 3:
        raise ErrorReply(SYNTAX)
    count: int | None = None
    if len(argv) == 3:
        count = parse_int(argv[2], "ERR value is out of range, must be positive")
        if count < 0:
            raise ErrorReply("ERR value is out of range, must be positive")
    db, key = client.db, argv[1]
    items = _get_list(db, key)
    if items is None:
        return None if count is None else NULL_ARRAY
    pop = items.popleft if left else items.pop
    if count is None:
        item = pop()
        popped: Any = item
    else:
        popped = [pop() for _ in range(min(count, len(items)))]
    db.touch(key)
    db.drop_if_empty(key)
    return popped


@commands.command("lpop", arity=-2, flags=["write", "fast"], keys=(1, 1, 1), group="list")
def lpop(client: Client, argv: list[bytes]) -> Reply:
    """Remove and get the first elements in a list."""
    return _pop(client, argv, left=True)


@commands.command("rpop", arity=-2, flags=["write", "fast"], keys=(1, 1, 1), group="list")
def rpop(client: Client, argv: list[bytes]) -> Reply:
    """Remove and get the last elements in a list."""
    return _pop(client, argv, left=False)


@commands.command("llen", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="list")
def llen(client: Client, argv: list[bytes]) -> Reply:
    """Get the length of a list."""
    items = _get_list(client.db, argv[1])
    return 0 if items is None else len(items)


def _range(size: int, start: int, stop: int) -> range:
    """Redis's inclusive, negative-aware index range, clamped to the list."""
    if start < 0:
        start = max(0, start + size)
    if stop < 0:
        stop += size
    stop = min(stop, size - 1)
    return range(start, stop + 1) if start <= stop else range(0)


@commands.command("lrange", arity=4, flags=["readonly"], keys=(1, 1, 1), group="list")
def lrange(client: Client, argv: list[bytes]) -> Reply:
    """Get a range of elements from a list."""
    start, stop = parse_int(argv[2]), parse_int(argv[3])
    items = _get_list(client.db, argv[1])
    if items is None:
        return []
    span = _range(len(items), start, stop)
    if not span:
        return []
    if span.start == 0 and span.stop == len(items):
        return list(items)
    if span.start > len(items) // 2:  # deques index fastest from the nearer end
        items.rotate(-span.start)
        taken = [items[i] for i in range(len(span))]
        items.rotate(span.start)
        return taken
    return [items[i] for i in span]


@commands.command("lindex", arity=3, flags=["readonly"], keys=(1, 1, 1), group="list")
def lindex(client: Client, argv: list[bytes]) -> Reply:
    """Get an element from a list by its index."""
    index = parse_int(argv[2])
    items = _get_list(client.db, argv[1])
    if items is None or not -len(items) <= index < len(items):
        return None
    return items[index]


@commands.command("lset", arity=4, flags=["write", "denyoom"], keys=(1, 1, 1), group="list")
def lset(client: Client, argv: list[bytes]) -> Reply:
    """Set the value of an element in a list by its index."""
    index = parse_int(argv[2])
    items = _get_list(client.db, argv[1])
    if items is None:
        raise ErrorReply("ERR no such key")
    if not -len(items) <= index < len(items):
        raise ErrorReply("ERR index out of range")
    items[index] = argv[3]
    client.db.touch(argv[1])
    return OK


@commands.command("lrem", arity=4, flags=["write"], keys=(1, 1, 1), group="list")
def lrem(client: Client, argv: list[bytes]) -> Reply:
    """Remove elements from a list."""
    count, element = parse_int(argv[2]), argv[3]
    db, key = client.db, argv[1]
    items = _get_list(db, key)
    if items is None:
        return 0
    limit = abs(count) or len(items)
    ordered = list(items) if count >= 0 else list(reversed(items))
    kept, removed = [], 0
    for item in ordered:
        if item == element and removed < limit:
            removed += 1
        else:
            kept.append(item)
    if removed:
        items.clear()
        items.extend(kept if count >= 0 else reversed(kept))
        db.touch(key)
        db.drop_if_empty(key)
    return removed


@commands.command("ltrim", arity=4, flags=["write"], keys=(1, 1, 1), group="list")
def ltrim(client: Client, argv: list[bytes]) -> Reply:
    """Trim a list to the specified range."""
    start, stop = parse_int(argv[2]), parse_int(argv[3])
    db, key = client.db, argv[1]
    items = _get_list(db, key)
    if items is None:
        return OK
    span = _range(len(items), start, stop)
    kept = [items[i] for i in span]
    items.clear()
    items.extend(kept)
    db.touch(key)
    db.drop_if_empty(key)
    return OK


@commands.command("linsert", arity=5, flags=["write", "denyoom"], keys=(1, 1, 1), group="list")
def linsert(client: Client, argv: list[bytes]) -> Reply:
    """Insert an element before or after another element in a list."""
    where = argv[2].lower()
    if where not in (b"before", b"after"):
        raise ErrorReply(SYNTAX)
    db, key = client.db, argv[1]
    items = _get_list(db, key)
    if items is None:
        return 0
    try:
        index = items.index(argv[3])
    except ValueError:
        return -1
    items.insert(index if where == b"before" else index + 1, argv[4])
    db.touch(key)
    return len(items)


@commands.command("lpos", arity=-3, flags=["readonly"], keys=(1, 1, 1), group="list")
def lpos(client: Client, argv: list[bytes]) -> Reply:
    """Return the index of matching elements on a list."""
    rank, count, maxlen = 1, None, 0
    if (len(argv) - 3) % 2:
        raise ErrorReply(SYNTAX)
    for option, value in zip(argv[3::2], argv[4::2], strict=True):
        option = option.lower()
        if option == b"rank":
            rank = parse_int(value)
            if rank == 0 or rank == -(2**63):
                raise ErrorReply(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                    "second ... or use negative to start from the end of the list"
                )
        elif option == b"count":
            count = parse_int(value)
            if count < 0:
                raise ErrorReply("ERR COUNT can't be negative")
        elif option == b"maxlen":
            maxlen = parse_int(value)
            if maxlen < 0:
                raise ErrorReply("ERR MAXLEN can't be negative")
        else:
            raise ErrorReply(SYNTAX)
    items = _get_list(client.db, argv[1])
    if items is None:
        return None if count is None else []
    size = len(items)
    positions = range(size) if rank > 0 else range(size - 1, -1, -1)
    if maxlen:
        positions = positions[:maxlen]
    wanted = count if count else (size if count == 0 else 1)
    skip = abs(rank) - 1
    found: list[int] = []
    element = argv[2]
    for index in positions:
        if items[index] == element:
            if skip:
                skip -= 1
                continue
            found.append(index)
            if len(found) >= wanted:
                break
    if count is None:
        return found[0] if found else None
    return found


def _move(
    db: Database, source: bytes, target: bytes, wherefrom: bytes, whereto: bytes
) -> bytes | None:
    """LMOVE's work; None when the source is empty (the destination is not
    looked at then, as in Redis). Checks types before it moves anything."""
    items = _get_list(db, source)
    if items is None:
        return None
    destination = _get_list(db, target)
    item = items.popleft() if wherefrom == b"left" else items.pop()
    db.touch(source)
    if destination is None:
        if source == target:  # the list just emptied: it becomes itself again
            items.append(item)
            return item
        destination = deque()
        db.set(target, destination)
    if whereto == b"left":
        destination.appendleft(item)
    else:
        destination.append(item)
    db.touch(target)
    db.drop_if_empty(source)
    return item


def _directions(argv: list[bytes], first: int) -> tuple[bytes, bytes]:
    wherefrom, whereto = argv[first].lower(), argv[first + 1].lower()
    if wherefrom not in (b"left", b"right") or whereto not in (b"left", b"right"):
        raise ErrorReply(SYNTAX)
    return wherefrom, whereto


@commands.command("lmove", arity=5, flags=["write", "denyoom"], keys=(1, 2, 1), group="list")
def lmove(client: Client, argv: list[bytes]) -> Reply:
    """Pop an element from a list, push it to another list and return it."""
    wherefrom, whereto = _directions(argv, 3)
    return _move(client.db, argv[1], argv[2], wherefrom, whereto)


@commands.command("rpoplpush", arity=3, flags=["write", "denyoom"], keys=(1, 2, 1), group="list")
def rpoplpush(client: Client, argv: list[bytes]) -> Reply:
    """Remove the last element in a list, prepend it to another list and return it."""
    return _move(client.db, argv[1], argv[2], b"right", b"left")


def _popper(keys: list[bytes], *, left: bool) -> Any:
    def take(db: Database) -> Reply | None:
        for key in keys:
            items = _get_list(db, key)
            if items:
                item = items.popleft() if left else items.pop()
                db.touch(key)
                db.drop_if_empty(key)
                return [key, item]
        return None

    return take


async def _blocking_pop(client: Client, argv: list[bytes], *, left: bool) -> Reply:
    keys = argv[1:-1]
    timeout = parse_timeout(argv[-1])
    return await _take_or_wait(client, keys, _popper(keys, left=left), timeout)


async def _take_or_wait(
    client: Client, keys: list[bytes], take: Take, seconds: float | None
) -> Reply:
    """take's reply now, or once one of `keys` holds a list (the null array
    after `seconds`, or at once inside MULTI, where nothing blocks)."""
    result = client.server.blocking.take_as(client, client.db, take)
    if result is not None:
        return result
    if client.in_exec:
        return NULL_ARRAY  # inside MULTI a blocking command does not block
    return await client.server.blocking.wait(client, keys, take, seconds)


@commands.command(
    "blpop", arity=-3, flags=["write", "noscript", "blocking"], keys=(1, -2, 1), group="list"
)
async def blpop(client: Client, argv: list[bytes]) -> Reply:
    """Remove and get the first element in a list, or block until one is available."""
    return await _blocking_pop(client, argv, left=True)


@commands.command(
    "brpop", arity=-3, flags=["write", "noscript", "blocking"], keys=(1, -2, 1), group="list"
)
async def brpop(client: Client, argv: list[bytes]) -> Reply:
    """Remove and get the last element in a list, or block until one is available."""
    return await _blocking_pop(client, argv, left=False)


@commands.command(
    "blmove",
    arity=6,
    flags=["write", "denyoom", "noscript", "blocking"],
    keys=(1, 2, 1),
    group="list",
)
async def blmove(client: Client, argv: list[bytes]) -> Reply:
    """Pop from a list, push to another list and return it; or block until one is available."""
    wherefrom, whereto = _directions(argv, 3)
    return await _blocking_move(client, argv[1], argv[2], wherefrom, whereto, argv[5])


@commands.command(
    "brpoplpush",
    arity=4,
    flags=["write", "denyoom", "noscript", "blocking"],
    keys=(1, 2, 1),
    group="list",
)
async def brpoplpush(client: Client, argv: list[bytes]) -> Reply:
    """Pop an element from a list, push it to another list and return it; or block until
    one is available (BLMOVE source destination RIGHT LEFT)."""
    return await _blocking_move(client, argv[1], argv[2], b"right", b"left", argv[3])


async def _blocking_move(
    client: Client, source: bytes, target: bytes, wherefrom: bytes, whereto: bytes, seconds: bytes
) -> Reply:
    timeout = parse_timeout(seconds)

    def take(db: Database) -> Reply | None:
        return _move(db, source, target, wherefrom, whereto)

    result = client.server.blocking.take_as(client, client.db, take)
    if result is not None:
        return result
    if client.in_exec:
        return None  # inside MULTI: the null bulk string at once
    # a timeout (or CLIENT UNBLOCK) answers the null array, as Redis answers
    # any blocked list command (replyToBlockedClientTimedOut)
    return await client.server.blocking.wait(client, [source], take, timeout)


def _mpop(db: Database, keys: list[bytes], *, left: bool, count: int) -> Reply | None:
    """LMPOP's work: up to `count` elements from the first of `keys` that
    holds a list, with its name; None if none does. WRONGTYPE if a key
    before it holds something else."""
    for key in keys:
        items = _get_list(db, key)
        if items is None:
            continue
        pop = items.popleft if left else items.pop
        popped = [pop() for _ in range(min(count, len(items)))]
        db.touch(key)
        db.drop_if_empty(key)
        return [key, popped]
    return None


@commands.command("lmpop", arity=-4, flags=["write"], find_keys=keys_counted(1), group="list")
def lmpop(client: Client, argv: list[bytes]) -> Reply:
    """Pop elements from a list."""
    keys, right, count = parse_mpop(argv, 1, (b"left", b"right"))
    popped = _mpop(client.db, keys, left=not right, count=count)
    return NULL_ARRAY if popped is None else popped


@commands.command(
    "blmpop",
    arity=-5,
    flags=["write", "blocking"],
    find_keys=keys_counted(2),
    group="list",
)
async def blmpop(client: Client, argv: list[bytes]) -> Reply:
    """Pop elements from a list, or block until one is available."""
    keys, right, count = parse_mpop(argv, 2, (b"left", b"right"))
    timeout = parse_timeout(argv[1])  # after the other arguments, as Redis reads them

    def take(db: Database) -> Reply | None:
        return _mpop(db, keys, left=not right, count=count)

    return await _take_or_wait(client, keys, take, timeout)
