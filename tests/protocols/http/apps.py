# Applications the HTTP tests serve: a native one and a Starlette (ASGI) one.
# The core's CLI tests serve the native one too, for requests that stay in
# flight (/nap), big responses (/big) and the server's counters (/counters).
from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from netsvc import Runtime
from protocols.http import HttpApp, Request, Response, WebSocket

native = HttpApp()


@native.route("/hello/{name}")
async def hello(request: Request) -> str:
    return f"hello, {request.path_params['name']}\n"


@native.route("/files/{rest:path}")
async def files(request: Request) -> dict[str, str]:
    return {"rest": request.path_params["rest"]}


@native.route("/echo", methods=["POST", "PUT"])
async def echo(request: Request) -> Response:
    body = await request.body()
    return Response(
        body, content_type=request.headers.get("content-type") or "application/octet-stream"
    )


@native.route("/count", methods=["POST"])
async def count(request: Request) -> dict[str, int]:
    total = chunks = 0
    async for chunk in request.stream():
        total += len(chunk)
        chunks += 1
    return {"bytes": total, "chunks": chunks}


@native.route("/progress", methods=["POST"])
async def progress(request: Request) -> Response:
    """Streams back, line by line, how many body bytes have arrived so far: a
    client can see the handler read part of an upload before sending the rest."""

    async def totals() -> AsyncIterator[bytes]:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            yield b"%d\n" % total

    return Response(totals(), content_type="text/plain")


@native.route("/ignore", methods=["POST"])
async def ignore(request: Request) -> str:
    """Answers without reading the request body."""
    return "ignored\n"


@native.route("/nap")
async def nap(request: Request) -> Response:
    """A request in flight for `s` seconds that says when it has started: the
    first line goes out at once, the second after the sleep."""
    seconds = float(request.query["s"][0])

    async def lines() -> AsyncIterator[bytes]:
        yield b"started\n"
        await trio.sleep(seconds)
        yield b"done\n"

    return Response(lines(), content_type="text/plain")


@native.route("/counters")
async def counters(request: Request) -> dict[str, int]:
    """The whole server's counters (connections, requests, errors)."""
    runtime = request.state["runtime"]
    assert isinstance(runtime, Runtime)
    return runtime.counters.snapshot()


@native.route("/stream")
async def stream(request: Request) -> Response:
    async def numbers() -> AsyncIterator[bytes]:
        for i in range(5):
            yield b"%d\n" % i
            await trio.sleep(0.01)

    return Response(numbers(), content_type="text/plain")


@native.route("/bytes-like")
async def bytes_like(request: Request) -> Response:
    """Chunks of every bytes-like type, streamed: from an async generator,
    or (?sync) a list."""
    chunks = [b"bytes ", bytearray(b"bytearray "), memoryview(b"memoryview\n")]
    if "whole" in request.query:
        return Response(bytearray(b"whole\n"))  # type: ignore[arg-type]  # bytes-like too
    if "int" in request.query:
        return Response([b"no ", 3])  # type: ignore[list-item]  # not bytes: the app's error
    if "sync" in request.query:
        return Response(chunks)  # type: ignore[arg-type]  # Body says bytes: bytes-like too

    async def produce() -> AsyncIterator[Any]:
        for chunk in chunks:
            yield chunk

    return Response(produce())


@native.route("/slow")
async def slow(request: Request) -> str:
    await trio.sleep(float(request.query.get("s", ["0.5"])[0]))
    return "done\n"


@native.route("/big")
async def big(request: Request) -> bytes:
    return b"x" * int(request.query["n"][0])


@native.route("/query")
async def query(request: Request) -> dict[str, list[str]]:
    return request.query


@native.route("/crash")
async def crash(request: Request) -> str:
    raise RuntimeError("boom")


lifespan_events: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
    lifespan_events.append("startup")
    yield {"greeting": "hi from lifespan"}
    lifespan_events.append("shutdown")


async def home(request: StarletteRequest) -> PlainTextResponse:
    return PlainTextResponse(request.state.greeting)


async def user(request: StarletteRequest) -> JSONResponse:
    return JSONResponse({"user": request.path_params["name"], "q": request.query_params.get("q")})


async def upload(request: StarletteRequest) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"size": len(body)})


async def ticker(request: StarletteRequest) -> StreamingResponse:
    async def ticks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"tick {i}\n".encode()

    return StreamingResponse(ticks(), media_type="text/plain")


starlette_app = Starlette(
    routes=[
        Route("/", home),
        Route("/users/{name}", user),
        Route("/upload", upload, methods=["POST"]),
        Route("/ticks", ticker),
    ],
    lifespan=lifespan,
)


@contextlib.asynccontextmanager
async def broken_lifespan(app: Starlette) -> AsyncIterator[None]:
    raise RuntimeError("the database is not there")
    yield


failing_startup = Starlette(routes=[], lifespan=broken_lifespan)


async def unfinished(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """An ASGI app that starts a response and never finishes it."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]


@native.route("/nothing")
async def nothing(request: Request) -> None:
    return None


@native.route("/badheader")
async def badheader(request: Request) -> Response:
    return Response("x", headers={"x-evil": "a\r\nset-cookie: stolen=1"})


async def tls_scope(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """An ASGI app that answers with its scope's TLS extension, as JSON."""
    if scope["type"] != "http":
        return
    body = json.dumps(scope.get("extensions", {}).get("tls")).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": body})  # type: ignore[operator]


@native.route("/whoami")
async def whoami(request: Request) -> dict[str, str | None]:
    certificate = request.peer_certificate
    return {"common_name": certificate.common_name if certificate else None}


# -- what a request looks like to the app: the proxy headers and root_path tests ---------------

reporting_native = HttpApp()


@reporting_native.route("/{rest:path}", methods=["GET", "POST"])
@reporting_native.route("/", methods=["GET", "POST"])
async def report_request(request: Request) -> dict[str, object]:
    """The request as the handler sees it, as JSON."""
    peer = request.peer
    return {
        "peer": [peer.host, peer.port] if peer.transport == "tcp" else peer.path,
        "scheme": request.scheme,
        "host": request.host,
        "server": list(request.server) if request.server else None,
        "root_path": request.root_path,
        "path": request.path,
        "raw_path": request.raw_path.decode("latin-1"),
    }


@reporting_native.websocket("/{rest:path}")
async def report_websocket(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send(json.dumps(await report_request(ws.request)))
    await ws.close()


async def reporting_asgi(scope: dict, receive: Any, send: Any) -> None:  # type: ignore[type-arg]
    """An ASGI app that answers with its scope (http: as JSON; websocket: in a
    message), but the state and the extensions."""
    if scope["type"] not in ("http", "websocket"):
        return
    shown = {
        key: [list(pair) for pair in value] if key == "headers" else value
        for key, value in scope.items()
        if key not in ("state", "extensions", "asgi")
    }
    shown["raw_path"] = scope["raw_path"].decode("latin-1")
    shown["query_string"] = scope["query_string"].decode("latin-1")
    shown["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
    body = json.dumps(shown)
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": body})
        await send({"type": "websocket.close"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})
