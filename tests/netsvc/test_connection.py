# Connection on in-memory streams: deadlines by phase, shutdown wake-ups, and
# what a send timeout leaves behind.
from __future__ import annotations

import pytest
import trio
import trio.testing

from netsvc import (
    Connection,
    ConnectionLimits,
    ConnectionLost,
    Counters,
    ReceiveTimeout,
    SendTimeout,
)


def make(stream: trio.abc.Stream, **limits: float | None) -> Connection:
    return Connection(
        stream,
        id=1,
        peer="test",
        listener_url="test://",
        tls=False,
        limits=ConnectionLimits(**limits),  # type: ignore[arg-type]
        counters=Counters(),
    )


async def test_idle_receive_times_out_from_when_it_starts_waiting() -> None:
    server, client = trio.testing.memory_stream_pair()
    conn = make(server, idle_timeout=0.2)
    await trio.sleep(0.3)  # time spent before waiting does not count
    await client.send_all(b"x")
    assert await conn.receive() == b"x"
    conn.request_complete()
    with pytest.raises(ReceiveTimeout) as caught:
        await conn.receive()
    assert caught.value.phase == "idle"


async def test_request_deadline_counts_from_the_first_byte() -> None:
    server, client = trio.testing.memory_stream_pair()
    conn = make(server, request_timeout=0.3)
    await client.send_all(b"partial")
    assert await conn.receive() == b"partial"
    assert conn.in_request
    start = trio.current_time()
    with pytest.raises(ReceiveTimeout) as caught:
        await conn.receive()
    assert caught.value.phase == "request"
    assert trio.current_time() - start < 0.5


async def test_body_phase_is_progress_based_and_survives_shutdown() -> None:
    server, client = trio.testing.memory_stream_pair()
    conn = make(server, request_timeout=0.3)
    await client.send_all(b"HEAD\n")
    await conn.receive()
    conn.request_complete(body_follows=True)
    for _ in range(4):  # 1.2s in all, each chunk within the timeout
        await trio.sleep(0.2)
        await client.send_all(b"chunk")
        assert await conn.receive() == b"chunk"
    conn.begin_closing()
    await client.send_all(b"last")
    assert await conn.receive() == b"last"  # shutdown does not cut a body short
    conn.request_complete()
    assert await conn.receive() == b""  # but the next request is not read
    assert conn.closing


async def test_begin_closing_wakes_an_idle_receive() -> None:
    server, _client = trio.testing.memory_stream_pair()
    conn = make(server)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 0)
        with trio.fail_after(2):
            nursery.start_soon(_close_soon, conn)
            assert await conn.receive() == b""


async def _close_soon(conn: Connection) -> None:
    await trio.sleep(0.1)
    conn.begin_closing()


async def test_send_timeout_breaks_the_connection_for_every_later_send() -> None:
    server, _client = trio.testing.lockstep_stream_pair()  # send_all waits for a reader
    conn = make(server, send_timeout=0.2)
    with pytest.raises(SendTimeout, match=r"did not finish within 0\.2s"):
        await conn.send(b"never read")
    with pytest.raises(ConnectionLost, match="did not finish"):
        await conn.send(b"must not follow half a message")


async def test_concurrent_senders_to_a_stuck_client_all_fail_within_the_timeout() -> None:
    server, _client = trio.testing.lockstep_stream_pair()
    conn = make(server, send_timeout=0.3)
    outcomes: list[str] = []

    async def sender() -> None:
        try:
            await conn.send(b"data")
        except (SendTimeout, ConnectionLost) as exc:
            outcomes.append(type(exc).__name__)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(sender)
    assert trio.current_time() - start < 0.6  # not 3 x 0.3s: waiting for the lock counts
    assert len(outcomes) == 3


async def test_reset_by_peer_reads_as_end_of_stream() -> None:
    server, client = trio.testing.memory_stream_pair()
    conn = make(server)
    await client.aclose()
    assert await conn.receive() == b""
