# Django Channels' channel layers on Redis (channels_redis), as consumers use
# them: a message sent to a channel is received from it, in order; groups
# fan a message out to every channel added to them and no longer to one
# discarded; a full channel refuses more. RedisChannelLayer keeps a channel
# in a sorted set (ZADD, BZPOPMIN) and runs Lua with EVAL: a cleanup before
# each receive, the fan-out of group_send, flush. RedisPubSubChannelLayer
# rides on pub/sub alone.
from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from tests.protocols.resp.apps.conftest import Backend

pytestmark = pytest.mark.slow  # two servers for the package, worker processes


async def nothing_for(layer: Any, channel: str) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), timeout=0.3)


async def no_wait(name: str) -> None:
    pass


async def send_receive_groups(layer: Any, subscribed: Callable[[str], Awaitable[None]]) -> None:
    channel = await layer.new_channel()
    await subscribed(channel)
    for n in range(3):
        await layer.send(channel, {"type": "chat.message", "n": n})
    assert [(await layer.receive(channel))["n"] for _ in range(3)] == [0, 1, 2]

    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", first)
    await layer.group_add("room", second)
    await subscribed("room")
    await layer.group_send("room", {"type": "chat.message", "text": "hello"})
    for member in (first, second):
        assert await layer.receive(member) == {"type": "chat.message", "text": "hello"}
    await layer.group_discard("room", second)
    await layer.group_send("room", {"type": "chat.message", "text": "again"})
    assert (await layer.receive(first))["text"] == "again"
    await nothing_for(layer, second)


def test_redis_channel_layer(backend: Backend) -> None:
    async def scenario() -> None:
        layer = RedisChannelLayer(hosts=[backend.url()], capacity=5, expiry=10)
        try:
            await send_receive_groups(layer, no_wait)
            full = await layer.new_channel()
            for n in range(5):
                await layer.send(full, {"type": "tick", "n": n})
            with pytest.raises(ChannelFull):
                await layer.send(full, {"type": "tick", "n": 5})
            # a channel named by the app, not by new_channel()
            await layer.send("notifications", {"type": "direct"})
            assert await layer.receive("notifications") == {"type": "direct"}
            await layer.flush()
            await nothing_for(layer, full)
        finally:
            await layer.close_pools()

    asyncio.run(scenario())


def test_redis_pubsub_channel_layer(backend: Backend) -> None:
    # The layer sends SUBSCRIBE without waiting for its reply and publishes
    # on another connection: a message sent right after a subscription can
    # overtake it (see the test below). A consumer joins a group long before
    # anything is sent to it; here, wait until the server has the
    # subscription, as it would have by then.
    async def subscribed(name: str) -> None:
        deadline = time.monotonic() + 10
        with backend.client() as client:
            while not any(name in channel.decode() for channel in client.pubsub_channels()):
                assert time.monotonic() < deadline, f"no subscription to {name}"
                await asyncio.sleep(0.01)

    async def scenario() -> None:
        layer = RedisPubSubChannelLayer(hosts=[backend.url()])
        try:
            await send_receive_groups(layer, subscribed)
        finally:
            await layer.flush()

    asyncio.run(scenario())


def test_publish_right_after_subscribe_on_another_connection(backend: Backend) -> None:
    # What RedisPubSubChannelLayer does on new_channel() then send(): the
    # SUBSCRIBE is written, not waited for, and the PUBLISH follows on
    # another connection. Redis reads both in the order they arrived and
    # delivers (all but a rare one when a loaded machine delays the
    # SUBSCRIBE's packet: seen once in CI); a server that may run them the
    # other way round loses about one message in two, so 100 rounds tell.
    # netsvc serves both reads in the inline set's order (serve_inline), and
    # a SUBSCRIBE registers before its reply is handed to the outbox task.
    def command(*words: str) -> bytes:
        parts = [b"$%d\r\n%s\r\n" % (len(word), word.encode()) for word in words]
        return b"*%d\r\n" % len(words) + b"".join(parts)

    subscriber = socket.create_connection((backend.host, backend.port), timeout=10)
    publisher = socket.create_connection((backend.host, backend.port), timeout=10)
    with subscriber, publisher:
        for sock in (subscriber, publisher):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(command("PING"))
            assert sock.recv(100) == b"+PONG\r\n"
        receivers = []
        for n in range(100):
            subscriber.sendall(command("SUBSCRIBE", f"channel-{n}"))
            publisher.sendall(command("PUBLISH", f"channel-{n}", "hello"))
            receivers.append(read_reply(publisher))
            time.sleep(0.002)
        assert set(receivers) <= {b":0\r\n", b":1\r\n"}
        assert receivers.count(b":1\r\n") >= 95, receivers


def read_reply(sock: socket.socket) -> bytes:
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(100)
        assert chunk, "connection closed"
        reply += chunk
    return reply
