# The state one RESP server shares between all its clients, as Redis keeps it
# in `struct redisServer`: the command table, the keyspace, the clients,
# pub/sub, blocking waits, config, stats and SCAN snapshots. Plain state and
# the operations on it, no I/O: the connection driver (_driver.py) owns the
# connections, and commands reach this through `client.server`.
from __future__ import annotations

import collections
import itertools
import math
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from netsvc import Runtime, SocketAddress

from ._app import RespApp
from ._blocking import Blocking
from ._client import REPLIES_ON, Client
from ._config import Config
from ._keyspace import Keyspace
from ._pubsub import PubSub
from ._reply import ErrorReply, Status
from ._scripting import Scripting

if TYPE_CHECKING:
    from ._plugin import RespSettings

__all__ = ["RedisServer"]

MAX_SCAN_SNAPSHOTS = 256
AUTH_FAILURE_LOG_INTERVAL = 1.0  # seconds between logged failed logins from one address
MAX_AUTH_FAILURE_ADDRESSES = 4096  # addresses remembered for that, then forgotten at once


class RedisServer:
    """Everything the commands share."""

    def __init__(self, app: RespApp, settings: RespSettings, runtime: Runtime) -> None:
        self.app = app
        self.settings = settings
        self.runtime = runtime
        self.keyspace = Keyspace(settings.databases)
        self.clients: dict[int, Client] = {}
        self.pubsub = PubSub()
        self.blocking = Blocking(self.keyspace)
        self.started = time.monotonic()
        self.run_id = secrets.token_hex(20)
        self.port = 0  # the first listener's, for INFO
        self.stats: collections.Counter[str] = collections.Counter()
        # calls per command name; a plain dict, as a Counter's += is slow (a dict subclass)
        self.command_calls: dict[str, int] = {}
        self.error_codes: collections.Counter[str] = collections.Counter()
        self.config = Config.defaults(
            port=0,
            databases=settings.databases,
            requirepass=settings.requirepass,
            protected_mode=settings.protected_mode,
            max_bulk=settings.max_bulk,
            lua_memory_limit=settings.lua_memory_limit,
        )
        self.scripting = Scripting(self)  # EVAL's scripts, the one running (_scripting.py)
        self.reset_reply = Status("RESET")
        self._client_ids = itertools.count(1)
        self._scan_snapshots: collections.OrderedDict[int, list[bytes]] = collections.OrderedDict()
        self._scan_ids = itertools.count(1)
        self._auth_failures_logged: dict[str, float] = {}  # address -> when last logged

    @property
    def requirepass(self) -> str | None:
        """The password clients must AUTH with (None: none): CONFIG's, which
        --resp-requirepass sets and CONFIG SET changes."""
        return self.config.parameters[b"requirepass"].value.decode() or None

    @property
    def protected_mode(self) -> bool:
        """CONFIG protected-mode (--resp-protected-mode): with no password set,
        clients from other machines are refused."""
        return self.config.parameters[b"protected-mode"].value == b"yes"

    def refuses(self, peer: SocketAddress) -> bool:
        """Whether protected mode turns this client away: no password, and it
        is not local. As Redis (connIsLocal), only 127.0.0.1, ::1 and Unix
        sockets are local; 127.0.0.2 is not."""
        if not self.protected_mode or self.requirepass is not None:
            return False
        return not (peer.transport == "unix" or peer.host in ("127.0.0.1", "::1"))

    # -- clients -------------------------------------------------------------

    def new_client(self) -> Client:
        """A client, listed in CLIENT LIST until forget()."""
        client = Client(self, next(self._client_ids))
        self.clients[client.id] = client
        return client

    def forget(self, client: Client) -> None:
        """The client is gone (or killed): out of CLIENT LIST, WATCH and pub/sub."""
        self.clients.pop(client.id, None)
        client.unwatch_all()
        self.pubsub.forget(client)

    def reset_client(self, client: Client) -> None:
        """RESET: the client as it was when it connected."""
        client.multi = None
        client.multi_failed = False
        client.unwatch_all()
        self.pubsub.forget(client)
        client.select(0)
        client.protocol = 2
        client.name = b""
        client.replies = REPLIES_ON
        client.authenticated = self.requirepass is None

    # -- commands' helpers ---------------------------------------------------

    def auth_failed(self, client: Client, username: bytes) -> None:
        """A wrong password: counted (INFO acl_access_denied_auth) and logged
        with the client's address, at most once a second per address."""
        self.stats["acl_access_denied_auth"] += 1
        if client.link is None:
            return
        client.link.count_failed_login()
        now = time.monotonic()
        address = client.link.peer.rpartition(":")[0] or client.link.peer
        if now - self._auth_failures_logged.get(address, -math.inf) < AUTH_FAILURE_LOG_INTERVAL:
            return
        if len(self._auth_failures_logged) >= MAX_AUTH_FAILURE_ADDRESSES:
            self._auth_failures_logged.clear()
        self._auth_failures_logged[address] = now
        client.link.log.warning(
            "authentication failed for user %r (%d failures so far)",
            username.decode(errors="replace"),
            self.stats["acl_access_denied_auth"],
        )

    def count_call(self, name: str) -> None:
        try:
            self.command_calls[name] += 1
        except KeyError:
            self.command_calls[name] = 1

    def count_error(self, error: ErrorReply) -> ErrorReply:
        """Count an error reply for INFO errorstats; returns it."""
        self.error_codes[error.message.split(" ", 1)[0]] += 1
        self.stats["error_replies"] += 1
        return error

    @staticmethod
    def unknown_subcommand(argv: list[bytes]) -> ErrorReply:
        sub = argv[1].decode(errors="replace")
        return ErrorReply(f"ERR unknown subcommand '{sub}'. Try {argv[0].decode().upper()} HELP.")

    def sweep_expired(self) -> int:
        """One round of active expiry (Redis's hz): how many keys it removed."""
        if self.scripting.running is not None:
            return 0  # a script sees the keyspace as it was: nothing expires under it
        removed = self.keyspace.sweep()
        self.stats["expired_keys"] += removed
        return removed

    # -- SCAN cursors --------------------------------------------------------

    def scan_page(
        self, cursor: int, items: Callable[[], list[bytes]], count: int
    ) -> tuple[int, list[bytes]]:
        """One page of a SCAN-family iteration, and the cursor for the next
        (0 at the end). The first call snapshots the keys (or members); later
        cursors walk that snapshot, so whatever is present for the whole
        iteration is returned exactly once, however the data changes."""
        snapshot_id, offset = divmod(cursor, 2**32)
        snapshot = self._scan_snapshots.get(snapshot_id) if snapshot_id else None
        if snapshot is None:
            snapshot = items()  # a new iteration, or one whose snapshot was dropped
            if not snapshot_id:
                offset = 0
        else:
            self._scan_snapshots.move_to_end(snapshot_id)
        end = offset + count
        page = snapshot[offset:end]
        if end >= len(snapshot):
            self._scan_snapshots.pop(snapshot_id, None)
            return 0, page
        if snapshot_id not in self._scan_snapshots:
            snapshot_id = next(self._scan_ids)
            self._scan_snapshots[snapshot_id] = snapshot
            while len(self._scan_snapshots) > MAX_SCAN_SNAPSHOTS:
                self._scan_snapshots.popitem(last=False)
        return snapshot_id * 2**32 + end, page
