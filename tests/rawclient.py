# A raw TCP client for fault tests, on trio: send bytes (all at once, or
# dribbled with pauses) while reading everything the server sends, and report
# how the connection ended: a clean EOF, a reset, or still open. A reset is
# what destroys a server's last reply on a real network, so the tests that
# promise graceful closes assert "eof". Also: SIGTERM to a server under load.
from __future__ import annotations

import dataclasses
import errno
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence

import trio

from tests.serveprocess import ServeProcess

__all__ = ["Ending", "exchange", "open_raw", "sigterm_under_load"]


@dataclasses.dataclass
class Ending:
    data: bytes  # everything the server sent
    end: str  # "eof", "reset" or "open" (nothing more within the timeout)
    seconds: float  # from the first byte sent until the end


async def open_raw(host: str, port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream(host, port)
    return stream


async def exchange(
    host: str,
    port: int,
    payload: bytes | Sequence[tuple[float, bytes]],
    *,
    timeout: float = 10.0,
    read_delay: float = 0.0,
) -> Ending:
    """Connect, send `payload` (bytes, or (pause, bytes) steps), and read
    until the server ends the connection or `timeout` passes. With
    `read_delay`, reading starts late, as a client that is busy writing."""
    stream = await open_raw(host, port)
    received = bytearray()
    end = "open"
    start = trio.current_time()
    finished = start
    steps = [(0.0, payload)] if isinstance(payload, bytes) else list(payload)

    async def send() -> None:
        try:
            for pause, data in steps:
                await trio.sleep(pause)
                await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the server closed first: the reader says how

    async with stream:
        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                await trio.sleep(read_delay)
                end = await _read_to_end(stream, received)
                finished = trio.current_time()
                nursery.cancel_scope.cancel()
    return Ending(bytes(received), end, finished - start)


async def _read_to_end(stream: trio.SocketStream, received: bytearray) -> str:
    while True:
        try:
            data = await stream.receive_some(65536)
        except trio.BrokenResourceError as exc:
            cause = exc.__cause__
            if isinstance(cause, OSError) and cause.errno == errno.ECONNRESET:
                return "reset"
            raise
        if not data:
            return "eof"
        received += data


def linger_reset(sock: socket.socket) -> None:
    """Make close() send a reset (SO_LINGER 0), as a client that crashes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


async def sigterm_under_load(
    process: ServeProcess,
    client: Callable[[], Awaitable[None]],
    started: trio.Event,
    *,
    clients: int = 50,
) -> None:
    """Run `clients` copies of `client` against a `netsvc serve` subprocess,
    send it SIGTERM once `started` is set and a moment has passed, and check
    it exits 0 having finished every connection within its grace period."""
    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(client)
                await started.wait()
                await trio.sleep(0.3)
                process.signal(signal.SIGTERM)
            assert process.wait() == 0
    finally:
        process.stop()
    assert "grace period over" not in process.log
