# A chat page over WebSocket whose messages go through the RESP service's
# pub/sub, found by REDIS_URL: any number of instances of this app (and any
# Redis client) share one room, because none of them keeps the messages.
#
#   netsvc serve --protocol resp --port 6380
#   REDIS_URL=redis://127.0.0.1:6380/0 netsvc serve --protocol http --port 8080 \
#       --app examples.wschat.app:app
#
# then open http://127.0.0.1:8080/ in two browsers.
from __future__ import annotations

import os
from pathlib import Path

import trio

from protocols.http import HttpApp, Request, Response, WebSocket, WebSocketDisconnect

from ._resp import RedisConnection

app = HttpApp()
CHANNEL = "wschat"
PAGE = (Path(__file__).parent / "index.html").read_bytes()


def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        raise RuntimeError("set REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6380/0")
    return url


@app.route("/", methods=["GET"])
async def page(request: Request) -> Response:
    return Response(PAGE, content_type="text/html; charset=utf-8")


@app.websocket("/ws")
async def chat(ws: WebSocket) -> None:
    """What the browser says is published; what is published is sent to it."""
    async with (
        await RedisConnection.open(redis_url()) as subscriber,
        await RedisConnection.open(redis_url()) as publisher,
    ):
        await subscriber.command("SUBSCRIBE", CHANNEL)  # before accept: nothing is missed
        await ws.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_forward, subscriber, ws)
            try:
                async for message in ws:
                    text = message if isinstance(message, str) else message.decode(errors="replace")
                    await publisher.command("PUBLISH", CHANNEL, text[:1000])
            except WebSocketDisconnect:
                pass
            nursery.cancel_scope.cancel()


async def _forward(subscriber: RedisConnection, ws: WebSocket) -> None:
    while True:
        kind, _channel, data = await subscriber.reply()
        if kind == b"message":
            await ws.send(data.decode(errors="replace"))
