# Blocking commands (BLPOP) under the core's deadlines and shutdown, in
# process over real sockets: a blocked client that pipelines more commands is
# neither a slow request nor idle, and at shutdown what it sent is answered.
from __future__ import annotations

import trio

from netsvc import ConnectionLimits
from netsvc.testing import open_connection, serve
from tests.protocols.resp.respclient import encode_command

BLPOP_FOREVER = encode_command("BLPOP", "q", "0")
PING = encode_command("PING")


async def read_until_eof(stream: trio.abc.Stream, seconds: float) -> bytes:
    received = b""
    with trio.move_on_after(seconds):
        while data := await stream.receive_some():
            received += data
        return received + b"<EOF>"
    return received


async def test_a_blocked_client_that_pipelines_is_not_a_slow_request() -> None:
    limits = ConnectionLimits(idle_timeout=None, request_timeout=0.5)
    async with serve("resp", limits=limits) as running:
        blocked = await running.connect()
        await blocked.send_all(BLPOP_FOREVER)
        await trio.sleep(0.2)
        await blocked.send_all(PING)  # read ahead while blocked, answered after
        await trio.sleep(1.0)  # twice the request timeout
        pusher = await running.connect()
        await pusher.send_all(encode_command("LPUSH", "q", "x"))
        assert await pusher.receive_some() == b":1\r\n"
        with trio.fail_after(2):
            received = b""
            while not received.endswith(b"+PONG\r\n"):
                received += await blocked.receive_some()
        assert received == b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n+PONG\r\n"


async def test_a_blocked_client_is_not_idle() -> None:
    limits = ConnectionLimits(idle_timeout=0.3, request_timeout=5)
    async with serve("resp", limits=limits) as running:
        blocked = await running.connect()
        await blocked.send_all(encode_command("BLPOP", "q", "1"))
        with trio.fail_after(3):
            assert await blocked.receive_some() == b"*-1\r\n"  # its own timeout, not idle's


async def test_at_shutdown_a_blocked_client_gets_its_answers_and_a_clean_end() -> None:
    async with serve("resp", graceful_timeout=5) as running:
        blocked = await open_connection(running.url)
        async with blocked:
            await blocked.send_all(BLPOP_FOREVER)
            await trio.sleep(0.2)
            await blocked.send_all(PING)
            await trio.sleep(0.2)
            start = trio.current_time()
            running.server.shutdown()
            received = await read_until_eof(blocked, 3)
            assert received == b"*-1\r\n+PONG\r\n<EOF>"
            assert trio.current_time() - start < 1.5  # not the grace period
