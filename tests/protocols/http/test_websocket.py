# WebSockets on the HTTP plugin, native routes (@app.websocket), with the
# real `websockets` client (its sync client, in a thread) and raw sockets for
# what a polite client never does: frames sent with the handshake, a
# handshake one byte at a time, invalid UTF-8, pings never answered, a
# client that never reads, a flood of compressed messages to a handler that
# does not read (bounded memory; the client's end still seen). Also the
# core's deadlines and limits on a WebSocket, and the 1001 close at SIGTERM
# of a `netsvc serve` subprocess. Client helpers: wsclient.py.
from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from websockets.exceptions import ConnectionClosed

from netsvc import ConnectionLimits
from netsvc.testing import serve
from protocols.http import HttpApp, Request, Response, WebSocket, WebSocketDisconnect
from tests.protocols.http.wsclient import (
    ACCEPT,
    BINARY,
    CLOSE,
    CONTINUATION,
    DEFLATE,
    KEY,
    PING,
    PONG,
    TEXT,
    Recorder,
    Tally,
    client,
    close_payload,
    closed_after_sending,
    closed_by_server,
    deflated,
    flood_and_tally,
    flood_messages,
    frame,
    handshake,
    in_thread,
    open_raw_websocket,
    open_websocket,
    read_response_head,
    read_to_end,
    refusal,
    reset,
    send_until_blocked,
    send_until_blocked_sync,
    server_frames,
    ws_url,
)
from tests.serveprocess import ServeProcess, run_netsvc

# (test_proxy_headers.py imports client, in_thread and ws_url from here)

log = logging.getLogger("tests.websocket")
MiB = 1024 * 1024

# -- the app (served in process, and by `netsvc serve --app` below) -----------------


class Seen(Recorder):
    """What the handlers saw, for the test to check: the close each saw;
    `read_now` tells the sink to read."""

    def __init__(self) -> None:
        super().__init__()
        self.read_now = trio.Event()

    def close(self, code: int, reason: str) -> None:
        log.info("the handler saw close %d %r", code, reason)
        self.add((code, reason))


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


@app.websocket("/sink")
async def sink(ws: WebSocket) -> None:
    """Reads nothing while the WebSocket is open (close_code says when it
    has closed) or until told to, then every message; says how many there
    were."""
    await ws.accept()
    while ws.close_code is None and not seen.read_now.is_set():
        await trio.sleep(0.02)
    left = [len(message) async for message in ws]
    log.info("the sink saw close %d with %d messages unread", ws.close_code, len(left))
    seen.add(("sink", ws.close_code, left))


@app.websocket("/tally")
async def tally(ws: WebSocket) -> None:
    """Reads every message, lagging behind the client; answers "end" with
    its tally of them (see wsclient.flood_and_tally)."""
    await ws.accept()
    seen_so_far = Tally()
    async for message in ws:
        if message == "end":
            await ws.send(seen_so_far.reply())
            continue
        seen_so_far.add(message)
        if seen_so_far.count % 4 == 0:
            await trio.sleep(0.01)


@app.websocket("/slow-reader")
async def slow_reader(ws: WebSocket) -> None:
    """Waits until told to read (seen.read_now), then reads every message
    slowly; records them and the close it saw."""
    await ws.accept()
    await seen.read_now.wait()
    messages = []
    try:
        while True:
            messages.append(await ws.receive())
            await trio.sleep(0.005)
    except WebSocketDisconnect as exc:
        seen.add(("slow-reader", exc.code, exc.reason, messages))


# -- helpers ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_record() -> Iterator[None]:
    global seen
    seen = Seen()
    yield


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
    async with serve("http", app=app) as running:
        assert (await in_thread(refusal, ws_url(running, "/crash-before")))[0] == 500
        assert await in_thread(closed_after_sending, ws_url(running, "/crash-after"), "go") == (
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


# -- a handler that lags: its inbox ------------------------------------------------

# ~8 KiB on the wire, 8 MiB once inflated: the review's memory attack
ZEROS = frame(BINARY, deflated(bytes(8 * MiB)), rsv1=True)


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def test_compressed_messages_to_a_handler_that_does_not_read_take_bounded_memory() -> None:
    # The handler's inbox holds one max-size message's worth (16 MiB here):
    # then the server stops reading, TCP pushes back and the client's sends
    # block. The server's peak memory grows by that, and by the message that
    # did not fit, inflated (wsproto copies it twice as it does): about 40
    # MiB, however many the client sends; with 16 messages unread, as a
    # count alone allowed, it grew by 170 MiB.
    args = ["--protocol", "http", "--port", "0", "--app", "tests.protocols.http.test_websocket:app"]
    with ServeProcess(args) as server:
        with client(
            ws_url(server.urls[0], "/echo"), max_size=None
        ) as warm_up:  # deflate's buffers, once
            warm_up.send(bytes(8 * MiB))
            assert warm_up.recv(timeout=10) == bytes(8 * MiB)
        before = memory_kib(server.proc.pid, "VmRSS")
        sock = open_raw_websocket(server.urls[0], "/sink", DEFLATE)
        sent = send_until_blocked_sync(sock, ZEROS)
        grown = (memory_kib(server.proc.pid, "VmHWM") - before) // 1024
        sock.close()
        server.wait_for_log("the sink saw close 1006 with 2 messages unread")
    log.info(
        "%d messages of 8 MiB sent before the client blocked; the server grew %d MiB", sent, grown
    )
    assert sent > 10  # many more than the inbox took: the server stopped reading
    assert grown < 48, f"the server's memory grew by {grown} MiB"


def test_a_message_in_one_character_fragments_takes_memory_as_its_size() -> None:
    # fragments are reassembled in one buffer: a text message sent one "€"
    # per frame grows the server by a few times its size, not by the ~50
    # bytes of a str per fragment (29x its size, before)
    fragments = 300_000
    args = ["--protocol", "http", "--port", "0", "--http-ws-ping-interval", "0"]
    args += ["--app", "tests.protocols.http.test_websocket:app"]
    with ServeProcess(args) as server:
        sock = open_raw_websocket(server.urls[0], "/echo")
        sock.settimeout(60)
        before = memory_kib(server.proc.pid, "VmRSS")
        one = "€".encode()
        frames = [frame(TEXT, one, fin=False)]
        frames += [frame(CONTINUATION, one, fin=False)] * (fragments - 2)
        frames.append(frame(CONTINUATION, one))
        sock.sendall(b"".join(frames))
        echoed = b""
        while len(echoed) < 3 * fragments:  # the echo's payload, framed
            chunk = sock.recv(1 << 20)
            assert chunk, "the server closed the connection"
            echoed += chunk
        grown = memory_kib(server.proc.pid, "VmHWM") - before
        sock.close()
    assert grown * 1024 < 8 * 3 * fragments, f"grew {grown} KiB for a {3 * fragments}-byte message"


@pytest.mark.parametrize("leave", ["close", "reset", "close-early"])
async def test_a_client_that_leaves_while_the_handler_does_not_read_is_heard_of(
    netsvc_server: Any, leave: str
) -> None:
    # The handler reads nothing while the client sends until TCP pushes back
    # and leaves without a close frame: its FIN waits behind what it could
    # not send (close), or it resets the connection (reset). Yet the
    # WebSocket closes with 1006 within seconds (close_code, and the
    # handler's receive() after the messages its inbox held), not never: the
    # server's probes meet the client's reset. A client that leaves after a
    # few messages (close-early) has all it sent read ahead: the handler
    # gets every message, then 1006, as soon as it reads.
    running = await netsvc_server("http", app=app)
    stream, _ = await open_websocket(running, "/sink", DEFLATE)
    if leave == "close-early":
        await stream.send_all(ZEROS * 5)
    else:
        assert await send_until_blocked(stream, ZEROS) > 10
    if leave == "reset":
        reset(stream)
    else:  # what the server sent is read, or closing would reset the connection
        with trio.move_on_after(0.05):
            while await stream.receive_some():
                pass
    await stream.aclose()
    left = trio.current_time()
    if leave == "close-early":
        await trio.sleep(0.2)  # the read-ahead meets the client's end meanwhile
        seen.read_now.set()
        assert await seen.wait_for(1) == [("sink", 1006, [8 * MiB] * 5)]
        assert trio.current_time() - left < 1.5
        return
    assert await seen.wait_for(1) == [("sink", 1006, [8 * MiB, 8 * MiB])]
    log.info("heard of after %.3fs", trio.current_time() - left)
    assert trio.current_time() - left < 5


async def test_shutdown_while_the_handler_does_not_read_closes_with_1001() -> None:
    async with serve("http", app=app) as running:
        stream, rest = await open_websocket(running, "/sink", DEFLATE)
        assert await send_until_blocked(stream, ZEROS) > 10
        running.server.shutdown()
        assert await seen.wait_for(1) == [("sink", 1001, [8 * MiB, 8 * MiB])]
        frames = server_frames(await read_to_end(stream, rest))
    assert {opcode for opcode, _ in frames[:-1]} <= {PONG}  # the probes, if any
    assert frames[-1][0] == CLOSE
    assert close_payload(frames[-1][1]) == (1001, "server shutting down")


async def test_a_flood_the_handler_reads_arrives_whole_and_in_order() -> None:
    # The handler lags: its inbox fills (by count and by bytes), the reader
    # waits for room, reads ahead, and takes up again: nothing is lost.
    settings = {"ws_max_message_size": 256 * 1024}
    messages = flood_messages(256 * 1024)
    async with serve("http", app=app, settings=settings) as running:
        told, expected = await in_thread(flood_and_tally, ws_url(running, "/tally"), messages)
    assert told == expected and told.startswith(f"{len(messages)} ")


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


async def test_a_handler_that_lags_is_not_cut_by_the_request_deadline() -> None:
    # while the reader waits for room it reads ahead, and the connection is
    # idle as the core sees it then: a handler may lag past --request-timeout
    limits = ConnectionLimits(request_timeout=1)
    async with serve("http", app=app, limits=limits) as running:
        stream, _ = await open_websocket(running, "/slow-reader")
        await stream.send_all(b"".join(frame(TEXT, b"%d" % n) for n in range(40)))
        await trio.sleep(2.5)  # lagging, past the request deadline
        seen.read_now.set()
        await stream.send_all(frame(CLOSE, (1000).to_bytes(2, "big") + b"bye"))
        (event,) = await seen.wait_for(1)
    assert event == ("slow-reader", 1000, "bye", [str(n) for n in range(40)])


@pytest.mark.parametrize("pings", ["default", "fast"])
async def test_what_a_client_sent_before_leaving_reaches_a_lagging_handler(
    netsvc_server: Any, pings: str
) -> None:
    # the client sends, closes with 1000 and leaves while the handler lags:
    # read ahead, every message and the close frame's code still reach it,
    # even when the keepalive's ping goes unanswered meanwhile (fast)
    settings = {"ws_ping_interval": 0.2, "ws_ping_timeout": 0.2} if pings == "fast" else {}
    running = await netsvc_server("http", app=app, settings=settings)
    stream, _ = await open_websocket(running, "/slow-reader")
    messages = b"".join(frame(TEXT, b"%d" % n) for n in range(40))
    await stream.send_all(messages + frame(CLOSE, (1000).to_bytes(2, "big") + b"bye"))
    await stream.send_eof()
    await trio.sleep(1.0)  # the server meets the end, and pings go unanswered
    seen.read_now.set()
    (event,) = await seen.wait_for(1)
    assert event == ("slow-reader", 1000, "bye", [str(n) for n in range(40)])
    await stream.aclose()
