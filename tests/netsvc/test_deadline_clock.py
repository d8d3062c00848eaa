# Deadlines after a plugin's synchronous work: a receive() or send() called
# right after a handler kept the event loop busy (a big reply built, a slow
# command run) must still get its whole timeout, counted from the call. The
# core reads the clock once per watchdog tick, and the watchdog cannot tick
# while the loop is busy, so these deadlines start from a stale clock.
from __future__ import annotations

import time

import pytest
import trio

from netsvc import (
    Connection,
    ConnectionLimits,
    Protocol,
    ReceiveTimeout,
    Runtime,
    SendTimeout,
    Service,
)
from netsvc.testing import serve

TICK = 0.05  # the core's deadline watchdog
BUSY = 0.8  # seconds of synchronous work before the wait
TIMEOUT = 1.0


class BusyService(Service):
    """Reads a line, works synchronously for BUSY seconds, then waits: for the
    client's next bytes ("idle") or for a client that does not read ("send").
    Records how long that wait lasted before its deadline ended it."""

    def __init__(self) -> None:
        self.waited: float | None = None

    async def handle(self, conn: Connection) -> None:
        command = await conn.receive()
        conn.parsed(1, partial=False)
        time.sleep(BUSY)  # noqa: ASYNC251 - the point: work that holds the event loop
        started = trio.current_time()
        try:
            if command.startswith(b"idle"):
                await conn.receive()
            else:
                await conn.send(b"x" * 50_000_000)
        except (ReceiveTimeout, SendTimeout):
            self.waited = trio.current_time() - started


class BusyProtocol(Protocol[None, None]):
    name = "busy"
    schemes = ("busy",)
    default_port = 0
    description = "synchronous work, then a wait with a deadline"
    limits = ConnectionLimits(idle_timeout=TIMEOUT, request_timeout=30, send_timeout=TIMEOUT)

    def __init__(self) -> None:
        self.service = BusyService()

    def create_service(self, app: None, settings: None, runtime: Runtime) -> Service:
        return self.service


@pytest.mark.parametrize("wait", ["idle", "send"])
async def test_a_deadline_counts_from_the_call_after_synchronous_work(wait: str) -> None:
    plugin = BusyProtocol()
    async with serve(plugin) as running:
        client = await running.connect()
        await client.send_all(wait.encode() + b"\n")  # then neither send nor read
        with trio.fail_after(BUSY + TIMEOUT + 3):
            while plugin.service.waited is None:
                await trio.sleep(0.05)
        await client.aclose()
    assert plugin.service.waited >= TIMEOUT - 2 * TICK, plugin.service.waited
