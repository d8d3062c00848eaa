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

from tests.protocols.resp.respclient import RespClient, encode_command
from tests.protocols.resp.test_zset_blocking import Raw, Scenario, Transcript, both
from tests.protocols.resp.waiting import until_blocked

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
    ("OBJECT", "IDLETIME", "nope"),  # str's: see test_a_fresh_keys_idletime
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


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_fresh_keys_idletime(redis_port: int, netsvc_port: int, protocol: int) -> None:
    # seconds on a 1-second clock: a second may tick between SET and OBJECT,
    # on either server, so the transcripts above leave it out
    for port in (redis_port, netsvc_port):
        client = Raw(port, protocol)
        try:
            client.call("SET", "fresh", "v")
            assert client.call("OBJECT", "IDLETIME", "fresh") in (b":0\r\n", b":1\r\n")
            client.call("DEL", "fresh")
        finally:
            client.close()


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


# -- blocking commands and access times ----------------------------------------
# With an LFU policy, lfu-log-factor 0 and lfu-decay-time 0, OBJECT FREQ
# counts every access exactly (a new key starts at 5): how many times a
# command looked at a key, with no sleeping.

EXACT_LFU = [("maxmemory-policy", "allkeys-lfu"), ("lfu-log-factor", "0"), ("lfu-decay-time", "0")]
BLOCKING_KEYS = ("bk:list", "bk:src", "bk:dst", "bk:wrong", "bk:stream", "bk:zset")


def served_later(port: int, waiter: Raw, command: tuple[str, ...], push: tuple[str, ...]) -> bytes:
    """Send `command`, which blocks; run `push` from another client: its reply."""
    waiter.send(*command)
    until_blocked(port, 1)
    with RespClient(port) as pusher:
        pusher.call(*push)
    return waiter.reply()


def blocking_accesses(port: int, protocol: int) -> Transcript:
    admin, waiter = Raw(port, protocol), Raw(port, protocol)
    out = [admin.call("CONFIG", "SET", name, value) for name, value in EXACT_LFU]
    try:
        out.append(admin.call("DEL", *BLOCKING_KEYS))
        out.append(
            served_later(port, waiter, ("BLPOP", "bk:list", "0"), ("RPUSH", "bk:list", *"abc"))
        )
        out.append(admin.call("OBJECT", "FREQ", "bk:list"))  # RPUSH created it; BLPOP: one access
        out.append(waiter.call("BLPOP", "bk:list", "0"))  # served at once
        out.append(admin.call("OBJECT", "FREQ", "bk:list"))
        out.append(admin.call("RPUSH", "bk:dst", "d"))
        push = ("RPUSH", "bk:src", "s1", "s2")
        out.append(
            served_later(port, waiter, ("BLMOVE", "bk:src", "bk:dst", "RIGHT", "LEFT", "0"), push)
        )
        out.append(admin.call("OBJECT", "FREQ", "bk:src"))
        out.append(
            admin.call("OBJECT", "FREQ", "bk:dst")
        )  # not looked at while the source was empty
        out.append(admin.call("SET", "bk:wrong", "string"))
        out.append(waiter.call("LMOVE", "nothing", "bk:wrong", "LEFT", "LEFT"))  # nil, no WRONGTYPE
        out.append(waiter.call("RPOPLPUSH", "nothing", "bk:wrong"))
        out.append(admin.call("XADD", "bk:stream", "1-1", "f", "v"))
        command = ("XREAD", "BLOCK", "0", "STREAMS", "bk:stream", "$")
        out.append(served_later(port, waiter, command, ("XADD", "bk:stream", "2-1", "f", "v")))
        out.append(admin.call("OBJECT", "FREQ", "bk:stream"))
        out.append(waiter.call("XREAD", "BLOCK", "0", "STREAMS", "bk:stream", "0"))
        out.append(admin.call("OBJECT", "FREQ", "bk:stream"))
    finally:  # the servers are shared with other tests: back to the defaults
        out.append(admin.call("DEL", *BLOCKING_KEYS))
        for name, value in DEFAULTS:
            admin.call("CONFIG", "SET", name, value)
        admin.close()
        waiter.close()
    return out


@pytest.mark.parametrize("protocol", [2, 3])
def test_blocking_commands_access_their_keys_as_redis_does(
    redis_port: int, netsvc_port: int, protocol: int
) -> None:
    # A served command looks at its keys as it would have at once: the
    # server's look for whom to serve is no access (Redis 7.2's
    # LOOKUP_NOEFFECTS; 7.0 counts it too for sorted sets, so none here).
    both(redis_port, netsvc_port, blocking_accesses, protocol)


def test_no_touch_client_blocking_commands_leave_access_counts_alone(netsvc_port: int) -> None:
    # Redis 7.2: a CLIENT NO-TOUCH client's commands touch nothing (TOUCH
    # aside), a blocked one served later included. 7.0 has no NO-TOUCH.
    port = netsvc_port
    with RespClient(port) as admin, RespClient(port) as quiet:
        for name, value in EXACT_LFU:
            admin.call("CONFIG", "SET", name, value)
        try:
            assert quiet.call("CLIENT", "NO-TOUCH", "ON") == b"OK"
            admin.call("DEL", *BLOCKING_KEYS)

            def freq(key: str) -> int:
                value: int = admin.call("OBJECT", "FREQ", key)
                return value

            def later(command: tuple[str, ...], push: tuple[str, ...]) -> object:
                quiet.send_raw(encode_command(*command))
                until_blocked(port, 1)
                admin.call(*push)  # the pusher's own access counts
                return quiet.reply()

            assert later(("BLPOP", "bk:list", "0"), ("RPUSH", "bk:list", *"abcdef")) == [
                b"bk:list",
                b"a",
            ]
            assert quiet.call("BRPOP", "bk:list", "0") == [b"bk:list", b"f"]
            assert quiet.call("BLMPOP", "0", "1", "bk:list", "LEFT") == [b"bk:list", [b"b"]]
            quiet.call("MULTI")
            quiet.call("BLPOP", "bk:list", "0")
            assert quiet.call("EXEC") == [[b"bk:list", b"c"]]
            assert freq("bk:list") == 5  # as RPUSH created it

            admin.call("RPUSH", "bk:dst", "d")
            move = ("BLMOVE", "bk:src", "bk:dst", "RIGHT", "LEFT", "0")
            assert later(move, ("RPUSH", "bk:src", "s1", "s2", "s3")) == b"s3"
            assert quiet.call(*move) == b"s2"  # at once this time
            assert (freq("bk:src"), freq("bk:dst")) == (5, 5)

            assert later(("BZPOPMIN", "bk:zset", "0"), ("ZADD", "bk:zset", *"1a2b3c4d")) == [
                b"bk:zset",
                b"a",
                b"1",
            ]
            assert quiet.call("BZPOPMAX", "bk:zset", "0") == [b"bk:zset", b"d", b"4"]
            assert quiet.call("BZMPOP", "0", "1", "bk:zset", "MIN") == [
                b"bk:zset",
                [[b"b", b"2"]],
            ]
            assert freq("bk:zset") == 5

            admin.call("XADD", "bk:stream", "1-1", "f", "v")
            command = ("XREAD", "BLOCK", "0", "STREAMS", "bk:stream", "$")
            assert later(command, ("XADD", "bk:stream", "2-1", "f", "v"))  # XADD: 6
            assert quiet.call("XREAD", "BLOCK", "0", "STREAMS", "bk:stream", "0")
            script = "return redis.call('XREAD', 'STREAMS', KEYS[1], '0')"
            assert quiet.call("EVAL", script, "1", "bk:stream")  # its script's calls too
            assert freq("bk:stream") == 6

            # the same with accesses counted: the test sees them
            assert quiet.call("CLIENT", "NO-TOUCH", "OFF") == b"OK"
            assert quiet.call("BLPOP", "bk:list", "0") == [b"bk:list", b"d"]
            admin.call("DEL", "bk:src")
            assert later(("BLPOP", "bk:src", "0"), ("RPUSH", "bk:src", "x", "y"))
            assert quiet.call("EVAL", script, "1", "bk:stream")
            # XREAD looks at each stream twice, as Redis does (its ids, then its entries)
            assert (freq("bk:list"), freq("bk:src"), freq("bk:stream")) == (6, 6, 8)
        finally:
            admin.call("DEL", *BLOCKING_KEYS)
            for name, value in DEFAULTS:
                admin.call("CONFIG", "SET", name, value)


def test_no_touch_client_blocking_commands_leave_idle_times_alone(netsvc_port: int) -> None:
    # The same with the default policy: OBJECT IDLETIME keeps growing
    port = netsvc_port
    with RespClient(port) as admin, RespClient(port) as quiet, RespClient(port) as loud:
        admin.call("DEL", *BLOCKING_KEYS, "bk:loud")
        admin.call("RPUSH", "bk:list", *"abc")
        admin.call("RPUSH", "bk:loud", *"abc")
        admin.call("RPUSH", "bk:dst", "d")
        admin.call("ZADD", "bk:zset", "1", "a", "2", "b")
        admin.call("XADD", "bk:stream", "1-1", "f", "v")
        assert quiet.call("CLIENT", "NO-TOUCH", "ON") == b"OK"
        time.sleep(IDLE)
        assert quiet.call("BLPOP", "bk:list", "0") == [b"bk:list", b"a"]
        assert quiet.call("BZPOPMIN", "bk:zset", "0") == [b"bk:zset", b"a", b"1"]
        assert quiet.call("XREAD", "BLOCK", "0", "STREAMS", "bk:stream", "0")
        quiet.send_raw(encode_command("BLMOVE", "bk:src", "bk:dst", "LEFT", "LEFT", "0"))
        until_blocked(port, 1)
        admin.call("RPUSH", "bk:src", "s1", "s2")
        assert quiet.reply() == b"s1"
        assert loud.call("BLPOP", "bk:loud", "0") == [b"bk:loud", b"a"]  # touches
        idle = {key: admin.call("OBJECT", "IDLETIME", key) for key in ("bk:list", "bk:zset")}
        idle |= {key: admin.call("OBJECT", "IDLETIME", key) for key in ("bk:stream", "bk:dst")}
        assert all(seconds >= 2 for seconds in idle.values()), idle
        assert admin.call("OBJECT", "IDLETIME", "bk:loud") <= 1
        admin.call("DEL", *BLOCKING_KEYS, "bk:loud")
