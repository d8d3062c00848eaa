# netsvc's built-in Redis commands, one module per group; BUILTINS is every
# command of every group, which RespApp() starts with. Here too: what ACL rules
# need to know of the built-ins that their registrations do not say (Redis 7's
# command table as redis-server 7.0 describes it): what each does with its
# keys (Redis's key-spec flags: COMMAND GETKEYSANDFLAGS, ACL's %R~ and %W~),
# the subcommands of OBJECT, XINFO, XGROUP, SCRIPT and FUNCTION, and the
# extra categories of KEYS.
from __future__ import annotations

import dataclasses
from typing import Any, Final

from .._app import (
    KEY_ACCESS,
    KEY_DELETE,
    KEY_INSERT,
    KEY_OW,
    KEY_RM,
    KEY_RO,
    KEY_RW,
    KEY_UPDATE,
    CommandSpec,
    KeyFlags,
    Subcommand,
    VariableKeyFlags,
)
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

GROUPS: Final = (
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

RO, RW, OW, RM = KEY_RO, KEY_RW, KEY_OW, KEY_RM
ACCESS, UPDATE, INSERT, DELETE = KEY_ACCESS, KEY_UPDATE, KEY_INSERT, KEY_DELETE


def _set_key_flags(argv: list[bytes]) -> tuple[int, ...]:
    """SET reads its key only to answer GET (Redis's setGetKeys)."""
    if any(arg.lower() == b"get" for arg in argv[3:]):
        return (RW | ACCESS | UPDATE,)
    return (OW | UPDATE,)


SET_KEY_FLAGS: Final = VariableKeyFlags(declared=(RW | ACCESS | UPDATE,), of=_set_key_flags)


# What each built-in does with its keys, as Redis 7's key specifications say
# (redis-server 7.0's COMMAND INFO): ACCESS reads, INSERT/UPDATE/DELETE write,
# and neither (EXISTS, TYPE, the lengths) needs only that an ACL key pattern
# matches. One entry per key, the last repeating: ZUNIONSTORE writes its
# destination and reads its sources.
KEY_FLAGS: Final[dict[str, KeyFlags]] = {
    "set": SET_KEY_FLAGS,
    "append": (RW | INSERT,), "blmove": (RW | ACCESS | DELETE, RW | INSERT),
    "blmpop": (RW | ACCESS | DELETE,), "blpop": (RW | ACCESS | DELETE,),
    "brpop": (RW | ACCESS | DELETE,), "brpoplpush": (RW | ACCESS | DELETE, RW | INSERT),
    "bzmpop": (RW | ACCESS | DELETE,), "bzpopmax": (RW | ACCESS | DELETE,),
    "bzpopmin": (RW | ACCESS | DELETE,), "copy": (RO | ACCESS, OW | UPDATE),
    "decr": (RW | ACCESS | UPDATE,), "decrby": (RW | ACCESS | UPDATE,), "del": (RM | DELETE,),
    "eval": (RW | ACCESS | UPDATE,), "eval_ro": (RO | ACCESS,),
    "evalsha": (RW | ACCESS | UPDATE,), "evalsha_ro": (RO | ACCESS,), "exists": (RO,),
    "expire": (RW | UPDATE,), "expireat": (RW | UPDATE,), "expiretime": (RO | ACCESS,),
    "fcall": (RW | ACCESS | UPDATE,), "fcall_ro": (RO | ACCESS,), "get": (RO | ACCESS,),
    "getdel": (RW | ACCESS | DELETE,), "getex": (RW | ACCESS | UPDATE,),
    "getrange": (RO | ACCESS,), "getset": (RW | ACCESS | UPDATE,), "hdel": (RW | DELETE,),
    "hexists": (RO,), "hget": (RO | ACCESS,), "hgetall": (RO | ACCESS,),
    "hincrby": (RW | ACCESS | UPDATE,), "hincrbyfloat": (RW | ACCESS | UPDATE,),
    "hkeys": (RO | ACCESS,), "hlen": (RO,), "hmget": (RO | ACCESS,), "hmset": (RW | UPDATE,),
    "hscan": (RO | ACCESS,), "hset": (RW | UPDATE,), "hsetnx": (RW | INSERT,), "hstrlen": (RO,),
    "hvals": (RO | ACCESS,), "incr": (RW | ACCESS | UPDATE,), "incrby": (RW | ACCESS | UPDATE,),
    "incrbyfloat": (RW | ACCESS | UPDATE,), "lindex": (RO | ACCESS,), "linsert": (RW | INSERT,),
    "llen": (RO,), "lmove": (RW | ACCESS | DELETE, RW | INSERT), "lmpop": (RW | ACCESS | DELETE,),
    "lpop": (RW | ACCESS | DELETE,), "lpos": (RO | ACCESS,), "lpush": (RW | INSERT,),
    "lpushx": (RW | INSERT,), "lrange": (RO | ACCESS,), "lrem": (RW | DELETE,),
    "lset": (RW | UPDATE,), "ltrim": (RW | DELETE,), "mget": (RO | ACCESS,),
    "move": (RW | ACCESS | UPDATE,), "mset": (OW | UPDATE,), "msetnx": (OW | INSERT,),
    "persist": (RW | UPDATE,), "pexpire": (RW | UPDATE,), "pexpireat": (RW | UPDATE,),
    "pexpiretime": (RO | ACCESS,), "psetex": (OW | UPDATE,), "pttl": (RO | ACCESS,),
    "rename": (RW | ACCESS | DELETE, OW | UPDATE),
    "renamenx": (RW | ACCESS | DELETE, OW | INSERT), "rpop": (RW | ACCESS | DELETE,),
    "rpoplpush": (RW | ACCESS | DELETE, RW | INSERT), "rpush": (RW | INSERT,),
    "rpushx": (RW | INSERT,), "sadd": (RW | INSERT,), "scard": (RO,), "sdiff": (RO | ACCESS,),
    "sdiffstore": (OW | UPDATE, RO | ACCESS), "setex": (OW | UPDATE,), "setnx": (OW | INSERT,),
    "setrange": (RW | UPDATE,), "sinter": (RO | ACCESS,),
    "sinterstore": (RW | UPDATE, RO | ACCESS), "sismember": (RO,), "smembers": (RO | ACCESS,),
    "smismember": (RO | ACCESS,), "smove": (RW | ACCESS | DELETE, RW | INSERT),
    "spop": (RW | ACCESS | DELETE,), "srandmember": (RO | ACCESS,), "srem": (RW | DELETE,),
    "sscan": (RO | ACCESS,), "strlen": (RO,), "sunion": (RO | ACCESS,),
    "sunionstore": (OW | UPDATE, RO | ACCESS), "touch": (RO,), "ttl": (RO | ACCESS,),
    "type": (RO,), "unlink": (RM | DELETE,), "watch": (RO,), "xack": (RW | UPDATE,),
    "xadd": (RW | UPDATE,), "xautoclaim": (RW | DELETE,), "xclaim": (RW | UPDATE,),
    "xdel": (RW | DELETE,), "xlen": (RO,), "xpending": (RO | ACCESS,), "xrange": (RO | ACCESS,),
    "xread": (RO | ACCESS,), "xreadgroup": (RO | ACCESS,), "xrevrange": (RO | ACCESS,),
    "xsetid": (RW | UPDATE,), "xtrim": (RW | DELETE,), "zadd": (RW | UPDATE,), "zcard": (RO,),
    "zcount": (RO | ACCESS,), "zdiff": (RO | ACCESS,), "zdiffstore": (OW | UPDATE, RO | ACCESS),
    "zincrby": (RW | ACCESS | UPDATE,), "zinter": (RO | ACCESS,), "zintercard": (RO | ACCESS,),
    "zinterstore": (OW | UPDATE, RO | ACCESS), "zlexcount": (RO | ACCESS,),
    "zmpop": (RW | ACCESS | DELETE,), "zmscore": (RO | ACCESS,),
    "zpopmax": (RW | ACCESS | DELETE,), "zpopmin": (RW | ACCESS | DELETE,),
    "zrandmember": (RO | ACCESS,), "zrange": (RO | ACCESS,), "zrangebylex": (RO | ACCESS,),
    "zrangebyscore": (RO | ACCESS,), "zrangestore": (OW | UPDATE, RO | ACCESS),
    "zrank": (RO | ACCESS,), "zrem": (RW | DELETE,), "zremrangebylex": (RW | DELETE,),
    "zremrangebyrank": (RW | DELETE,), "zremrangebyscore": (RW | DELETE,),
    "zrevrange": (RO | ACCESS,), "zrevrangebylex": (RO | ACCESS,),
    "zrevrangebyscore": (RO | ACCESS,), "zrevrank": (RO | ACCESS,), "zscan": (RO | ACCESS,),
    "zscore": (RO | ACCESS,), "zunion": (RO | ACCESS,), "zunionstore": (OW | UPDATE, RO | ACCESS),
}  # fmt: skip

# Categories Redis gives a built-in beyond those of its flags and group
EXTRA_CATEGORIES: Final = {"keys": {"dangerous"}}

_HELP: Final = Subcommand("help", 2, ("loading", "stale"))
R, W = RO | ACCESS, RW | UPDATE
_ON_KEY: Final = (2, 2, 1)

# The subcommands of containers registered elsewhere (unless they declare
# their own); a container's own category is @slow only, as in Redis.
SUBCOMMANDS: Final[dict[str, tuple[Subcommand, ...]]] = {
    "object": (
        _HELP,
        *(
            Subcommand(name, 3, ("readonly",), keys=_ON_KEY, key_flags=(RO,))
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
        Subcommand("create", -5, ("write", "denyoom"), keys=_ON_KEY, key_flags=(RW | INSERT,)),
        Subcommand(
            "createconsumer", 5, ("write", "denyoom"), keys=_ON_KEY, key_flags=(RW | INSERT,)
        ),
        Subcommand("delconsumer", 5, ("write",), keys=_ON_KEY, key_flags=(RW | DELETE,)),
        Subcommand("destroy", 4, ("write",), keys=_ON_KEY, key_flags=(RW | DELETE,)),
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


def _with_redis_facts(spec: CommandSpec) -> CommandSpec:
    changes: dict[str, Any] = {"redis_docs": True}
    if spec.name in KEY_FLAGS:
        changes["key_flags"] = KEY_FLAGS[spec.name]
    if spec.name in EXTRA_CATEGORIES:
        changes["categories"] = spec.categories | EXTRA_CATEGORIES[spec.name]
    if spec.name in SUBCOMMANDS and not spec.subcommands:
        changes["subcommands"] = {
            sub.name.encode(): sub.of(spec.name, spec.group) for sub in SUBCOMMANDS[spec.name]
        }
        changes["categories"] = frozenset({"slow"})
    return dataclasses.replace(spec, **changes)


BUILTINS: Final[list[CommandSpec]] = [
    _with_redis_facts(spec) for module in GROUPS for spec in module.commands.commands.values()
]
