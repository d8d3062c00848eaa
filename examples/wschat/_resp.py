# A small Redis client for trio apps, on hiredis (the parser the RESP plugin
# uses): enough for a chat, commands and pub/sub. Real apps on trio can use
# it as a starting point; redis-py speaks asyncio, not trio.
from __future__ import annotations

import urllib.parse
from types import TracebackType
from typing import Any

import hiredis
import trio

__all__ = ["RedisConnection", "RedisError"]


class RedisError(Exception):
    """The server answered a command with an error."""


class RedisConnection:
    """One connection to the service a `redis://[:password@]host[:port][/db]` URL names."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.reader = hiredis.Reader()

    @classmethod
    async def open(cls, url: str) -> RedisConnection:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "redis" or not parts.hostname:
            raise ValueError(f"{url!r}: expected redis://host[:port][/db]")
        connection = cls(await trio.open_tcp_stream(parts.hostname, parts.port or 6379))
        if parts.password:
            user = urllib.parse.unquote(parts.username or "default")
            await connection.command("AUTH", user, urllib.parse.unquote(parts.password))
        if parts.path.strip("/"):
            await connection.command("SELECT", parts.path.strip("/"))
        return connection

    async def send(self, *args: str | bytes) -> None:
        """Send one command without waiting for its reply."""
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode() if isinstance(arg, str) else arg
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        await self.stream.send_all(b"".join(out))

    async def reply(self) -> Any:
        """The next reply (or pub/sub message); RedisError for an error reply."""
        while (reply := self.reader.gets()) is False:
            data = await self.stream.receive_some(65536)
            if not data:
                raise ConnectionError("the Redis server closed the connection")
            self.reader.feed(data)
        if isinstance(reply, hiredis.ReplyError):
            raise RedisError(str(reply))
        return reply

    async def command(self, *args: str | bytes) -> Any:
        await self.send(*args)
        return await self.reply()

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> RedisConnection:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
