# COMMAND GETKEYS and COMMAND GETKEYSANDFLAGS against a real redis-server,
# replies compared byte for byte in RESP2 and RESP3: for a call of each
# family (fixed keys, movable keys, subcommands, SET with and without GET)
# the keys and Redis's key-spec flags (RO/RW/OW/RM, access, update, insert,
# delete), and Redis's errors in Redis's order; COMMAND INFO's key
# specifications, byte for byte and for every command, and as redis-py's
# COMMAND parsing reads them.
from __future__ import annotations

from typing import Any

import pytest
import redis

from protocols.resp import KEY_INSERT, KEY_OW, KEY_READ, KEY_WRITE
from protocols.resp._app import key_flag_names
from tests.protocols.resp.respclient import RespClient
from tests.protocols.resp.test_zset_blocking import Raw, Transcript, both

# What each call is, as GETKEYS sees it (its arguments need not be valid otherwise)
CALLS: list[tuple[str, ...]] = [
    ("GET", "k"),
    ("SET", "k", "v"),
    ("SET", "k", "v", "EX", "10", "GET"),
    ("set", "k", "v", "get"),
    ("SETNX", "k", "v"),
    ("MSET", "a", "1", "b", "2"),
    ("MSETNX", "a", "1", "b", "2"),
    ("GETDEL", "k"),
    ("GETEX", "k", "PERSIST"),
    ("APPEND", "k", "v"),
    ("INCR", "k"),
    ("STRLEN", "k"),
    ("DEL", "a", "b", "c"),
    ("UNLINK", "a"),
    ("EXISTS", "a", "b"),
    ("TYPE", "a"),
    ("TOUCH", "a", "b"),
    ("RENAME", "a", "b"),
    ("RENAMENX", "a", "b"),
    ("COPY", "a", "b"),
    ("MOVE", "a", "1"),
    ("EXPIRE", "a", "10"),
    ("TTL", "a"),
    ("PERSIST", "a"),
    ("OBJECT", "ENCODING", "a"),
    ("OBJECT", "IDLETIME", "a"),
    ("LPUSH", "l", "x"),
    ("LPOP", "l"),
    ("LRANGE", "l", "0", "-1"),
    ("LSET", "l", "0", "x"),
    ("LREM", "l", "0", "x"),
    ("LINSERT", "l", "BEFORE", "a", "b"),
    ("LMOVE", "a", "b", "LEFT", "RIGHT"),
    ("BLMOVE", "a", "b", "LEFT", "RIGHT", "0"),
    ("RPOPLPUSH", "a", "b"),
    ("BLPOP", "a", "b", "0"),
    ("LMPOP", "2", "a", "b", "LEFT"),
    ("BLMPOP", "0", "1", "a", "RIGHT"),
    ("HSET", "h", "f", "v"),
    ("HSETNX", "h", "f", "v"),
    ("HDEL", "h", "f"),
    ("HGETALL", "h"),
    ("HINCRBY", "h", "f", "1"),
    ("SADD", "s", "m"),
    ("SREM", "s", "m"),
    ("SMOVE", "a", "b", "m"),
    ("SINTERSTORE", "d", "a", "b"),
    ("SUNIONSTORE", "d", "a", "b"),
    ("SPOP", "s"),
    ("ZADD", "z", "1", "m"),
    ("ZINCRBY", "z", "1", "m"),
    ("ZRANGE", "z", "0", "-1"),
    ("ZRANGESTORE", "d", "z", "0", "-1"),
    ("ZUNIONSTORE", "d", "2", "a", "b"),
    ("ZINTER", "2", "a", "b"),
    ("ZDIFFSTORE", "d", "1", "a"),
    ("ZMPOP", "2", "a", "b", "MIN"),
    ("BZMPOP", "0", "1", "a", "MAX"),
    ("BZPOPMIN", "a", "b", "0"),
    ("ZREMRANGEBYRANK", "z", "0", "1"),
    ("XADD", "s", "*", "f", "v"),
    ("XRANGE", "s", "-", "+"),
    ("XDEL", "s", "1-1"),
    ("XTRIM", "s", "MAXLEN", "1"),
    ("XACK", "s", "g", "1-1"),
    ("XCLAIM", "s", "g", "c", "0", "1-1"),
    ("XAUTOCLAIM", "s", "g", "c", "0", "0"),
    ("XGROUP", "CREATE", "s", "g", "$"),
    ("XGROUP", "DESTROY", "s", "g"),
    ("XGROUP", "DELCONSUMER", "s", "g", "c"),
    ("XINFO", "STREAM", "s"),
    ("XREAD", "STREAMS", "a", "b", "0", "0"),
    ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", ">"),
    ("EVAL", "return 1", "2", "a", "b", "x"),
    ("EVAL_RO", "return 1", "1", "a"),
    ("EVAL", "return 1", "0"),  # no keys, and that is fine
    ("FCALL", "f", "1", "a"),
    ("WATCH", "a", "b"),
    # errors
    ("NOSUCHCOMMAND", "a"),
    ("PING",),
    ("ECHO", "a", "b"),  # "no key arguments" comes before the argument count
    ("GET", "a", "b"),
    ("LMPOP", "0", "a", "LEFT"),
    ("ZUNIONSTORE", "d", "5", "a"),
    ("OBJECT",),
    ("OBJECT", "NOPE", "a"),
    ("OBJECT", "HELP"),
    ("XGROUP", "CREATE", "s"),
    ("XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0"),
    ("XREADGROUP", "GROUP", "streams", "c", "STREAMS", "s", "0"),  # a group named "streams"
    # an odd count after STREAMS: Redis takes the smaller half; none is an error
    ("XREAD", "STREAMS", "a", "b", "c"),
    ("XREAD", "COUNT", "1", "STREAMS", "a", "b", "c", "d", "e"),
    ("XREAD", "COUNT", "streams", "STREAMS", "s1", "0"),  # the first "streams" is the keyword
    ("XREAD", "streams", "STREAMS", "a", "b", "c"),
    ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", "c"),
    ("XREAD", "STREAMS", "a"),
    ("XREAD", "COUNT", "1", "STREAMS"),
    ("EVAL", "return 1", "2", "a", "b", "x"),
    ("FCALL", "f", "0", "x"),
    ("WAIT", "0", "0"),
]


def keys_and_flags(port: int, protocol: int) -> Transcript:
    client = Raw(port, protocol)
    out = []
    for call in CALLS:
        out.append(client.call("COMMAND", "GETKEYSANDFLAGS", *call))
        out.append(client.call("COMMAND", "GETKEYS", *call))
    out.append(client.call("COMMAND", "GETKEYSANDFLAGS", "GET"))
    client.close()
    return out


@pytest.mark.parametrize("protocol", [2, 3])
def test_getkeys_and_flags_match_redis(redis_port: int, netsvc_port: int, protocol: int) -> None:
    both(redis_port, netsvc_port, keys_and_flags, protocol)


@pytest.mark.parametrize("name", ["move", "wait", "swapdb", "object"])
def test_command_info_matches_redis(redis_port: int, netsvc_port: int, name: str) -> None:
    # name, arity, flags, first key, last key, step, ACL categories
    with RespClient(redis_port) as redis, RespClient(netsvc_port) as netsvc:
        expected = redis.call("COMMAND", "INFO", name)[0][:7]
        assert netsvc.call("COMMAND", "INFO", name)[0][:7] == expected


def test_a_users_key_flags_without_an_intent_get_one() -> None:
    # an app's command that says only what it does (KEY_READ, KEY_WRITE) is
    # shown RO if it only reads, else RW, as Redis's own commands always are
    assert key_flag_names(KEY_READ) == ["RO", "access"]
    assert key_flag_names(KEY_WRITE) == ["RW", "update"]
    assert key_flag_names(KEY_READ | KEY_WRITE) == ["RW", "access", "update"]
    assert key_flag_names(KEY_OW | KEY_INSERT) == ["OW", "insert"]


# COMMAND INFO's key specifications (its 9th element) and subcommands' (in
# the 10th), derived from what each command says of its keys. Whole entries
# byte for byte where Redis has no free-text notes and no tips for them:
# index + range (GET, fixed keys, MSET-like steps, "all but the last"),
# index + keynum (ZUNIONSTORE, BLMPOP), keyword + range (XREAD, XREADGROUP),
# several specs per command (RENAME, SDIFFSTORE). Subcommands' (OBJECT ENCODING,
# XGROUP CREATE) are compared as parsed, the order of Redis's subcommands and
# their tips aside.
WHOLE_ENTRIES = [
    "get", "zunionstore", "blmpop", "zintercard", "xread", "xreadgroup", "rename", "sdiffstore",
    "lmove", "blpop", "zrangestore", "hset",
]  # fmt: skip


@pytest.mark.parametrize("protocol", [2, 3])
def test_command_info_key_specs_match_redis_byte_for_byte(
    redis_port: int, netsvc_port: int, protocol: int
) -> None:
    def entries(port: int, protocol: int) -> Transcript:
        client = Raw(port, protocol)
        out = [client.call("COMMAND", "INFO", name) for name in WHOLE_ENTRIES]
        client.close()
        return out

    both(redis_port, netsvc_port, entries, protocol)


def key_specs(entry: list[Any]) -> list[dict[bytes, Any]]:
    """An entry's key specifications (RESP2: flat arrays), less Redis's notes."""
    specs = [dict(zip(spec[::2], spec[1::2], strict=True)) for spec in entry[8]]
    for spec in specs:
        spec.pop(b"notes", None)
    return specs


def test_every_command_has_redis_s_key_specs(redis_port: int, netsvc_port: int) -> None:
    # every command netsvc has that redis-server 7.0 has too, and every
    # subcommand, SET's variable_flags and EVAL's keynum at 0 included; only
    # Redis's free-text notes are not given
    with RespClient(redis_port) as reference, RespClient(netsvc_port) as netsvc:
        names = netsvc.call("COMMAND", "LIST")
        ours = netsvc.call("COMMAND", "INFO", *names)
        theirs = reference.call("COMMAND", "INFO", *names)
    compared = 0
    for mine, real in zip(ours, theirs, strict=True):
        if real is None:  # WAITAOF: Redis 7.2's
            continue
        assert key_specs(mine) == key_specs(real), mine[0]
        real_subs = {sub[0]: key_specs(sub) for sub in real[9]}
        for sub in mine[9]:
            if sub[0] in real_subs:
                assert key_specs(sub) == real_subs[sub[0]], sub[0]
        compared += bool(real[8])
    assert compared > 120  # the commands with keys
    set_spec = key_specs(next(entry for entry in ours if entry[0] == b"set"))
    assert set_spec[0][b"flags"] == [b"RW", b"access", b"update", b"variable_flags"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_reads_the_same_command_table(
    redis_port: int, netsvc_port: int, protocol: int
) -> None:
    # redis-py's COMMAND parsing (what its cluster client routes by) gets
    # the same description of these commands from both servers
    sample = ["get", "set", "mset", "eval", "xread", "zunionstore", "blmpop", "rename"]

    def table(port: int) -> dict[str, Any]:
        client = redis.Redis(port=port, protocol=protocol)
        try:
            everything = client.command()
        finally:
            client.close()
        return {name: _without_notes_and_tips(everything[name]) for name in sample}

    assert table(netsvc_port) == table(redis_port)


def _without_notes_and_tips(entry: dict[str, Any]) -> dict[str, Any]:
    entry = dict(entry)
    entry.pop("tips", None)  # netsvc gives none (MSET's request_policy...: cluster routing)
    specs = entry.get("key_specifications") or []
    maps = [
        spec if isinstance(spec, dict) else dict(zip(spec[::2], spec[1::2], strict=True))
        for spec in specs
    ]
    entry["key_specifications"] = [
        {key: value for key, value in spec.items() if key not in ("notes", b"notes")}
        for spec in maps  # RESP2: flat arrays, as redis-py leaves them
    ]
    if entry.get("name") in ("eval",):  # netsvc's EVAL flags differ (test_acl_vs_redis)
        entry.pop("flags", None)
    return entry
