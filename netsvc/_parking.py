# Where long-idle connections wait for their next byte: one epoll set of
# their own, nested in trio's, that a single task polls at most WAKE_BATCH
# events at a time. trio wakes every task whose socket is ready in one
# scheduler batch, so 10,000 clients leaving at once (each close costs some
# 50-100 us of Python and syscalls) would hold up everyone else for about a
# second; parked, they wake a batch at a time and the event loop polls for
# new work (a fresh client, a request) between batches. Linux only (epoll);
# elsewhere nothing is parked. Below _socketstream, which parks its reads here.
from __future__ import annotations

import contextlib
import select
import socket

import trio

__all__ = ["PARK_AFTER", "IdleParking"]

PARK_AFTER = 1.0  # seconds a connection waits between requests before it is parked
WAKE_BATCH = 16  # parked connections woken per trip through the scheduler


class IdleParking:
    """A waiting room for sockets with nothing to read. `run()` must be
    running (it is the server's) for parked waits to end by themselves."""

    def __init__(self) -> None:
        self._epoll: select.epoll | None = None  # while run() runs
        self._parked: dict[int, trio.lowlevel.Task] = {}

    @property
    def open(self) -> bool:
        """True while run() runs: only then is anything parked."""
        return self._epoll is not None

    @staticmethod
    def supported() -> bool:
        return hasattr(select, "epoll")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Wake the parked tasks whose sockets are ready, a batch at a time."""
        epoll = self._epoll = select.epoll()
        task_status.started()
        try:
            while True:
                await trio.lowlevel.wait_readable(epoll)
                for fd, _ in epoll.poll(0, WAKE_BATCH):
                    self._wake(fd)
        finally:
            for fd in list(self._parked):  # none, unless connections outlive the server
                self._wake(fd)
            self._epoll = None
            epoll.close()

    async def wait_readable(self, sock: socket.socket) -> None:
        """Wait until `sock` is readable (or at its end, or in error), or
        unpark() is called for it."""
        epoll = self._epoll
        assert epoll is not None, "nothing is parked while run() is not running"
        fd = sock.fileno()
        epoll.register(fd, select.EPOLLIN)
        self._parked[fd] = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            if self._parked.pop(fd, None) is not None:
                with contextlib.suppress(OSError):  # closed already: the kernel forgot it
                    epoll.unregister(fd)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def unpark(self, sock: socket.socket) -> None:
        """End `sock`'s parked wait now, if it has one. Call it before
        closing a socket (SocketStream does), or its fd number, reused by
        the next connection, would find this one's waiter."""
        self._wake(sock.fileno())

    def _wake(self, fd: int) -> None:
        task = self._parked.pop(fd, None)
        if task is not None:
            if self._epoll is not None:
                with contextlib.suppress(OSError):  # closed already: the kernel forgot it
                    self._epoll.unregister(fd)
            trio.lowlevel.reschedule(task)

    def __len__(self) -> int:
        return len(self._parked)
