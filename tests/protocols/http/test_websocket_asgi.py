# WebSockets for ASGI applications: the websocket scope and its messages
# (accept with subprotocol and headers, text and bytes, close codes and
# reasons both ways, send() after the close, 403 refusals, the
# websocket.http.response denial extension), 1001 at shutdown, and Starlette
# (WebSocketEndpoint, denial responses) in process and through `--app`, with
# the real `websockets` client; an app that lags behind its client hears of
# the client's leaving, and one that reads a flood gets all of it, in order.
from __future__ import annotations

import ssl
from typing import Any

import pytest
import trio
from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket as StarletteWebSocket

from netsvc.testing import serve
from tests.protocols.http.wsclient import (
    BINARY,
    DEFLATE,
    Recorder,
    Tally,
    client,
    closed_after_sending,
    closed_by_server,
    deflated,
    flood_and_tally,
    flood_messages,
    frame,
    in_thread,
    open_websocket,
    refusal,
    send_until_blocked,
    ws_url,
)
from tests.serveprocess import Certificates, ServeProcess

MiB = 1024 * 1024


class Record(Recorder):
    """What the ASGI app saw: scopes, disconnects, errors from send()."""

    def __init__(self) -> None:
        super().__init__()
        self.scopes: list[dict[str, Any]] = []
        self.go = trio.Event()  # the lagging app starts reading


record = Record()


@pytest.fixture(autouse=True)
def _fresh_record() -> None:
    global record
    record = Record()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI app; each path is a case."""
    if scope["type"] == "lifespan":
        return  # no lifespan
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain http"})
        return
    assert await receive() == {"type": "websocket.connect"}
    path = scope["path"]
    if path == "/echo":
        record.scopes.append(scope)
        offered = scope["subprotocols"]
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": offered[-1] if offered else None,
                "headers": [(b"x-accepted", b"yes")],
            }
        )
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                record.add(message)
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    elif path == "/close":
        await send({"type": "websocket.accept"})
        code, _, reason = (await receive())["text"].partition(" ")
        await send({"type": "websocket.close", "code": int(code), "reason": reason})
    elif path == "/send-after-close":
        await send({"type": "websocket.accept"})
        record.add(await receive())  # the client closes
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:  # ASGI 2.4: send() on a closed connection raises an OSError
            record.add(exc)
            raise  # the server must take it quietly
    elif path == "/refuse":
        await send({"type": "websocket.close", "code": 1008})  # before accepting: 403
        record.add(await receive())
    elif path == "/forget":
        return  # returns without answering: 403
    elif path == "/deny":
        headers = [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"token\n"})
    elif path == "/crash-before":
        raise ValueError("asgi boom before accept")
    elif path == "/crash-after":
        await send({"type": "websocket.accept"})
        await receive()
        raise ValueError("asgi boom after accept")
    elif path == "/lagging":
        await send({"type": "websocket.accept"})
        await record.go.wait()  # then reads a message every half second, far behind
        read = 0
        while (message := await receive())["type"] == "websocket.receive":
            read += 1
            await trio.sleep(0.5)
        record.add((message, read))
    elif path == "/tally":  # see wsclient.flood_and_tally
        await send({"type": "websocket.accept"})
        tally = Tally()
        while (message := await receive())["type"] == "websocket.receive":
            data = message["text"] if message.get("text") is not None else message["bytes"]
            if data == "end":
                await send({"type": "websocket.send", "text": tally.reply()})
                continue
            tally.add(data)
            if tally.count % 4 == 0:
                await trio.sleep(0.01)  # lags behind the client


async def test_the_websocket_scope_and_echo() -> None:
    def talk(url: str) -> tuple[list[object], str | None, str | None]:
        with client(url, subprotocols=["a", "b"], additional_headers={"x-hi": "1"}) as ws:
            ws.send("text")
            ws.send(b"bytes")
            ws.send(["frag", "ments"])
            echoed = [ws.recv(timeout=10) for _ in range(3)]
            assert ws.response is not None
            accepted = ws.response.headers.get("x-accepted")
            ws.close(4000, "client leaves")
            return echoed, ws.subprotocol, accepted

    async with serve("http", app=app) as running:
        echoed, subprotocol, accepted = await in_thread(talk, ws_url(running, "/echo?q=1"))
        assert echoed == ["text", b"bytes", "fragments"]
        assert (subprotocol, accepted) == ("b", "yes")
        assert await record.wait_for(1) == [
            {"type": "websocket.disconnect", "code": 4000, "reason": "client leaves"}
        ]
    (scope,) = record.scopes
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert (scope["scheme"], scope["path"], scope["query_string"]) == ("ws", "/echo", b"q=1")
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert (b"x-hi", b"1") in scope["headers"] and (b"upgrade", b"websocket") in scope["headers"]
    assert scope["client"][0] == scope["server"][0] == "127.0.0.1"


async def test_close_from_the_app_and_send_after_the_close() -> None:
    def app_closes(url: str) -> tuple[int, str]:
        with client(url) as ws:
            ws.send("4002 app leaves")
            return closed_by_server(ws)

    def client_closes(url: str) -> None:
        with client(url) as ws:
            ws.close()

    async with serve("http", app=app) as running:
        assert await in_thread(app_closes, ws_url(running, "/close")) == (4002, "app leaves")
        await in_thread(client_closes, ws_url(running, "/send-after-close"))
        disconnect, error = await record.wait_for(2)
    assert disconnect == {"type": "websocket.disconnect", "code": 1000, "reason": ""}
    assert isinstance(error, OSError)


async def test_refusals_and_the_denial_response_extension() -> None:
    async with serve("http", app=app) as running:
        status, _, body = await in_thread(refusal, ws_url(running, "/refuse"))
        assert status == 403 and body.startswith(b"403 Forbidden")
        # after a refusal, receive() says the WebSocket is gone
        assert await record.wait_for(1) == [
            {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        ]
        assert (await in_thread(refusal, ws_url(running, "/forget")))[0] == 403
        status, headers, body = await in_thread(refusal, ws_url(running, "/deny"))
        assert (status, headers["www-authenticate"], body) == (401, "Bearer", b"no token\n")


@pytest.mark.server_errors(
    r"WebSocket handler for /crash-before failed(.|\n)*asgi boom before accept",
    r"WebSocket handler for /crash-after failed(.|\n)*asgi boom after accept",
)
async def test_an_app_that_raises_gets_500_before_accepting_and_1011_after() -> None:
    async with serve("http", app=app) as running:
        assert (await in_thread(refusal, ws_url(running, "/crash-before")))[0] == 500
        assert await in_thread(closed_after_sending, ws_url(running, "/crash-after"), "go") == (
            1011,
            "internal server error",
        )


async def test_shutdown_closes_with_1001_and_the_app_hears_it() -> None:
    connected = trio.Event()
    result: list[tuple[int, str]] = []

    def wait_for_close(url: str) -> None:
        with client(url) as ws:
            ws.send("hi")
            ws.recv(timeout=10)
            trio.from_thread.run_sync(connected.set)
            result.append(closed_by_server(ws))

    async with serve("http", app=app) as running:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(in_thread, wait_for_close, ws_url(running, "/echo"))
            await connected.wait()
            running.server.shutdown()
        assert result == [(1001, "server shutting down")]
        assert await record.wait_for(1) == [
            {"type": "websocket.disconnect", "code": 1001, "reason": "server shutting down"}
        ]


async def test_wss_over_tls(certificates: Certificates) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.certfile, certificates.keyfile)

    def talk(url: str) -> object:
        with client(url + "/echo", ssl=certificates.client_context()) as ws:
            ws.send("over tls")
            echoed = ws.recv(timeout=10)
            ws.close(4003, "tls bye")
        return echoed

    def app_closes(url: str) -> tuple[int, str]:
        with client(url + "/close", ssl=certificates.client_context()) as ws:
            ws.send("4004 tls closed")
            return closed_by_server(ws)

    async with serve("http", app=app, ssl_context=context) as running:
        url = ws_url(running, "")
        assert url.startswith("wss://")
        assert await in_thread(talk, url) == "over tls"
        assert await in_thread(app_closes, url) == (4004, "tls closed")
        assert await record.wait_for(1) == [
            {"type": "websocket.disconnect", "code": 4003, "reason": "tls bye"}
        ]
    (scope,) = record.scopes
    assert scope["scheme"] == "wss" and scope["extensions"]["tls"]["tls_version"] in (0x303, 0x304)


async def test_an_upgrade_request_always_reaches_the_asgi_app() -> None:
    # unlike a native app's routes, the ASGI app decides: here every path is a
    # WebSocket one, and an unknown one is refused by returning (403)
    async with serve("http", app=app) as running:
        assert (await in_thread(refusal, ws_url(running, "/unknown")))[0] == 403


async def test_an_app_that_lags_hears_of_the_client_leaving(netsvc_server: Any) -> None:
    # The client sends until TCP pushes back, and leaves without a close
    # frame (its FIN behind what it could not send); then the app reads, a
    # message every half second: websocket.disconnect (1006) comes after a
    # few, not after all the client had sent (a minute's worth).
    running = await netsvc_server("http", app=app)
    stream, _ = await open_websocket(running, "/lagging", DEFLATE)
    sent = await send_until_blocked(stream, frame(BINARY, deflated(bytes(8 * MiB)), rsv1=True))
    with trio.move_on_after(0.05):  # what the server sent is read: closing does not reset
        while await stream.receive_some():
            pass
    await stream.aclose()
    left = trio.current_time()
    record.go.set()
    ((disconnect, read),) = await record.wait_for(1)
    assert disconnect == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    assert trio.current_time() - left < 8
    assert read < sent / 2


async def test_a_flood_the_app_reads_arrives_whole_and_in_order() -> None:
    settings = {"ws_max_message_size": 256 * 1024}
    messages = flood_messages(256 * 1024)
    async with serve("http", app=app, settings=settings) as running:
        told, expected = await in_thread(flood_and_tally, ws_url(running, "/tally"), messages)
    assert told == expected and told.startswith(f"{len(messages)} ")


# -- Starlette -------------------------------------------------------------------


class Echo(WebSocketEndpoint):
    encoding = "text"

    async def on_connect(self, websocket: StarletteWebSocket) -> None:
        if websocket.query_params.get("token") == "bad":
            await websocket.send_denial_response(PlainTextResponse("bad token\n", status_code=403))
            return
        await websocket.accept()

    async def on_receive(self, websocket: StarletteWebSocket, data: Any) -> None:
        await websocket.send_text(f"echo: {data}")


starlette_app = Starlette(routes=[WebSocketRoute("/ws", Echo)])


async def test_starlette_denial_response_and_missing_route() -> None:
    async with serve("http", app=starlette_app) as running:
        status, _, body = await in_thread(refusal, ws_url(running, "/ws?token=bad"))
        assert (status, body) == (403, b"bad token\n")
        # no such route: Starlette closes before accepting, which is a 403
        assert (await in_thread(refusal, ws_url(running, "/nowhere")))[0] == 403


def test_a_starlette_websocket_endpoint_through_the_cli() -> None:
    args = ["--protocol", "http", "--port", "0"]
    with ServeProcess(
        [*args, "--app", "tests.protocols.http.test_websocket_asgi:starlette_app"]
    ) as server:
        with client(ws_url(server.urls[0], "/ws")) as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "echo: hello"
            ws.send("again")
            assert ws.recv(timeout=10) == "echo: again"
    assert '"GET /ws HTTP/1.1" 101 0' in server.log
