# netsvc's built-in Redis commands, one module per group; BUILTINS is every
# command of every group, which RespApp() starts with. Here too: what ACL rules
# need to know of the built-ins that their registrations do not say (Redis 7's
# command table as redis-server 7.0 describes it): which keys each reads or
# writes, the subcommands of OBJECT, XINFO, XGROUP, SCRIPT and FUNCTION, and
# the extra categories of KEYS.
from __future__ import annotations

import dataclasses
from typing import Any

from .._app import KEY_READ, KEY_WRITE, CommandSpec, KeyFlags, Subcommand
from . import (
    acl,
    connection,
    hashes,
    keys,
    lists,
    pubsub,
    scripting,
    server,
    sets,
    streams,
    strings,
    transactions,
    zsets,
)

__all__ = ["BUILTINS"]

GROUPS = (
    connection,
    server,
    acl,
    strings,
    keys,
    lists,
    hashes,
    sets,
    zsets,
    streams,
    transactions,
    pubsub,
    scripting,
)

R, W, RW, NONE = KEY_READ, KEY_WRITE, KEY_READ | KEY_WRITE, 0


def _set_key_flags(argv: list[bytes]) -> tuple[int, ...]:
    """SET reads its key only to answer GET (Redis's setGetKeys)."""
    return (RW,) if any(arg.lower() == b"get" for arg in argv[3:]) else (W,)


# What each built-in does with its keys, where it is not what its flags say
# (read-only: reads; else reads and writes): from Redis's key specifications,
# ACCESS reads, INSERT/UPDATE/DELETE write, and neither (EXISTS, TYPE, the
# lengths) needs only that a pattern matches. One entry per key, the last
# repeating: ZUNIONSTORE writes its destination and reads its sources.
KEY_FLAGS: dict[str, KeyFlags] = {
    "set": _set_key_flags,
    "setnx": (W,), "setex": (W,), "psetex": (W,), "mset": (W,), "msetnx": (W,),
    "append": (W,), "setrange": (W,), "strlen": (NONE,),
    "del": (W,), "unlink": (W,), "exists": (NONE,), "touch": (NONE,), "type": (NONE,),
    "rename": (RW, W), "renamenx": (RW, W), "copy": (R, W),
    "expire": (W,), "pexpire": (W,), "expireat": (W,), "pexpireat": (W,), "persist": (W,),
    "lpush": (W,), "rpush": (W,), "lpushx": (W,), "rpushx": (W,), "llen": (NONE,),
    "lset": (W,), "lrem": (W,), "ltrim": (W,), "linsert": (W,),
    "lmove": (RW, W), "rpoplpush": (RW, W), "blmove": (RW, W), "brpoplpush": (RW, W),
    "hset": (W,), "hmset": (W,), "hsetnx": (W,), "hdel": (W,),
    "hexists": (NONE,), "hlen": (NONE,), "hstrlen": (NONE,),
    "sadd": (W,), "srem": (W,), "sismember": (NONE,), "scard": (NONE,),
    "sinterstore": (W, R), "sunionstore": (W, R), "sdiffstore": (W, R), "smove": (RW, W),
    "zadd": (W,), "zrem": (W,), "zcard": (NONE,), "zrangestore": (W, R),
    "zremrangebyrank": (W,), "zremrangebyscore": (W,), "zremrangebylex": (W,),
    "zunionstore": (W, R), "zinterstore": (W, R), "zdiffstore": (W, R),
    "xadd": (W,), "xtrim": (W,), "xlen": (NONE,), "xdel": (W,), "xsetid": (W,),
    "xreadgroup": (R,), "xack": (W,), "xclaim": (W,), "xautoclaim": (W,),
    "watch": (NONE,),
}  # fmt: skip

# Categories Redis gives a built-in beyond those of its flags and group
EXTRA_CATEGORIES = {"keys": {"dangerous"}}

_HELP = Subcommand("help", 2, ("loading", "stale"))
_ON_KEY = (2, 2, 1)

# The subcommands of containers registered elsewhere (unless they declare
# their own); a container's own category is @slow only, as in Redis.
SUBCOMMANDS: dict[str, tuple[Subcommand, ...]] = {
    "object": (
        _HELP,
        *(
            Subcommand(name, 3, ("readonly",), keys=_ON_KEY, key_flags=(NONE,))
            for name in ("encoding", "freq", "idletime", "refcount")
        ),
    ),
    "xinfo": (
        _HELP,
        Subcommand("consumers", 4, ("readonly",), keys=_ON_KEY, key_flags=(R,)),
        Subcommand("groups", 3, ("readonly",), keys=_ON_KEY, key_flags=(R,)),
        Subcommand("stream", -3, ("readonly",), keys=_ON_KEY, key_flags=(R,)),
    ),
    "xgroup": (
        _HELP,
        Subcommand("create", -5, ("write", "denyoom"), keys=_ON_KEY, key_flags=(W,)),
        Subcommand("createconsumer", 5, ("write", "denyoom"), keys=_ON_KEY, key_flags=(W,)),
        Subcommand("delconsumer", 5, ("write",), keys=_ON_KEY, key_flags=(W,)),
        Subcommand("destroy", 4, ("write",), keys=_ON_KEY, key_flags=(W,)),
        Subcommand("setid", -5, ("write",), keys=_ON_KEY, key_flags=(W,)),
    ),
    "function": (
        _HELP,
        Subcommand("delete", 3, ("write", "noscript")),
        Subcommand("dump", 2, ("noscript",)),
        Subcommand("flush", -2, ("write", "noscript")),
        Subcommand("kill", 2, ("noscript", "allow_busy")),
        Subcommand("list", -2, ("noscript",)),
        Subcommand("load", -3, ("write", "denyoom", "noscript")),
        Subcommand("restore", -3, ("write", "denyoom", "noscript")),
        Subcommand("stats", 2, ("noscript", "allow_busy")),
    ),
    "script": (
        _HELP,
        Subcommand("debug", 3, ("noscript",)),
        Subcommand("exists", -3, ("noscript",)),
        Subcommand("flush", -2, ("noscript",)),
        Subcommand("kill", 2, ("noscript", "allow_busy")),
        Subcommand("load", 3, ("noscript", "stale")),
    ),
}


def _with_acl_facts(spec: CommandSpec) -> CommandSpec:
    changes: dict[str, Any] = {}
    if spec.name in KEY_FLAGS:
        changes["key_flags"] = KEY_FLAGS[spec.name]
    if spec.name in EXTRA_CATEGORIES:
        changes["categories"] = spec.categories | EXTRA_CATEGORIES[spec.name]
    if spec.name in SUBCOMMANDS and not spec.subcommands:
        changes["subcommands"] = {
            sub.name.encode(): sub.of(spec.name, spec.group) for sub in SUBCOMMANDS[spec.name]
        }
        changes["categories"] = frozenset({"slow"})
    return dataclasses.replace(spec, **changes) if changes else spec


BUILTINS: list[CommandSpec] = [
    _with_acl_facts(spec) for module in GROUPS for spec in module.commands.commands.values()
]
