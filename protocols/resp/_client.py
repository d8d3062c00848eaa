# One Redis client's state: protocol version, selected database, name,
# authentication, MULTI queue and WATCHed keys, subscriptions. Handlers get
# a Client; through `client.server` they reach the shared keyspace.
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from netsvc import Connection

from ._app import CommandSpec
from ._keyspace import Database
from ._pubsub import Outbox
from ._reply import Push, encode

if TYPE_CHECKING:
    from ._service import RespService

__all__ = ["REPLIES_OFF", "REPLIES_ON", "REPLIES_SKIP", "REPLIES_SKIP_NEXT", "Client"]

# CLIENT REPLY: whether a command's reply is sent (falsy: yes, the common case)
REPLIES_ON = 0
REPLIES_OFF = 1
REPLIES_SKIP_NEXT = 2  # CLIENT REPLY SKIP was the command: the next one is silent
REPLIES_SKIP = 3  # this command's reply is dropped, then replies are on again


class Client:
    """A connected client, as CLIENT LIST shows it."""

    def __init__(self, server: RespService, conn: Connection, client_id: int) -> None:
        self.server = server
        self.conn = conn
        self.id = client_id
        self.protocol = 2
        self.db: Database = server.keyspace[0]
        self.name = b""
        self.lib_name = b""
        self.lib_version = b""
        self.authenticated = server.requirepass is None
        self.created = time.monotonic()
        self.last_interaction = self.created
        self.last_command = b"NULL"
        self.close_after_reply = False  # QUIT, CLIENT KILL
        self.replies = REPLIES_ON  # CLIENT REPLY
        # MULTI: the queued commands, or None outside a transaction
        self.multi: list[tuple[CommandSpec, list[bytes]]] | None = None
        self.multi_failed = False  # a command was refused while queueing: EXEC aborts
        self.in_exec = False  # blocking commands must not wait while EXEC runs them
        self.pending_input: list[bytes] = []  # read while blocked, parsed afterwards
        self.watching: dict[tuple[int, bytes], int] = {}  # (db, key) -> version when watched
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        # Output written by a task of this connection's own, created on the first
        # push (pub/sub): from then on replies go through it too, keeping order.
        self.outbox: Outbox | None = None
        self.nursery: trio.Nursery | None = None  # the connection's, set by the service

    def silenced(self) -> bool:
        """After a command: True if its reply is not sent (CLIENT REPLY OFF,
        or SKIP), moving a SKIP on to the next command."""
        mode = self.replies
        if mode == REPLIES_SKIP_NEXT:
            self.replies = REPLIES_SKIP
            return True
        if mode == REPLIES_SKIP:
            self.replies = REPLIES_ON
            return True
        return mode == REPLIES_OFF

    @property
    def subscribed(self) -> bool:
        return bool(self.channels or self.patterns)

    def push(self, frame: Push) -> None:
        """Queue a push frame (a pub/sub message) without waiting."""
        self.ensure_outbox().put(encode(frame, self.protocol))

    def ensure_outbox(self) -> Outbox:
        if self.outbox is None:
            assert self.nursery is not None, "push before the connection started"
            self.outbox = Outbox(self.conn)
            self.nursery.start_soon(self.outbox.run)
        return self.outbox

    def select(self, index: int) -> None:
        self.db = self.server.keyspace[index]

    # -- WATCH ---------------------------------------------------------------

    def watch(self, key: bytes) -> None:
        slot = (self.db.index, key)
        if slot not in self.watching:
            self.watching[slot] = self.db.watch(key)

    def unwatch_all(self) -> None:
        for index, key in self.watching:
            self.server.keyspace[index].unwatch(key)
        self.watching.clear()

    def watched_changed(self) -> bool:
        return any(
            self.server.keyspace[index].version(key) != version
            for (index, key), version in self.watching.items()
        )

    # -- CLIENT LIST ---------------------------------------------------------

    def describe(self) -> str:
        now = time.monotonic()
        flags = "x" if self.multi is not None else ("P" if self.subscribed else "N")
        fields = {
            "id": self.id,
            "addr": self.conn.peer,
            "laddr": self.conn.local,
            "fd": -1,
            "name": self.name.decode(errors="replace"),
            "age": int(now - self.created),
            "idle": int(now - self.last_interaction),
            "flags": flags,
            "db": self.db.index,
            "sub": len(self.channels),
            "psub": len(self.patterns),
            "multi": -1 if self.multi is None else len(self.multi),
            "cmd": self.last_command.decode(errors="replace").lower(),
            "resp": self.protocol,
            "lib-name": self.lib_name.decode(errors="replace"),
            "lib-ver": self.lib_version.decode(errors="replace"),
        }
        return " ".join(f"{key}={value}" for key, value in fields.items())

    def kill(self) -> None:
        """Close this client after its current command (CLIENT KILL). Like
        Redis, it is gone from CLIENT LIST, pub/sub and WATCH at once, not
        when its task gets to run."""
        self.close_after_reply = True
        self.server.forget(self)
        self.conn.disconnect()  # wakes it if it is waiting for a command
