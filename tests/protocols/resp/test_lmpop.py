# LMPOP and BLMPOP against a real redis-server, replies compared byte for
# byte in RESP2 and RESP3: pops from the first non-empty list, COUNT, the
# errors in Redis's order (BLMPOP reads its timeout after the rest), wrong
# types; blocked clients served in the order they blocked, a waiter that
# waits on while its key holds another type, nothing blocking inside MULTI,
# and BLMOVE's two null replies (timeout: an array; in MULTI: a bulk string).
# Also COMMAND GETKEYS, GETKEYSANDFLAGS and INFO for both.
from __future__ import annotations

import pytest

from tests.protocols.resp.respclient import RespClient
from tests.protocols.resp.test_zset_blocking import Raw, Scenario, Transcript, both
from tests.protocols.resp.waiting import until_blocked

CALLS: list[tuple[str, ...]] = [
    ("DEL", "l1", "l2", "s", "z"),
    ("LMPOP", "1", "l1", "LEFT"),  # nothing: a null array
    ("RPUSH", "l1", "a", "b", "c", "d", "e"),
    ("LMPOP", "1", "l1", "LEFT"),
    ("LMPOP", "1", "l1", "RIGHT", "COUNT", "2"),
    ("LMPOP", "2", "nothing", "l1", "left", "count", "10"),  # the rest; the list goes
    ("EXISTS", "l1"),
    ("SET", "s", "x"),
    ("RPUSH", "l2", "z"),
    ("LMPOP", "2", "s", "l2", "LEFT"),  # WRONGTYPE: s comes first
    ("LMPOP", "2", "l2", "s", "LEFT"),  # l2 answers before s is looked at
    ("LMPOP", "0", "l1", "LEFT"),
    ("LMPOP", "x", "l1", "LEFT"),
    ("LMPOP", "-1", "l1", "LEFT"),
    ("LMPOP", "3", "l1", "LEFT"),
    ("LMPOP", "1", "l1", "UP"),
    ("LMPOP", "1", "l1", "LEFT", "COUNT", "0"),
    ("LMPOP", "1", "l1", "LEFT", "COUNT", "-1"),
    ("LMPOP", "1", "l1", "LEFT", "COUNT", "x"),
    ("LMPOP", "1", "l1", "LEFT", "COUNT", "1", "COUNT", "2"),
    ("LMPOP", "1", "l1", "LEFT", "COUNT"),
    ("LMPOP", "1", "l1", "LEFT", "junk"),
    ("LMPOP", "1", "l1"),
    ("RPUSH", "l1", "x", "y"),
    ("BLMPOP", "0", "1", "l1", "RIGHT", "COUNT", "5"),  # at once: the list has elements
    ("BLMPOP", "0.01", "1", "nothing", "LEFT"),  # times out: a null array
    ("BLMPOP", "x", "0", "l1", "LEFT"),  # numkeys is read before the timeout
    ("BLMPOP", "x", "1", "l1", "LEFT"),
    ("BLMPOP", "-1", "1", "l1", "LEFT"),
    ("BLMPOP", "0", "1", "l1", "SIDEWAYS"),
    ("BLMPOP", "0", "1", "s", "LEFT"),  # WRONGTYPE at once
    ("BZMPOP", "x", "0", "z", "MIN"),  # the same order for BZMPOP
    ("BLMOVE", "nothing", "d", "LEFT", "LEFT", "0.01"),  # a timeout: the null array
    ("BRPOPLPUSH", "nothing", "d", "0.01"),
    ("MULTI",),
    ("BLMPOP", "0", "1", "nothing", "LEFT"),
    ("LMPOP", "1", "l2", "LEFT"),
    ("BLMOVE", "nothing", "d", "LEFT", "LEFT", "0"),  # here: the null bulk string
    ("EXEC",),  # nothing blocks inside a transaction
    ("COMMAND", "GETKEYS", "LMPOP", "2", "a", "b", "LEFT"),
    ("COMMAND", "GETKEYS", "BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "3"),
    ("COMMAND", "GETKEYS", "LMPOP", "0", "a", "LEFT"),
    ("COMMAND", "GETKEYS", "LMPOP", "3", "a", "LEFT"),
    ("COMMAND", "GETKEYSANDFLAGS", "LMPOP", "2", "a", "b", "LEFT"),
    ("COMMAND", "GETKEYSANDFLAGS", "BLMPOP", "1", "1", "a", "LEFT"),
]


def calls(port: int, protocol: int) -> Transcript:
    client = Raw(port, protocol)
    out = [client.call(*call) for call in CALLS]
    client.close()
    return out


def served_in_order(port: int, protocol: int) -> Transcript:
    first, second, third, writer = (Raw(port, protocol) for _ in range(4))
    out = [writer.call("DEL", "a", "b", "c")]
    first.send("BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "2")
    until_blocked(port, 1)
    second.send("BLMPOP", "0", "1", "b", "RIGHT")
    until_blocked(port, 2)
    third.send("BLMPOP", "5", "1", "c", "LEFT")
    until_blocked(port, 3)
    out.append(writer.call("SET", "c", "not a list"))  # third waits on
    out.append(writer.call("RPUSH", "b", "1", "2", "3"))
    out.append(first.reply())  # the first to block takes two
    out.append(second.reply())  # the second what is left, from the right
    out.append(writer.call("EXISTS", "b"))
    out.append(writer.call("DEL", "c"))
    out.append(writer.call("LPUSH", "c", "late"))
    out.append(third.reply())
    first.send("BLMPOP", "0", "1", "d", "RIGHT")
    until_blocked(port, 1)
    out.append(writer.call("RPUSH", "e", "moved"))
    out.append(writer.call("LMOVE", "e", "d", "LEFT", "LEFT"))  # an LMOVE serves it too
    out.append(first.reply())
    out.append(first.call("SELECT", "1"))
    out.append(first.call("DEL", "m"))
    first.send("BLMPOP", "0", "1", "m", "LEFT")
    until_blocked(port, 1)
    out.append(writer.call("RPUSH", "m", "moved in"))
    out.append(writer.call("MOVE", "m", "1"))  # a MOVE into its database serves it
    out.append(first.reply())
    for client in (first, second, third, writer):
        client.close()
    return out


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("scenario", [calls, served_in_order])
def test_lmpop_and_blmpop_match_redis(
    redis_port: int, netsvc_port: int, scenario: Scenario, protocol: int
) -> None:
    both(redis_port, netsvc_port, scenario, protocol)


@pytest.mark.parametrize("name", ["lmpop", "blmpop"])
def test_command_info_matches_redis(redis_port: int, netsvc_port: int, name: str) -> None:
    # name, arity, flags, first key, last key, step, ACL categories (movable keys: 0 0 0)
    with RespClient(redis_port) as redis, RespClient(netsvc_port) as netsvc:
        expected = redis.call("COMMAND", "INFO", name)[0][:7]
        assert netsvc.call("COMMAND", "INFO", name)[0][:7] == expected
