# Connections idle for PARK_AFTER wait in the core's parking (netsvc/_parking.py)
# instead of trio's epoll: from outside nothing changes. A parked connection is
# served when its client speaks again (over TLS too), cut at its idle timeout,
# told goodbye at shutdown, closed when its client leaves, and ended by
# disconnect() (RESP's CLIENT KILL). The 10,000-client mass close that parking
# exists for is timed in test_many_connections.py.
from __future__ import annotations

import ssl

import pytest
import trio
import trustme

from netsvc import Connection, ConnectionLimits, Protocol, Runtime, Service
from netsvc._parking import PARK_AFTER
from netsvc.testing import RunningServer, open_connection, serve
from tests.lineclient import greeted
from tests.netsvc.probe import protocol as probe

pytestmark = pytest.mark.usefixtures("close_line_clients")

LIMITS = ConnectionLimits(idle_timeout=30, request_timeout=30, send_timeout=30)


def parked(running: RunningServer) -> int:
    parking = running.server._parking
    assert parking is not None, "no parking on this OS"
    return len(parking)


async def until_parked(running: RunningServer, count: int) -> None:
    with trio.fail_after(PARK_AFTER + 5):
        while parked(running) != count:
            await trio.sleep(0.02)


async def test_a_parked_connection_is_served_when_its_client_speaks() -> None:
    async with serve(probe, limits=LIMITS) as running:
        client = await greeted(running)
        start = trio.current_time()
        await until_parked(running, 1)
        assert trio.current_time() - start >= PARK_AFTER - 0.1  # not before it was idle that long
        assert await client.ask("ECHO awake") == b"awake"
        assert parked(running) == 0
        await until_parked(running, 1)  # idle again: parked again
        assert await client.ask("ECHO again") == b"again"


async def test_a_busy_connection_is_never_parked() -> None:
    async with serve(probe, limits=LIMITS) as running:
        client = await greeted(running)
        for _ in range(int(PARK_AFTER / 0.1) + 5):
            assert await client.ask("ECHO busy") == b"busy"
            assert parked(running) == 0
            await trio.sleep(0.1)


async def test_a_parked_tls_connection_is_served() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with serve(
        probe, limits=LIMITS, ssl_context=server_context, client_ssl_context=client_context
    ) as running:
        client = await greeted(running)
        await until_parked(running, 1)
        assert await client.ask("ECHO secret") == b"secret"


async def test_a_parked_connection_is_cut_at_its_idle_timeout() -> None:
    idle = PARK_AFTER + 0.5
    limits = ConnectionLimits(idle_timeout=idle, request_timeout=30, send_timeout=30)
    async with serve(probe, limits=limits) as running:
        client = await greeted(running)
        start = trio.current_time()
        await until_parked(running, 1)
        with trio.fail_after(idle + 3):
            assert await client.closed()
        assert idle - 0.1 <= trio.current_time() - start < idle + 1.5
        assert parked(running) == 0


async def test_a_parked_client_that_leaves_is_closed() -> None:
    async with serve(probe, limits=LIMITS) as running:
        clients = [await greeted(running) for _ in range(3)]
        await until_parked(running, 3)
        await clients[0].aclose()
        counters = running.server.runtime.counters
        with trio.fail_after(5):
            while counters.connections_open != 2:
                await trio.sleep(0.02)
        assert parked(running) == 2
        assert await clients[1].ask("ECHO still") == b"still"


async def test_shutdown_wakes_parked_connections_with_their_goodbye() -> None:
    async with serve(probe, limits=LIMITS) as running:
        clients = [await greeted(running) for _ in range(3)]
        await until_parked(running, 3)
        running.server.shutdown()
        with trio.fail_after(3):  # at once, not at an idle timeout
            for client in clients:
                assert await client.line() == b"BYE"
                assert await client.closed()


async def test_client_kill_ends_a_parked_client() -> None:
    # disconnect() from another connection's task reaches a parked wait
    async with serve("resp") as running:
        victim = await open_connection(running.url)
        await victim.send_all(b"CLIENT ID\r\n")
        reply = await victim.receive_some()
        victim_id = reply[1:].strip()
        await until_parked(running, 1)
        killer = await open_connection(running.url)
        await killer.send_all(b"CLIENT KILL ID " + victim_id + b"\r\n")
        assert await killer.receive_some() == b":1\r\n"
        with trio.fail_after(3):
            assert await victim.receive_some() == b""
        await killer.aclose()
        await victim.aclose()


async def test_an_idle_timeout_due_with_the_parking_still_cuts() -> None:
    # both fall due in one watchdog tick: the timeout wins, the read is not parked
    idle = PARK_AFTER + 0.01
    limits = ConnectionLimits(idle_timeout=idle, request_timeout=30, send_timeout=30)
    async with serve(probe, limits=limits) as running:
        client = await greeted(running)
        start = trio.current_time()
        with trio.fail_after(idle + 3):
            assert await client.closed()
        assert trio.current_time() - start < idle + 1.0


async def reply(stream: trio.abc.Stream, expected: bytes) -> None:
    got = b""
    with trio.fail_after(3):
        while len(got) < len(expected):
            data = await stream.receive_some()
            assert data, got
            got += data
    assert got == expected


async def test_a_cancelled_parked_wait_leaves_nothing_behind() -> None:
    # RESP's BLPOP reads on in a task that is cancelled once it is served:
    # the connection parks again and is served again
    async with serve("resp") as running:
        blocked = await open_connection(running.url)
        await blocked.send_all(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
        await until_parked(running, 1)  # its read-ahead while blocked
        pusher = await open_connection(running.url)
        await pusher.send_all(b"*3\r\n$5\r\nLPUSH\r\n$1\r\nq\r\n$1\r\nv\r\n")
        await reply(pusher, b":1\r\n")
        await reply(blocked, b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n")
        await until_parked(running, 2)  # both idle: parked again
        await blocked.send_all(b"*1\r\n$4\r\nPING\r\n")
        await reply(blocked, b"+PONG\r\n")
        await blocked.aclose()
        await pusher.aclose()


class OutlivingReader(Service):
    """Reads in a task of the service's nursery (as XMPP's writer writes),
    and ends the connection while that read is parked."""

    def __init__(self) -> None:
        self.nursery: trio.Nursery | None = None
        self.reader_got: list[bytes] = []

    async def start(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery

    async def handle(self, conn: Connection) -> None:
        async def reader() -> None:
            self.reader_got.append(await conn.receive())

        assert self.nursery is not None
        self.nursery.start_soon(reader)
        await conn.send(b"HELLO\n")
        await trio.sleep(PARK_AFTER + 0.5)  # its reader is parked by now


class OutlivingProtocol(Protocol[None, None]):
    name = "outliving"
    schemes = ("outliving",)
    default_port = 0
    description = "a reader that outlives its handler"
    limits = LIMITS

    def __init__(self) -> None:
        self.service = OutlivingReader()

    def create_service(self, app: None, settings: None, runtime: Runtime) -> Service:
        return self.service


async def test_a_parked_read_ends_when_its_socket_closes() -> None:
    # the reader gets the end (not a wait forever), and the next connection,
    # likely on the same fd number, is parked and woken as any other
    plugin = OutlivingProtocol()
    async with serve(plugin) as running:
        first = await running.connect()
        await reply(first, b"HELLO\n")
        with trio.fail_after(PARK_AFTER + 5):
            while not plugin.service.reader_got:
                await trio.sleep(0.05)
        assert plugin.service.reader_got == [b""]
        assert parked(running) == 0
        second = await running.connect()
        await reply(second, b"HELLO\n")
        await until_parked(running, 1)
        await second.send_all(b"bye\n")
        with trio.fail_after(3):
            while len(plugin.service.reader_got) < 2:
                await trio.sleep(0.05)
        assert plugin.service.reader_got[1] == b"bye\n"
        await first.aclose()
        await second.aclose()
