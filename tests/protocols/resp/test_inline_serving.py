# RESP on the core's fast path (Connection.serve_inline): its synchronous
# commands are answered from the core's task, and a read with a command that
# waits is handed to the connection's task, replies in order either way.
# (The Redis behaviour itself is compared with redis-server elsewhere: this
# shows that the suite runs it on the inline path.)
from __future__ import annotations

import trio

from netsvc.testing import serve
from tests.protocols.resp.respclient import encode_command


async def test_commands_are_served_inline_and_waiting_ones_by_the_task() -> None:
    async with serve("resp") as running:
        inline = running.server._inline
        assert inline is not None
        stream = await running.connect()
        before = inline.served
        pipeline = [("SET", "k", "v"), ("GET", "k"), ("BLPOP", "nothing", "0.1"), ("ECHO", "after")]
        await stream.send_all(b"".join(encode_command(*command) for command in pipeline))
        expected = b"+OK\r\n$1\r\nv\r\n*-1\r\n$5\r\nafter\r\n"
        received = b""
        with trio.fail_after(5):
            while len(received) < len(expected):
                received += await stream.receive_some(65536)
        assert received == expected
        for n in range(20):
            await stream.send_all(encode_command("INCR", "n"))
            assert await stream.receive_some(100) == b":%d\r\n" % (n + 1)
        assert inline.served - before >= 21  # the first read, then each INCR
