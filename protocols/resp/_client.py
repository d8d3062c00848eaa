# One Redis client's state: protocol version, selected database, name, the
# ACL user it runs commands as, MULTI queue and WATCHed keys, subscriptions.
# Handlers get a Client; through `client.server` they reach the shared state
# (_server.py), and through `client.link` the connection it came on, as far
# as commands need it (the driver, _driver.py, implements Link; a script's
# client has none).
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

import trio

from ._acl import User
from ._app import CommandSpec
from ._keyspace import Database
from ._reply import Push, encode

if TYPE_CHECKING:
    from ._server import RedisServer

__all__ = ["REPLIES_OFF", "REPLIES_ON", "REPLIES_SKIP", "REPLIES_SKIP_NEXT", "Client", "Link"]

# CLIENT REPLY: whether a command's reply is sent (falsy: yes, the common case)
REPLIES_ON: Final = 0
REPLIES_OFF: Final = 1
REPLIES_SKIP_NEXT: Final = 2  # CLIENT REPLY SKIP was the command: the next one is silent
REPLIES_SKIP: Final = 3  # this command's reply is dropped, then replies are on again


class Link(Protocol):
    """What commands may ask of a client's connection."""

    peer: str  # the client's address, as CLIENT LIST shows it
    local: str  # ours

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger that names the connection."""

    def push(self, data: bytes) -> None:
        """Send `data` (an encoded push frame) without waiting."""

    def disconnect(self) -> None:
        """End the connection after the current command (CLIENT KILL)."""

    def count_error(self) -> None:
        """Count a command that crashed in the listener's error counter."""

    def count_failed_login(self) -> None:
        """Count a wrong password in the listener's counters."""

    async def wait_blocked(self, until: trio.Event) -> None:
        """Wait for `until` while the command blocks (BLPOP): the connection
        is still read, and the wait ends early if the client goes away."""


class Client:
    """A client, as CLIENT LIST shows it."""

    def __init__(self, server: RedisServer, client_id: int) -> None:
        self.server = server
        self.link: Link | None = None  # set by the driver
        self.id = client_id
        self.protocol = 2
        self.db: Database = server.keyspace[0]
        self.name = b""
        self.lib_name = b""
        self.lib_version = b""
        self.user: User = server.acl.default
        # the ACL check's one test: False for a user who may run anything anywhere
        self.restricted = not self.user.unrestricted
        # logged in; a client need not be while the default user has no password
        self.authenticated = not server.acl.auth_required
        self.created = time.monotonic()
        self.last_interaction = self.created
        self.last_command = b"NULL"
        self.close_after_reply = False  # QUIT, CLIENT KILL
        self.killed = False  # by another client (CLIENT KILL): no reply more
        self.replies = REPLIES_ON  # CLIENT REPLY
        # MULTI: the queued commands, or None outside a transaction
        self.multi: list[tuple[CommandSpec, list[bytes]]] | None = None
        self.multi_failed = False  # a command was refused while queueing: EXEC aborts
        self.in_exec = False  # blocking commands must not wait while EXEC runs them
        self.blocked = False  # waiting in a blocking command, or held by CLIENT PAUSE
        # called once when the command that runs starts to wait (CLIENT PAUSE's
        # line hands the turn on then)
        self.when_blocked: Callable[[], None] | None = None
        self.no_evict = False  # CLIENT NO-EVICT (netsvc evicts no client: shown, kept)
        self.no_touch = False  # CLIENT NO-TOUCH: its commands leave access times alone
        # (db, key) -> its version when watched, and whether it had expired then
        self.watching: dict[tuple[int, bytes], tuple[int, bool]] = {}
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()

    def login(self, user: User) -> None:
        """Run commands as `user` from now on (AUTH, a client certificate)."""
        self.user = user
        self.authenticated = True
        self.restricted = not user.unrestricted

    def login_as_default(self) -> None:
        """As a new client is (RESET): the default user, logged in only if it
        needs no password (Redis's clientSetDefaultAuth)."""
        acl = self.server.acl
        self.user = acl.default
        self.authenticated = not acl.auth_required
        self.restricted = not self.user.unrestricted

    def log_out(self) -> None:
        """A client being disconnected because its user went away (ACL
        DELUSER, LOAD): a user with no permission at all until it is gone,
        never the default user, or a script it runs would go on as default."""
        self.user = User(self.user.name)
        self.authenticated = False
        self.restricted = True

    def starts_waiting(self) -> None:
        """The command that runs starts to wait (a blocking command blocks,
        or CLIENT PAUSE holds it): call `when_blocked`, once."""
        self.blocked = True
        hook, self.when_blocked = self.when_blocked, None
        if hook is not None:
            hook()

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
        """Send a push frame (a pub/sub message) without waiting."""
        if self.link is not None:
            self.link.push(encode(frame, self.protocol))

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
            self.server.keyspace[index].watch_changed(key, version, expired)
            for (index, key), (version, expired) in self.watching.items()
        )

    # -- CLIENT LIST ---------------------------------------------------------

    def describe(self) -> str:
        now = time.monotonic()
        flags = "".join(
            letter
            for letter, on in (
                ("P", self.subscribed),
                ("x", self.multi is not None),
                ("b", self.blocked),
                ("e", self.no_evict),
                ("T", self.no_touch),
            )
            if on
        )
        fields = {
            "id": self.id,
            "addr": self.link.peer if self.link else "",
            "laddr": self.link.local if self.link else "",
            "fd": -1,
            "name": self.name.decode(errors="replace"),
            "age": int(now - self.created),
            "idle": int(now - self.last_interaction),
            "flags": flags or "N",
            "db": self.db.index,
            "sub": len(self.channels),
            "psub": len(self.patterns),
            "ssub": 0,
            "multi": -1 if self.multi is None else len(self.multi),
            # buffers Redis reports and clients parse as numbers (redis-py's
            # client_info(): rq reads them); netsvc keeps no such buffers
            "qbuf": 0,
            "qbuf-free": 0,
            "argv-mem": 0,
            "multi-mem": 0,
            "rbs": 0,
            "rbp": 0,
            "obl": 0,
            "oll": 0,
            "omem": 0,
            "tot-mem": 0,
            "events": "r",
            "cmd": self.last_command.decode(errors="replace").lower(),
            "user": self.user.name.decode(errors="replace"),
            "redir": -1,
            "resp": self.protocol,
            "lib-name": self.lib_name.decode(errors="replace"),
            "lib-ver": self.lib_version.decode(errors="replace"),
        }
        return " ".join(f"{key}={value}" for key, value in fields.items())

    def kill(self, by: Client) -> None:
        """CLIENT KILL: like Redis, this client is gone from CLIENT LIST,
        pub/sub and WATCH at once, not when its task gets to run; killed by
        another client it gets no reply more (a blocked one no null reply),
        killed by itself it gets this command's reply, then the end."""
        self.close_after_reply = True
        self.killed = by is not self
        self.server.forget(self)
        if self.link is not None:
            self.link.disconnect()  # wakes it if it is waiting for a command
