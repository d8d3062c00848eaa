# The HTTP plugin with real clients: httpx (async and sync), curl, and raw
# sockets (their responses parsed by h11) for the malformed, slow, pipelined,
# streamed and unread-body cases.
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Any

import h11
import httpx
import pytest
import trio

from netsvc import ConnectionLimits
from netsvc.testing import RunningServer, serve
from tests.protocols.http.apps import native
from tests.serveprocess import ServeProcess, host_port


def base(running: RunningServer) -> str:
    return running.url


async def test_default_app_health_and_status(netsvc_server: Any) -> None:
    running = await netsvc_server("http")
    async with httpx.AsyncClient(base_url=running.url) as client:
        health = await client.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok\n")
        assert "date" in health.headers and "server" not in health.headers
        status = (await client.get("/")).json()
        assert status["listeners"][0]["url"] == running.url
        assert status["totals"]["requests"] >= 1


async def test_native_routes(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=native)
    async with httpx.AsyncClient(base_url=running.url) as client:
        assert (await client.get("/hello/world")).text == "hello, world\n"
        assert (await client.get("/files/a/b/c.txt")).json() == {"rest": "a/b/c.txt"}
        assert (await client.get("/query?a=1&a=2&b=")).json() == {"a": ["1", "2"], "b": [""]}
        echoed = await client.post("/echo", content=b"\x00binary", headers={"content-type": "x/y"})
        assert (echoed.content, echoed.headers["content-type"]) == (b"\x00binary", "x/y")
        missing = await client.get("/nope")
        assert missing.status_code == 404
        wrong = await client.delete("/echo")
        assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST, PUT")
        head = await client.head("/hello/x")
        assert (
            head.status_code == 200
            and head.content == b""
            and head.headers["content-length"] == "9"
        )


async def test_streamed_response_is_chunked(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=native)
    async with httpx.AsyncClient(base_url=running.url) as client:
        async with client.stream("GET", "/stream") as response:
            assert response.headers["transfer-encoding"] == "chunked"
            assert [line async for line in response.aiter_lines()] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize("path", ["/bytes-like", "/bytes-like?sync"])
async def test_a_streamed_body_may_have_bytes_like_chunks(netsvc_server: Any, path: str) -> None:
    # bytearray and memoryview chunks are sent as bytes, from an async or a
    # sync iterable (the compiled build's send_body takes bytes only: it
    # refused them, a response cut off)
    running = await netsvc_server("http", app=native)
    async with httpx.AsyncClient(base_url=running.url) as client:
        response = await client.get(path)
        assert (response.status_code, response.headers["transfer-encoding"]) == (200, "chunked")
        assert response.content == b"bytes bytearray memoryview\n"


async def test_a_bytes_like_body_is_sent_whole(netsvc_server: Any) -> None:
    # a bytearray body is a body of bytes, with its Content-Length (iterated,
    # it would be streamed as ints)
    running = await netsvc_server("http", app=native)
    async with httpx.AsyncClient(base_url=running.url) as client:
        response = await client.get("/bytes-like?whole")
        assert (response.content, response.headers["content-length"]) == (b"whole\n", "6")


@pytest.mark.server_errors(r"handler for GET /bytes-like failed")
async def test_a_chunk_that_is_not_bytes_is_the_apps_error(netsvc_server: Any) -> None:
    # not sent as that many zero bytes (bytes(3)): the handler failed, and the
    # connection ends without the response
    running = await netsvc_server("http", app=native)
    async with httpx.AsyncClient(base_url=running.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/bytes-like?int")


async def next_event(h: h11.Connection, stream: trio.abc.Stream) -> object:
    """The next event h11 reads from the server, receiving as needed."""
    while (event := h.next_event()) is h11.NEED_DATA:
        h.receive_data(bytes(await stream.receive_some()))
    return event


async def test_streamed_upload_reaches_the_handler_before_it_has_finished(
    netsvc_server: Any,
) -> None:
    # The client sends half the body and waits: /progress streams back how much
    # of the body its handler has read, so a server that buffered the upload
    # before calling the handler would never answer, and the other half would
    # never go.
    running = await netsvc_server("http", app=native)
    stream = await running.connect()
    h = h11.Connection(h11.CLIENT)
    half = b"y" * 10_000
    head = [("host", "x"), ("content-length", str(2 * len(half)))]
    await stream.send_all(
        h.send(h11.Request(method="POST", target="/progress", headers=head))
        + h.send(h11.Data(data=half))
    )
    reported = b""
    with trio.fail_after(3):
        while not reported.endswith(b"%d\n" % len(half)):
            event = await next_event(h, stream)
            assert isinstance(event, h11.Response | h11.Data), event
            if isinstance(event, h11.Data):
                reported += event.data
    await stream.send_all(h.send(h11.Data(data=half)) + h.send(h11.EndOfMessage()))
    with trio.fail_after(3):
        while type(event := await next_event(h, stream)) is not h11.EndOfMessage:
            assert isinstance(event, h11.Data), event
            reported += event.data
    totals = [int(line) for line in reported.split()]
    assert totals == sorted(totals) and totals[-1] == 2 * len(half)
    await stream.aclose()


async def test_keep_alive_reuses_one_connection(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=native)
    async with httpx.AsyncClient(base_url=running.url) as client:
        for i in range(20):
            assert (await client.get(f"/hello/{i}")).status_code == 200
    assert running.server.runtime.counters.connections_total == 1


@pytest.mark.server_errors(r"handler for GET /crash failed")
async def test_handler_error_is_a_500_and_the_server_goes_on(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=native)
    async with httpx.AsyncClient(base_url=running.url) as client:
        failed = await client.get("/crash")
        assert failed.status_code == 500 and failed.headers["connection"] == "close"
        assert (await client.get("/hello/again")).status_code == 200


@pytest.mark.server_errors(r"handler for HEAD /crash failed")
async def test_a_head_request_whose_handler_fails_gets_the_500s_head_alone(
    netsvc_server: Any,
) -> None:
    running = await netsvc_server("http", app=native)
    reply = await exchange(running, b"HEAD /crash HTTP/1.1\r\nhost: x\r\n\r\n")
    head, end, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ") and end and body == b"", reply


def raw(running: RunningServer) -> socket.socket:
    return socket.create_connection(host_port(running.url), timeout=5)


async def exchange(running: RunningServer, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes."""
    stream = await running.connect()
    await stream.send_all(data)
    received = b""
    with trio.move_on_after(wait):
        while chunk := await stream.receive_some():
            received += chunk
    return received


@pytest.mark.parametrize("path", [b"/ignore", b"/hello/x"])  # 200 unread, 405
async def test_an_answer_while_the_client_waits_for_100_continue_ends_the_connection(
    netsvc_server: Any, path: bytes
) -> None:
    # the client may never send the body it announced: the answer says
    # Connection: close, and the server closes after it
    running = await netsvc_server("http", app=native)
    stream = await running.connect()
    await stream.send_all(
        b"POST %b HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n" % path
    )
    reply = b""
    with trio.fail_after(4):
        while chunk := await stream.receive_some():
            reply += chunk
    head = reply.partition(b"\r\n\r\n")[0].lower()
    assert not head.startswith(b"http/1.1 100"), reply
    assert b"\r\nconnection: close" in head, reply


async def test_pipelined_requests_are_answered_in_order(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=native)
    requests = b"".join(b"GET /hello/%d HTTP/1.1\r\nhost: x\r\n\r\n" % i for i in range(5))
    reply = await exchange(
        running, requests + b"GET /hello/end HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in reply.split(b"HTTP/1.1 200 OK\r\n")[1:]]
    assert bodies == [b"hello, %d\n" % i for i in range(5)] + [b"hello, end\n"]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 20_000 + b"\r\n\r\n", b"431"),
        (b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999999\r\n\r\n", b"413"),
    ],
)
async def test_bad_requests_get_the_right_status_and_a_close(data: bytes, status: bytes) -> None:
    async with serve("http", app=native) as running:
        reply = await exchange(running, data)
        assert reply.startswith(b"HTTP/1.1 " + status), reply[:100]
        assert b"connection: close" in reply.lower()
        async with httpx.AsyncClient(base_url=running.url) as client:  # and the server is fine
            assert (await client.get("/hello/ok")).status_code == 200


async def test_chunked_body_over_the_limit_is_413() -> None:
    async with serve("http", app=native, settings={"max_body_size": 1000}) as running:
        chunks = b"".join(b"100\r\n" + b"z" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
        head = b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        reply = await exchange(running, head + chunks)
        assert reply.startswith(b"HTTP/1.1 413")


async def test_slow_headers_get_408() -> None:
    limits = ConnectionLimits(request_timeout=0.3, idle_timeout=5)
    async with serve("http", app=native, limits=limits) as running:
        stream = await running.connect()
        await stream.send_all(b"GET /hello/slow HTTP/1.1\r\n")  # and never the rest
        received = b""
        with trio.fail_after(3):
            while chunk := await stream.receive_some():
                received += chunk
        assert received.startswith(b"HTTP/1.1 408 Request Timeout")


async def test_idle_keep_alive_connection_is_closed_quietly_at_the_idle_timeout() -> None:
    idle = 0.5
    limits = ConnectionLimits(idle_timeout=idle, request_timeout=30)
    async with serve("http", app=native, limits=limits) as running:
        stream = await running.connect()
        await stream.send_all(b"GET /hello/a HTTP/1.1\r\nhost: x\r\n\r\n")
        reply = b""
        with trio.fail_after(3):
            while not reply.endswith(b"hello, a\n"):
                reply += await stream.receive_some()
        answered = trio.current_time()
        rest = b""
        with trio.fail_after(idle + 3):
            while chunk := await stream.receive_some():
                rest += chunk
        elapsed = trio.current_time() - answered
    assert reply.count(b"HTTP/1.1") == 1 and rest == b""  # the answer, then a close without a 408
    # the idle clock starts once the response is out; the core reads the clock
    # once per watchdog tick (50ms), later still on a busy machine
    assert idle - 0.2 <= elapsed < idle + 0.4


async def test_over_the_connection_limit_gets_503() -> None:
    limits = ConnectionLimits(max_connections=1)
    async with serve("http", app=native, limits=limits) as running:
        holder = await running.connect()
        await holder.send_all(b"GET /hello/a HTTP/1.1\r\nhost: x\r\n\r\n")
        await holder.receive_some()
        reply = await exchange(running, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503 Service Unavailable")


async def test_client_that_never_reads_is_dropped() -> None:
    limits = ConnectionLimits(send_timeout=0.5)
    async with serve("http", app=native, limits=limits) as running:
        hog = await running.connect()
        await hog.send_all(b"GET /big?n=50000000 HTTP/1.1\r\nhost: x\r\n\r\n")  # never read
        with trio.fail_after(5):
            while running.server.runtime.counters.connections_open:
                await trio.sleep(0.05)
        async with httpx.AsyncClient(base_url=running.url) as client:
            assert (await client.get("/hello/ok")).status_code == 200


async def test_graceful_shutdown_finishes_the_response_and_closes() -> None:
    async with serve("http", app=native, graceful_timeout=5) as running:
        idle = await running.connect()
        await idle.send_all(b"GET /hello/a HTTP/1.1\r\nhost: x\r\n\r\n")
        await idle.receive_some()
        busy = await running.connect()
        await busy.send_all(b"GET /slow?s=0.5 HTTP/1.1\r\nhost: x\r\n\r\n")
        await trio.sleep(0.1)
        running.server.shutdown()
        with trio.fail_after(2):
            assert await idle.receive_some() == b""  # idle keep-alive: closed at once
        reply = b""
        with trio.fail_after(3):
            while chunk := await busy.receive_some():
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"done\n")
        assert b"connection: close" in reply.lower()


async def test_access_log_can_be_turned_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="netsvc.http.access")
    async with serve("http", app=native, settings={"access_log": False}) as running:
        async with httpx.AsyncClient(base_url=running.url) as client:
            await client.get("/hello/quiet")
    assert not [r for r in caplog.records if r.name == "netsvc.http.access"]
    async with serve("http", app=native) as running:
        async with httpx.AsyncClient(base_url=running.url) as client:
            await client.get("/hello/loud")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "netsvc.http.access"]
    assert '"GET /hello/loud HTTP/1.1" 200 12 ' in line


def curl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    path = shutil.which("curl")
    if path is None:
        pytest.fail("curl is missing: ./dev test installs it (Debian package curl)")
    return subprocess.run([path, "-sS", *args], input=stdin, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def http_url() -> Any:
    args = ["--protocol", "http", "--port", "0", "--app", "tests.protocols.http.apps:native"]
    with ServeProcess(args) as server:
        yield server.urls[0]


def test_curl_http_1_0(http_url: str) -> None:
    result = curl("--http1.0", "-i", f"{http_url}/hello/old")
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"hello, old\n"


def test_curl_chunked_upload_with_expect_100(http_url: str) -> None:
    payload = b"p" * 200_000
    result = curl(
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        "@-",
        f"{http_url}/count",
        stdin=payload,
    )
    assert result.returncode == 0, result.stderr
    assert b'"bytes":200000' in result.stdout


def test_curl_keep_alive_across_requests(http_url: str) -> None:
    result = curl("-v", f"{http_url}/hello/1", f"{http_url}/hello/2")
    assert result.stdout == b"hello, 1\nhello, 2\n"
    assert b"Re-using existing connection" in result.stderr or b"Reusing existing" in result.stderr


def test_httpx_sync_client(http_url: str) -> None:
    with httpx.Client(base_url=http_url) as client:
        assert client.get("/hello/sync").text == "hello, sync\n"
        assert client.put("/echo", content=b"put").content == b"put"


async def test_a_head_sent_byte_by_byte_in_time_is_served() -> None:
    limits = ConnectionLimits(request_timeout=5)
    async with serve("http", app=native, limits=limits) as running:
        stream = await running.connect()
        for byte in b"GET /hello/bytes HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n":
            await stream.send_all(bytes([byte]))
        reply = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some():
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b"hello, bytes\n")


async def test_a_body_that_stops_coming_gets_408() -> None:
    limits = ConnectionLimits(request_timeout=0.4)
    async with serve("http", app=native, limits=limits) as running:
        stream = await running.connect()
        await stream.send_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n")
        for _ in range(3):  # progress keeps it alive...
            await trio.sleep(0.2)
            await stream.send_all(b"0123456789")
        reply = b""  # ...then nothing more: the body never finishes
        with trio.fail_after(3):
            while chunk := await stream.receive_some():
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 408 Request Timeout")


async def test_no_content_has_no_content_length(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=native)
    reply = await exchange(
        running, b"GET /nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 204 No Content")
    assert b"content-length" not in reply.lower()


@pytest.mark.server_errors(r"handler for GET /badheader failed")
async def test_a_response_h11_refuses_becomes_a_500(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=native)
    reply = await exchange(running, b"GET /badheader HTTP/1.1\r\nhost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 500") and b"stolen" not in reply


class SyncHttp:
    """One keep-alive HTTP/1.1 connection over a blocking socket, parsed by h11."""

    def __init__(self, url: str) -> None:
        self.sock = socket.create_connection(host_port(url), timeout=5)
        self.h = h11.Connection(h11.CLIENT)

    def request(self, method: str, target: str, body: bytes = b"") -> None:
        headers = [("host", "x"), ("content-length", str(len(body)))]
        data = self.h.send(h11.Request(method=method, target=target, headers=headers))
        if body:
            data += self.h.send(h11.Data(data=body))
        self.sock.sendall(data + self.h.send(h11.EndOfMessage()))

    def response(self) -> tuple[int, bytes]:
        """The next whole response's status and body; ready for another request."""
        status, body = 0, b""
        while True:
            event = self.h.next_event()
            if event is h11.NEED_DATA:
                self.h.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                if self.h.our_state is h11.DONE and self.h.their_state is h11.DONE:
                    self.h.start_next_cycle()
                return status, body
            else:
                raise AssertionError(f"unexpected {event!r}")

    def close(self) -> None:
        self.sock.close()


def test_an_unread_small_body_is_drained_and_the_connection_kept(http_url: str) -> None:
    client = SyncHttp(http_url)
    try:
        client.request("POST", "/ignore", b"b" * 1000)  # the handler never reads it
        assert client.response() == (200, b"ignored\n")
        client.request("GET", "/hello/next")  # on the same connection
        assert client.response() == (200, b"hello, next\n")
        client.request("POST", "/echo", b"after")
        assert client.response() == (200, b"after")
    finally:
        client.close()


def test_an_unread_body_over_the_drain_limit_closes_after_the_response(http_url: str) -> None:
    client = SyncHttp(http_url)
    try:
        client.request("POST", "/ignore", b"b" * 200_000)  # more than the 64 KiB drained
        assert client.response() == (200, b"ignored\n")
        answered = time.monotonic()
        client.sock.sendall(b"GET /hello/again HTTP/1.1\r\nhost: x\r\n\r\n")  # not answered:
        assert client.sock.recv(65536) == b""  # the server closes (cleanly) after the response
        assert time.monotonic() - answered < 2  # at once, not at the idle timeout (5s)
    finally:
        client.close()
