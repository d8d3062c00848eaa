# The state one RESP server shares between all its clients, as Redis keeps it
# in `struct redisServer`: the command table, the keyspace, the clients,
# pub/sub, blocking waits, CLIENT PAUSE, config, ACL users, stats and SCAN
# snapshots. Plain
# state and the operations on it, no I/O: the connection driver (_driver.py)
# owns the connections, and commands reach this through `client.server`.
from __future__ import annotations

import collections
import itertools
import math
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from netsvc import Runtime, SocketAddress

from ._acl import Acl, User, check
from ._app import CommandSpec, RespApp
from ._blocking import Blocking
from ._client import REPLIES_ON, Client
from ._config import Config
from ._glob import compile_glob
from ._keyspace import Keyspace, LfuSettings
from ._pause import Pause
from ._pubsub import PubSub
from ._reply import ErrorReply, Status
from ._scripting import Scripting

if TYPE_CHECKING:
    from ._plugin import RespSettings

__all__ = ["RedisServer"]

MAX_SCAN_SNAPSHOTS: Final = 256
AUTH_FAILURE_LOG_INTERVAL: Final = 1.0  # seconds between logged failed logins from one address
MAX_AUTH_FAILURE_ADDRESSES: Final = 4096  # addresses remembered for that, then forgotten at once


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
        self.pause = Pause()  # CLIENT PAUSE (_pause.py)
        # SHUTDOWN ran: as Redis, which exits there, no client's command runs any more
        self.stopping = False
        # as in Redis, no key expires while a pause is in force: reads miss it, it stays
        self.keyspace.hold_expiry_while(lambda: self.pause.paused() is not None)
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
        self.acl = Acl(app.commands)  # the users: default, and ACL SETUSER's (_acl.py)
        requirepass = self.config.parameters[b"requirepass"]
        requirepass.on_set = self._requirepass_set
        self._requirepass_set(requirepass.value)
        self.config.parameters[b"acllog-max-len"].on_set = self._acllog_max_len_set
        # OBJECT IDLETIME and FREQ: accesses are LRU times, or LFU counters
        self.lfu = LfuSettings()
        for name in (b"maxmemory-policy", b"lfu-log-factor", b"lfu-decay-time"):
            self.config.parameters[name].on_set = self._eviction_set
        self.scripting = Scripting(self)  # EVAL's scripts, the one running (_scripting.py)
        self.reset_reply = Status("RESET")
        self._client_ids = itertools.count(1)
        self._scan_snapshots: collections.OrderedDict[int, list[bytes]] = collections.OrderedDict()
        self._scan_ids = itertools.count(1)
        self._auth_failures_logged: dict[str, float] = {}  # address -> when last logged

    @property
    def requirepass(self) -> str | None:
        """CONFIG requirepass (--resp-requirepass; None: empty): setting it
        gives the default user this one password, or nopass when empty."""
        return self.config.parameters[b"requirepass"].value.decode() or None

    def _requirepass_set(self, value: bytes) -> None:
        self.acl.set_default_password(value or None)

    def _acllog_max_len_set(self, value: bytes) -> None:
        self.acl.log_max_len = int(value)

    def _eviction_set(self, value: bytes) -> None:
        """CONFIG SET maxmemory-policy, lfu-log-factor or lfu-decay-time."""
        parameters = self.config.parameters
        self.lfu.log_factor = int(parameters[b"lfu-log-factor"].value)
        self.lfu.decay_time = int(parameters[b"lfu-decay-time"].value)
        lfu = parameters[b"maxmemory-policy"].value.endswith(b"-lfu")
        self.keyspace.use_lfu(self.lfu if lfu else None)

    @property
    def protected_mode(self) -> bool:
        """CONFIG protected-mode (--resp-protected-mode): while the default
        user has no password, clients from other machines are refused."""
        return self.config.parameters[b"protected-mode"].value == b"yes"

    def refuses(self, peer: SocketAddress) -> bool:
        """Whether protected mode turns this client away: the default user
        is nopass, and the client is not local. As Redis (connIsLocal), only
        127.0.0.1, ::1 and Unix sockets are local; 127.0.0.2 is not."""
        if not self.protected_mode or not self.acl.default.nopass:
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
        client.no_evict = client.no_touch = False
        client.login_as_default()

    # -- commands' helpers ---------------------------------------------------

    # -- ACL ------------------------------------------------------------------

    def login(self, client: Client, username: bytes, password: bytes, command: bytes) -> bool:
        """AUTH and HELLO AUTH: log `client` in as the user these credentials
        name; a failure (no such user, off, wrong password) is counted,
        logged and put in the ACL LOG (`command` is the one as sent)."""
        user = self.acl.authenticate(username, password)
        if user is None:
            self.auth_failed(client, username, command)
            return False
        client.login(user)
        return True

    def acl_denied(self, client: Client, spec: CommandSpec, argv: list[bytes]) -> ErrorReply | None:
        """Check a call against the client's user: None if it may run, else
        the NOPERM error (Redis 7.2's texts), counted and in the ACL LOG."""
        denial = check(client.user, spec, argv)
        if denial is None:
            return None
        client.last_command = argv[0]  # what CLIENT INFO shows as cmd, in the log too
        context = "multi" if client.multi is not None else "toplevel"
        self.log_denial(client, denial.reason_name, context, denial.object, client.user.name)
        return ErrorReply("NOPERM " + denial.message(client.user))

    def acl_check_cmd(self, caller: Client, argv: list[bytes]) -> bool | None:
        """redis.acl_check_cmd(...) of a script run by `caller`: whether its
        user may make this call (nothing logged), or None if no command
        (or container subcommand) has this name."""
        spec = self.app.lookup(argv[0])
        if spec is None:
            return None
        if spec.subcommands and len(argv) > 1 and argv[1].lower() not in spec.subcommands:
            return None
        return check(caller.user, spec, argv) is None

    def log_denial(
        self, client: Client, reason: str, context: str, denied: bytes, username: bytes
    ) -> None:
        """A refused call or login: INFO's acl_access_denied_* and an ACL LOG entry."""
        self.stats[f"acl_access_denied_{'cmd' if reason == 'command' else reason}"] += 1
        self.acl.add_log(
            reason=reason,
            context=context,
            object=denied,
            username=username,
            client_info=client.describe(),
            now_ms=time.time_ns() // 1_000_000,
        )

    def users_changed(self) -> None:
        """After ACL SETUSER or LOAD: every client's check follows its user's rules."""
        for client in self.clients.values():
            client.restricted = not client.user.unrestricted

    def set_user(self, staged: User, by: Client) -> None:
        """ACL SETUSER's last step: store the staged user; its clients
        subscribed to channels it may no longer use are disconnected."""
        existing = self.acl.users.get(staged.name)
        if existing is not None:
            for client in self._pubsub_clients_denied(existing, staged):
                client.kill(by=by)
        self.acl.commit(staged)
        self.users_changed()

    def delete_users(self, names: list[bytes], by: Client) -> int:
        """ACL DELUSER: remove these users (not default) and disconnect their clients."""
        deleted = [user for name in names if (user := self.acl.users.pop(name, None)) is not None]
        for client in list(self.clients.values()):
            if any(client.user is user for user in deleted):
                client.log_out()
                client.kill(by=by)
        return len(deleted)

    def replace_users(self, users: dict[bytes, User], by: Client | None = None) -> None:
        """ACL LOAD (and --resp-aclfile at start): the users are now these;
        the clients of a user no longer there, or subscribed to channels
        their user may no longer use, are disconnected (as Redis 7.2)."""
        self.acl.users = users
        for client in list(self.clients.values()):
            new = users.get(client.user.name)
            if new is None or self._denied_subscriptions(client, new):
                client.log_out()
                if by is not None:
                    client.kill(by=by)
                continue
            client.user = new
        self.users_changed()

    def _pubsub_clients_denied(self, old: User, new: User) -> list[Client]:
        """The clients of `old` whose subscriptions `new`'s channels no longer allow."""
        if any(selector.allchannels for selector in new.selectors):
            return []
        return [
            client
            for client in self.clients.values()
            if client.user is old and self._denied_subscriptions(client, new)
        ]

    @staticmethod
    def _denied_subscriptions(client: Client, user: User) -> bool:
        """Whether `user` may not use a channel or pattern `client` is subscribed
        to (ACLShouldKillPubsubClient): patterns are compared literally."""
        if not client.subscribed or any(s.allchannels for s in user.selectors):
            return False
        allowed = [pattern for selector in user.selectors for pattern in selector.channels]
        return any(pattern not in allowed for pattern in client.patterns) or any(
            not any(compile_glob(pattern)(channel) for pattern in allowed)
            for channel in client.channels
        )

    def auth_failed(self, client: Client, username: bytes, command: bytes = b"AUTH") -> None:
        """A wrong password: counted (INFO acl_access_denied_auth), in the ACL
        LOG, and logged with the client's address, at most once a second per
        address (never with the password)."""
        context = "multi" if client.multi is not None else "toplevel"
        self.log_denial(client, "auth", context, command, username)
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
        """One round of active expiry (Redis's hz): how many keys it removed.
        It also advances the LRU clock that key accesses record."""
        self.keyspace.tick()
        if self.scripting.running is not None:
            return 0  # a script sees the keyspace as it was: nothing expires under it
        if self.pause.paused() is not None:
            return 0  # as in Redis, keys do not expire while clients are paused
        return self.keyspace.sweep()  # counted in keyspace.expired

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
