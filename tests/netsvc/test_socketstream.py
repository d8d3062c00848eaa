# Socket errors as the stream reports them (netsvc/_socketstream.py), found
# unchecked by mutation testing: a reset is a broken stream, not a closed one,
# and everything above the stream (the TLS handshake too) ends that connection
# only. Also: every send is a checkpoint, as trio's streams, and so is every
# read but one that follows a send (which yielded already).
from __future__ import annotations

import socket
import ssl

import pytest
import trio
import trio.testing
import trustme

from netsvc._socketstream import SocketStream
from netsvc.testing import serve
from tests.lineclient import greeted
from tests.netsvc.probe import protocol as probe
from tests.rawclient import linger_reset

pytestmark = pytest.mark.usefixtures("close_line_clients")


async def test_a_client_that_resets_during_the_tls_handshake_ends_only_itself() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with serve(
        probe, ssl_context=server_context, client_ssl_context=client_context
    ) as running:
        bystander = await greeted(running)
        assert running.port is not None
        for _ in range(5):
            # connected, silent (the server waits for its ClientHello), then reset
            with socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw:
                linger_reset(raw)
                await trio.sleep(0.2)
        await trio.sleep(0.5)
        assert await bystander.ask("ECHO still here") == b"still here"
        fresh = await greeted(running)
        assert await fresh.ask("ECHO new") == b"new"


async def test_a_send_that_completes_at_once_still_lets_the_other_tasks_run() -> None:
    # a checkpoint, as trio's streams: the other ready connections send
    # first (sending on measured twice the CPU per request: see send_all)
    ours, theirs = socket.socketpair()
    stream = SocketStream(ours)
    ran: list[int] = []

    async def other() -> None:
        ran.append(1)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            # trio runs each batch of ready tasks in either order, so the
            # other task is sure to have run after two sends, not one
            await stream.send_all(b"x")
            await stream.send_all(b"x")
            assert ran == [1], "two sends that completed at once never yielded"
        # and each send is one: not every other one, nor only those with data
        for data in (b"x", b"y", b""):
            with trio.testing.assert_checkpoints():
                await stream.send_all(data)
    finally:
        stream.close_now()
        theirs.close()


async def test_reads_with_data_waiting_still_let_the_other_tasks_run() -> None:
    # a read that finds data yields, unless a send has yielded since the
    # last read (a request-reply loop yields once per round, not twice): a
    # loop that only reads still lets the others run, after a send too
    ours, theirs = socket.socketpair()
    stream = SocketStream(ours)
    ran: list[str] = []

    async def other(name: str) -> None:
        ran.append(name)

    try:
        theirs.sendall(b"r" * 23)  # 20 reads after a send, then 3 in a row
        for _ in range(20):  # a yield lets the other task run first or not: 20 tries
            await stream.send_all(b"x")  # yields; the next read need not
            async with trio.open_nursery() as nursery:
                nursery.start_soon(other, "after a send")
                assert await stream.receive_some(1)
                assert ran == [], "a read right after a send yielded a second time"
            ran.clear()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other, "reads")
            for _ in range(3):  # trio runs each batch in either order: two reads yield once
                assert await stream.receive_some(1)
            assert ran == ["reads"], "reads that found data never yielded"
        theirs.sendall(b"abc")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other, "rounds")
            for _ in range(3):  # request-reply rounds: each send yields
                assert await stream.receive_some(1)
                await stream.send_all(b"x")
            assert ran == ["reads", "rounds"]
    finally:
        stream.close_now()
        theirs.close()
