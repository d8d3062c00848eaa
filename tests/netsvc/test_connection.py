# Connection over a real socket pair: deadlines by phase (enforced by the
# watchdog), shutdown wake-ups, and what a send timeout leaves behind.
from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import trio

from netsvc import (
    Connection,
    ConnectionLimits,
    ConnectionLost,
    Counters,
    ReceiveTimeout,
    SendTimeout,
)
from netsvc._connection import Watchdog
from netsvc._socketstream import SocketStream

Pair = tuple[Connection, SocketStream]


OPENED: list[socket.socket] = []


@pytest.fixture
async def watchdog() -> AsyncIterator[Watchdog]:
    dog = Watchdog()
    async with trio.open_nursery() as nursery:
        await nursery.start(dog.run)
        yield dog
        nursery.cancel_scope.cancel()
    for sock in OPENED:
        sock.close()
    OPENED.clear()


def make(watchdog: Watchdog, **limits: float | None) -> Pair:
    ours, theirs = socket.socketpair()
    OPENED.extend((ours, theirs))
    transport = SocketStream(ours)
    conn = Connection(
        transport,
        transport=transport,
        watchdog=watchdog,
        id=1,
        peer="test",
        listener_url="test://",
        tls=False,
        limits=ConnectionLimits(**limits),  # type: ignore[arg-type]
        counters=Counters(),
    )
    watchdog.connections.add(conn)
    return conn, SocketStream(theirs)


async def test_idle_receive_times_out_from_when_it_starts_waiting(watchdog: Watchdog) -> None:
    conn, client = make(watchdog, idle_timeout=0.2)
    await trio.sleep(0.3)  # time spent before waiting does not count
    await client.send_all(b"x")
    assert await conn.receive() == b"x"
    conn.request_complete()
    start = trio.current_time()
    with pytest.raises(ReceiveTimeout) as caught:
        await conn.receive()
    assert caught.value.phase == "idle"
    assert 0.15 < trio.current_time() - start < 0.5


async def test_request_deadline_counts_from_the_first_byte(watchdog: Watchdog) -> None:
    conn, client = make(watchdog, request_timeout=0.3)
    await client.send_all(b"partial")
    assert await conn.receive() == b"partial"
    assert conn.in_request
    start = trio.current_time()
    with pytest.raises(ReceiveTimeout) as caught:
        await conn.receive()
    assert caught.value.phase == "request"
    assert trio.current_time() - start < 0.5


async def test_body_phase_is_progress_based_and_survives_shutdown(watchdog: Watchdog) -> None:
    conn, client = make(watchdog, request_timeout=0.3)
    await client.send_all(b"HEAD\n")
    await conn.receive()
    conn.request_complete(body_follows=True)
    for _ in range(4):  # 0.8s in all, each chunk within the timeout
        await trio.sleep(0.2)
        await client.send_all(b"chunk")
        assert await conn.receive() == b"chunk"
    conn.begin_closing()
    await client.send_all(b"last")
    assert await conn.receive() == b"last"  # shutdown does not cut a body short
    conn.request_complete()
    assert await conn.receive() == b""  # but the next request is not read
    assert conn.closing


async def test_begin_closing_wakes_an_idle_receive_and_sending_still_works(
    watchdog: Watchdog,
) -> None:
    conn, client = make(watchdog)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_close_soon, conn)
        with trio.fail_after(2):
            assert await conn.receive() == b""
    await conn.send(b"goodbye")
    assert await client.receive_some() == b"goodbye"


async def _close_soon(conn: Connection) -> None:
    await trio.sleep(0.1)
    conn.begin_closing()


async def test_send_timeout_breaks_the_connection_for_every_later_send(watchdog: Watchdog) -> None:
    conn, _client = make(watchdog, send_timeout=0.2)  # the client never reads
    with pytest.raises(SendTimeout, match=r"did not finish within 0\.2s"):
        await conn.send(b"x" * 50_000_000)
    with pytest.raises(ConnectionLost, match="did not finish"):
        await conn.send(b"must not follow half a message")


async def test_concurrent_senders_to_a_stuck_client_all_fail(watchdog: Watchdog) -> None:
    conn, _client = make(watchdog, send_timeout=0.3)
    outcomes: list[str] = []

    async def sender() -> None:
        try:
            await conn.send(b"y" * 20_000_000)
        except (SendTimeout, ConnectionLost) as exc:
            outcomes.append(type(exc).__name__)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(sender)
    assert trio.current_time() - start < 1.0  # the first times out, the rest fail at once
    assert sorted(outcomes) == ["ConnectionLost", "ConnectionLost", "SendTimeout"]


async def test_a_receive_deadline_does_not_disturb_a_waiting_send(watchdog: Watchdog) -> None:
    conn, client = make(watchdog, idle_timeout=0.2, send_timeout=5)
    received = bytearray()

    async def slow_reader() -> None:
        await trio.sleep(0.6)
        while len(received) < 10_000_000:
            received.extend(await client.receive_some(1_000_000))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow_reader)
        nursery.start_soon(conn.send, b"z" * 10_000_000)  # blocks until the reader starts
        with pytest.raises(ReceiveTimeout):
            await conn.receive()  # its deadline wakes the socket; the send waits on
    assert len(received) == 10_000_000


async def test_reset_by_peer_reads_as_end_of_stream(watchdog: Watchdog) -> None:
    conn, client = make(watchdog)
    await client.aclose()
    assert await conn.receive() == b""
