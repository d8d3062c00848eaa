# The stream every connection is served on: a trio Stream over a non-blocking
# stdlib socket that tries each syscall first and waits only when the kernel
# says EAGAIN. Deadlines cost nothing per call: a wait is ended from outside
# with interrupt() (the server's deadline watchdog, or shutdown), which wakes
# it through trio's notify_closing without closing the socket, so a plugin can
# still send its last words. trio's own SocketStream enters cancel scopes and
# yields twice per call; on a busy server that was most of the CPU time. It
# also owns the graceful close: shut down our side, drain what the client still
# sends, then close, so the kernel never answers unread bytes with a reset.
# A read told to park (interrupt("read", PARK)) waits in _parking's epoll set.
from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from ._parking import Parking

__all__ = ["PARK", "Interrupted", "SocketStream", "close_gracefully"]

DEFAULT_RECEIVE_SIZE: Final = 65536
PARK: Final = "park"  # the interrupt reason that moves a read's wait to the parking


class Interrupted(Exception):
    """A wait was ended by interrupt(); `reason` is what interrupt() was given."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SocketStream(trio.abc.HalfCloseableStream):
    """One connected socket. Not for concurrent senders or receivers: the
    Connection on top serialises sends and has one reader."""

    def __init__(
        self,
        sock: socket.socket,
        parking: Parking | None = None,
        inline: Parking | None = None,
    ) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # fails for a peer that already reset on some systems: that is its
            # first read's business, not the accept loop's
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket = sock
        self.parking = parking  # where a read waits once interrupted with PARK
        self.inline = inline  # where Connection.serve_inline waits
        self._closed = False
        self._eof_sent = False
        self._close_deferred = False  # aclose() only sends EOF: see defer_close()
        # why the current (or next) wait for reading / writing must end
        self._interrupts: dict[str, str] = {}
        self.bytes_sent = 0  # handed to the kernel, all told (Connection.send's failures)
        # a send has yielded to trio since the last read: see receive_some()
        self._yielded_since_read = False

    def interrupt(self, direction: str, reason: str) -> None:
        """End the current (or next) wait for `direction` ("read" or "write")
        with Interrupted(reason). A finished read or write forgets it. PARK
        (a read's wait moves to the parking) never replaces another reason."""
        if reason == PARK and direction in self._interrupts:
            return
        self._interrupts[direction] = reason
        if not self._closed:
            trio.lowlevel.notify_closing(self.socket)  # wakes both directions
            self._unpark()

    def _unpark(self) -> None:
        """End this socket's wait in the parking or the inline set, if any."""
        if self.parking is not None:
            self.parking.unpark(self.socket)
        if self.inline is not None:
            self.inline.unpark(self.socket)

    def disarm(self, direction: str) -> None:
        """Forget an interrupt for `direction` that no wait has taken."""
        self._interrupts.pop(direction, None)

    def interrupted(self, direction: str) -> bool:
        """True if an interrupt for `direction` waits for a wait to take it."""
        return direction in self._interrupts

    def send_now(self, data: bytes) -> int:
        """Hand the kernel what it takes of `data` at once, without waiting
        or yielding (a reply served inline): how many bytes. 0 when it takes
        none, or on an error, which the next send_all() raises."""
        try:
            sent = self.socket.send(data)
        except OSError:  # BlockingIOError too
            return 0
        self.bytes_sent += sent
        return sent

    async def _wait(self, direction: str, wait: Callable[[socket.socket], Awaitable[None]]) -> None:
        while True:
            reason = self._interrupts.pop(direction, None)
            if reason == PARK:
                if self.parking is not None and self.parking.open:
                    await self.parking.wait_readable(self.socket)
                    return
                continue
            if reason is not None:
                raise Interrupted(reason)
            try:
                await wait(self.socket)
                return
            except trio.ClosedResourceError:
                if self._closed:
                    raise
                # woken by an interrupt: ours raises above, the other direction's
                # just means waiting again

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        await trio.lowlevel.checkpoint_if_cancelled()
        size = max_bytes or DEFAULT_RECEIVE_SIZE
        waited = False
        while True:
            try:
                data = self.socket.recv(size)
            except BlockingIOError:
                await self._wait("read", trio.lowlevel.wait_readable)
                waited = True
                continue
            except OSError as exc:
                raise _stream_error(exc) from exc
            self._interrupts.pop("read", None)  # a deadline that passed as data came is moot
            # Waiting let others run already; so did a send since the last
            # read (it yields after every send), the usual case of a read
            # after a reply; else yield now. Between two reads that do not
            # yield, this task has yielded: a read loop cannot starve others.
            # A request-reply loop yields once per round, not twice (HTTP
            # keep-alive GETs on one connection: 252,000 -> 218,000
            # instructions per request, callgrind).
            if not waited and not self._yielded_since_read:
                await trio.lowlevel.cancel_shielded_checkpoint()
            self._yielded_since_read = False
            return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        await trio.lowlevel.checkpoint_if_cancelled()
        view = memoryview(data)
        waited = False
        while view:
            try:
                sent = self.socket.send(view)
            except BlockingIOError:
                await self._wait("write", trio.lowlevel.wait_writable)
                waited = True
                continue
            except OSError as exc:
                raise _stream_error(exc) from exc
            view = view[sent:]
            self.bytes_sent += sent
        self._interrupts.pop("write", None)
        if not waited:
            # Yield after every send, as trio's own streams do. Yielding only
            # once in 16 sends measured twice the CPU per request, with the
            # same syscalls (redis-benchmark -c 50 -P 1 GET on the bare loop
            # plugin, bench/core_floor.py: 18k -> 35k req/s, 55 -> 29 us of
            # server CPU per request).
            await trio.lowlevel.cancel_shielded_checkpoint()
        self._yielded_since_read = True

    async def wait_send_all_might_not_block(self) -> None:
        await self._wait("write", trio.lowlevel.wait_writable)

    async def send_eof(self) -> None:
        """Shut down our side (the client reads EOF); a second call does nothing."""
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        await trio.lowlevel.checkpoint()
        self._shutdown_write()

    def _shutdown_write(self) -> None:
        if self._eof_sent:
            return
        self._eof_sent = True
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise _stream_error(exc) from exc

    def defer_close(self) -> None:
        """Make the next aclose() shut down our side only, keeping the socket
        open for drain_and_close(): a TLS stream on top sends its close_notify
        and then closes its transport, and the client's unread bytes must
        still be drained after that."""
        self._close_deferred = True

    async def drain_and_close(self, max_bytes: int) -> None:
        """Graceful close: shut down our side, read and drop what the client
        still sends until its EOF (or `max_bytes`), then close. Unread bytes
        at close make the kernel send a reset, which can destroy our last
        reply before the client reads it. What has arrived is read without
        waiting; only a client that has not finished is waited for. The
        caller bounds the time; a cancelled drain still closes."""
        try:
            if not self._closed:
                self._interrupts.clear()
                self._shutdown_write()
                drained = 0
                while drained < max_bytes:
                    try:
                        data = self.socket.recv(DEFAULT_RECEIVE_SIZE)
                    except BlockingIOError:
                        await self._wait("read", trio.lowlevel.wait_readable)
                        continue
                    if not data:
                        break
                    drained += len(data)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, Interrupted):
            pass  # the client reset or left: nothing more to protect
        finally:
            self.close_now()

    def close_now(self) -> None:
        """Close at once, without a checkpoint; a second call does nothing.
        Waits on the socket in other tasks end with ClosedResourceError."""
        self._close_deferred = False
        if not self._closed:
            self._closed = True
            trio.lowlevel.notify_closing(self.socket)
            self._unpark()  # before its fd number can be reused
            self.socket.close()

    async def aclose(self) -> None:
        if self._close_deferred and not self._closed:
            self._close_deferred = False
            with contextlib.suppress(trio.BrokenResourceError):
                self._shutdown_write()
            await trio.lowlevel.checkpoint()
            return
        if not self._closed:
            self._closed = True
            trio.lowlevel.notify_closing(self.socket)
            self._unpark()  # before its fd number can be reused
            self.socket.close()
        await trio.lowlevel.checkpoint()


def _stream_error(exc: OSError) -> Exception:
    """trio's exception for a socket's error, caused by it (set here as well
    as by `raise ... from`, which mypyc's compiled raise ignores)."""
    error: Exception
    if exc.errno == errno.EBADF:
        error = trio.ClosedResourceError("the socket was closed")
    else:
        error = trio.BrokenResourceError(f"socket connection broken: {exc}")
    error.__cause__ = exc
    return error


async def close_gracefully(
    stream: trio.abc.Stream, transport: SocketStream, linger_bytes: int
) -> None:
    """Close `stream` (the transport itself, or TLS over it) without
    destroying what was sent last: TLS's close_notify, then shut down our
    side, drain up to `linger_bytes` the client still sends, close. The
    caller bounds the time."""
    if stream is not transport:
        # TLS: first read what the client already sent, through TLS and without
        # waiting, since records left unread make OpenSSL fail the shutdown
        # before its close_notify goes out
        drained = 0
        with contextlib.suppress(Interrupted, trio.BrokenResourceError, trio.ClosedResourceError):
            while drained < linger_bytes:
                transport.interrupt("read", "drain")
                data = await stream.receive_some()
                if not data:
                    break
                drained += len(data)
        transport.disarm("read")
        transport.defer_close()  # TLS closes its transport: keep it for the drain
        with contextlib.suppress(Interrupted, trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.aclose()
    await transport.drain_and_close(linger_bytes)
