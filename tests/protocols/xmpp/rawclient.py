# A raw XMPP client for tests over trio streams: writes bytes as given,
# reads the server's output one stanza per line, logs in with SASL PLAIN
# (servers started with insecure_any_password, or the password given) and
# binds resource "r" (or the one given); `settle()` pings and returns what
# came before the answer (everything the server had queued for the client
# by the time it handled the ping).
from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator

import trio

from netsvc import ConnectionLimits
from netsvc.testing import RunningServer, serve

HEADER = (
    b"<stream:stream to='localhost' xmlns='jabber:client'"
    b" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
# a server for these clients: anyone logs in with any password, reads unpaced
SETTINGS = {"insecure_any_password": True, "max_bytes_per_second": 0}
BIND = b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind>"


class Client:
    """A raw client that reads the server's output line by line."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""

    async def say(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def line(self) -> bytes:
        while b"\n" not in self.buffer:
            data = await self.stream.receive_some()
            if not data:
                raise EOFError(self.buffer)
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    async def until_eof(self) -> bytes:
        while data := await self.stream.receive_some():
            self.buffer += data
        rest, self.buffer = self.buffer, b""
        return rest

    async def login(self, user: str, resource: str = "r", password: str = "pw") -> None:
        await self.say(HEADER)
        await self.line()
        await self.line()
        token = base64.b64encode(f"\0{user}\0{password}".encode())
        await self.say(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>")
        await self.say(token + b"</auth>")
        assert (await self.line()).startswith(b"<success")
        await self.say(HEADER)
        await self.line()
        await self.line()
        bind = BIND.replace(b"<resource>r</resource>", f"<resource>{resource}</resource>".encode())
        await self.say(b"<iq type='set' id='b'>" + bind + b"</iq>")
        assert b"<jid>" in await self.line()

    async def ping(self) -> None:
        await self.say(b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
        while b"id='p'" not in await self.line():
            pass

    async def settle(self) -> list[bytes]:
        """Ping; the lines that came before the answer."""
        await self.say(b"<iq type='get' id='settle'><ping xmlns='urn:xmpp:ping'/></iq>")
        lines = []
        while b"id='settle'" not in (line := await self.line()):
            lines.append(line)
        return lines


class Received:
    """All that `client` receives, read in the background until the server
    closes: start `run` in a nursery and look at `data` meanwhile."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.data = b""

    async def run(self) -> None:
        while chunk := await self.client.stream.receive_some():
            self.data += chunk


async def logged_in(running: RunningServer, user: str, resource: str = "r") -> Client:
    """A client of `running`, logged in as `user` with `resource`."""
    new = Client(await running.connect())
    await new.login(user, resource)
    return new


@contextlib.asynccontextmanager
async def serve_xmpp(send_timeout: float = 10, **settings: object) -> AsyncIterator[RunningServer]:
    """An XMPP server with SETTINGS (and `settings`), whose clients are cut
    after `send_timeout` seconds of not reading."""
    limits = ConnectionLimits(send_timeout=send_timeout)
    async with serve("xmpp", settings={**SETTINGS, **settings}, limits=limits) as running:
        yield running
