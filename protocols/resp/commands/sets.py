# Set commands, sets being Python sets of bytes: membership, SPOP and
# SRANDMEMBER, the algebra (SINTER, SUNION, SDIFF and their STORE forms),
# SMOVE, SSCAN.
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from .._app import RespApp
from .._args import parse_int
from .._client import Client
from .._keyspace import Database
from .._reply import ErrorReply, Reply
from .keys import scan_items

commands = RespApp(builtins=False)

Set = set[bytes]
MUST_BE_POSITIVE: Final = "ERR value is out of range, must be positive"


def _get_set(db: Database, key: bytes) -> Set | None:
    value: Set | None = db.get_typed(key, set)
    return value


@commands.command("sadd", arity=-3, flags=["write", "denyoom", "fast"], keys=(1, 1, 1), group="set")
def sadd(client: Client, argv: list[bytes]) -> Reply:
    """Add one or more members to a set."""
    db, key = client.db, argv[1]
    members = _get_set(db, key)
    if members is None:
        members = set()
        db.set(key, members)
    before = len(members)
    members.update(argv[2:])
    db.touch(key)
    return len(members) - before


@commands.command("srem", arity=-3, flags=["write", "fast"], keys=(1, 1, 1), group="set")
def srem(client: Client, argv: list[bytes]) -> Reply:
    """Remove one or more members from a set."""
    db, key = client.db, argv[1]
    members = _get_set(db, key)
    if members is None:
        return 0
    before = len(members)
    members.difference_update(argv[2:])
    removed = before - len(members)
    if removed:
        db.touch(key)
        db.drop_if_empty(key)
    return removed


@commands.command("smembers", arity=2, flags=["readonly"], keys=(1, 1, 1), group="set")
def smembers(client: Client, argv: list[bytes]) -> Reply:
    """Get all the members in a set."""
    return set(_get_set(client.db, argv[1]) or ())


@commands.command("sismember", arity=3, flags=["readonly", "fast"], keys=(1, 1, 1), group="set")
def sismember(client: Client, argv: list[bytes]) -> Reply:
    """Determine if a given value is a member of a set."""
    return int(argv[2] in (_get_set(client.db, argv[1]) or ()))


@commands.command("smismember", arity=-3, flags=["readonly", "fast"], keys=(1, 1, 1), group="set")
def smismember(client: Client, argv: list[bytes]) -> Reply:
    """Returns the membership associated with the given elements for a set."""
    members = _get_set(client.db, argv[1]) or set()
    return [int(member in members) for member in argv[2:]]


@commands.command("scard", arity=2, flags=["readonly", "fast"], keys=(1, 1, 1), group="set")
def scard(client: Client, argv: list[bytes]) -> Reply:
    """Get the number of members in a set."""
    return len(_get_set(client.db, argv[1]) or ())


def _count_argument(argv: list[bytes]) -> int | None:
    if len(argv) > 3:
        raise ErrorReply("ERR syntax error")
    if len(argv) < 3:
        return None
    return parse_int(argv[2], MUST_BE_POSITIVE)


@commands.command("spop", arity=-2, flags=["write", "fast"], keys=(1, 1, 1), group="set")
def spop(client: Client, argv: list[bytes]) -> Reply:
    """Remove and return one or multiple random members from a set."""
    count = _count_argument(argv)
    if count is not None and count < 0:
        raise ErrorReply(MUST_BE_POSITIVE)
    db, key = client.db, argv[1]
    members = _get_set(db, key)
    if members is None:
        return None if count is None else set()
    if count is None:
        chosen = random.choice(tuple(members)) if len(members) < 64 else members.pop()
        members.discard(chosen)
        popped: Reply = chosen
    else:
        picked = random.sample(tuple(members), min(count, len(members)))
        members.difference_update(picked)
        popped = set(picked)
    db.touch(key)
    db.drop_if_empty(key)
    return popped


@commands.command("srandmember", arity=-2, flags=["readonly"], keys=(1, 1, 1), group="set")
def srandmember(client: Client, argv: list[bytes]) -> Reply:
    """Get one or multiple random members from a set."""
    count = _count_argument(argv)
    members = tuple(_get_set(client.db, argv[1]) or ())
    if count is None:
        return random.choice(members) if members else None
    if not members:
        return []
    if count >= 0:
        return random.sample(members, min(count, len(members)))
    return [random.choice(members) for _ in range(-count)]  # repeats allowed, as in Redis


def _combine(client: Client, keys: list[bytes], operation: Callable[[list[Set]], Set]) -> Set:
    sets = [_get_set(client.db, key) or set() for key in keys]  # WRONGTYPE before any work
    return operation(sets)


def _inter(sets: list[Set]) -> Set:
    return set.intersection(*sorted(sets, key=len)) if sets else set()


def _union(sets: list[Set]) -> Set:
    return set().union(*sets)


def _diff(sets: list[Set]) -> Set:
    return sets[0].difference(*sets[1:]) if sets else set()


def _store(client: Client, target: bytes, members: Set) -> int:
    db = client.db
    db.delete(target)
    if members:
        db.set(target, members)
    return len(members)


@commands.command("sinter", arity=-2, flags=["readonly"], keys=(1, -1, 1), group="set")
def sinter(client: Client, argv: list[bytes]) -> Reply:
    """Intersect multiple sets."""
    return _combine(client, argv[1:], _inter)


@commands.command("sunion", arity=-2, flags=["readonly"], keys=(1, -1, 1), group="set")
def sunion(client: Client, argv: list[bytes]) -> Reply:
    """Add multiple sets."""
    return _combine(client, argv[1:], _union)


@commands.command("sdiff", arity=-2, flags=["readonly"], keys=(1, -1, 1), group="set")
def sdiff(client: Client, argv: list[bytes]) -> Reply:
    """Subtract multiple sets."""
    return _combine(client, argv[1:], _diff)


@commands.command("sinterstore", arity=-3, flags=["write", "denyoom"], keys=(1, -1, 1), group="set")
def sinterstore(client: Client, argv: list[bytes]) -> Reply:
    """Intersect multiple sets and store the resulting set in a key."""
    return _store(client, argv[1], _combine(client, argv[2:], _inter))


@commands.command("sunionstore", arity=-3, flags=["write", "denyoom"], keys=(1, -1, 1), group="set")
def sunionstore(client: Client, argv: list[bytes]) -> Reply:
    """Add multiple sets and store the resulting set in a key."""
    return _store(client, argv[1], _combine(client, argv[2:], _union))


@commands.command("sdiffstore", arity=-3, flags=["write", "denyoom"], keys=(1, -1, 1), group="set")
def sdiffstore(client: Client, argv: list[bytes]) -> Reply:
    """Subtract multiple sets and store the resulting set in a key."""
    return _store(client, argv[1], _combine(client, argv[2:], _diff))


@commands.command("smove", arity=4, flags=["write", "fast"], keys=(1, 2, 1), group="set")
def smove(client: Client, argv: list[bytes]) -> Reply:
    """Move a member from one set to another."""
    db, source, target, member = client.db, argv[1], argv[2], argv[3]
    members = _get_set(db, source)
    destination = _get_set(db, target)
    if members is None or member not in members:
        return 0
    if source == target:
        return 1
    members.discard(member)
    db.touch(source)
    db.drop_if_empty(source)
    if destination is None:
        destination = set()
        db.set(target, destination)
    destination.add(member)
    db.touch(target)
    return 1


@commands.command("sscan", arity=-3, flags=["readonly"], keys=(1, 1, 1), group="set")
def sscan(client: Client, argv: list[bytes]) -> Reply:
    """Incrementally iterate Set elements."""
    members = _get_set(client.db, argv[1]) or set()
    cursor, found = scan_items(client, members, argv[2], argv[3:])
    return [cursor, found]
