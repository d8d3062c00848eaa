# OBJECT REFCOUNT, IDLETIME, FREQ and HELP, the maxmemory-policy and LFU
# settings they depend on, and MOVE, against a real redis-server: replies
# compared byte for byte in RESP2 and RESP3. Then access times: which
# commands count as an access (GET, TOUCH) and which only look (TYPE,
# EXISTS, TTL, OBJECT, KEYS, SCAN), on both servers; and CLIENT NO-TOUCH
# (Redis 7.2, so netsvc only).
from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.protocols.resp.respclient import RespClient
from tests.protocols.resp.test_zset_blocking import Raw, Scenario, Transcript, both

CALLS: list[tuple[str, ...]] = [
    ("FLUSHALL",),
    ("SET", "str", "hello"),
    ("OBJECT", "REFCOUNT", "str"),
    ("SET", "n", "100"),
    ("OBJECT", "REFCOUNT", "n"),  # one of Redis's shared integers
    ("SET", "big", "10000"),
    ("OBJECT", "REFCOUNT", "big"),
    ("SET", "neg", "-1"),
    ("OBJECT", "REFCOUNT", "neg"),
    ("APPEND", "app", "12"),
    ("OBJECT", "REFCOUNT", "app"),
    ("RPUSH", "l", "a"),
    ("OBJECT", "REFCOUNT", "l"),
    ("OBJECT", "REFCOUNT", "nope"),
    ("OBJECT", "IDLETIME", "str"),
    ("OBJECT", "IDLETIME", "nope"),
    ("OBJECT", "FREQ", "str"),  # no LFU policy: an error
    ("OBJECT", "FREQ", "nope"),  # the key is looked up first
    ("OBJECT", "HELP"),
    ("object", "help"),
    ("OBJECT", "HELP", "x"),
    ("OBJECT", "REFCOUNT"),
    ("OBJECT", "IDLETIME", "a", "b"),
    ("OBJECT", "FREQ"),
    ("OBJECT", "NOPE", "str"),
    ("OBJECT", "ENCODING", "n"),
    ("CONFIG", "SET", "lfu-decay-time", "0"),  # no decay: FREQ is exact below
    ("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"),
    ("CONFIG", "GET", "maxmemory-policy"),
    ("SET", "f", "v"),
    ("OBJECT", "FREQ", "f"),  # a new key's counter
    ("GET", "f"),
    ("OBJECT", "FREQ", "f"),  # one access: always counted at first
    ("OBJECT", "FREQ", "f"),  # looking is no access
    ("OBJECT", "IDLETIME", "f"),  # LFU: an error
    ("OBJECT", "REFCOUNT", "n"),
    ("CONFIG", "SET", "maxmemory", "1000000000"),
    ("SET", "n2", "100"),
    ("OBJECT", "REFCOUNT", "n2"),  # maxmemory with LFU: integers are not shared
    ("CONFIG", "SET", "maxmemory", "0"),
    ("CONFIG", "SET", "maxmemory-policy", "foo"),
    ("CONFIG", "SET", "maxmemory-policy", "VOLATILE-LRU"),
    ("CONFIG", "GET", "maxmemory-policy"),
    ("OBJECT", "FREQ", "f"),
    ("CONFIG", "SET", "lfu-log-factor", "x"),
    ("CONFIG", "SET", "lfu-log-factor", "-1"),
    ("CONFIG", "SET", "lfu-log-factor", "11"),
    ("CONFIG", "GET", "lfu-log-factor"),
    ("CONFIG", "SET", "lfu-log-factor", "10"),
    ("CONFIG", "SET", "lfu-decay-time", "1"),
    ("CONFIG", "GET", "lfu-decay-time"),
    ("CONFIG", "SET", "maxmemory-policy", "noeviction"),
    # MOVE
    ("MOVE", "str", "x"),
    ("MOVE", "str", "99999999999"),
    ("MOVE", "str", "16"),
    ("MOVE", "str", "-1"),
    ("MOVE", "str", "0"),
    ("MOVE", "nope", "1"),
    ("EXPIRE", "str", "100"),
    ("MOVE", "str", "1"),
    ("EXISTS", "str"),
    ("SELECT", "1"),
    ("GET", "str"),
    ("TTL", "str"),  # the expiry moved with it
    ("SET", "l", "taken"),
    ("SELECT", "0"),
    ("MOVE", "l", "1"),  # the target has that key: nothing moves
    ("TYPE", "l"),
    ("MOVE", "str"),
    ("COMMAND", "GETKEYSANDFLAGS", "MOVE", "k", "1"),
    ("COMMAND", "GETKEYSANDFLAGS", "OBJECT", "FREQ", "k"),
    ("COMMAND", "GETKEYS", "OBJECT", "REFCOUNT", "k"),
    ("COMMAND", "GETKEYS", "OBJECT", "NOPE", "k"),
    ("FLUSHALL",),
]


def calls(port: int, protocol: int) -> Transcript:
    client = Raw(port, protocol)
    try:
        return [client.call(*call) for call in CALLS]
    finally:  # the servers are shared with other tests: back to the defaults
        for name, value in DEFAULTS:
            client.call("CONFIG", "SET", name, value)
        client.close()


DEFAULTS = [
    ("maxmemory", "0"),
    ("maxmemory-policy", "noeviction"),
    ("lfu-log-factor", "10"),
    ("lfu-decay-time", "1"),
]


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("scenario", [calls])
def test_object_and_move_match_redis(
    redis_port: int, netsvc_port: int, scenario: Scenario, protocol: int
) -> None:
    both(redis_port, netsvc_port, scenario, protocol)


def test_help_lines_are_status_replies(netsvc_port: int) -> None:
    client = Raw(netsvc_port, 2)
    reply = client.call("OBJECT", "HELP")
    assert reply.startswith(b"*15\r\n+OBJECT <subcommand>")
    assert b"+REFCOUNT <key>\r\n" in reply
    client.close()


# -- access times ------------------------------------------------------------

IDLE = 2.2  # seconds the keys are left alone: Redis's LRU clock counts whole seconds

# Each command runs on a key of its own once the keys have been idle: True if
# it counts as an access (the key's idle time starts again), as in Redis.
ACCESSES: dict[str, tuple[Callable[[str], tuple[str, ...]], bool]] = {
    "get": (lambda key: ("GET", key), True),
    "touch": (lambda key: ("TOUCH", key), True),
    "strlen": (lambda key: ("STRLEN", key), True),
    "expire": (lambda key: ("EXPIRE", key, "1000"), True),
    "set": (lambda key: ("SET", key, "new"), True),
    "type": (lambda key: ("TYPE", key), False),
    "exists": (lambda key: ("EXISTS", key), False),
    "ttl": (lambda key: ("TTL", key), False),
    "pttl": (lambda key: ("PTTL", key), False),
    "object": (lambda key: ("OBJECT", "ENCODING", key), False),
    "keys": (lambda key: ("KEYS", key), False),
    "scan": (lambda key: ("SCAN", "0", "MATCH", key, "TYPE", "string"), False),
}


def accessed(port: int) -> dict[str, bool]:
    """Which commands reset a key's idle time on this server."""
    with RespClient(port) as client:
        for name in ACCESSES:
            client.call("SET", f"idle:{name}", "value")
        time.sleep(IDLE)
        for name, (command, _) in ACCESSES.items():
            client.call(*command(f"idle:{name}"))
        idle = {name: client.call("OBJECT", "IDLETIME", f"idle:{name}") for name in ACCESSES}
        client.call("DEL", *(f"idle:{name}" for name in ACCESSES))
    assert all(0 <= seconds <= IDLE + 1 for seconds in idle.values()), idle
    return {name: seconds < 2 for name, seconds in idle.items()}


def test_what_counts_as_an_access_matches_redis(redis_port: int, netsvc_port: int) -> None:
    expected = {name: resets for name, (_, resets) in ACCESSES.items()}
    assert accessed(redis_port) == expected
    assert accessed(netsvc_port) == expected


def test_no_touch_client_leaves_idle_times_alone_except_with_touch(netsvc_port: int) -> None:
    # CLIENT NO-TOUCH is Redis 7.2's (7.0 has no such subcommand): netsvc only
    with RespClient(netsvc_port) as quiet, RespClient(netsvc_port) as other:
        assert quiet.call("CLIENT", "NO-TOUCH", "ON") == b"OK"
        assert b"flags=T" in quiet.call("CLIENT", "INFO")
        quiet.call("MSET", "nt:get", "a", "nt:touch", "b", "nt:lpush", "c", "nt:other", "d")
        quiet.call("DEL", "nt:list")
        quiet.call("RPUSH", "nt:list", "x")
        quiet.call("EVAL", "return 1", "0")  # a script of its own runs without touching too
        time.sleep(IDLE)
        assert quiet.call("GET", "nt:get") == b"a"
        assert quiet.call("RPUSH", "nt:list", "y") == 2
        assert quiet.call("EVAL", "return redis.call('GET', KEYS[1])", "1", "nt:lpush") == b"c"
        assert quiet.call("TOUCH", "nt:touch") == 1  # TOUCH does touch
        assert other.call("GET", "nt:other") == b"d"  # another client's access counts
        idle = {
            key: quiet.call("OBJECT", "IDLETIME", key)
            for key in ("nt:get", "nt:list", "nt:lpush", "nt:touch", "nt:other")
        }
        assert idle["nt:get"] >= 2 and idle["nt:list"] >= 2 and idle["nt:lpush"] >= 2, idle
        assert idle["nt:touch"] <= 1 and idle["nt:other"] <= 1, idle
        assert quiet.call("CLIENT", "NO-TOUCH", "OFF") == b"OK"
        assert quiet.call("GET", "nt:get") == b"a"
        assert quiet.call("OBJECT", "IDLETIME", "nt:get") <= 1
        quiet.call("DEL", "nt:get", "nt:touch", "nt:lpush", "nt:other", "nt:list")


def test_reset_turns_no_touch_and_no_evict_off(netsvc_port: int) -> None:
    # as Redis 7.2's RESET (clearClientConnectionState); 7.0 kept NO-EVICT on
    with RespClient(netsvc_port) as client:
        assert client.call("CLIENT", "NO-TOUCH", "on") == b"OK"
        assert client.call("CLIENT", "NO-EVICT", "on") == b"OK"
        assert b" flags=eT " in client.call("CLIENT", "INFO")
        assert client.call("RESET") == b"RESET"
        assert b" flags=N " in client.call("CLIENT", "INFO")
