# CLIENT UNBLOCK against a real redis-server, replies compared byte for byte
# in RESP2 and RESP3: a client blocked in any blocking command (list, sorted
# set and stream reads, WAIT) gets its timeout reply (TIMEOUT, the default)
# or the UNBLOCKED error (ERROR) and carries on; clients that are not
# blocked and unknown ids answer 0; Redis's errors. Also CLIENT NO-EVICT.
from __future__ import annotations

import pytest

from tests.protocols.resp.respclient import RespClient, error
from tests.protocols.resp.test_zset_blocking import Raw, Scenario, Transcript, both
from tests.protocols.resp.waiting import until_blocked

BLOCKING: list[tuple[str, ...]] = [
    ("BLPOP", "l", "0"),
    ("BRPOP", "l", "l2", "0"),
    ("BLMOVE", "l", "d", "LEFT", "RIGHT", "0"),
    ("BRPOPLPUSH", "l", "d", "0"),
    ("BLMPOP", "0", "1", "l", "LEFT"),
    ("BZPOPMIN", "z", "0"),
    ("BZMPOP", "0", "1", "z", "MAX", "COUNT", "2"),
    ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
    ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"),
    ("WAIT", "1", "0"),
]


def unblocked(port: int, protocol: int) -> Transcript:
    waiter, admin = Raw(port, protocol), Raw(port, protocol)
    waiter_id = client_id(waiter)
    out = [admin.call("DEL", "l", "l2", "d", "z", "s")]
    out.append(admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"))
    for command in BLOCKING:
        for reason in ((), ("TIMEOUT",), ("ERROR",), ("error",)):
            waiter.send(*command)
            until_blocked(port, 1)
            out.append(admin.call("CLIENT", "UNBLOCK", waiter_id, *reason))
            out.append(waiter.reply())
    out.append(waiter.call("PING"))  # carries on
    out.append(admin.call("CLIENT", "UNBLOCK", waiter_id))  # not blocked: 0
    out.append(admin.call("CLIENT", "UNBLOCK", "987654321"))
    out.append(admin.call("CLIENT", "UNBLOCK", "x"))
    out.append(admin.call("CLIENT", "UNBLOCK", "x", "NEVER"))  # the reason is read first
    out.append(admin.call("CLIENT", "UNBLOCK", waiter_id, "TIMEOUT", "x"))
    out.append(admin.call("CLIENT", "UNBLOCK"))
    out.append(admin.call("DEL", "s"))
    waiter.close()
    admin.close()
    return out


def client_id(raw: Raw) -> str:
    """The connection's id (CLIENT ID's integer reply, in either protocol)."""
    reply = raw.call("CLIENT", "ID")
    assert reply.startswith(b":"), reply
    return reply[1:-2].decode()


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("scenario", [unblocked])
def test_client_unblock_matches_redis(
    redis_port: int, netsvc_port: int, scenario: Scenario, protocol: int
) -> None:
    both(redis_port, netsvc_port, scenario, protocol)


def test_unblocked_client_leaves_the_key_to_the_next_waiter(netsvc_port: int) -> None:
    with (
        RespClient(netsvc_port) as first,
        RespClient(netsvc_port) as second,
        RespClient(netsvc_port) as writer,
    ):
        writer.call("DEL", "ub:l")
        first_id = first.call("CLIENT", "ID")
        first.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$4\r\nub:l\r\n$1\r\n0\r\n")
        until_blocked(netsvc_port, 1)
        second.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$4\r\nub:l\r\n$1\r\n0\r\n")
        until_blocked(netsvc_port, 2)
        assert writer.call("CLIENT", "UNBLOCK", first_id) == 1
        assert first.reply() is None
        assert writer.call("RPUSH", "ub:l", "x") == 1
        assert second.reply() == [b"ub:l", b"x"]


def test_no_evict(redis_port: int, netsvc_port: int) -> None:
    for port in (redis_port, netsvc_port):
        with RespClient(port) as client:
            assert client.call("CLIENT", "NO-EVICT", "on") == b"OK"
            assert b" flags=e " in client.call("CLIENT", "INFO")
            assert client.call("CLIENT", "NO-EVICT", "maybe") == error("ERR syntax error")
            assert client.call("CLIENT", "NO-EVICT") == error(
                "ERR wrong number of arguments for 'client|no-evict' command"
            )
            assert client.call("CLIENT", "NO-EVICT", "OFF") == b"OK"
            assert b" flags=N " in client.call("CLIENT", "INFO")
