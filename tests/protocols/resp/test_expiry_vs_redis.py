# Keys whose time has come but that no sweep has removed yet, against a real
# redis-server 7.0, replies compared byte for byte: SET over one expires it
# first (a new key: counted in expired_keys, its LFU counter starts afresh);
# KEYS and WATCH only look (Redis's keyIsExpired): the key stays, uncounted,
# until something removes it, and EXEC judges a watched key as Redis does.
# Each scenario is one pipeline, so that no active expiry runs in between:
# a script busy for 20 ms lets the short expiry times pass.
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.protocols.resp.respclient import encode_command
from tests.protocols.resp.test_zset_blocking import Raw

# busy until TIME has advanced 20 ms: the keys set PX 5 before it have expired
BUSY = (
    "EVAL",
    "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] "
    "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= 20000",
    "0",
)
EXPIRED_KEYS = ("INFO", "stats")


@pytest.fixture(scope="module")
def ports(netsvc_port: int, redis_port: int) -> Iterator[tuple[int, int]]:
    yield netsvc_port, redis_port


def pipeline(port: int, commands: list[tuple[str, ...]]) -> list[bytes]:
    """Each reply's bytes, the commands sent in one write; INFO stats' reply
    reduced to its expired_keys line."""
    client = Raw(port, 2)
    try:
        client.call("SELECT", "5")
        client.call("FLUSHDB")
        client.call("CONFIG", "RESETSTAT")
        client.sock.sendall(b"".join(encode_command(*command) for command in commands))
        replies = [client.reply() for _ in commands]
    finally:
        client.close()
    return [
        next(line for line in reply.split(b"\r\n") if line.startswith(b"expired_keys:"))
        if command == EXPIRED_KEYS
        else reply
        for command, reply in zip(commands, replies, strict=True)
    ]


def compare(ports: tuple[int, int], commands: list[tuple[str, ...]]) -> list[bytes]:
    netsvc_port, redis_port = ports
    theirs = pipeline(redis_port, commands)
    assert pipeline(netsvc_port, commands) == theirs
    return theirs


def test_set_over_an_expired_key_makes_a_new_key(ports: tuple[int, int]) -> None:
    lfu = [("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")]
    lfu += [("CONFIG", "SET", "lfu-log-factor", "0"), ("CONFIG", "SET", "lfu-decay-time", "0")]
    after = [("CONFIG", "SET", "maxmemory-policy", "noeviction")]
    after += [("CONFIG", "SET", "lfu-log-factor", "10"), ("CONFIG", "SET", "lfu-decay-time", "1")]
    reads = [("GET", "k"), ("GET", "live")] * 3  # each counts one (log factor 0): 5 -> 8
    checks = [
        ("SET", "k", "w"),  # the expired key goes first: a new key, counter 5
        ("OBJECT", "FREQ", "k"),
        ("TTL", "k"),
        ("SET", "live", "w"),  # a live key's counter goes on: 8 + 1
        ("OBJECT", "FREQ", "live"),
        EXPIRED_KEYS,
    ]
    setup = [*lfu, ("SET", "k", "v", "PX", "5"), ("SET", "live", "v"), *reads, BUSY]
    replies = compare(ports, [*setup, *checks, *after])
    assert replies[len(setup) : len(setup) + len(checks)] == [
        b"+OK\r\n",
        b":5\r\n",
        b":-1\r\n",
        b"+OK\r\n",
        b":9\r\n",
        b"expired_keys:1",
    ]


def test_keys_leaves_an_expired_key_where_it_is(ports: tuple[int, int]) -> None:
    replies = compare(
        ports,
        [
            ("SET", "gone", "v", "PX", "5"),
            ("SET", "kept", "v"),
            BUSY,
            ("KEYS", "*"),
            ("DBSIZE",),
            EXPIRED_KEYS,
            ("EXISTS", "gone"),  # this look removes it
            ("DBSIZE",),
            EXPIRED_KEYS,
        ],
    )
    assert replies[3:] == [
        b"*1\r\n$4\r\nkept\r\n",
        b":2\r\n",
        b"expired_keys:0",
        b":0\r\n",
        b":1\r\n",
        b"expired_keys:1",
    ]


WATCH_SCENARIOS = {
    # watched once expired: WATCH leaves it; untouched, EXEC runs
    "expired, untouched": [("WATCH", "w"), ("DBSIZE",), EXPIRED_KEYS],
    # its removal by a read is no change
    "expired, then removed": [("WATCH", "w"), ("GET", "w"), ("DBSIZE",), EXPIRED_KEYS],
    # a SET over it is one (its removal first, then the new key)
    "expired, then set": [("WATCH", "w"), ("SET", "w", "new"), EXPIRED_KEYS],
    "expired, removed, then set": [("WATCH", "w"), ("GET", "w"), ("SET", "w", "new")],
}


@pytest.mark.parametrize("name", sorted(WATCH_SCENARIOS))
def test_watch_of_an_expired_key_as_redis(ports: tuple[int, int], name: str) -> None:
    compare(
        ports,
        [
            ("SET", "w", "v", "PX", "5"),
            BUSY,
            *WATCH_SCENARIOS[name],
            ("MULTI",),
            ("SET", "x", "1"),
            ("EXEC",),
            ("DBSIZE",),
            EXPIRED_KEYS,
        ],
    )


def test_a_watched_key_that_expires_before_exec_aborts_it_and_stays(
    ports: tuple[int, int],
) -> None:
    replies = compare(
        ports,
        [
            ("SET", "w", "v", "PX", "15"),
            ("WATCH", "w"),
            BUSY,
            ("MULTI",),
            ("SET", "x", "1"),
            ("EXEC",),
            ("DBSIZE",),
            EXPIRED_KEYS,
        ],
    )
    assert replies[-3:] == [b"*-1\r\n", b":1\r\n", b"expired_keys:0"]
