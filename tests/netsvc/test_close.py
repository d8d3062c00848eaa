# Graceful closes, in process over real sockets: whichever way a connection
# ends (the handler returns, a refusal at the limit, a deadline, shutdown),
# plain TCP or TLS, the client reads the last reply and then a clean end,
# never a reset, though it sent more than the server read.
from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import AsyncIterator

import pytest
import trio
import trustme

from netsvc import ConnectionLimits, Server
from netsvc.testing import RunningServer, serve
from tests.netsvc.probe import protocol as probe

JUNK = b"x" * 200_000


@pytest.fixture(params=["tcp", "tls"])
async def tls_or_not(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, object]]:
    if request.param == "tcp":
        yield {}
        return
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    yield {"ssl_context": server_context, "client_ssl_context": client_context}


async def read_to_end(stream: trio.abc.Stream) -> tuple[bytes, str]:
    """Everything the server sends, and "eof" or "reset" for how it ended."""
    received = b""
    while True:
        try:
            data = await stream.receive_some()
        except trio.BrokenResourceError as exc:
            return received, f"reset ({exc.__cause__!r})"
        if not data:
            return received, "eof"
        received += data


async def send_then_read(running: RunningServer, payload: bytes) -> tuple[bytes, str]:
    stream = await running.connect()

    async def send() -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(payload)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        await trio.sleep(0.2)  # read late: the server has closed by now
        ending = await read_to_end(stream)
        nursery.cancel_scope.cancel()
    return ending


async def test_protocol_error_then_close(tls_or_not: dict[str, object]) -> None:
    async with serve(probe, settings={"max_line": 100}, **tls_or_not) as running:  # type: ignore[arg-type]
        data, end = await send_then_read(running, b"y" * 1000 + b"\n" + JUNK)
        assert data == b"HELLO\nERR line too long\n"
        assert end == "eof"


async def test_refusal_then_close(tls_or_not: dict[str, object]) -> None:
    limits = ConnectionLimits(max_connections=1)
    async with serve(probe, limits=limits, **tls_or_not) as running:  # type: ignore[arg-type]
        first = await running.connect()
        assert await first.receive_some() == b"HELLO\n"
        data, end = await send_then_read(running, JUNK)
        assert data == b"BUSY too many connections\n"
        assert end == "eof"


async def test_request_deadline_then_close(tls_or_not: dict[str, object]) -> None:
    limits = ConnectionLimits(request_timeout=0.3)
    async with serve(probe, limits=limits, **tls_or_not) as running:  # type: ignore[arg-type]
        stream = await running.connect()
        await stream.send_all(b"ECHO unfinished")  # no newline: a request in progress
        with trio.fail_after(3):
            data, end = await read_to_end(stream)
        assert data == b"HELLO\n"
        assert end == "eof"


async def test_shutdown_goodbye_then_close(tls_or_not: dict[str, object]) -> None:
    async with serve(probe, settings={"polite": True}, **tls_or_not) as running:  # type: ignore[arg-type]
        stream = await running.connect()
        assert await stream.receive_some() == b"HELLO\n"
        running.server.shutdown()
        with trio.fail_after(3):
            data, end = await read_to_end(stream)
        assert data == b"BYE\n"
        assert end == "eof"


async def test_clients_still_waiting_to_be_accepted_at_shutdown_are_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def busy_elsewhere(*args: object) -> None:  # an accept loop that never gets to run
        await trio.sleep_forever()

    monkeypatch.setattr(Server, "_accept_loop", busy_elsewhere)
    async with serve(probe, settings={"polite": True}) as running:
        assert running.port is not None
        clients = []
        for _ in range(20):  # connected by the kernel; the server has not run since
            sock = socket.create_connection(("127.0.0.1", running.port))
            sock.sendall(b"ECHO sent early\n")
            clients.append(sock)
        running.server.shutdown()
        await trio.sleep(0.5)
    for sock in clients:
        with sock:
            sock.settimeout(2)
            received = b""
            while data := sock.recv(65536):  # a reset raises here
                received += data
            assert received == b"HELLO\nsent early\nBYE\n"


async def test_a_client_that_keeps_sending_is_drained_256_kib_at_most() -> None:
    # the drain stops at 256 KiB (CLOSE_LINGER_BYTES) as well as at 1 s: a
    # client that keeps sending and never closes is closed (its sends fail)
    # as soon as that much of what it sent has been read and dropped, well
    # before the second is up (the EOF it reads comes first, at the drain's
    # start)
    async with serve(probe, settings={"max_line": 100}) as running:
        stream = await running.connect()
        assert await stream.receive_some() == b"HELLO\n"
        await stream.send_all(b"y" * 1000 + b"\n")  # a protocol error: the handler returns
        reply = b""
        with trio.fail_after(5):
            while not reply.endswith(b"ERR line too long\n"):
                reply += await stream.receive_some()
        answered = trio.current_time()
        with trio.fail_after(5), contextlib.suppress(trio.BrokenResourceError):
            while True:
                await stream.send_all(JUNK)
        closed = trio.current_time()
    assert closed - answered < 0.6, f"closed {closed - answered:.2f}s after the last reply"
