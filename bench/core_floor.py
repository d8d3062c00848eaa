# The core's own cost: the minimal trio+hiredis GET/SET loop of bench/resp.py
# written as a netsvc plugin ("netsvc core + loop" in its table), which tells
# how much of netsvc's gap to the bare loop is the core and how much is the
# RESP plugin's parsing and dispatch; and the same for HTTP: bench/http.py's
# minimal trio+httptools loop as a plugin (`http_protocol`), with the HTTP
# plugin's timeouts.
from __future__ import annotations

import hiredis
import httptools

from netsvc import Connection, ConnectionLimits, Protocol, Runtime, Service


class FloorService(Service):
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    async def handle(self, conn: Connection) -> None:
        reader = hiredis.Reader()
        data = self.data
        while chunk := await conn.receive():
            reader.feed(chunk)
            out = []
            while (command := reader.gets()) is not False:
                name = command[0].upper()
                if name == b"GET":
                    value = data.get(command[1])
                    out.append(
                        b"$-1\r\n" if value is None else b"$%d\r\n%b\r\n" % (len(value), value)
                    )
                elif name == b"SET":
                    data[command[1]] = command[2]
                    out.append(b"+OK\r\n")
                else:
                    out.append(b"*0\r\n")
            conn.parsed(len(out), partial=reader.has_data())
            await conn.send(b"".join(out))


class FloorProtocol(Protocol[None, None]):
    name = "floor"
    schemes = ("floor",)
    default_port = 6390
    description = "benchmark only: GET/SET on hiredis with no checks"
    limits = ConnectionLimits(idle_timeout=None)

    def default_app(self) -> None:
        return None

    def create_service(self, app: None, settings: None, runtime: Runtime) -> Service:
        return FloorService()


protocol = FloorProtocol()


HELLO = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 14\r\n\r\nHello, world!\n"


class _Requests:
    """llhttp's callbacks: only whole requests are counted."""

    def __init__(self) -> None:
        self.complete = 0

    def on_message_complete(self) -> None:
        self.complete += 1


class HttpFloorService(Service):
    async def handle(self, conn: Connection) -> None:
        requests = _Requests()
        parser = httptools.HttpRequestParser(requests)
        while chunk := await conn.receive():
            parser.feed_data(chunk)
            if requests.complete:
                count, requests.complete = requests.complete, 0
                conn.parsed(count, partial=False)
                await conn.send(HELLO * count)


class HttpFloorProtocol(Protocol[None, None]):
    name = "http-floor"
    schemes = ("http-floor",)
    default_port = 8090
    description = "benchmark only: a fixed HTTP response on httptools, no checks"
    limits = ConnectionLimits(idle_timeout=5, request_timeout=10, send_timeout=30)  # HTTP's

    def default_app(self) -> None:
        return None

    def create_service(self, app: None, settings: None, runtime: Runtime) -> Service:
        return HttpFloorService()


http_protocol = HttpFloorProtocol()
