# The connection lifecycle, in process: error isolation, connection limits,
# deadlines, backpressure, graceful shutdown, Unix sockets, IPv6, TLS and
# several protocols in one server.
from __future__ import annotations

import logging
import socket
import ssl
import struct
from typing import Any

import pytest
import trio
import trio.testing
import trustme

from netsvc import (
    AddressError,
    Connection,
    ConnectionLimits,
    ConnectionLost,
    Listen,
    ListenAddress,
    Protocol,
    Runtime,
    Server,
    Service,
)
from netsvc._server import _Throttle
from netsvc.testing import open_connection, serve
from protocols.echo import protocol as echo_protocol
from tests.lineclient import LineClient, greeted
from tests.netsvc.probe import ProbeApp, ProbeProtocol, ProbeService, ProbeSettings
from tests.netsvc.probe import protocol as probe

pytestmark = pytest.mark.usefixtures("close_line_clients")

LIMITS = ConnectionLimits(idle_timeout=30, request_timeout=30, send_timeout=30)


async def test_fixture_serves_a_plugin_by_name(netsvc_server: Any) -> None:
    running = await netsvc_server("echo", settings={"greeting": "hi"})
    assert running.url.startswith("echo://127.0.0.1:")
    client = LineClient(await running.connect())
    assert await client.line() == b"hi\r"
    assert await client.ask("ping") == b"ping"


@pytest.mark.server_errors(r"handler failed; closing this connection")
async def test_handler_exception_closes_only_that_connection() -> None:
    async with serve(probe, limits=LIMITS) as running:
        bystander = await greeted(running)
        victim = await greeted(running)
        await victim.send(b"CRASH\n")
        assert await victim.line() == b"ERR internal error"  # the plugin's last words
        assert await victim.closed()
        assert await bystander.ask("ECHO still here") == b"still here"
        fresh = await greeted(running)
        assert await fresh.ask("ECHO new") == b"new"
        assert running.server.runtime.counters.errors == 1


GROUPS = ProbeApp()


@GROUPS.command("TWO")
async def two_failures(conn: Connection, arg: str) -> bytes:
    raise ExceptionGroup("two at once", [ValueError("first"), RuntimeError("second")])


@GROUPS.command("NESTED")
async def nested_failure(conn: Connection, arg: str) -> bytes:
    raise ExceptionGroup("outer", [ExceptionGroup("inner", [ValueError("deep down")])])


@pytest.mark.server_errors(r"ValueError: first", r"RuntimeError: second", r"ValueError: deep down")
async def test_a_handlers_exception_group_is_logged_whole_or_as_its_one_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serve(probe, app=GROUPS, limits=LIMITS) as running:
        for command in (b"TWO\n", b"NESTED\n"):
            client = await greeted(running)
            await client.send(command)
            assert await client.line() == b"ERR internal error"
            assert await client.closed()
    failed = [r for r in caplog.records if r.getMessage().startswith("handler failed")]
    assert [type(r.exc_info[1]).__name__ for r in failed if r.exc_info] == [
        "ExceptionGroup",  # two errors: the group, both in its traceback
        "ValueError",  # one error, however deeply grouped: that error itself
    ]


class SpeechlessService(ProbeService):
    def internal_error(self, conn: Connection) -> bytes:
        raise ValueError("no last words today")


class SpeechlessProtocol(ProbeProtocol):
    def create_service(self, app: ProbeApp, settings: ProbeSettings, runtime: Runtime) -> Service:
        return SpeechlessService(app, settings, runtime)


@pytest.mark.server_errors(
    r"handler failed; closing this connection", r"SpeechlessService\.internal_error\(\) failed"
)
async def test_a_plugin_whose_last_words_fail_is_logged_and_its_client_still_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serve(SpeechlessProtocol(), limits=LIMITS) as running:
        bystander = await greeted(running)
        victim = await greeted(running)
        await victim.send(b"CRASH\n")
        assert await victim.closed()
        assert await bystander.ask("ECHO still here") == b"still here"
    [failed] = [r for r in caplog.records if "internal_error" in r.getMessage()]
    assert failed.getMessage() == "SpeechlessService.internal_error() failed"
    assert failed.levelno == logging.ERROR
    assert failed.exc_info is not None and str(failed.exc_info[1]) == "no last words today"


async def test_a_tls_listener_for_a_protocol_without_a_tls_scheme_is_refused() -> None:
    class PlainOnly(ProbeProtocol):
        tls_schemes = ()

    address = ListenAddress("tcp", host="127.0.0.1", port=0)
    with pytest.raises(
        ValueError, match=r"^protocol 'probe' has no TLS scheme; it cannot serve TLS$"
    ):
        Listen(PlainOnly(), address, tls=True)
    Listen(PlainOnly(), address)  # plain is fine


async def test_over_limit_connections_get_the_protocols_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = ConnectionLimits(max_connections=2)
    async with serve(probe, limits=limits) as running:
        first, second = await greeted(running), await greeted(running)
        refused = LineClient(await running.connect())
        assert await refused.line() == b"BUSY too many connections"
        assert await refused.closed()
        assert await first.ask("ECHO ok") == b"ok"
        await second.aclose()
        # the slot frees once the server sees the close
        with trio.fail_after(5):
            while running.server.runtime.counters.connections_open > 1:
                await trio.sleep(0.01)
        third = await greeted(running)
        assert await third.ask("ECHO in") == b"in"
        counters = running.server.runtime.listeners[0].counters
        assert counters.connections_refused == 1
        assert counters.connections_total == 3
    [warning] = [r for r in caplog.records if "connection limit" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == (
        f"{running.url}: connection limit of 2 reached; refusing new connections (1 refused so far)"
    )


class TongueTiedService(ProbeService):
    def refusal(self) -> bytes:
        raise ValueError("no refusal today")


class TongueTiedProtocol(ProbeProtocol):
    def create_service(self, app: ProbeApp, settings: ProbeSettings, runtime: Runtime) -> Service:
        return TongueTiedService(app, settings, runtime)


@pytest.mark.server_errors(r"^refusing a connection on probe://127\.0\.0\.1:\d+ failed\n")
async def test_a_refusal_that_fails_is_logged_and_the_connection_still_closed() -> None:
    async with serve(TongueTiedProtocol(), limits=ConnectionLimits(max_connections=1)) as running:
        first = await greeted(running)
        refused = LineClient(await running.connect())
        assert await refused.closed()
        assert await first.ask("ECHO still here") == b"still here"


async def test_a_throttled_log_line_counts_every_event_and_speaks_once_per_interval(
    mock_clock: trio.testing.MockClock,
) -> None:
    throttle = _Throttle(10.0)
    assert throttle.due()  # the first is said
    assert not throttle.due()
    mock_clock.jump(9.75)  # times in binary fractions: the sums below are exact
    assert not throttle.due()
    assert throttle.count == 3
    mock_clock.jump(0.5)
    assert throttle.due()  # 10 s after the last one said
    assert throttle.count == 4
    assert not throttle.due()
    mock_clock.jump(10.0)
    assert throttle.due()  # exactly one interval after the last one said is soon enough


async def test_idle_connection_is_closed_after_idle_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "netsvc.connection")
    limits = ConnectionLimits(idle_timeout=0.3, request_timeout=5)
    async with serve(probe, limits=limits) as running:
        client = await greeted(running)
        assert await client.ask("ECHO a") == b"a"
        start = trio.current_time()
        assert await client.closed(timeout=3)
        assert 0.25 < trio.current_time() - start < 2
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("closing:")]
    assert said == ["closing: idle timeout, no complete data in 0.3s"]


async def test_slow_request_is_cut_off_by_request_timeout() -> None:
    limits = ConnectionLimits(idle_timeout=10, request_timeout=0.4)
    async with serve(probe, limits=limits) as running:
        client = await greeted(running)

        async def dribble() -> None:  # a byte every 0.1s: the line never completes in time
            try:
                for byte in b"ECHO slowloris":
                    await client.send(bytes([byte]))
                    await trio.sleep(0.1)
            except trio.BrokenResourceError:
                pass

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dribble)
            assert await client.closed(timeout=3)
            nursery.cancel_scope.cancel()
        assert 0.35 < trio.current_time() - start < 1.0


async def test_steady_pipelined_requests_are_not_a_slow_request() -> None:
    limits = ConnectionLimits(idle_timeout=10, request_timeout=0.3)
    async with serve(probe, limits=limits) as running:
        client = await greeted(running)
        for i in range(8):  # each write completes one line and starts the next
            await client.send(f"{i}\nECHO ".encode() if i else b"ECHO ")
            await trio.sleep(0.1)
        await client.send(b"last\n")
        replies = [await client.line() for _ in range(8)]
        assert replies[-1] == b"last"


async def test_client_that_never_reads_is_dropped_after_send_timeout() -> None:
    limits = ConnectionLimits(send_timeout=0.5)
    async with serve(probe, limits=limits) as running:
        hog = LineClient(await running.connect())
        # ask for far more than socket buffers hold, and never read
        await hog.send(b"FLOOD 20000000\n" * 4)
        with trio.fail_after(5):
            while running.server.runtime.counters.connections_open:
                await trio.sleep(0.05)
        other = await greeted(running)
        assert await other.ask("ECHO fine") == b"fine"


async def test_graceful_shutdown_finishes_in_flight_and_says_goodbye() -> None:
    async with trio.open_nursery() as nursery:
        server = Server([Listen(probe, ListenAddress("tcp", "127.0.0.1", 0))], graceful_timeout=5)
        urls = await nursery.start(_serve, server)
        idle = LineClient(await open_connection(urls[0]))
        busy = LineClient(await open_connection(urls[0]))
        assert await idle.line() == await busy.line() == b"HELLO"
        await busy.send(b"SLEEP 0.5\n")
        await trio.sleep(0.1)
        server.shutdown()
        assert await idle.line() == b"BYE"
        assert await busy.line() == b"SLEPT"
        assert await busy.line() == b"BYE"
        with pytest.raises(OSError):
            await open_connection(urls[0])  # no longer accepting
    assert server.runtime.counters.connections_open == 0


async def test_grace_period_over_cancels_what_is_left() -> None:
    async with trio.open_nursery() as nursery:
        server = Server([Listen(probe, ListenAddress("tcp", "127.0.0.1", 0))], graceful_timeout=0.3)
        urls = await nursery.start(_serve, server)
        stuck = LineClient(await open_connection(urls[0]))
        await stuck.line()
        await stuck.send(b"SLEEP 60\n")
        await trio.sleep(0.1)
        start = trio.current_time()
        server.shutdown()
        assert await stuck.closed()
    assert trio.current_time() - start < 2


async def _serve(server: Server, *, task_status: trio.TaskStatus[list[str]]) -> None:
    await server.serve(task_status=task_status)


async def test_unix_socket(tmp_path: Any) -> None:
    path = str(tmp_path / "probe.sock")
    async with serve(probe, address=ListenAddress("unix", path=path)) as running:
        assert running.url == f"probe+unix://{path}"
        client = await greeted(running)
        assert await client.ask("PEER") == b"unix"
    assert not (tmp_path / "probe.sock").exists()


async def test_stale_unix_socket_file_is_replaced(tmp_path: Any) -> None:
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: what a crashed server leaves
    async with serve(probe, address=ListenAddress("unix", path=path)) as running:
        assert await (await greeted(running)).ask("ECHO x") == b"x"


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this kernel")
async def test_ipv6_loopback() -> None:
    async with serve(probe, address=ListenAddress("tcp", host="::1", port=0)) as running:
        assert running.url.startswith("probe://[::1]:")
        client = await greeted(running)
        assert (await client.ask("PEER")).startswith(b"[::1]:")


async def test_tls_listener(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with serve(
        probe, ssl_context=server_context, client_ssl_context=client_context
    ) as running:
        assert running.url.startswith("probes://127.0.0.1:")
        client = await greeted(running)
        assert await client.ask("ECHO secret") == b"secret"
        # a client that does not speak TLS is dropped without harming the server
        plain = LineClient(await open_connection(running.url))
        host, port = plain.stream.socket.getsockname()[:2]
        await plain.send(b"ECHO plain\n")
        assert await plain.closed()
        assert await client.ask("ECHO again") == b"again"
        # a client that resets before the server accepts it (no checkpoint here)
        gone = socket.create_connection((running.host, running.port))
        gone_port = gone.getsockname()[1]
        gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        gone.close()
        assert await client.ask("ECHO still") == b"still"
    # logged with the client's address (as accept() gave it) and the reason
    failures = [r.getMessage() for r in caplog.records if "handshake" in r.getMessage()]
    assert failures[0].startswith(f"TLS handshake with {host}:{port} failed: [SSL")
    assert failures[1].startswith(f"TLS handshake with 127.0.0.1:{gone_port} failed: ")
    assert failures[1].partition("failed: ")[2]  # with a reason (the reset, or "lost")
    assert len(failures) == 2, failures


async def test_two_protocols_in_one_server() -> None:
    listens = [
        Listen(probe, ListenAddress("tcp", "127.0.0.1", 0)),
        Listen(echo_protocol, ListenAddress("tcp", "127.0.0.1", 0)),
    ]
    async with trio.open_nursery() as nursery:
        server = Server(listens, graceful_timeout=2)
        probe_url, echo_url = await nursery.start(_serve, server)
        assert probe_url.startswith("probe://") and echo_url.startswith("echo://")
        lines = LineClient(await open_connection(probe_url))
        echo = LineClient(await open_connection(echo_url))
        assert await lines.line() == b"HELLO"
        assert await echo.ask("boing") == b"boing"
        assert await lines.ask("ECHO ping") == b"ping"
        assert [info.protocol for info in server.runtime.listeners] == ["probe", "echo"]
        server.shutdown()


class PushingService(Service):
    """Pub/sub's shape: tasks outside a connection send to it. PUSH starts one
    that floods the connection from the service's nursery; the handler then
    returns while that send is still blocked on a client that does not read."""

    def __init__(self) -> None:
        self.nursery: trio.Nursery | None = None
        self.lost = 0

    async def start(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery

    async def handle(self, conn: Connection) -> None:
        data = await conn.receive()
        if data.startswith(b"PUSH"):
            assert self.nursery is not None
            self.nursery.start_soon(self.flood, conn)
            await trio.sleep(0.2)  # let the flood block on the full socket
            return
        async with trio.open_nursery() as nursery:  # a plugin's own tasks
            nursery.start_soon(conn.receive)  # times out as the idle deadline passes

    async def flood(self, conn: Connection) -> None:
        try:
            await conn.send(b"x" * 50_000_000)
        except ConnectionLost:
            self.lost += 1


class PushingProtocol(Protocol[None, None]):
    name = "pushing"
    schemes = ("pushing",)
    default_port = 0
    description = "test"
    limits = ConnectionLimits(idle_timeout=0.3, send_timeout=30)

    def __init__(self) -> None:
        self.service = PushingService()

    def default_app(self) -> None:
        return None

    def create_service(self, app: None, settings: None, runtime: Runtime) -> Service:
        return self.service


async def test_closing_while_another_task_sends_does_not_harm_the_server() -> None:
    plugin = PushingProtocol()
    async with serve(plugin) as running:
        victim = await running.connect()
        await victim.send_all(b"PUSH\n")  # and never read
        with trio.fail_after(5):
            while running.server.runtime.counters.connections_open:
                await trio.sleep(0.05)
        assert plugin.service.lost == 1  # the sender was told, not the server
        other = await running.connect()
        assert isinstance(other, trio.SocketStream)
        await other.send_all(b"hello")
        await other.send_eof()
        with trio.fail_after(5):  # served: the handler read both, returned, and the server closed
            assert await other.receive_some() == b""
            while running.server.runtime.counters.connections_open:
                await trio.sleep(0.01)
        counters = running.server.runtime.counters
        assert (counters.connections_total, counters.errors) == (2, 0)


async def test_timeouts_inside_a_plugins_own_nursery_are_not_errors() -> None:
    plugin = PushingProtocol()
    async with serve(plugin) as running:
        client = LineClient(await running.connect())
        assert await client.closed(timeout=3)  # the idle timeout, raised in a child task
        assert running.server.runtime.counters.errors == 0


async def test_refusal_survives_a_tls_client_that_never_handshakes() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    limits = ConnectionLimits(max_connections=1, handshake_timeout=0.2)
    async with serve(
        probe, limits=limits, ssl_context=server_context, client_ssl_context=client_context
    ) as running:
        first = await greeted(running)
        silent = [LineClient(await open_connection(running.url)) for _ in range(3)]  # no TLS
        await trio.sleep(0.5)  # past the handshake timeout of the refusals
        for client in silent:
            assert await client.closed()
        assert await first.ask("ECHO alive") == b"alive"


async def test_unix_path_that_is_not_a_stream_socket_is_left_alone(tmp_path: Any) -> None:
    regular = tmp_path / "file"
    regular.write_text("keep me")
    with pytest.raises(AddressError, match="exists and is not a socket"):
        async with serve(probe, address=ListenAddress("unix", path=str(regular))):
            pass
    assert regular.read_text() == "keep me"
    dgram_path = str(tmp_path / "dgram.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as live:
        live.bind(dgram_path)
        with pytest.raises(AddressError, match="in use or not ours"):
            async with serve(probe, address=ListenAddress("unix", path=dgram_path)):
                pass
        live.sendto(b"still mine", dgram_path)
        assert live.recv(100) == b"still mine"
