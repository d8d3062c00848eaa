# Pub/sub routing: which clients listen on which channels and patterns, and
# delivery of a published message to each of them (Client.push). Delivery
# never waits for a slow subscriber: the driver queues pushes in the
# subscriber's outbox, and drops a subscriber that falls too far behind.
from __future__ import annotations

from typing import TYPE_CHECKING

from ._glob import compile_glob
from ._reply import Push

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["PubSub"]


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
