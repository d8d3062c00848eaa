# Where connections wait for their next byte outside trio's own waits: one
# epoll set of their own, nested in trio's, that a single task polls at most
# WAKE_BATCH events at a time. Two kinds of waits:
# - parked: a long-idle connection's task sleeps here. trio wakes every task
#   whose socket is ready in one scheduler batch, so 10,000 clients leaving at
#   once (each close costs some 50-100 us of Python and syscalls) would hold
#   up everyone else for about a second; parked, they wake a batch at a time
#   and the event loop polls for new work between batches.
# - served inline: when the socket is ready, this task calls the waiter's
#   `ready` callback (Connection.serve_inline: read, the plugin's synchronous
#   code, write) and the waiting task sleeps on, until a callback's result
#   ends the wait. A request then costs no task switch: one trip through the
#   scheduler serves a batch of connections, as an asyncio loop does.
# Linux only (epoll); elsewhere nothing waits here. Below _socketstream,
# which parks its reads here.
from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Callable
from typing import Final

import outcome
import trio

__all__ = ["CONTINUE", "HANDOVER", "PARK_AFTER", "Parking"]

PARK_AFTER: Final = 1.0  # seconds a connection waits between requests before it is parked
WAKE_BATCH: Final = 16  # ready connections woken or served per trip through the scheduler
CONTINUE: Final = object()  # a `ready` callback's result that keeps its wait going
# a `ready` callback's result that ends its wait with it, and holds this loop
# until the woken task has run: what that task does before its first
# checkpoint (a blocking command registering its wait) comes before any read
# this loop serves next, as it would in Redis's single thread
HANDOVER: Final = object()


class _Waiter:
    __slots__ = ("ready", "task")

    def __init__(self, task: trio.lowlevel.Task, ready: Callable[[], object] | None) -> None:
        self.task = task
        self.ready = ready


class Parking:
    """A waiting room for sockets with nothing to read: parked waits, or
    waits served inline. `run()` must be running (it is the server's) for
    the waits to end by themselves."""

    def __init__(self) -> None:
        self._epoll: select.epoll | None = None  # while run() runs
        self._parked: dict[int, _Waiter] = {}
        self._serving = -1  # the fd whose `ready` callback runs now
        self._woken_while_serving = False
        self._handing_over: trio.Event | None = None  # set once the HANDOVER task runs
        self.served = 0  # `ready` callbacks run, all told

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
                    waiter = self._parked.get(fd)
                    if waiter is not None and waiter.ready is not None:
                        self._serve(fd, waiter.ready)
                        if self._handing_over is not None:
                            break  # the rest of the batch is served after that task
                    else:
                        self._wake(fd)
                if self._handing_over is not None:
                    await self._handing_over.wait()
                    self._handing_over = None
        finally:
            for fd in list(self._parked):  # none, unless connections outlive the server
                self._wake(fd)
            self._epoll = None
            epoll.close()

    async def wait_readable(self, sock: socket.socket) -> None:
        """Wait until `sock` is readable (or at its end, or in error), or
        unpark() is called for it."""
        await self._wait(sock, None)

    async def serve_inline(self, sock: socket.socket, ready: Callable[[], object]) -> object:
        """Call `ready()` from this loop's task each time `sock` is readable
        (at its end, or in error), until it returns something other than
        CONTINUE: that is returned here. unpark() ends the wait with None.
        An exception from `ready()` is raised here."""
        return await self._wait(sock, ready)

    async def _wait(self, sock: socket.socket, ready: Callable[[], object] | None) -> object:
        epoll = self._epoll
        assert epoll is not None, "nothing waits here while run() is not running"
        fd = sock.fileno()
        epoll.register(fd, select.EPOLLIN)
        self._parked[fd] = _Waiter(trio.lowlevel.current_task(), ready)

        def abort(_: object) -> trio.lowlevel.Abort:
            if self._parked.pop(fd, None) is not None:
                with contextlib.suppress(OSError):  # closed already: the kernel forgot it
                    epoll.unregister(fd)
            return trio.lowlevel.Abort.SUCCEEDED

        result = await trio.lowlevel.wait_task_rescheduled(abort)
        if result is HANDOVER and self._handing_over is not None:
            self._handing_over.set()  # this task runs now, until its first checkpoint
        return result

    def _serve(self, fd: int, ready: Callable[[], object]) -> None:
        """Run one inline waiter's callback. An unpark() it causes (the
        plugin ended its own connection, say) takes effect once it returns,
        so that its result (the rest of a reply to send) is not lost."""
        self._serving, self._woken_while_serving = fd, False
        self.served += 1
        try:
            value = ready()
        except Exception as exc:  # the plugin's bug: raised in the connection's own task
            self._wake(fd, outcome.Error(exc))
            return
        finally:
            self._serving = -1
        if value is CONTINUE:
            if not self._woken_while_serving:
                return
            value = None
        if value is HANDOVER and fd in self._parked:
            self._handing_over = trio.Event()
        self._wake(fd, outcome.Value(value))

    def unpark(self, sock: socket.socket) -> None:
        """End `sock`'s wait here now, if it has one (an inline one returns
        None). Call it before closing a socket (SocketStream does), or its fd
        number, reused by the next connection, would find this one's waiter."""
        fd = sock.fileno()
        if fd == self._serving:
            self._woken_while_serving = True
            return
        self._wake(fd)

    def _wake(self, fd: int, result: outcome.Outcome[object] | None = None) -> None:
        waiter = self._parked.pop(fd, None)
        if waiter is not None:
            if self._epoll is not None:
                with contextlib.suppress(OSError):  # closed already: the kernel forgot it
                    self._epoll.unregister(fd)
            trio.lowlevel.reschedule(waiter.task, result or outcome.Value(None))

    def __len__(self) -> int:
        return len(self._parked)
