# The built-in echo plugin: bytes come back unchanged, whatever their framing.
from __future__ import annotations

from typing import Any

import trio

from netsvc.testing import serve


async def receive_exactly(stream: trio.abc.Stream, size: int) -> bytes:
    data = b""
    with trio.fail_after(5):
        while len(data) < size:
            chunk = await stream.receive_some()
            assert chunk, "server closed early"
            data += chunk
    return data


async def test_echoes_binary_data_in_any_framing(netsvc_server: Any) -> None:
    running = await netsvc_server("echo")
    stream = await running.connect()
    payload = bytes(range(256)) * 1000
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.send_all, payload)
        assert await receive_exactly(stream, len(payload)) == payload
    assert running.server.runtime.counters.requests >= 1


async def test_greeting_setting() -> None:
    async with serve("echo", settings={"greeting": "welcome"}) as running:
        stream = await running.connect()
        assert await receive_exactly(stream, 9) == b"welcome\r\n"
        await stream.send_all(b"x")
        assert await receive_exactly(stream, 1) == b"x"


async def test_client_half_close_ends_the_session() -> None:
    async with serve("echo") as running:
        stream = await running.connect()
        assert isinstance(stream, trio.SocketStream)
        await stream.send_all(b"last words")
        await stream.send_eof()
        assert await receive_exactly(stream, 10) == b"last words"
        with trio.fail_after(5):
            assert await stream.receive_some() == b""
