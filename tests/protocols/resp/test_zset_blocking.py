# BZPOPMIN, BZPOPMAX and BZMPOP against a real redis-server: the same
# scenario (a client blocks, another writes) on both servers, every reply
# compared byte for byte, in RESP2 and RESP3. Also: waiters are served in
# the order they blocked; a waiter for a sorted set waits on while its key
# holds another type; inside MULTI nothing blocks.
from __future__ import annotations

import socket
from collections.abc import Callable

import hiredis
import pytest

from tests.protocols.resp.respclient import encode_command

Transcript = list[bytes]


class Raw:
    """A client that keeps each reply's bytes as the server sent them."""

    def __init__(self, port: int, protocol: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""
        if protocol == 3:
            self.call("HELLO", "3")

    def send(self, *args: bytes | str | int) -> None:
        self.sock.sendall(encode_command(*args))

    def reply(self) -> bytes:
        """The next whole reply's bytes."""
        while True:
            reader = hiredis.Reader()
            reader.feed(self.buffer)
            if reader.gets() is not False:
                # hiredis has no "bytes consumed": find the shortest prefix that parses
                for end in range(1, len(self.buffer) + 1):
                    probe = hiredis.Reader()
                    probe.feed(self.buffer[:end])
                    if probe.gets() is not False:
                        reply, self.buffer = self.buffer[:end], self.buffer[end:]
                        return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buffer += data

    def call(self, *args: bytes | str | int) -> bytes:
        self.send(*args)
        return self.reply()

    def close(self) -> None:
        self.sock.close()


Scenario = Callable[[int, int], Transcript]


def both(redis_port: int, netsvc_port: int, scenario: Scenario, protocol: int) -> None:
    expected = scenario(redis_port, protocol)
    assert scenario(netsvc_port, protocol) == expected


def block_then_write(port: int, protocol: int) -> Transcript:
    waiter, writer = Raw(port, protocol), Raw(port, protocol)
    out = [writer.call("DEL", "z1", "z2", "l")]
    waiter.send("BZPOPMIN", "z1", "z2", "5")
    out.append(writer.call("PING"))  # the waiter is blocked by now (same server loop)
    out.append(writer.call("ZADD", "z2", "1.5", "a", "0.1", "b"))
    out.append(waiter.reply())  # z2, b, 0.1
    waiter.send("BZPOPMAX", "z1", "z2", "5")
    out.append(waiter.reply())  # at once: z2 still holds a
    waiter.send("BZMPOP", "5", "2", "z1", "z2", "MIN", "COUNT", "3")
    out.append(writer.call("ZADD", "z1", "3", "x", "2", "y", "1", "z", "0", "w"))
    out.append(waiter.reply())  # z1, three lowest
    out.append(waiter.call("BZPOPMIN", "nothing", "0.05"))  # times out: null
    out.append(waiter.call("BZMPOP", "0.05", "1", "nothing", "MAX"))
    out.append(writer.call("ZRANGE", "z1", "0", "-1", "WITHSCORES"))
    waiter.close()
    writer.close()
    return out


def waiters_in_order_and_types(port: int, protocol: int) -> Transcript:
    first, second, writer = Raw(port, protocol), Raw(port, protocol), Raw(port, protocol)
    out = [writer.call("DEL", "k")]
    first.send("BZPOPMIN", "k", "5")
    writer.call("PING")
    second.send("BZPOPMIN", "k", "5")
    writer.call("PING")
    out.append(writer.call("RPUSH", "k", "not a zset"))  # both wait on
    out.append(writer.call("DEL", "k"))
    out.append(writer.call("ZADD", "k", "2", "b", "1", "a"))
    out.append(first.reply())  # the first to block gets the lowest
    out.append(second.reply())
    out.append(writer.call("EXISTS", "k"))
    out.append(writer.call("SET", "s", "x"))
    out.append(writer.call("BZPOPMIN", "s", "1"))  # WRONGTYPE at once
    out.append(writer.call("MULTI"))
    out.append(writer.call("BZPOPMIN", "nothing", "0"))
    out.append(writer.call("EXEC"))  # null inside: nothing blocks in a transaction
    out.append(writer.call("BZPOPMIN", "k", "-1"))
    out.append(writer.call("BZPOPMIN", "k", "x"))
    out.append(writer.call("BZMPOP", "0.01", "0", "k", "MIN"))
    out.append(writer.call("BZMPOP", "0.01", "1", "k", "SIDEWAYS"))
    for client in (first, second, writer):
        client.close()
    return out


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("scenario", [block_then_write, waiters_in_order_and_types])
def test_blocking_pops_match_redis(
    redis_port: int, netsvc_port: int, scenario: Scenario, protocol: int
) -> None:
    both(redis_port, netsvc_port, scenario, protocol)


def watch_and_incr(port: int, protocol: int) -> Transcript:
    # WATCH sees each ZREMRANGEBY* write; ZADD GT/LT INCR with no change is nil
    watcher, writer = Raw(port, protocol), Raw(port, protocol)
    out = [writer.call("DEL", "w")]
    out.append(writer.call("ZADD", "w", "1", "a", "2", "b", "3", "c", "4", "d"))
    for remove in (("ZREMRANGEBYSCORE", "w", "1", "1"), ("ZREMRANGEBYRANK", "w", "0", "0")):
        out.append(watcher.call("WATCH", "w"))
        out.append(watcher.call("MULTI"))
        out.append(watcher.call("ZCARD", "w"))
        out.append(writer.call(*remove))
        out.append(watcher.call("EXEC"))  # aborted: null
    out.append(writer.call("ZADD", "w", "LT", "INCR", "0", "c"))  # equal is not less: nil
    out.append(writer.call("ZADD", "w", "GT", "INCR", "0", "c"))
    out.append(writer.call("ZADD", "w", "GT", "INCR", "1", "c"))
    out.append(writer.call("ZADD", "w", "LT", "INCR", "-1", "c"))
    out.append(writer.call("ZRANGE", "w", "0", "-1", "WITHSCORES"))
    watcher.close()
    writer.close()
    return out


@pytest.mark.parametrize("protocol", [2, 3])
def test_watch_and_conditional_incr_match_redis(
    redis_port: int, netsvc_port: int, protocol: int
) -> None:
    both(redis_port, netsvc_port, watch_and_incr, protocol)
