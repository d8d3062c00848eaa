# Pub/sub routing: which clients listen on which channels and patterns, and
# delivery of a published message to each of them. Delivery never waits for
# a slow subscriber: messages go into the subscriber's Outbox, which a task of
# its own connection writes out, and a subscriber that falls too far behind is
# disconnected (Redis's client-output-buffer-limit for pubsub).
from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from netsvc import Connection

from ._glob import compile_glob
from ._reply import Push

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Outbox", "PubSub"]

OUTBOX_LIMIT = 32 * 1024 * 1024  # bytes queued for one client before it is dropped


class Outbox:
    """Bytes waiting to be written to one connection, written by `run()`."""

    def __init__(self, conn: Connection, limit: int = OUTBOX_LIMIT) -> None:
        self.conn = conn
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.overflowed = False
        self._ready = trio.Event()
        self._drained = trio.Event()

    def put(self, data: bytes) -> None:
        if self.overflowed:
            return
        self.chunks.append(data)
        self.size += len(data)
        if self.size > self.limit:
            self.overflowed = True
            self.chunks.clear()
            self.conn.log.warning("closing a client %d bytes behind on its output", self.size)
            self.conn.disconnect()
        self._ready.set()

    async def wait_below(self, size: int) -> None:
        """Backpressure for the client's own commands: wait while much is queued."""
        while self.size > size and not self.overflowed:
            self._drained = trio.Event()
            await self._drained.wait()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready = trio.Event()
            if self.overflowed:
                return
            chunks, self.chunks = self.chunks, []
            if chunks:
                await self.conn.send(b"".join(chunks))
            self.size -= sum(len(chunk) for chunk in chunks)
            self._drained.set()


class PubSub:
    """Channels and patterns to their subscribers."""

    def __init__(self) -> None:
        self.channels: dict[bytes, set[Client]] = {}
        self.patterns: dict[bytes, set[Client]] = {}

    def subscribe(self, client: Client, channel: bytes) -> None:
        self.channels.setdefault(channel, set()).add(client)
        client.channels.add(channel)

    def unsubscribe(self, client: Client, channel: bytes) -> None:
        _discard(self.channels, channel, client)
        client.channels.discard(channel)

    def psubscribe(self, client: Client, pattern: bytes) -> None:
        self.patterns.setdefault(pattern, set()).add(client)
        client.patterns.add(pattern)

    def punsubscribe(self, client: Client, pattern: bytes) -> None:
        _discard(self.patterns, pattern, client)
        client.patterns.discard(pattern)

    def forget(self, client: Client) -> None:
        for channel in list(client.channels):
            self.unsubscribe(client, channel)
        for pattern in list(client.patterns):
            self.punsubscribe(client, pattern)

    def publish(self, channel: bytes, message: bytes) -> int:
        """Deliver to every subscriber; returns how many received it."""
        receivers = 0
        for client in self.channels.get(channel, ()):
            client.push(Push([b"message", channel, message]))
            receivers += 1
        for pattern, clients in self.patterns.items():
            if clients and compile_glob(pattern)(channel):
                for client in clients:
                    client.push(Push([b"pmessage", pattern, channel, message]))
                    receivers += 1
        return receivers

    def numsub(self, channel: bytes) -> int:
        return len(self.channels.get(channel, ()))


def _discard(table: dict[bytes, set[Client]], name: bytes, client: Client) -> None:
    clients = table.get(name)
    if clients is not None:
        clients.discard(client)
        if not clients:
            del table[name]
