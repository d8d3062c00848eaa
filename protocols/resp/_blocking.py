# Blocking commands (BLPOP, BRPOP, BLMOVE): clients waiting on keys, served in
# the order they started waiting, as Redis does. A change to a key someone
# waits on marks it ready (Database.touch); after the command (or the whole
# EXEC) that changed it, serve_ready() hands elements to the waiters, each
# through the pop its command asked for. While blocked, a client's connection
# is still read, so a client that hangs up stops waiting instead of
# swallowing an element meant for someone else.
from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from ._keyspace import Database, Keyspace
from ._reply import NULL_ARRAY, ErrorReply, Reply

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Blocking", "Waiter"]

# Takes what the waiter wants from its database; None when nothing is there yet.
Take = Callable[[Database], Reply | None]
PENDING_INPUT_LIMIT = 1024 * 1024  # bytes read ahead from a blocked client, then stop reading


@dataclasses.dataclass(eq=False)
class Waiter:
    client: Client
    db: Database
    keys: list[bytes]
    take: Take
    event: trio.Event = dataclasses.field(default_factory=trio.Event)
    result: Reply = None
    served: bool = False


class Blocking:
    def __init__(self, keyspace: Keyspace) -> None:
        self.keyspace = keyspace
        self.queues: dict[tuple[int, bytes], collections.deque[Waiter]] = {}
        self.clients = 0

    def serve_ready(self) -> None:
        """Serve waiters of ready keys in arrival order while there is
        something for them. Serving can make other keys ready (BLMOVE)."""
        ready = self.keyspace.ready
        while ready:
            index, key = ready.pop()
            queue = self.queues.get((index, key))
            db = self.keyspace[index]
            if not isinstance(db.get(key), collections.deque):
                continue  # gone, or another type now: as in Redis, its waiters wait on
            while queue:
                waiter = queue[0]
                try:
                    result = waiter.take(db)
                except ErrorReply as error:  # BLMOVE's destination is not a list:
                    result = error  # that waiter gets the error, as in Redis
                if result is None:
                    break
                waiter.result, waiter.served = result, True
                self._remove(waiter)
                waiter.event.set()

    async def wait(
        self, client: Client, keys: list[bytes], take: Take, seconds: float | None
    ) -> Reply:
        """Block until `take` succeeds for this client or `seconds` pass
        (None: forever); the null reply on timeout."""
        waiter = Waiter(client, client.db, list(dict.fromkeys(keys)), take)
        for key in waiter.keys:
            self.queues.setdefault((waiter.db.index, key), collections.deque()).append(waiter)
            waiter.db.blocked[key] = waiter.db.blocked.get(key, 0) + 1
        self.clients += 1
        # like Redis, a blocked client is not idle: no idle timeout while it waits
        idle_timeout, client.conn.idle_timeout = client.conn.idle_timeout, None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_hangup, client, nursery.cancel_scope)
                with trio.move_on_after(math.inf if seconds is None else seconds):
                    await waiter.event.wait()
                nursery.cancel_scope.cancel()
        finally:
            client.conn.idle_timeout = idle_timeout
            self.clients -= 1
            self._remove(waiter)
        return waiter.result if waiter.served else NULL_ARRAY

    def _remove(self, waiter: Waiter) -> None:
        db = waiter.db
        for key in waiter.keys:
            queue = self.queues.get((db.index, key))
            if queue is None or waiter not in queue:
                continue
            queue.remove(waiter)
            if not queue:
                del self.queues[(db.index, key)]
            count = db.blocked.get(key, 0) - 1
            if count <= 0:
                db.blocked.pop(key, None)
                self.keyspace.ready.discard((db.index, key))
            else:
                db.blocked[key] = count


async def _watch_hangup(client: Client, scope: trio.CancelScope) -> None:
    """Read on while blocked: keep pipelined commands for later (up to a
    limit), stop waiting at the client's end or at server shutdown."""
    conn = client.conn
    conn.parsed(0, partial=False)  # waiting is idle time, not a slow request
    while data := await conn.receive():
        conn.parsed(0, partial=False)  # read ahead, parsed later: not a request in flight
        client.pending_input.append(data)
        if sum(map(len, client.pending_input)) > PENDING_INPUT_LIMIT:
            await trio.sleep_forever()  # TCP pushes back on the client
    if not conn.closing:  # the client left; at shutdown, what it sent is still answered
        client.close_after_reply = True
    scope.cancel()
