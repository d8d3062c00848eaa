# WebSockets on the HTTP plugin, native routes (@app.websocket), with the
# real `websockets` client (its sync client, in a thread) and raw sockets for
# what a polite client never does: frames sent with the handshake, a
# handshake one byte at a time, invalid UTF-8, pings never answered, a
# client that never reads. Also the core's deadlines and limits on a
# WebSocket, and the 1001 close at SIGTERM of a `netsvc serve` subprocess.
from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import trio
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from netsvc import ConnectionLimits
from netsvc.testing import RunningServer, serve
from protocols.http import HttpApp, Request, Response, WebSocket, WebSocketDisconnect
from tests.serveprocess import ServeProcess, run_netsvc

log = logging.getLogger("tests.websocket")
T = TypeVar("T")

# -- the app (served in process, and by `netsvc serve --app` below) -----------------


class Seen:
    """What the handlers saw, for the test to check: the close each saw."""

    def __init__(self) -> None:
        self.closes: list[tuple[int, str]] = []
        self._changed = trio.Event()

    def close(self, code: int, reason: str) -> None:
        log.info("the handler saw close %d %r", code, reason)
        self.closes.append((code, reason))
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int) -> list[tuple[int, str]]:
        """The closes seen, once there are `count` of them."""
        with trio.fail_after(10):
            while len(self.closes) < count:
                await self._changed.wait()
        return self.closes


seen = Seen()
app = HttpApp()


@app.route("/hello")
async def hello(request: Request) -> str:
    return "plain http\n"


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    """Echoes each message; picks v1 from the offered subprotocols if it can."""
    await ws.accept(subprotocol="v1" if "v1" in ws.subprotocols else None)
    try:
        while True:
            await ws.send(await ws.receive())
    except WebSocketDisconnect as exc:
        seen.close(exc.code, exc.reason)
        raise  # an ordinary end for the server


@app.websocket("/rooms/{room}")
async def room(ws: WebSocket) -> None:
    """Iterates; greets with the path, query and a header of the handshake."""
    await ws.accept(headers={"x-room": ws.path_params["room"]})
    await ws.send(f"{ws.path_params['room']} {ws.query['who'][0]} {ws.headers.get('x-hi')}")
    async for message in ws:
        await ws.send(message)
    assert ws.close_code is not None
    seen.close(ws.close_code, ws.close_reason)


@app.websocket("/closing")
async def closing(ws: WebSocket) -> None:
    """Closes with the code and reason the client asks for."""
    await ws.accept()
    code, _, reason = str(await ws.receive()).partition(" ")
    await ws.close(int(code), reason)
    with pytest.raises(WebSocketDisconnect) as closed:
        await ws.send("after the close")
    seen.close(closed.value.code, closed.value.reason)


@app.websocket("/refuse")
async def refuse(ws: WebSocket) -> None:
    await ws.close()  # before accept(): 403


@app.websocket("/forget")
async def forget(ws: WebSocket) -> None:
    pass  # returns without answering: 403


@app.websocket("/deny")
async def deny(ws: WebSocket) -> None:
    await ws.deny(Response("who are you?\n", status=401, headers={"www-authenticate": "Basic"}))


@app.websocket("/crash-before")
async def crash_before(ws: WebSocket) -> None:
    raise ValueError("boom before accept")


@app.websocket("/crash-after")
async def crash_after(ws: WebSocket) -> None:
    await ws.accept()
    await ws.receive()
    raise ValueError("boom after accept")


@app.websocket("/flood")
async def flood(ws: WebSocket) -> None:
    """Sends until the client stops reading; says how that ended."""
    await ws.accept()
    try:
        while True:
            await ws.send(b"x" * 65536)
    except WebSocketDisconnect as exc:
        seen.close(exc.code, exc.reason)


@app.websocket("/goodbye")
async def goodbye(ws: WebSocket) -> None:
    """Returns at once: the server closes with 1000."""
    await ws.accept()


# -- helpers ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_record() -> Iterator[None]:
    global seen
    seen = Seen()
    yield


def ws_url(running: RunningServer | str, path: str) -> str:
    url = running if isinstance(running, str) else running.url
    return url.replace("http", "ws", 1) + path  # http://... is ws://..., https://... wss://...


async def in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking client call, run in a thread so the server (in this trio loop) runs."""
    return await trio.to_thread.run_sync(functools.partial(call, *args, **kwargs))


def client(url: str, **kwargs: Any) -> ClientConnection:
    """The websockets client, without its own keepalive unless asked."""
    kwargs.setdefault("ping_interval", None)
    return connect(url, open_timeout=10, close_timeout=10, **kwargs)


def closed_by_server(ws: ClientConnection) -> tuple[int, str]:
    """Wait for the server to close; the code and reason it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None, "no close frame from the server"
    return closed.value.rcvd.code, closed.value.rcvd.reason


def refusal(url: str) -> tuple[int, dict[str, str], bytes]:
    """The HTTP response a refused handshake gets."""
    with pytest.raises(InvalidStatus) as refused:
        client(url)
    response = refused.value.response
    return response.status_code, dict(response.headers.raw_items()), response.body or b""


KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example
ACCEPT = base64.b64encode(hashlib.sha1(KEY + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())


def handshake(path: str = "/echo", *extra: bytes) -> bytes:
    return b"\r\n".join(
        [
            b"GET %b HTTP/1.1" % path.encode(),
            b"Host: 127.0.0.1",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Key: " + KEY,
            b"Sec-WebSocket-Version: 13",
            *extra,
            b"",
            b"",
        ]
    )


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame (masked, as RFC 6455 requires of clients)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        size = bytes([0x80 | length])
    elif length < 65536:
        size = bytes([0x80 | 126]) + length.to_bytes(2, "big")
    else:
        size = bytes([0x80 | 127]) + length.to_bytes(8, "big")
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([(0x80 if fin else 0) | opcode]) + size + mask + masked


TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each whole frame the server sent (unmasked)."""
    frames = []
    i = 0
    while i + 2 <= len(data):
        opcode, length = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if length in (126, 127):
            width = 2 if length == 126 else 8
            length = int.from_bytes(data[i : i + width], "big")
            i += width
        if i + length > len(data):
            break
        frames.append((opcode, data[i : i + length]))
        i += length
    return frames


def close_payload(payload: bytes) -> tuple[int, str]:
    return int.from_bytes(payload[:2], "big"), payload[2:].decode()


async def read_response_head(stream: trio.abc.Stream) -> tuple[bytes, bytes]:
    """The HTTP response head the server sent, and the bytes after it."""
    data = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            assert chunk, f"the server closed after {data!r}"
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


async def read_to_end(stream: trio.abc.Stream, data: bytes = b"") -> bytes:
    with trio.fail_after(10):
        while chunk := await stream.receive_some():
            data += chunk
    return data


async def open_websocket(
    running: RunningServer, path: str = "/echo"
) -> tuple[trio.abc.Stream, bytes]:
    """A raw client past the handshake: its stream, and bytes after the 101."""
    stream = await running.connect()
    await stream.send_all(handshake(path))
    head, rest = await read_response_head(stream)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return stream, rest


# -- messages --------------------------------------------------------------------


async def test_echo_text_bytes_fragments_and_pings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="netsvc.http.access")

    def talk(url: str) -> list[object]:
        with client(url) as ws:
            ws.send("héllo")
            text = ws.recv(timeout=10)
            ws.send(b"\x00\xff")
            data = ws.recv(timeout=10)
            ws.send(["frag", "ment", "ed"])  # one message in three frames
            fragmented = ws.recv(timeout=10)
            pong = ws.ping(b"are you there")
            answered = pong.wait(10)
            ws.send(b"after the ping")
            last = ws.recv(timeout=10)
        return [text, data, fragmented, answered, last]

    async with serve("http", app=app) as running:
        assert await in_thread(talk, ws_url(running, "/echo")) == [
            "héllo",
            b"\x00\xff",
            "fragmented",
            True,
            b"after the ping",
        ]
        assert await seen.wait_for(1) == [(1000, "")]  # the client's close
    (line,) = [r.getMessage() for r in caplog.records if r.name == "netsvc.http.access"]
    assert '"GET /echo HTTP/1.1" 101 0 ' in line


async def test_control_frames_inside_a_fragmented_message_and_frames_sent_with_the_handshake(
    netsvc_server: Any,
) -> None:
    # The first frames go out in the same write as the handshake (h11 has
    # them buffered past the request head when wsproto takes over); a ping
    # comes between two fragments of a message.
    running = await netsvc_server("http", app=app)
    stream = await running.connect()
    await stream.send_all(
        handshake()
        + frame(TEXT, b"hel", fin=False)
        + frame(PING, b"p1")
        + frame(0x0, b"lo")  # the continuation that ends the message
    )
    head, rest = await read_response_head(stream)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"\r\nSec-WebSocket-Accept: " + ACCEPT in head
    with trio.fail_after(10):
        while len(server_frames(rest)) < 2:
            rest += await stream.receive_some()
    assert server_frames(rest)[:2] == [(PONG, b"p1"), (TEXT, b"hello")]


async def test_a_handshake_one_byte_at_a_time(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=app)
    stream = await running.connect()
    for byte in handshake():
        await stream.send_all(bytes([byte]))
        await trio.sleep(0.001)  # separate segments: the server reads the head in pieces
    head, rest = await read_response_head(stream)
    assert head.startswith(b"HTTP/1.1 101 ")
    await stream.send_all(frame(TEXT, b"whole"))
    with trio.fail_after(10):
        while not server_frames(rest):
            rest += await stream.receive_some()
    assert server_frames(rest) == [(TEXT, b"whole")]


async def test_subprotocol_and_accept_headers_and_the_handshake_request() -> None:
    def negotiate(url: str, offered: list[str] | None) -> str | None:
        with client(url, subprotocols=offered) as ws:
            return ws.subprotocol

    def room_details(url: str) -> tuple[str, str | None]:
        with client(url, additional_headers={"x-hi": "hey"}) as ws:
            greeting = ws.recv(timeout=10)
            assert ws.response is not None
            return str(greeting), ws.response.headers.get("x-room")

    async with serve("http", app=app) as running:
        url = ws_url(running, "/echo")
        assert await in_thread(negotiate, url, ["v2", "v1"]) == "v1"
        assert await in_thread(negotiate, url, ["v3"]) is None
        assert await in_thread(negotiate, url, None) is None
        room_url = ws_url(running, "/rooms/kitchen?who=ada")
        assert await in_thread(room_details, room_url) == ("kitchen ada hey", "kitchen")


async def test_permessage_deflate_is_negotiated_unless_turned_off() -> None:
    text = "compress me " * 10_000

    def extensions_and_echo(url: str) -> tuple[list[str], str | None, object]:
        with client(url) as ws:
            ws.send(text)
            echoed = ws.recv(timeout=10)
            assert ws.response is not None
            names = [extension.name for extension in ws.protocol.extensions]
            return names, ws.response.headers.get("sec-websocket-extensions"), echoed

    async with serve("http", app=app) as running:
        names, header, echoed = await in_thread(extensions_and_echo, ws_url(running, "/echo"))
    assert names == ["permessage-deflate"] and header is not None
    assert header.startswith("permessage-deflate")
    assert echoed == text
    async with serve("http", app=app, settings={"ws_per_message_deflate": False}) as running:
        names, header, echoed = await in_thread(extensions_and_echo, ws_url(running, "/echo"))
    assert (names, header, echoed) == ([], None, text)


# -- closing ---------------------------------------------------------------------


async def test_close_codes_both_ways() -> None:
    def client_closes(url: str) -> None:
        with client(url) as ws:
            ws.close(4000, "client leaves")

    def server_closes(url: str) -> tuple[int, str]:
        with client(url) as ws:
            ws.send("4001 handler leaves")
            return closed_by_server(ws)

    async with serve("http", app=app) as running:
        await in_thread(client_closes, ws_url(running, "/rooms/a?who=b"))
        # seen through `async for`, and close_code
        assert await seen.wait_for(1) == [(4000, "client leaves")]
        assert await in_thread(server_closes, ws_url(running, "/closing")) == (
            4001,
            "handler leaves",
        )
        # a send after its own close raises WebSocketDisconnect with that close
        assert (await seen.wait_for(2))[1] == (4001, "handler leaves")


async def test_a_handler_that_returns_closes_with_1000() -> None:
    def returned(url: str) -> tuple[int, str]:
        with client(url) as ws:
            return closed_by_server(ws)

    async with serve("http", app=app) as running:
        assert await in_thread(returned, ws_url(running, "/goodbye")) == (1000, "")


async def test_a_client_that_leaves_without_a_close_frame_is_1006(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=app)
    stream, _ = await open_websocket(running)
    await stream.aclose()
    assert await seen.wait_for(1) == [(1006, "")]


async def test_a_message_over_the_limit_closes_with_1009() -> None:
    def send(url: str, message: bytes | list[bytes]) -> tuple[object, tuple[int, str] | None]:
        with client(url, max_size=None) as ws:
            ws.send(message)
            try:
                return ws.recv(timeout=10), None
            except ConnectionClosed as exc:
                assert exc.rcvd is not None
                return None, (exc.rcvd.code, exc.rcvd.reason)

    settings = {"ws_max_message_size": 1000, "ws_per_message_deflate": False}
    async with serve("http", app=app, settings=settings) as running:
        url = ws_url(running, "/echo")
        assert await in_thread(send, url, b"x" * 1000) == (b"x" * 1000, None)
        too_big = (None, (1009, "the message is larger than 1000 bytes"))
        assert await in_thread(send, url, b"x" * 1001) == too_big
        assert await seen.wait_for(2) == [
            (1000, ""),
            (1009, "the message is larger than 1000 bytes"),
        ]
        # fragments count together, and text by its UTF-8 bytes
        assert await in_thread(send, url, [b"x" * 600, b"x" * 401]) == too_big
        assert await in_thread(send, url, "é" * 501) == too_big


async def test_text_that_is_not_utf8_closes_with_1007(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=app)
    stream, rest = await open_websocket(running)
    await stream.send_all(frame(TEXT, b"ok \xff\xfe"))
    frames = server_frames(await read_to_end(stream, rest))
    assert [opcode for opcode, _ in frames] == [CLOSE]
    assert close_payload(frames[0][1])[0] == 1007
    assert (await seen.wait_for(1))[0][0] == 1007


async def test_a_client_that_does_not_answer_pings_is_closed_with_1011(
    netsvc_server: Any,
) -> None:
    # This raw client completes the handshake, then neither reads nor answers.
    settings = {"ws_ping_interval": 0.2, "ws_ping_timeout": 0.5}
    running = await netsvc_server("http", app=app, settings=settings)
    stream, rest = await open_websocket(running)
    started = trio.current_time()
    assert await seen.wait_for(1) == [(1011, "keepalive ping timeout")]
    assert trio.current_time() - started >= 0.6
    frames = server_frames(await read_to_end(stream, rest))  # then the server's end
    assert frames[0][0] == PING and frames[-1][0] == CLOSE
    assert close_payload(frames[-1][1]) == (1011, "keepalive ping timeout")


async def test_a_client_that_answers_pings_stays(netsvc_server: Any) -> None:
    # The websockets client answers the server's pings by itself: a quiet
    # WebSocket outlives many ping timeouts.
    settings = {"ws_ping_interval": 0.2, "ws_ping_timeout": 1.0}
    running = await netsvc_server("http", app=app, settings=settings)

    def quiet(url: str) -> object:
        with client(url) as ws:
            time.sleep(2.5)  # unanswered, the first ping would close it after 1.2s
            ws.send("still here")
            return ws.recv(timeout=10)

    assert await in_thread(quiet, ws_url(running, "/echo")) == "still here"


# -- refusing the handshake ------------------------------------------------------


async def test_refusals_403_and_a_denial_response() -> None:
    async with serve("http", app=app) as running:
        status, _, body = await in_thread(refusal, ws_url(running, "/refuse"))
        assert status == 403 and body.startswith(b"403 Forbidden")
        assert (await in_thread(refusal, ws_url(running, "/forget")))[0] == 403
        status, headers, body = await in_thread(refusal, ws_url(running, "/deny"))
        assert (status, headers["www-authenticate"], body) == (401, "Basic", b"who are you?\n")


@pytest.mark.server_errors(
    r"WebSocket handler for /crash-before failed(.|\n)*boom before accept",
    r"WebSocket handler for /crash-after failed(.|\n)*boom after accept",
)
async def test_a_failing_handler_is_500_before_accepting_and_1011_after() -> None:
    def crash_after_accept(url: str) -> tuple[int, str]:
        with client(url) as ws:
            ws.send("go")
            return closed_by_server(ws)

    async with serve("http", app=app) as running:
        assert (await in_thread(refusal, ws_url(running, "/crash-before")))[0] == 500
        assert await in_thread(crash_after_accept, ws_url(running, "/crash-after")) == (
            1011,
            "internal server error",
        )
        assert running.server.runtime.counters.errors == 2


async def test_bad_handshakes_are_refused_as_uvicorn_does(netsvc_server: Any) -> None:
    # wsproto checks the handshake: 400, or 426 naming the version it speaks
    running = await netsvc_server("http", app=app)
    cases = {
        b"Sec-WebSocket-Version: 13": b"HTTP/1.1 400 ",  # no key
        b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 8": b"HTTP/1.1 426 ",
        b"Sec-WebSocket-Key: " + KEY: b"HTTP/1.1 400 ",  # no version
    }
    for headers, status in cases.items():
        stream = await running.connect()
        request = (
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n%b\r\n\r\n" % headers
        )
        await stream.send_all(request)
        response = await read_to_end(stream)  # and the connection closes
        assert response.startswith(status), (headers, response)
        if status == b"HTTP/1.1 426 ":
            assert b"sec-websocket-version: 13\r\n" in response.lower()
    stream = await running.connect()  # not a GET
    await stream.send_all(handshake().replace(b"GET ", b"PUT ", 1))
    assert (await read_to_end(stream)).startswith(b"HTTP/1.1 400 ")


async def test_an_upgrade_to_a_path_without_websocket_route_is_plain_http(
    netsvc_server: Any,
) -> None:
    running = await netsvc_server("http", app=app)
    upgrade = {"upgrade": "websocket", "connection": "upgrade"}
    async with httpx.AsyncClient(base_url=running.url) as http:
        hello = await http.get("/hello", headers=upgrade)
        assert (hello.status_code, hello.text) == (200, "plain http\n")
        assert (await http.get("/nowhere", headers=upgrade)).status_code == 404


# -- the core's limits and deadlines on a WebSocket --------------------------------


async def test_idle_and_request_deadlines_do_not_cut_a_websocket() -> None:
    limits = ConnectionLimits(idle_timeout=0.3, request_timeout=0.3)

    def slow_fragments() -> Iterator[str]:
        yield "slow"
        time.sleep(1.0)  # a message that takes longer than the request deadline
        yield " fragments"

    def slow(url: str) -> list[object]:
        with client(url) as ws:
            time.sleep(1.0)  # idle well past both deadlines
            ws.send("after a pause")
            echoed = [ws.recv(timeout=10)]
            ws.send(slow_fragments())
            echoed.append(ws.recv(timeout=10))
            return echoed

    settings = {"ws_ping_interval": 0}
    async with serve("http", app=app, limits=limits, settings=settings) as running:
        url = ws_url(running, "/echo")
        assert await in_thread(slow, url) == ["after a pause", "slow fragments"]


async def test_a_slow_handshake_gets_408_as_any_request(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=app, limits=ConnectionLimits(request_timeout=0.3))
    stream = await running.connect()
    await stream.send_all(handshake()[:40])  # half a head, then nothing
    assert (await read_to_end(stream)).startswith(b"HTTP/1.1 408 ")


async def test_the_connection_limit_counts_websockets(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=app, limits=ConnectionLimits(max_connections=1))
    stream, _ = await open_websocket(running)
    refused = await running.connect()
    await refused.send_all(handshake())
    assert (await read_to_end(refused)).startswith(b"HTTP/1.1 503 ")
    await stream.send_all(frame(TEXT, b"still served"))
    data = b""
    with trio.fail_after(10):
        while not server_frames(data):
            data += await stream.receive_some()
    assert server_frames(data) == [(TEXT, b"still served")]


async def test_a_client_that_does_not_read_is_dropped_at_the_send_timeout(
    netsvc_server: Any,
) -> None:
    limits = ConnectionLimits(send_timeout=0.5)
    running = await netsvc_server("http", app=app, limits=limits, settings={"ws_ping_interval": 0})
    stream, _ = await open_websocket(running, "/flood")
    # the handler's send failed: 1006, as no close frame came
    assert await seen.wait_for(1) == [(1006, "")]
    await stream.aclose()


async def test_messages_count_as_requests(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=app)

    def three(url: str) -> None:
        with client(url) as ws:
            for message in ("a", "b", ["c", "d"]):
                ws.send(message)
                ws.recv(timeout=10)

    await in_thread(three, ws_url(running, "/echo"))
    await seen.wait_for(1)
    assert running.server.runtime.counters.requests == 1 + 3  # the upgrade, the messages


# -- shutdown ----------------------------------------------------------------------


def test_sigterm_closes_open_websockets_with_1001() -> None:
    args = ["--protocol", "http", "--port", "0", "--app", "tests.protocols.http.test_websocket:app"]
    with ServeProcess([*args, "--graceful-timeout", "20"]) as server:
        url = ws_url(server.urls[0], "/echo")
        with client(url) as first, client(url) as second:
            first.send("hi")
            assert first.recv(timeout=10) == "hi"
            started = time.monotonic()
            server.signal(signal.SIGTERM)
            assert closed_by_server(first) == (1001, "server shutting down")
            assert closed_by_server(second) == (1001, "server shutting down")
        assert server.wait(timeout=15) == 0
        assert time.monotonic() - started < 5  # not the grace period: the handlers ended
    assert server.log.count("the handler saw close 1001 'server shutting down'") == 2
    assert "grace period over" not in server.log


def test_settings_from_the_environment_and_the_command_line() -> None:
    env = {"NETSVC_HTTP_WS_MAX_MESSAGE_SIZE": "10"}
    args = ["--protocol", "http", "--port", "0", "--app", "tests.protocols.http.test_websocket:app"]
    with ServeProcess([*args, "--http-ws-per-message-deflate", "false"], env=env) as server:
        with client(ws_url(server.urls[0], "/echo")) as ws:
            assert ws.response is not None
            assert "sec-websocket-extensions" not in ws.response.headers
            ws.send(b"x" * 10)
            assert ws.recv(timeout=10) == b"x" * 10
            ws.send(b"x" * 11)
            assert closed_by_server(ws) == (1009, "the message is larger than 10 bytes")
    refused = run_netsvc(
        "serve", "--protocol", "http", "--port", "0", "--http-ws-ping-timeout", "-1"
    )
    assert refused.returncode == 2
    assert "--http-ws-ping-timeout: expected 0 (off) or more seconds, got -1" in refused.stderr
