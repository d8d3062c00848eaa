# Connection.serve_inline from outside, on the probe plugin with
# --probe-inline (its synchronous commands answered in the core's task): the
# promises of receive() and send() hold as they do for a plugin's own task:
# replies in order across a hand-over to the task, the idle and request
# deadlines, what shutdown reads, a reply bigger than the socket takes, a
# client that never reads, a reset, a crash, and TLS (served by the task).
from __future__ import annotations

import socket
import struct

import pytest
import trio

from netsvc import Connection, ConnectionLimits, Runtime, Service
from netsvc._server import Server
from netsvc.testing import serve
from tests.lineclient import LineClient, greeted
from tests.netsvc.probe import (
    NOTES,
    ProbeApp,
    ProbeProtocol,
    ProbeService,
    ProbeSettings,
)
from tests.netsvc.probe import protocol as probe
from tests.serveprocess import Certificates

LIMITS = ConnectionLimits(idle_timeout=30, request_timeout=30, send_timeout=30)
INLINE = {"inline": True}


def served_inline(server: Server) -> int:
    """How many reads the inline set's task has served so far."""
    inline = server._inline
    assert inline is not None
    return inline.served


async def test_pipelined_commands_are_answered_in_order_across_a_hand_over() -> None:
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        client = await greeted(running)
        before = served_inline(running.server)
        # ECHO is answered inline; SLEEP needs the connection's task; then inline again
        await client.send(b"ECHO a\nECHO b\nSLEEP 0.05\nECHO c\n")
        assert [await client.line() for _ in range(4)] == [b"a", b"b", b"SLEPT", b"c"]
        for n in range(50):
            assert await client.ask(f"ECHO {n}") == str(n).encode()
        assert served_inline(running.server) - before >= 50  # not by the connection's task
        stats = await client.ask("STATS")
        assert b"'requests': 55" in stats  # STATS is counted before it answers


async def test_a_read_handed_to_its_task_runs_before_the_next_read_served_inline() -> None:
    # a command that awaits (NOTE) is handed to its connection's task; what
    # that task does before its first checkpoint comes before any later read
    # served inline (INOTE, on another connection), as Redis runs commands
    # in the order they arrived (a SUBSCRIBE before the PUBLISH sent after it)
    NOTES.clear()
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        first, second = await greeted(running), await greeted(running)
        for n in range(50):
            await first.send(f"NOTE a{n}\n".encode())
            await second.send(f"INOTE b{n}\n".encode())
            assert await first.line() == b"NOTED" and await second.line() == b"NOTED"
        notes = (await second.ask("NOTES")).decode().split(",")
    assert notes == [note for n in range(50) for note in (f"a{n}", f"b{n}")]


async def test_a_line_split_across_reads_is_answered_once_whole() -> None:
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        client = await greeted(running)
        for byte in b"ECHO dribbled\n":
            await client.send(bytes([byte]))
            await trio.sleep(0.01)
        assert await client.line() == b"dribbled"


async def test_a_client_that_leaves_is_closed_at_once() -> None:
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        client = await greeted(running)
        assert await client.ask("ECHO bye") == b"bye"
        before = served_inline(running.server)
        await client.aclose()
        counters = running.server.runtime.counters
        with trio.fail_after(5):
            while counters.connections_open:
                await trio.sleep(0.01)
        await trio.sleep(0.1)
        # its end was read once and handed to the task: no spinning on a readable EOF
        assert served_inline(running.server) - before <= 2


async def test_a_parked_client_is_served_inline_again_after_its_next_request() -> None:
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        client = await greeted(running)
        assert await client.ask("ECHO one") == b"one"
        parking = running.server._parking
        assert parking is not None
        with trio.fail_after(5):
            while len(parking) == 0:  # idle for PARK_AFTER: parked
                await trio.sleep(0.05)
        assert await client.ask("ECHO woken") == b"woken"  # served by its task
        before = served_inline(running.server)
        assert await client.ask("ECHO two") == b"two"
        assert served_inline(running.server) > before  # and inline again


async def test_an_idle_timeout_past_park_after_counts_from_the_last_request() -> None:
    # idle for PARK_AFTER, the wait moves to the parking through receive():
    # the idle timeout still counts from the wait's start
    limits = ConnectionLimits(idle_timeout=2.0, request_timeout=30, send_timeout=30)
    async with serve(probe, settings=INLINE, limits=limits) as running:
        client = await greeted(running)
        assert await client.ask("ECHO awake") == b"awake"
        started = trio.current_time()
        assert await client.closed(timeout=6)
        assert 1.9 < trio.current_time() - started < 2.6  # not 2 + PARK_AFTER


async def test_an_idle_client_is_closed_at_the_idle_timeout() -> None:
    limits = ConnectionLimits(idle_timeout=0.3, request_timeout=30, send_timeout=30)
    async with serve(probe, settings=INLINE, limits=limits) as running:
        client = await greeted(running)
        assert await client.ask("ECHO awake") == b"awake"
        assert served_inline(running.server) > 0
        started = trio.current_time()
        assert await client.closed(timeout=5)
        assert 0.25 < trio.current_time() - started < 2


async def test_a_dribbled_request_keeps_its_first_bytes_deadline() -> None:
    limits = ConnectionLimits(idle_timeout=30, request_timeout=0.5, send_timeout=30)
    async with serve(probe, settings=INLINE, limits=limits) as running:
        client = await greeted(running)
        before = served_inline(running.server)
        started = trio.current_time()
        with trio.move_on_after(5):
            while True:  # a byte every 0.1 s: never idle, never a whole line
                try:
                    await client.send(b"x")
                except trio.BrokenResourceError:
                    break
                if await client.closed(timeout=0.1):
                    break
        assert 0.45 < trio.current_time() - started < 2
        assert served_inline(running.server) - before >= 3  # the bytes were read inline


async def test_shutdown_answers_what_an_idle_client_sent_then_says_bye() -> None:
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        client = await greeted(running)
        assert await client.ask("ECHO before") == b"before"
        assert served_inline(running.server) > 0  # served inline until shutdown
        await client.send(b"ECHO in time\n")
        await trio.sleep(0.1)  # it reaches the socket; then the server stops
        running.server.runtime.request_shutdown()
        assert await client.line() == b"in time"
        assert await client.line() == b"BYE"
        assert await client.closed()


async def test_shutdown_lets_a_request_in_flight_finish_arriving() -> None:
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        client = await greeted(running)
        await client.send(b"ECHO half")
        await trio.sleep(0.1)
        assert served_inline(running.server) > 0  # the half line was read inline
        running.server.runtime.request_shutdown()
        await trio.sleep(0.1)
        await client.send(b" and the rest\n")
        assert await client.line() == b"half and the rest"
        assert await client.line() == b"BYE"


async def test_a_reply_bigger_than_the_socket_takes_arrives_whole_and_in_order() -> None:
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        client = await greeted(running)
        size = 20_000_000
        before = served_inline(running.server)
        await client.send(f"FLOOD {size}\nECHO after\n".encode())
        await trio.sleep(0.3)  # the socket buffers fill; the task sends the rest
        assert served_inline(running.server) > before
        assert await client.line(timeout=20) == b"x" * size
        assert await client.line() == b"after"


async def test_a_disconnect_while_the_rest_of_a_reply_goes_out_ends_the_connection() -> None:
    # what CLIENT KILL does: the reply under way still goes out, then the end
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        client = await greeted(running)
        size = 20_000_000
        await client.send(f"FLOOD {size}\n".encode())
        await trio.sleep(0.3)  # the socket took part of it; the task sends the rest
        port = client.stream.socket.getsockname()[1]  # type: ignore[attr-defined]
        (conn,) = [c for c in running.server._watchdog.connections if c.peer.port == port]
        conn.disconnect()
        with trio.fail_after(10):
            assert await client.line(timeout=10) == b"x" * size
            assert await client.closed(timeout=5)


async def test_a_client_that_never_reads_is_cut_at_the_send_timeout() -> None:
    limits = ConnectionLimits(idle_timeout=30, request_timeout=30, send_timeout=0.3)
    async with serve(probe, settings=INLINE, limits=limits) as running:
        stuck = await greeted(running)
        await stuck.send(b"FLOOD 50000000\n")  # and never read
        bystander = await greeted(running)
        counters = running.server.runtime.counters
        started = trio.current_time()
        with trio.fail_after(5):
            while counters.connections_open > 1:
                await trio.sleep(0.02)
        assert 0.25 < trio.current_time() - started < 3
        assert await bystander.ask("ECHO fine") == b"fine"


async def test_a_client_reset_ends_the_connection_quietly() -> None:
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        victim = await greeted(running)
        bystander = await greeted(running)
        assert await victim.ask("ECHO x") == b"x"
        assert served_inline(running.server) > 0
        sock = victim.stream.socket  # type: ignore[attr-defined]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await victim.send(b"FLOOD 30000000\n")
        await trio.sleep(0.2)
        await victim.aclose()  # a reset, while the reply is being sent
        assert await bystander.ask("ECHO still") == b"still"
        with trio.fail_after(5):
            while running.server.runtime.counters.connections_open > 1:
                await trio.sleep(0.02)
        assert running.server.runtime.counters.errors == 0


@pytest.mark.server_errors(r"handler failed; closing this connection")
async def test_a_crash_in_inline_code_is_the_handlers_crash() -> None:
    async with serve(probe, settings=INLINE, limits=LIMITS) as running:
        victim = await greeted(running)
        bystander = await greeted(running)
        await victim.send(b"INLINE-CRASH\n")
        assert await victim.line() == b"ERR internal error"
        assert await victim.closed()
        assert await bystander.ask("ECHO still here") == b"still here"
        assert running.server.runtime.counters.errors == 1


async def test_over_tls_the_task_serves_as_ever(certificates: Certificates) -> None:
    async with serve(
        probe,
        settings=INLINE,
        limits=LIMITS,
        ssl_context=certificates.server_context(),
        client_ssl_context=certificates.client_context(),
    ) as running:
        before = served_inline(running.server)
        client = LineClient(await running.connect())
        assert await client.line() == b"HELLO"
        assert await client.ask("ECHO over tls") == b"over tls"
        assert served_inline(running.server) == before


class PushingProbe(ProbeService):
    """The probe with a second task per connection that keeps sending
    "PUSH" lines, as a pub/sub plugin's pushes go next to its replies."""

    async def handle(self, conn: Connection) -> None:
        async def push() -> None:
            while True:
                await trio.sleep(0.001)
                await conn.send(b"PUSH\n")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(push)
            await super().handle(conn)
            nursery.cancel_scope.cancel()


class PushingProtocol(ProbeProtocol):
    name = "pushingprobe"
    schemes = ("pushingprobe",)

    def create_service(self, app: ProbeApp, settings: ProbeSettings, runtime: Runtime) -> Service:
        return PushingProbe(app, settings, runtime)


async def test_a_reply_sent_in_two_goes_never_has_another_tasks_send_inside() -> None:
    async with serve(PushingProtocol(), settings=INLINE, limits=LIMITS) as running:
        client = await greeted(running)
        size = 5_000_000
        for _ in range(10):
            before = served_inline(running.server)
            await client.send(f"FLOOD {size}\n".encode())
            await trio.sleep(0.02)  # the socket fills: the rest goes out from the task
            while (line := await client.line(timeout=20)) == b"PUSH":
                pass
            assert line == b"x" * size, (len(line), b"PUSH" in line)
            assert served_inline(running.server) > before


class LateDeadlineProbe(ProbeService):
    """A deadline that fires between a read served inline and its hand-over
    (the watchdog's tick fell there): the next receive() must not see it."""

    async def handle(self, conn: Connection) -> None:
        await conn.send(b"HELLO\n")

        def on_data(data: bytes) -> bytes | None:
            conn._transport.interrupt("read", "deadline")  # as the watchdog would
            conn.parsed(1, partial=False)
            return None

        assert await conn.serve_inline(on_data)
        await conn.send(b"GOT " + await conn.receive())


class LateDeadlineProtocol(ProbeProtocol):
    name = "latedeadline"
    schemes = ("latedeadline",)

    def create_service(self, app: ProbeApp, settings: ProbeSettings, runtime: Runtime) -> Service:
        return LateDeadlineProbe(app, settings, runtime)


async def test_a_deadline_that_passed_as_data_came_is_not_the_next_reads() -> None:
    async with serve(LateDeadlineProtocol(), limits=LIMITS) as running:
        client = await greeted(running)
        await client.send(b"first\n")
        await trio.sleep(0.1)
        await client.send(b"second\n")
        assert await client.line() == b"GOT second"


async def test_the_idle_timeout_counts_from_after_a_slow_inline_reply() -> None:
    # a synchronous command slower than the idle timeout (KEYS on a big
    # keyspace): the client, idle from the reply on, is not cut off at it
    limits = ConnectionLimits(idle_timeout=0.5, request_timeout=30, send_timeout=30)
    async with serve(probe, settings=INLINE, limits=limits) as running:
        client = await greeted(running)
        assert await client.ask("ECHO awake") == b"awake"
        before = served_inline(running.server)
        assert await client.ask("SPIN 0.8") == b"SPUN"
        assert served_inline(running.server) > before  # answered inline
        assert not await client.closed(timeout=0.25)  # idle 0.25 s of 0.5
        assert await client.ask("ECHO still here") == b"still here"
