# The RESP service: state shared by all connections of one process (keyspace,
# clients, pub/sub, config, stats) and the connection driver, which feeds the
# sans-IO parser, dispatches each command with Redis's checks (arity, AUTH,
# subscribed state, MULTI queueing) and sends the replies of one read together.
from __future__ import annotations

import collections
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio
import trio.lowlevel

from netsvc import Connection, ConnectionLost, ReceiveTimeout, Runtime, SendTimeout, Service

from ._app import CommandSpec, RespApp, unknown_command, wrong_arity
from ._blocking import Blocking
from ._client import REPLIES_ON, Client
from ._config import Config
from ._keyspace import Keyspace
from ._parser import ProtocolError, QueryBufferLimit, RequestParser
from ._pubsub import PubSub
from ._reply import QUEUED, ErrorReply, Reply, Status, encode

if TYPE_CHECKING:
    from ._plugin import RespSettings

__all__ = ["RespService"]

log = logging.getLogger("netsvc.resp")

SWEEP_INTERVAL = 0.1  # seconds between active expiry rounds (Redis's hz 10)
FLUSH_AT = 64 * 1024  # send a batch of replies once this many bytes are waiting
OUTBOX_SOFT_LIMIT = 1024 * 1024  # a subscriber's own commands wait above this
MAX_SCAN_SNAPSHOTS = 256
SUBSCRIBED_ALLOWED = frozenset(
    {b"ping", b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"quit", b"reset"}
)
MULTI_IMMEDIATE = frozenset({b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"})
NOAUTH = ErrorReply("NOAUTH Authentication required.")


class RespService(Service):
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
        self.port = 0
        self.stats: collections.Counter[str] = collections.Counter()
        # calls per command name; a plain dict, as a Counter's += is slow (a dict subclass)
        self.command_calls: dict[str, int] = {}
        self.error_codes: collections.Counter[str] = collections.Counter()
        self.config = Config.defaults(
            port=0,
            databases=settings.databases,
            requirepass=settings.requirepass,
            max_bulk=settings.max_bulk,
        )
        self.config.on_change = self._config_changed
        self.requirepass = settings.requirepass  # CONFIG SET requirepass changes it
        self.reset_reply = Status("RESET")
        self._ids = itertools.count(1)
        self._scan_snapshots: collections.OrderedDict[int, list[bytes]] = collections.OrderedDict()
        self._scan_ids = itertools.count(1)

    def _config_changed(self, name: bytes, value: bytes) -> None:
        if name == b"requirepass":
            self.requirepass = value.decode() or None

    # -- lifecycle -----------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._sweep_expired)

    async def _sweep_expired(self) -> None:
        while True:
            await trio.sleep(SWEEP_INTERVAL)
            while (removed := self.keyspace.sweep()) > 0:
                self.stats["expired_keys"] += removed
                await trio.lowlevel.checkpoint()  # a big sweep must not stall the connections

    def refusal(self) -> bytes:
        return b"-ERR max number of clients reached\r\n"

    def internal_error(self, conn: Connection) -> bytes:
        return b"-ERR internal error; see the server log\r\n"

    # -- one connection ------------------------------------------------------

    async def handle(self, conn: Connection) -> None:
        if not self.port:
            self.port = conn.local.port
        client = Client(self, conn, next(self._ids))
        self.clients[client.id] = client
        async with trio.open_nursery() as nursery:
            client.nursery = nursery
            try:
                await self._serve(client)
            finally:
                # while the nursery is open: a PUBLISH that reaches this client
                # from now on finds it gone, and cannot start its outbox here
                self.forget(client)
            nursery.cancel_scope.cancel()

    def forget(self, client: Client) -> None:
        self.clients.pop(client.id, None)
        client.unwatch_all()
        self.pubsub.forget(client)

    async def _serve(self, client: Client) -> None:
        conn = client.conn
        settings = self.settings
        keyspace = self.keyspace
        parser = RequestParser(
            max_bulk=settings.max_bulk,
            max_buffer=settings.max_query_buffer,
            authenticated=client.authenticated,
        )
        receive, next_command, dispatch = conn.receive, parser.next_command, self.dispatch
        while data := await receive():
            parser.feed(data)
            out: list[bytes] = []
            pending = count = 0
            client.last_interaction = time.monotonic()
            try:
                refed = True
                while refed:  # again if input read while a command blocked was fed meanwhile
                    refed = False
                    while (argv := next_command()) is not None:
                        count += 1
                        reply = dispatch(client, argv)
                        if type(reply) is _Call:
                            reply = await self.call(client, reply.spec, argv)
                            if client.pending_input:  # read while the command blocked
                                parser.feed(b"".join(client.pending_input))
                                client.pending_input.clear()
                                refed = True
                        if client.authenticated is not parser.authenticated:  # AUTH, RESET
                            parser.authenticated = client.authenticated
                        if keyspace.ready:
                            self.blocking.serve_ready()
                        if not (client.replies and client.silenced()):  # CLIENT REPLY
                            encoded = encode(reply, client.protocol)
                            out.append(encoded)
                            pending += len(encoded)
                        if client.close_after_reply:
                            refed = False
                            break
                        if pending >= FLUSH_AT:
                            await self._write(client, out)
                            out, pending = [], 0
            except ProtocolError as exc:
                if not isinstance(exc, QueryBufferLimit):  # Redis closes those without a word
                    out.append(b"-%b\r\n" % str(exc).encode("latin-1", errors="replace"))
                await self._write(client, out)
                conn.log.info("closing: %s", exc)
                return
            if client.authenticated is not parser.authenticated:
                parser.authenticated = client.authenticated
            conn.parsed(count, partial=parser.has_partial)
            if out:
                if client.outbox is None:
                    await conn.send(out[0] if len(out) == 1 else b"".join(out))
                else:
                    await self._write(client, out)
            if client.close_after_reply:
                return

    async def _write(self, client: Client, out: list[bytes]) -> None:
        data = b"".join(out)
        if client.outbox is None:
            await client.conn.send(data)
        else:
            client.outbox.put(data)
            await client.outbox.wait_below(OUTBOX_SOFT_LIMIT)

    # -- dispatch ------------------------------------------------------------

    def dispatch(self, client: Client, argv: list[bytes]) -> Reply:
        """Check a command as Redis's processCommand does, then run it if it is
        synchronous; an async command comes back as a _Call to await."""
        spec = self.app.lookup_cached(argv[0]) or self.app.lookup(argv[0])
        if spec is None:
            return self._refuse_in_multi(client, unknown_command(argv))
        arity = spec.arity
        if len(argv) != arity if arity > 0 else len(argv) < -arity:
            return self._refuse_in_multi(client, wrong_arity(spec.name))
        if not client.authenticated and "no_auth" not in spec.flags:
            return self._error(client, NOAUTH)
        name = spec.name_bytes
        if (
            (client.channels or client.patterns)
            and client.protocol == 2
            and name not in SUBSCRIBED_ALLOWED
        ):
            return self._error(
                client,
                ErrorReply(
                    f"ERR Can't execute '{spec.name}': only (P|S)SUBSCRIBE / "
                    "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
                ),
            )
        if client.multi is not None and name not in MULTI_IMMEDIATE:
            client.multi.append((spec, argv))
            return QUEUED
        if spec.is_async:
            return _Call(spec)
        return self._run(client, spec, argv)

    async def call(self, client: Client, spec: CommandSpec, argv: list[bytes]) -> Reply:
        """Run any command (sync or async) whose checks have passed."""
        if not spec.is_async:
            return self._run(client, spec, argv)
        client.last_command = argv[0]
        self._count(spec.name)
        try:
            reply = await spec.handler(client, argv)
        except ErrorReply as exc:
            return self._error(client, exc)
        except (ReceiveTimeout, SendTimeout, ConnectionLost):
            raise  # the connection's end, not the command's failure
        except Exception:
            return self._crashed(client, spec)
        if type(reply) is ErrorReply:
            return self._error(client, reply)
        return reply

    def _run(self, client: Client, spec: CommandSpec, argv: list[bytes]) -> Reply:
        client.last_command = argv[0]
        self._count(spec.name)
        try:
            reply = spec.handler(client, argv)
        except ErrorReply as exc:
            return self._error(client, exc)
        except Exception:
            return self._crashed(client, spec)
        if type(reply) is ErrorReply:
            return self._error(client, reply)
        return reply

    def _count(self, name: str) -> None:
        try:
            self.command_calls[name] += 1
        except KeyError:
            self.command_calls[name] = 1

    def _crashed(self, client: Client, spec: CommandSpec) -> ErrorReply:
        client.conn.counters.error()
        client.conn.log.exception("command %r failed", spec.name)
        return self._error(
            client, ErrorReply(f"ERR internal error in '{spec.name}'; see the server log")
        )

    def _refuse_in_multi(self, client: Client, error: ErrorReply) -> ErrorReply:
        if client.multi is not None:
            client.multi_failed = True
        return self._error(client, error)

    def _error(self, client: Client, error: ErrorReply) -> ErrorReply:
        code = error.message.split(" ", 1)[0]
        self.error_codes[code] += 1
        self.stats["error_replies"] += 1
        return error

    def unknown_subcommand(self, argv: list[bytes]) -> ErrorReply:
        sub = argv[1].decode(errors="replace")
        return ErrorReply(f"ERR unknown subcommand '{sub}'. Try {argv[0].decode().upper()} HELP.")

    def reset_client(self, client: Client) -> None:
        client.multi = None
        client.multi_failed = False
        client.unwatch_all()
        self.pubsub.forget(client)
        client.select(0)
        client.protocol = 2
        client.name = b""
        client.replies = REPLIES_ON
        client.authenticated = self.requirepass is None

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


class _Call:
    """dispatch()'s answer for an async command: the caller awaits call()."""

    __slots__ = ("spec",)

    def __init__(self, spec: CommandSpec) -> None:
        self.spec = spec
