# A client that leaves while its response streams: Server-Sent Events, with
# Starlette's StreamingResponse and a native async generator, stop within
# 100 ms of a real client closing (the app records when its generator was
# closed); ASGI's receive() says http.disconnect, and send() then raises an
# OSError; request.is_disconnected() tells a native handler. A pipelined
# request is not a disconnect, and a finished stream leaves the connection
# ready for the next request.
from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import StreamingResponse
from starlette.routing import Route

from netsvc.testing import RunningServer
from protocols.http import HttpApp, Request, Response

LEAVE_WITHIN = 0.1  # seconds from the client's close to the generator's end

closed: dict[str, float] = {}  # which generator was closed, when (time.monotonic())
events: dict[str, trio.Event] = {}
seen: dict[str, Any] = {}


def event(name: str) -> trio.Event:
    return events.setdefault(name, trio.Event())


async def ticks(name: str, every: float) -> AsyncIterator[bytes]:
    """An SSE stream that waits `every` seconds between events."""
    try:
        number = 0
        while True:
            yield b"data: %d\n\n" % number
            number += 1
            await trio.sleep(every)
    finally:
        closed[name] = time.monotonic()


native = HttpApp()


@native.route("/sse")
async def native_sse(request: Request) -> Response:
    return Response(ticks("native", 30), content_type="text/event-stream")


@native.route("/upload-then-wait", methods=["POST"])
async def upload_then_wait(request: Request) -> Response:
    """Streams once it has read the body, then waits: the watch starts when
    the body has been read by the stream itself."""

    async def stream() -> AsyncIterator[bytes]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        yield b"data: %d\n\n" % size
        # closed with this one when the client leaves, not left to the
        # garbage collector (trio warns of an async generator it finalizes)
        async with contextlib.aclosing(ticks("upload", 30)) as events:
            async for chunk in events:
                yield chunk

    return Response(stream(), content_type="text/event-stream")


@native.route("/short-stream")
async def short_stream(request: Request) -> Response:
    async def lines() -> AsyncIterator[bytes]:
        for number in range(3):
            await trio.sleep(0.1)
            yield b"%d\n" % number

    return Response(lines(), content_type="text/plain")


@native.route("/hello")
async def hello(request: Request) -> str:
    seen.setdefault("requests", []).append(request)
    return "hello\n"


@native.route("/ask-late")
async def ask_late(request: Request) -> str:
    """Asks only once the test has closed its connection: the first answer is right."""
    event("poll-started").set()
    await event("client-closed").wait()
    seen["late"] = await request.is_disconnected()
    event("poll-done").set()
    return "late\n"


@native.route("/poll")
async def poll(request: Request) -> dict[str, bool]:
    """Answers whether the client is still there, before and after the test
    closed its connection."""
    seen["before"] = await request.is_disconnected()
    event("poll-started").set()
    await event("client-closed").wait()
    with trio.fail_after(5):
        while not await request.is_disconnected():
            await trio.sleep(0.01)
    seen["after"] = True
    event("poll-done").set()
    return {"disconnected": True}


async def starlette_sse(request: StarletteRequest) -> StreamingResponse:
    return StreamingResponse(ticks("starlette", 30), media_type="text/event-stream")


async def starlette_short(request: StarletteRequest) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        for number in range(3):
            await trio.sleep(0.1)
            yield b"%d\n" % number

    return StreamingResponse(lines(), media_type="text/plain")


async def starlette_polls(request: StarletteRequest) -> StreamingResponse:
    """The Starlette way for a handler that is not a stream: is_disconnected()."""
    seen["starlette-before"] = await request.is_disconnected()
    event("poll-started").set()
    await event("client-closed").wait()
    with trio.fail_after(5):
        while not await request.is_disconnected():
            await trio.sleep(0.01)
    event("poll-done").set()
    return StreamingResponse(iter([b"late\n"]))


starlette_app = Starlette(
    routes=[
        Route("/sse", starlette_sse),
        Route("/short-stream", starlette_short),
        Route("/poll", starlette_polls),
    ]
)


async def raw_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Streams a first chunk, then waits in receive(): what it gets, and what
    a send() after it does, go to `seen`."""
    if scope["type"] != "http":
        return
    seen["spec_version"] = scope["asgi"]["spec_version"]
    assert (await receive())["type"] == "http.request"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
    message = await receive()
    closed["raw"] = time.monotonic()
    seen["message"] = message
    try:
        await send({"type": "http.response.body", "body": b"more\n", "more_body": True})
    except OSError as exc:
        seen["send"] = exc
        raise  # as ASGI 2.4 allows: the server must not log it as an error


async def in_a_nursery(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Streams from a task of its own until send() fails: the OSError comes
    out of the nursery in an exception group, and is not an app failure."""
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})

    async def stream() -> None:
        while True:
            await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
            event("streaming").set()
            await trio.sleep(0.01)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream)
    finally:
        closed["nursery"] = time.monotonic()


async def after_the_response(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """receive() after the whole response: http.disconnect at once (the spec)."""
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done\n"})
    with trio.fail_after(1):
        seen["after"] = await receive()


@pytest.fixture(autouse=True)
def _fresh() -> None:
    closed.clear()
    events.clear()
    seen.clear()


async def read_first_event_then_close(running: RunningServer, path: str) -> float:
    """With curl: read the stream's first event, then end curl (which closes
    its connection); when it did."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is missing: ./dev test installs it (Debian package curl)")
    process = await trio.lowlevel.open_process(
        [curl, "-sSN", running.url + path], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    received = b""
    with trio.fail_after(10):
        while b"data: 0" not in received:
            received += await process.stdout.receive_some()
    process.kill()
    left = time.monotonic()
    await process.wait()
    await process.stdout.aclose()
    return left


async def send_then_leave(running: RunningServer, request: bytes, until: bytes) -> float:
    """With a raw socket: send `request`, read until `until` has come, then
    close; when it closed."""
    stream = await running.connect()
    await stream.send_all(request)
    received = b""
    with trio.fail_after(5):
        while until not in received:
            received += await stream.receive_some()
    left = time.monotonic()
    await stream.aclose()
    return left


async def wait_closed(name: str, timeout: float = 5) -> float:
    with trio.fail_after(timeout):
        while name not in closed:
            await trio.sleep(0.001)
    return closed[name]


@pytest.mark.parametrize(("app", "name"), [(native, "native"), (starlette_app, "starlette")])
async def test_an_sse_generator_stops_within_100ms_of_the_client_closing(
    netsvc_server: Any, app: object, name: str
) -> None:
    running = await netsvc_server("http", app=app)
    left = await read_first_event_then_close(running, "/sse")
    assert await wait_closed(name) - left < LEAVE_WITHIN
    assert running.server.runtime.counters.errors == 0


@pytest.mark.parametrize(("app", "name"), [(native, "native"), (starlette_app, "starlette")])
async def test_a_raw_socket_that_closes_stops_the_generator_too(
    netsvc_server: Any, app: object, name: str
) -> None:
    running = await netsvc_server("http", app=app)
    left = await send_then_leave(running, b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n", b"data: 0")
    assert await wait_closed(name) - left < LEAVE_WITHIN


@pytest.mark.parametrize(("app", "name"), [(native, "native"), (starlette_app, "starlette")])
async def test_a_half_close_counts_as_leaving(netsvc_server: Any, app: object, name: str) -> None:
    # as in uvicorn: a client that shuts down its sending side while a
    # response streams is taken to have left (HTTP/1.1 clients do not
    # half-close and then read on), documented in the README
    running = await netsvc_server("http", app=app)
    stream = await running.connect()
    await stream.send_all(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
    received = b""
    with trio.fail_after(5):
        while b"data: 0" not in received:
            received += await stream.receive_some()
    left = time.monotonic()
    await stream.send_eof()
    assert await wait_closed(name) - left < LEAVE_WITHIN
    await stream.aclose()


async def test_a_stream_that_reads_the_body_is_watched_once_it_has(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=native)
    request = b"POST /upload-then-wait HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    left = await send_then_leave(running, request, b"data: 5")  # the body's size, then ticks
    assert await wait_closed("upload") - left < LEAVE_WITHIN


async def test_asgi_receive_says_http_disconnect_and_send_then_raises(
    netsvc_server: Any,
) -> None:
    running = await netsvc_server("http", app=raw_asgi)
    left = await send_then_leave(running, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"first")
    assert await wait_closed("raw") - left < LEAVE_WITHIN
    with trio.fail_after(5):
        while "send" not in seen:
            await trio.sleep(0.01)
    assert seen["message"] == {"type": "http.disconnect"}
    assert isinstance(seen["send"], OSError)  # ASGI 2.4's promise, kept under 2.3's name
    assert seen["spec_version"] == "2.3"
    assert running.server.runtime.counters.errors == 0  # and not logged as an error


async def test_a_failed_send_in_an_exception_group_is_the_client_leaving(
    netsvc_server: Any,
) -> None:
    running = await netsvc_server("http", app=in_a_nursery)
    stream = await running.connect()
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(5):
        await event("streaming").wait()
    await stream.aclose()
    await wait_closed("nursery")
    assert running.server.runtime.counters.errors == 0  # no "handler failed" either


async def test_asgi_receive_after_the_response_says_http_disconnect_at_once(
    netsvc_server: Any,
) -> None:
    running = await netsvc_server("http", app=after_the_response)
    async with httpx.AsyncClient(base_url=running.url) as client:
        assert (await client.get("/")).text == "done\n"
        with trio.fail_after(5):
            while "after" not in seen:
                await trio.sleep(0.01)
    assert seen["after"] == {"type": "http.disconnect"}


@pytest.mark.parametrize("app", [native, starlette_app], ids=["native", "starlette"])
async def test_a_handler_can_ask_whether_the_client_is_still_there(
    netsvc_server: Any, app: object
) -> None:
    running = await netsvc_server("http", app=app)
    stream = await running.connect()
    await stream.send_all(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(5):
        await event("poll-started").wait()
    await stream.aclose()
    event("client-closed").set()
    with trio.fail_after(5):
        await event("poll-done").wait()
    assert seen.get("before", seen.get("starlette-before")) is False


async def test_the_first_question_after_the_client_left_is_answered_right(
    netsvc_server: Any,
) -> None:
    running = await netsvc_server("http", app=native)
    stream = await running.connect()
    await stream.send_all(b"GET /ask-late HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(5):
        await event("poll-started").wait()
    await stream.aclose()
    await trio.sleep(0.05)  # for the close to reach the server's socket
    event("client-closed").set()
    with trio.fail_after(5):
        await event("poll-done").wait()
    assert seen["late"] is True


@pytest.mark.parametrize("app", [native, starlette_app], ids=["native", "starlette"])
async def test_a_pipelined_request_is_not_a_disconnect(netsvc_server: Any, app: object) -> None:
    # the second request arrives while the first streams: it is kept for
    # later, the stream goes on to its end, and then the second is answered
    running = await netsvc_server("http", app=app)
    stream = await running.connect()
    await stream.send_all(b"GET /short-stream HTTP/1.1\r\nHost: x\r\n\r\n")
    received = b""
    with trio.fail_after(10):
        while b"0\n" not in received:  # the stream has started: the watch is on
            received += await stream.receive_some()
        await stream.send_all(b"GET /short-stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while chunk := await stream.receive_some():
            received += chunk
    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert received.count(b"\r\n2\n\r\n0\r\n\r\n") == 2  # both streams whole


async def kept(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Keeps its receive() and send(), and tries the previous request's
    while it serves the next."""
    if scope["type"] != "http":
        return
    calls = seen.setdefault("calls", [])
    if calls:
        old_receive, old_send = calls[-1]
        seen["old receive"] = await old_receive()
        try:
            await old_send({"type": "http.response.body", "body": b"late"})
        except RuntimeError as exc:
            seen["old send"] = exc
    calls.append((receive, send))
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"kept\n"})


async def test_a_request_kept_past_its_response_cannot_touch_the_next(
    netsvc_server: Any,
) -> None:
    # a task the app left behind asks about its old request while the next
    # one is served on the same connection: the old one is over
    running = await netsvc_server("http", app=native)
    async with httpx.AsyncClient(base_url=running.url) as http:
        assert (await http.get("/hello")).status_code == 200
        assert await seen["requests"][0].is_disconnected() is True
        assert (await http.get("/hello")).status_code == 200  # on the same connection
    asgi = await netsvc_server("http", app=kept)
    async with httpx.AsyncClient(base_url=asgi.url) as http:
        for _ in range(2):
            assert (await http.get("/")).text == "kept\n"
    assert seen["old receive"] == {"type": "http.disconnect"}
    assert "sent after the app returned" in str(seen["old send"])
    for server in (running, asgi):
        assert server.server.runtime.counters.connections_total == 1


async def test_the_connection_goes_on_after_a_watched_stream(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=native)
    async with httpx.AsyncClient(base_url=running.url) as client:
        for _ in range(3):
            assert (await client.get("/short-stream")).text == "0\n1\n2\n"
            assert (await client.get("/hello")).text == "hello\n"
    assert running.server.runtime.counters.connections_total == 1
