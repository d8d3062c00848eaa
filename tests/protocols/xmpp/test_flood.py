# The flood, against `netsvc serve` in a subprocess, with raw
# clients: 20 senders each write 5,000 chat messages to their own receiver's
# full JID as fast as the server takes them, while the 20 receivers read as
# fast as they can: every message arrives, in order per sender, none comes
# back, and no connection is closed. Then a receiver that stops reading in
# the middle of a flood: the send timeout cuts it, the pair beside it is not
# disturbed, and the messages it did not get are stored offline and arrive,
# in order, at its next login; with what it had received, none is missing.
from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.protocols.xmpp.rawclient import Client
from tests.serveprocess import ServeProcess, host_port

pytestmark = pytest.mark.slow

PAIRS, EACH = 20, 5000
BATCH = 50  # messages per write, as bench/xmpp.py
BODY = b"hello there, this is a chat message of an ordinary length"
ID = re.compile(rb" id='(\d+)'")
SERVE = ["--listen", "xmpp://127.0.0.1:0", "--xmpp-insecure-any-password", "true"]
SERVE += ["--xmpp-max-bytes-per-second", "0"]  # full speed: flow control is under test


def message(to: str, number: int, body: bytes = BODY) -> bytes:
    return b"<message to='%s' type='chat' id='%d'><body>%s</body></message>" % (
        to.encode(),
        number,
        body,
    )


class Reader:
    """A receiver's side: the ids of the whole chat messages it has read, in
    order (the server writes one stanza per line), and any other line."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.ids: list[int] = []
        self.others: list[bytes] = []
        self.tail = b""

    def take(self, data: bytes) -> None:
        *lines, self.tail = (self.tail + data).split(b"\n")
        for line in lines:
            found = ID.search(line)
            if line.startswith(b"<message ") and b"type='error'" not in line and found:
                self.ids.append(int(found.group(1)))
            elif line.strip():
                self.others.append(line)

    async def read(self, count: int | None) -> None:
        """Read until `count` messages came (None: until cancelled)."""
        while count is None or len(self.ids) < count:
            data = await self.client.stream.receive_some(262144)
            if not data:
                raise EOFError(f"closed after {len(self.ids)} messages")
            self.take(data)

    async def drain(self) -> None:
        """Read until the server's end of the connection (or its reset)."""
        try:
            while data := await self.client.stream.receive_some(262144):
                self.take(data)
        except trio.BrokenResourceError:
            pass


class Clients:
    """The test's connections to a server, closed together at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[Client] = []

    async def login(self, user: str, resource: str = "r", rcvbuf: int = 0) -> Client:
        """Log `user` in (any password works) and send initial presence;
        `rcvbuf` shrinks the socket's receive buffer (before connecting)."""
        sock = trio.socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        stream = trio.SocketStream(sock)
        client = Client(stream)
        self.opened.append(client)
        await sock.connect(host_port(self.url))
        await client.login(user, resource)
        await client.say(b"<presence/>")
        return client


@contextlib.asynccontextmanager
async def clients(server: ServeProcess) -> AsyncIterator[Clients]:
    made = Clients(server.urls[0])
    try:
        yield made
    finally:
        for client in made.opened:
            await client.stream.aclose()


async def send(client: Client, to: str, count: int, *, start: int = 0, body: bytes = BODY) -> None:
    """Messages `start` to `start + count - 1` to `to`, BATCH a write."""
    for first in range(start, start + count, BATCH):
        last = min(start + count, first + BATCH)
        await client.say(b"".join(message(to, n, body) for n in range(first, last)))


async def answered(client: Client, lines: list[bytes] | None = None) -> None:
    """Ping, and wait for the answer (the lines before it go to `lines`)."""
    await client.say(b"<iq type='get' id='flood-ping'><ping xmlns='urn:xmpp:ping'/></iq>")
    while b"id='flood-ping'" not in (line := await client.line()):
        if lines is not None:
            lines.append(line)


async def test_twenty_senders_flood_twenty_readers_and_lose_nothing() -> None:
    with ServeProcess(SERVE) as server:
        async with clients(server) as connected:
            senders = [await connected.login(f"s{i}") for i in range(PAIRS)]
            readers = [Reader(await connected.login(f"r{i}")) for i in range(PAIRS)]
            for client in senders + [reader.client for reader in readers]:
                await answered(client)  # what presence brings is read before the flood
            started = time.monotonic()
            with trio.fail_after(300):
                async with trio.open_nursery() as nursery:
                    for i in range(PAIRS):
                        nursery.start_soon(send, senders[i], f"r{i}@localhost/r", EACH)
                        nursery.start_soon(readers[i].read, EACH)
            seconds = time.monotonic() - started
            rate = PAIRS * EACH / seconds
            print(f"{PAIRS} x {EACH} messages routed in {seconds:.1f}s: {rate:,.0f}/s")
            for i, reader in enumerate(readers):  # every message, in order, once
                assert reader.ids == list(range(EACH)), f"r{i}"
                assert reader.others == [], f"r{i}"
            with trio.fail_after(60):  # every connection still open and answering
                for client in senders:
                    came_back: list[bytes] = []
                    await answered(client, came_back)
                    assert came_back == []  # no message bounced
                for reader in readers:
                    reader.client.buffer = reader.tail
                    await answered(reader.client)
        log = server.log
    assert "not read" not in log and "did not finish" not in log, log
    assert "stream error" not in log, log


async def test_a_receiver_that_stops_reading_is_cut_and_its_messages_kept(tmp_path: Path) -> None:
    args = [*SERVE, "--send-timeout", "1", "--xmpp-database", str(tmp_path / "xmpp.db")]
    args += ["--xmpp-offline-limit", str(EACH), "--xmpp-offline-max-bytes", "0"]
    with ServeProcess(args) as server:
        async with clients(server) as connected:
            flooder, sender = await connected.login("flooder"), await connected.login("sender")
            stuck = Reader(await connected.login("stuck", rcvbuf=4096))
            beside = Reader(await connected.login("beside"))
            for client in (flooder, sender, stuck.client, beside.client):
                await answered(client)
            body = b"x" * 2000  # 5,000 of them are more than the sockets' buffers hold
            cut, stopped = trio.Event(), trio.Event()
            sent = 0

            async def keep_sending() -> None:  # the pair beside goes on until the cut
                nonlocal sent
                while not cut.is_set():
                    await send(sender, "beside@localhost/r", BATCH, start=sent)
                    sent += BATCH
                stopped.set()

            with trio.fail_after(300):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(beside.read, None)
                    nursery.start_soon(keep_sending)
                    nursery.start_soon(stuck.read, 500)  # then it stops reading
                    await send(flooder, "stuck@localhost/r", EACH, body=body)
                    came_back: list[bytes] = []
                    await answered(flooder, came_back)  # everything before it was routed
                    assert came_back == []  # kept offline, not bounced
                    await trio.to_thread.run_sync(server.wait_for_log, "did not finish within 1s")
                    cut.set()
                    await stopped.wait()
                    while len(beside.ids) < sent:
                        await trio.sleep(0.01)
                    nursery.cancel_scope.cancel()
                await stuck.drain()  # what was on its way before the cut
                before = len(stuck.ids)
                later = Reader(await connected.login("stuck", "later"))
                await later.read(EACH - before)
            print(f"stuck: {before} read, {EACH - before} kept offline; beside: {sent} messages")
            assert stuck.ids + later.ids == list(range(EACH))  # in order, none missing or twice
            assert EACH - before >= 1024  # at least the queue the cut found was stored
            assert beside.ids == list(range(sent)) and beside.others == []
            with trio.fail_after(30):
                await answered(beside.client)
                await answered(sender)
        log = server.log
    assert log.count("did not finish") == 1, log
