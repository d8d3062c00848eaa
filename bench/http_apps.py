# The apps bench/http.py serves: one native netsvc app and one bare ASGI app
# (the same for netsvc, uvicorn and hypercorn), each with a hello world at /
# and a WebSocket echo at /ws.
from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from protocols.http import HttpApp, Request, Response, WebSocket

HELLO = b"Hello, world!\n"

native = HttpApp()
_hello = Response(HELLO, content_type="text/plain")


@native.route("/")
async def hello(request: Request) -> Response:
    return _hello


@native.websocket("/ws")
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await ws.send(message)


async def asgi(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":  # answered properly: hypercorn's trio worker needs it
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send(
                {
                    "type": "websocket.send",
                    "text": message.get("text"),
                    "bytes": message.get("bytes"),
                }
            )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"14")],
        }
    )
    await send({"type": "http.response.body", "body": HELLO})
