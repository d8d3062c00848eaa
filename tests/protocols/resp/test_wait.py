# WAIT against a real redis-server, replies compared byte for byte in RESP2
# and RESP3: a master without replicas answers 0 at once when it is asked for
# no replica, and blocks until the timeout (then 0) when it is asked for
# more; nothing blocks inside MULTI; scripts may not call it; Redis's errors.
# WAITAOF is Redis 7.2's (redis-server 7.0 lacks it): netsvc alone, checked
# against Redis 7.2's documented replies (no append-only file here).
from __future__ import annotations

import time

import pytest

from tests.protocols.resp.respclient import RespClient, error
from tests.protocols.resp.test_zset_blocking import Raw, Scenario, Transcript, both
from tests.protocols.resp.waiting import until_blocked

CALLS: list[tuple[str, ...]] = [
    ("WAIT", "0", "0"),
    ("WAIT", "0", "100"),
    ("WAIT", "-1", "100"),
    ("WAIT", "x", "0"),
    ("WAIT", "1", "x"),
    ("WAIT", "1", "-1"),
    ("WAIT", "0", "1.5"),
    ("WAIT", "1"),
    ("WAIT", "1", "2", "3"),
    ("MULTI",),
    ("WAIT", "5", "0"),
    ("EXEC",),  # inside a transaction WAIT answers at once
    ("EVAL", "return redis.pcall('WAIT', '1', '0')", "0"),
    ("SET", "k", "v"),
    ("WAIT", "1", "50"),  # blocks for the timeout, then 0 replicas
]


def calls(port: int, protocol: int) -> Transcript:
    client = Raw(port, protocol)
    out = [client.call(*call) for call in CALLS]
    client.close()
    return out


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("scenario", [calls])
def test_wait_matches_redis(
    redis_port: int, netsvc_port: int, scenario: Scenario, protocol: int
) -> None:
    both(redis_port, netsvc_port, scenario, protocol)


@pytest.mark.parametrize("server", ["redis", "netsvc"])
def test_wait_for_a_replica_blocks_until_the_timeout(
    request: pytest.FixtureRequest, server: str
) -> None:
    port = request.getfixturevalue(f"{server}_port")
    with RespClient(port, timeout=20) as client:
        started = time.monotonic()
        assert client.call("WAIT", "1", "400") == 0
        assert time.monotonic() - started >= 0.35


def test_wait_forever_ends_with_client_unblock_or_the_client(netsvc_port: int) -> None:
    with RespClient(netsvc_port, timeout=20) as waiter, RespClient(netsvc_port) as admin:
        waiter_id = waiter.call("CLIENT", "ID")
        waiter.send_raw(b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$1\r\n0\r\n")
        until_blocked(netsvc_port, 1)
        assert admin.call("CLIENT", "UNBLOCK", waiter_id) == 1
        assert waiter.reply() == 0
        waiter.send_raw(b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$1\r\n0\r\n")
        until_blocked(netsvc_port, 1)
        assert admin.call("CLIENT", "UNBLOCK", waiter_id, "ERROR") == 1
        assert waiter.reply() == error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        assert waiter.call("PING") == b"PONG"
    with RespClient(netsvc_port) as leaving:
        leaving.send_raw(b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$1\r\n0\r\n")
        until_blocked(netsvc_port, 1)
    until_blocked(netsvc_port, 0)  # its client hung up: it waits no more


# WAITAOF numlocal numreplicas timeout, as Redis 7.2 answers it without an
# append-only file (appendonly no) and without replicas
WAITAOF: list[tuple[tuple[str, ...], object]] = [
    (("WAITAOF", "0", "0", "0"), [0, 0]),
    (("WAITAOF", "0", "0", "100"), [0, 0]),
    (("WAITAOF", "1", "0", "0"), error("ERR WAITAOF cannot be used when numlocal is set but "
                                       "appendonly is disabled.")),
    (("WAITAOF", "2", "0", "0"), error("ERR value is out of range, value must between 0 and 1")),
    (("WAITAOF", "-1", "0", "0"), error("ERR value is out of range, value must between 0 and 1")),
    (("WAITAOF", "x", "0", "0"), error("ERR value is not an integer or out of range")),
    (("WAITAOF", "0", "-1", "0"), error("ERR value is out of range, must be positive")),
    (("WAITAOF", "0", "x", "0"), error("ERR value is out of range, must be positive")),
    (("WAITAOF", "0", "0", "x"), error("ERR timeout is not an integer or out of range")),
    (("WAITAOF", "0", "0", "-5"), error("ERR timeout is negative")),
    (("WAITAOF", "1", "0", "-5"), error("ERR timeout is negative")),  # arguments come first
    (("WAITAOF", "0", "0"), error("ERR wrong number of arguments for 'waitaof' command")),
]  # fmt: skip


def test_waitaof_answers_as_redis_7_2_without_aof_or_replicas(netsvc_port: int) -> None:
    with RespClient(netsvc_port, timeout=20) as client:
        for call, expected in WAITAOF:
            assert client.call(*call) == expected, call
        started = time.monotonic()
        assert client.call("WAITAOF", "0", "1", "300") == [0, 0]  # a replica: until the timeout
        assert time.monotonic() - started >= 0.25
        assert client.call("MULTI") == b"OK"
        assert client.call("WAITAOF", "0", "3", "0") == b"QUEUED"
        assert client.call("EXEC") == [[0, 0]]
