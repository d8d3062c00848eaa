# Blocking commands (BLPOP, BRPOP, BLMOVE, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP,
# XREAD, WAIT): clients waiting on keys of one type, served in the order they
# started waiting, as Redis does. A change to a key someone
# waits on marks it ready (Database.touch); after the command (or the whole
# EXEC) that changed it, serve_ready() hands elements to the waiters, each
# through the pop its command asked for. While blocked, a client's connection
# is still read (the driver's Link.wait_blocked), so a client that hangs up
# stops waiting instead of swallowing an element meant for someone else.
# CLIENT UNBLOCK ends a wait early, as a timeout or with Redis's UNBLOCKED error.
# A take runs as its client's command, when it first runs and when it is
# served: a CLIENT NO-TOUCH client's leaves access times alone (take_as).
from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import trio

from ._keyspace import Database, Keyspace
from ._reply import NULL_ARRAY, ErrorReply, Reply

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["UNBLOCKED", "Blocking", "Take", "Waiter"]

UNBLOCKED: Final = "UNBLOCKED client unblocked via CLIENT UNBLOCK"

# Takes what the waiter wants from its database; None when nothing is there yet.
Take = Callable[[Database], Reply | None]


@dataclasses.dataclass(eq=False)
class Waiter:
    client: Client
    db: Database
    keys: list[bytes]
    take: Take
    kind: type  # of the values it waits for (deque: a list); others leave it waiting
    event: trio.Event = dataclasses.field(default_factory=trio.Event)
    result: Reply = None
    served: bool = False


class Blocking:
    def __init__(self, keyspace: Keyspace) -> None:
        self.keyspace = keyspace
        self.queues: dict[tuple[int, bytes], collections.deque[Waiter]] = {}
        self.waiting: dict[Client, Waiter] = {}  # for CLIENT UNBLOCK
        self.clients = 0

    def serve_ready(self) -> None:
        """Serve waiters of ready keys in arrival order while there is
        something for them. Serving can make other keys ready (BLMOVE)."""
        ready = self.keyspace.ready
        while ready:
            index, key = ready.pop()
            queue = self.queues.get((index, key))
            if not queue:
                continue
            db = self.keyspace[index]
            for waiter in list(queue):
                # only a look, as Redis 7.2 looks (LOOKUP_NOEFFECTS): the take
                # is what accesses the key, as the served command's own lookup
                if not isinstance(db.peek(key), waiter.kind):
                    continue  # gone, or another type now: as in Redis, it waits on
                try:
                    result = self.take_as(waiter.client, db, waiter.take)
                except ErrorReply as error:  # BLMOVE's destination is not a list:
                    result = error  # that waiter gets the error, as in Redis
                if result is None:
                    continue
                waiter.result, waiter.served = result, True
                self._remove(waiter)
                waiter.event.set()

    def take_as(self, client: Client, db: Database, take: Take) -> Reply | None:
        """Run `take` as `client`'s command: when the command first runs,
        and when it is served later (Redis 7.2 runs a served command again,
        as its client's). A CLIENT NO-TOUCH client's leaves the access times
        of the keys it reads alone."""
        if not client.no_touch:
            return take(db)
        keyspace = self.keyspace
        touching = keyspace.touching
        keyspace.set_touching(False)
        try:
            return take(db)
        finally:
            keyspace.set_touching(touching)

    async def wait(
        self,
        client: Client,
        keys: list[bytes],
        take: Take,
        seconds: float | None,
        kind: type = collections.deque,
    ) -> Reply:
        """Block until `take` succeeds for this client or `seconds` pass
        (None: forever); the null reply on timeout. `take` is tried when one
        of `keys` holds a value of type `kind` and has changed (no keys: only
        the timeout or CLIENT UNBLOCK ends the wait, as for WAIT)."""
        waiter = Waiter(client, client.db, list(dict.fromkeys(keys)), take, kind)
        for key in waiter.keys:
            self.queues.setdefault((waiter.db.index, key), collections.deque()).append(waiter)
            waiter.db.blocked[key] = waiter.db.blocked.get(key, 0) + 1
        self.clients += 1
        self.waiting[client] = waiter
        client.starts_waiting()
        try:
            with trio.move_on_after(math.inf if seconds is None else seconds):
                if client.link is not None:
                    await client.link.wait_blocked(waiter.event)
                else:
                    await waiter.event.wait()
        finally:
            self.clients -= 1
            client.blocked = False
            self.waiting.pop(client, None)
            self._remove(waiter)
        return waiter.result if waiter.served else NULL_ARRAY

    def unblock(self, client: Client, *, error: bool) -> bool:
        """CLIENT UNBLOCK: end `client`'s wait now, as its timeout would, or
        with the UNBLOCKED error; False if it is not waiting here."""
        waiter = self.waiting.pop(client, None)
        if waiter is None:
            return False
        if error:
            waiter.result, waiter.served = ErrorReply(UNBLOCKED), True
        self._remove(waiter)
        waiter.event.set()
        return True

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
