# A small line-oriented client over a trio stream, for tests of line plugins.
from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from netsvc.testing import RunningServer


class LineClient:
    opened: list[LineClient] = []  # closed after each test by a fixture

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""
        LineClient.opened.append(self)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def line(self, timeout: float = 5.0) -> bytes:
        """The next line without its newline; b"" if the server closed first."""
        with trio.fail_after(timeout):
            while b"\n" not in self.buffer:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                if not data:
                    rest, self.buffer = self.buffer, b""
                    return rest
                self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    async def ask(self, command: str) -> bytes:
        await self.send(command.encode() + b"\n")
        return await self.line()

    async def closed(self, timeout: float = 5.0) -> bool:
        """Wait for the server to close the connection (True) or time out."""
        with trio.move_on_after(timeout):
            while True:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return True
                if not data:
                    return True
        return False

    async def aclose(self) -> None:
        await self.stream.aclose()


async def greeted(running: RunningServer, greeting: bytes = b"HELLO") -> LineClient:
    """A client of the probe plugin (tests/netsvc/probe.py) that has read its greeting."""
    client = LineClient(await running.connect())
    assert await client.line() == greeting
    return client
