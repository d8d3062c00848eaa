# An ASGI 3 application (Starlette, running on trio through anyio) served by
# the HTTP plugin: routes, request bodies, a streaming response, lifespan.
from __future__ import annotations

from typing import Any

import h11
import httpx
import pytest
import trio

from netsvc import AppError
from netsvc.testing import serve
from protocols.http import AsgiApp
from protocols.http import protocol as http_protocol
from protocols.http._asgi import is_asgi_app
from tests.protocols.http.apps import lifespan_events, native, starlette_app
from tests.serveprocess import ServeProcess


async def test_starlette_routes_stream_and_lifespan() -> None:
    lifespan_events.clear()
    async with serve("http", app=starlette_app) as running:
        assert lifespan_events == ["startup"]
        async with httpx.AsyncClient(base_url=running.url) as client:
            home = await client.get("/")
            assert (home.status_code, home.text) == (200, "hi from lifespan")
            user = await client.get("/users/ada?q=x")
            assert user.json() == {"user": "ada", "q": "x"}
            upload = await client.post("/upload", content=b"u" * 100_000)
            assert upload.json() == {"size": 100_000}
            async with client.stream("GET", "/ticks") as response:
                lines = [line async for line in response.aiter_lines()]
            assert lines == ["tick 0", "tick 1", "tick 2"]
            assert (await client.get("/missing")).status_code == 404
            head = await client.head("/")
            assert head.status_code == 200 and head.content == b""
    assert lifespan_events == ["startup", "shutdown"]


async def test_asgi_app_without_lifespan_support() -> None:
    async def bare(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            raise RuntimeError("only http")
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-bare", b"1")]})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"made"})  # type: ignore[operator]

    async with serve("http", app=bare) as running:
        async with httpx.AsyncClient(base_url=running.url) as client:
            made = await client.get("/anything")
            assert (made.status_code, made.text, made.headers["x-bare"]) == (201, "made", "1")


async def test_asgi_app_that_ignores_lifespan_by_returning() -> None:
    async def hello(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return  # no lifespan support, said by returning
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"Hello, world!\n"})  # type: ignore[operator]

    async with serve("http", app=hello) as running:
        async with httpx.AsyncClient(base_url=running.url) as client:
            assert (await client.get("/")).text == "Hello, world!\n"


def test_detection() -> None:
    assert is_asgi_app(starlette_app)
    assert not is_asgi_app(native)
    assert not is_asgi_app(lambda scope, receive, send: None)
    # the plugin wraps an ASGI app it detects, serves a native one as it is,
    # and refuses anything else
    wrapped = http_protocol.check_app(starlette_app)
    assert isinstance(wrapped, AsgiApp) and wrapped.app is starlette_app
    assert http_protocol.check_app(native) is native
    assert http_protocol.check_app(wrapped) is wrapped
    with pytest.raises(AppError, match=r"expected a protocols\.http\.HttpApp or an ASGI 3"):
        http_protocol.check_app(lambda scope, receive, send: None)


def test_starlette_from_the_cli() -> None:
    args = ["--protocol", "http", "--port", "0", "--app", "tests.protocols.http.apps:starlette_app"]
    with ServeProcess(args) as server:
        with httpx.Client(base_url=server.urls[0]) as client:
            assert client.get("/users/cli").json() == {"user": "cli", "q": None}
    assert "shutting down" in server.log


@pytest.mark.server_errors(r"handler for GET / left its response unfinished")
async def test_an_unfinished_asgi_response_closes_the_connection_only() -> None:
    from tests.protocols.http.apps import unfinished

    async with serve("http", app=unfinished) as running:
        async with httpx.AsyncClient(base_url=running.url) as client:
            for _ in range(2):  # the head alone is not a response: the client sees a close
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.get("/")
        assert running.server.runtime.counters.connections_total == 2  # the server went on


@pytest.mark.server_errors(r"the ASGI app's startup failed")
def test_a_failing_lifespan_startup_is_one_clear_error_line() -> None:
    import subprocess

    from tests.serveprocess import NETSVC, ROOT

    result = subprocess.run(
        [
            NETSVC,
            "serve",
            "--protocol",
            "http",
            "--port",
            "0",
            "--app",
            "tests.protocols.http.apps:failing_startup",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "ERROR netsvc: the ASGI app's startup failed:" in result.stderr
    assert "ExceptionGroup" not in result.stderr  # one error, not trio's nested groups


async def test_a_body_read_the_app_left_behind_ends_when_its_request_does() -> None:
    # The app hands receive() to a task of its own (in its lifespan's
    # nursery) and answers before the body has all arrived. That task's read
    # is still waiting when the request is over and the driver reads the rest
    # of the body and the next request: the task hears http.disconnect, and
    # the two never read the connection at once (trio's BusyResourceError).
    nurseries: list[trio.Nursery] = []
    heard: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            async with trio.open_nursery() as nursery:
                nurseries.append(nursery)
                assert (await receive())["type"] == "lifespan.startup"
                await send({"type": "lifespan.startup.complete"})
                assert (await receive())["type"] == "lifespan.shutdown"
                nursery.cancel_scope.cancel()
            await send({"type": "lifespan.shutdown.complete"})
            return

        async def reader(task_status: trio.TaskStatus[dict[str, Any]]) -> None:
            task_status.started(await receive())
            heard.append(await receive())  # waits for the body's rest
            heard.append(await receive())  # and after the request: at once

        if scope["path"] == "/leave":
            first = await nurseries[0].start(reader)
            assert first == {"type": "http.request", "body": b"hello", "more_body": True}
            await trio.sleep(0.05)  # the reader is waiting on the connection now
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    async with serve("http", app=app) as running:
        stream = await running.connect()
        client = h11.Connection(h11.CLIENT)
        with trio.fail_after(10):
            await stream.send_all(
                b"POST /leave HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"
            )
            assert await response_body(stream, client) == b"/leave"
            await stream.send_all(b"world" + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await response_body(stream, client) == b"/next"
    assert heard == [{"type": "http.disconnect"}] * 2


async def response_body(stream: trio.abc.Stream, client: h11.Connection) -> bytes:
    """The body of the next response on `stream`, read with h11."""
    if client.our_state is h11.DONE:
        client.start_next_cycle()
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    body = b""
    while type(event := client.next_event()) is not h11.EndOfMessage:
        if event is h11.NEED_DATA:
            client.receive_data(await stream.receive_some())
        elif type(event) is h11.Data:
            body += event.data
    return body


async def test_a_native_request_kept_by_a_task_cannot_read_the_next_ones_body() -> None:
    # a task the handler left behind reads its request's body after the
    # request was served, while the next request on the connection is: it
    # gets an error, never the next request's body
    from protocols.http import HttpApp, Request

    app = HttpApp()
    stale_may_read, stale_done = trio.Event(), trio.Event()
    outcome: list[object] = []

    async with trio.open_nursery() as nursery:

        async def read_late(request: Request) -> None:
            await stale_may_read.wait()
            try:
                outcome.append(await request.body())
            except h11.RemoteProtocolError as exc:
                outcome.append(str(exc))
            stale_done.set()

        @app.route("/leave", methods=["POST"])
        async def leave(request: Request) -> str:
            nursery.start_soon(read_late, request)
            return "/leave"

        @app.route("/next", methods=["POST"])
        async def next_one(request: Request) -> bytes:
            stale_may_read.set()
            await stale_done.wait()
            return await request.body()

        async with serve("http", app=app) as running:
            stream = await running.connect()
            client = h11.Connection(h11.CLIENT)
            with trio.fail_after(10):
                await stream.send_all(
                    b"POST /leave HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                )
                assert await response_body(stream, client) == b"/leave"
                await stream.send_all(
                    b"POST /next HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nSECRET"
                )
                assert await response_body(stream, client) == b"SECRET"
    assert outcome == ["the request was served before its body was read"]
