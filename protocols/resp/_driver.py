# The RESP connection driver: the netsvc Service, and the only code that
# touches a Connection. Per connection it feeds the sans-IO parser, runs each
# command through _dispatch, and sends the replies of one read together, in
# the core's task while every command of the read is synchronous
# (Connection.serve_inline), in the connection's own from one that waits; it
# implements the client's Link: pushes (pub/sub) through an outbox task,
# CLIENT KILL, and reading on while a command blocks. Its own task expires
# keys in the background (Redis's hz). At start it loads the ACL file
# (--resp-aclfile); a TLS client may start logged in as the ACL user its
# certificate names (--resp-tls-auth-user cn).
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import trio
import trio.lowlevel

from netsvc import Access, AppError, Connection, Runtime, Service

from ._app import RespApp
from ._client import Client
from ._dispatch import Call, call, dispatch
from ._parser import ProtocolError, QueryBufferLimit, RequestParser
from ._reply import Reply, encode
from ._server import RedisServer
from .commands.acl import load_acl_file

if TYPE_CHECKING:
    from ._plugin import RespSettings

__all__ = ["RespService"]

log = logging.getLogger("netsvc.resp")

SET_A_PASSWORD: Final = "NETSVC_RESP_REQUIREPASS or --resp-requirepass"
PROTECTED_WAYS_OUT: Final = (
    f"set a password ({SET_A_PASSWORD}) or, knowing every client it reaches may use it, turn "
    "protected mode off (--resp-protected-mode false)"
)
# Redis 7.0's own words (networking.c), typo included, as its clients see them
DENIED: Final = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
    b"password is set for the default user. In this mode connections are only accepted from "
    b"the loopback interface. If you want to connect from external computers to Redis you may "
    b"adopt one of the following solutions: 1) Just disable protected mode sending the command "
    b"'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from "
    b"the same host the server is running, however MAKE SURE Redis is not publicly accessible "
    b"from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    b"Alternatively you can just disable the protected mode by editing the Redis configuration "
    b"file, and setting the protected mode option to 'no', and then restarting the server. 3) "
    b"If you started the server manually just for testing, restart it with the "
    b"'--protected-mode no' option. 4) Setup a an authentication password for the default "
    b"user. NOTE: You only need to do one of the above things in order for the server to "
    b"start accepting connections from the outside.\r\n"
)
SWEEP_INTERVAL: Final = 0.1  # seconds between active expiry rounds (Redis's hz 10)
FLUSH_AT: Final = 64 * 1024  # send a batch of replies once this many bytes are waiting
OUTBOX_LIMIT: Final = 32 * 1024 * 1024  # bytes queued for one client before it is dropped
OUTBOX_SOFT_LIMIT: Final = 1024 * 1024  # a subscriber's own commands wait above this
PENDING_INPUT_LIMIT: Final = (
    1024 * 1024
)  # bytes read ahead from a blocked client, then stop reading


class RespService(Service):
    def __init__(self, app: RespApp, settings: RespSettings, runtime: Runtime) -> None:
        self.server = RedisServer(app, settings, runtime)
        self.certificate_login = settings.tls_auth_user.lower() == "cn"
        if settings.aclfile:
            self._load_users(settings.aclfile)

    def _load_users(self, path: str) -> None:
        """--resp-aclfile at start: its users, or a refusal to start that says
        what is wrong where (Redis's words)."""
        server = self.server
        users = load_acl_file(server.acl, path)
        if isinstance(users, str):
            raise AppError(f"cannot start: the ACL file (--resp-aclfile) has errors: {users}")
        if server.requirepass is not None:
            if b"default" in users:
                log.warning(
                    "--resp-requirepass is ignored: the ACL file %s defines the default user",
                    path,
                )
            else:
                log.warning(
                    "--resp-requirepass is ignored: with an ACL file (%s) the default user is "
                    "the file's, and it has none: default is on nopass ~* &* +@all; give it a "
                    "line in the file (user default on >PASSWORD ...)",
                    path,
                )
        server.replace_users(users)
        log.info("ACL users loaded from %s: %d", path, len(users))

    def check_tls(self, client_certs: Sequence[str | None]) -> None:
        """Refuse certificate login (--resp-tls-auth-user cn) when no RESP
        listener asks its clients for a certificate: no client could use it.
        `client_certs`: per listener, None without TLS, else --client-certs."""
        if self.certificate_login and not any(
            mode in ("optional", "required") for mode in client_certs
        ):
            raise AppError(
                "--resp-tls-auth-user cn logs clients in by their TLS certificate, but no RESP "
                "listener asks for one: serve rediss:// (--certfile, --keyfile) with --ca-certs "
                "and --client-certs optional or required, or drop --resp-tls-auth-user"
            )

    async def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._sweep_expired)

    async def _sweep_expired(self) -> None:
        while True:
            await trio.sleep(SWEEP_INTERVAL)
            while self.server.sweep_expired() > 0:
                await trio.lowlevel.checkpoint()  # a big sweep must not stall the connections

    def access(self) -> Access:
        acl = self.server.acl
        notes = []
        others = len(acl.users) - 1
        if others:
            notes.append(f"ACL users besides default: {others}")
        if self.certificate_login:
            notes.append("a client certificate's CN logs in as the ACL user it names")
        if acl.auth_required and not (self.server.protected_mode and acl.default.nopass):
            how = "ACL users (AUTH user password)" if others else "password (AUTH)"
            return Access(how, note="; ".join(notes))
        if self.server.protected_mode:  # the default user has no password (on or off)
            protected = "protected mode: only 127.0.0.1, ::1 and Unix socket clients are served"
            return Access(
                note="; ".join([protected, *notes]),
                risk="clients from other machines are refused",
                advice=PROTECTED_WAYS_OUT,
            )
        return Access(note="; ".join(notes), advice=f"set a password: {SET_A_PASSWORD}")

    def _log_in_by_certificate(self, conn: Connection, client: Client) -> None:
        """--resp-tls-auth-user cn: a verified certificate whose CN names an
        ACL user that is on logs the client in as that user; otherwise it
        starts as any client does (default)."""
        assert conn.peer_certificate is not None
        name = conn.peer_certificate.common_name
        user = self.server.acl.users.get(name.encode()) if name is not None else None
        if user is None or not user.enabled:
            conn.log.debug(
                "certificate CN %r names no ACL user that is on: starting as default", name
            )
            return
        client.login(user)
        conn.log.info("logged in as ACL user %r by its client certificate", name)

    def refusal(self) -> bytes:
        return b"-ERR max number of clients reached\r\n"

    def internal_error(self, conn: Connection) -> bytes:
        return b"-ERR internal error; see the server log\r\n"

    async def handle(self, conn: Connection) -> None:
        server = self.server
        if not server.port:
            server.port = conn.local.port
        if server.refuses(conn.peer):
            await conn.send(DENIED)
            conn.log.info("refused: protected mode (no password set, client not local)")
            return
        client = server.new_client()
        if self.certificate_login and conn.peer_certificate is not None:
            self._log_in_by_certificate(conn, client)
        async with trio.open_nursery() as nursery:
            link = _Link(conn, client, nursery)
            client.link = link
            try:
                await _serve(link)
            finally:
                # while the nursery is open: a PUBLISH that reaches this client
                # from now on finds it gone, and cannot start its outbox here
                server.forget(client)
            nursery.cancel_scope.cancel()


class _Link:
    """A client's connection (the Link commands see), and what the driver
    keeps per connection."""

    def __init__(self, conn: Connection, client: Client, nursery: trio.Nursery) -> None:
        self.conn = conn
        self.client = client
        self.nursery = nursery
        self.peer = str(conn.peer)
        self.local = str(conn.local)
        # Output written by a task of its own, created on the first push
        # (pub/sub): from then on replies go through it too, keeping order.
        self.outbox: _Outbox | None = None
        self.pending_input: list[bytes] = []  # read while blocked, parsed afterwards

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        return self.conn.log

    def push(self, data: bytes) -> None:
        self.ensure_outbox().put(data)

    def ensure_outbox(self) -> _Outbox:
        if self.outbox is None:
            self.outbox = _Outbox(self.conn)
            self.nursery.start_soon(self.outbox.run)
        return self.outbox

    def disconnect(self) -> None:
        self.conn.disconnect()

    def count_error(self) -> None:
        self.conn.counters.error()

    def count_failed_login(self) -> None:
        self.conn.counters.login_failed()

    async def wait_blocked(self, until: trio.Event) -> None:
        conn = self.conn
        # like Redis, a blocked client is not idle: no idle timeout while it waits
        idle_timeout, conn.idle_timeout = conn.idle_timeout, None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_while_blocked, nursery.cancel_scope)
                await until.wait()
                nursery.cancel_scope.cancel()
        finally:
            conn.idle_timeout = idle_timeout

    async def _read_while_blocked(self, scope: trio.CancelScope) -> None:
        """Read on while blocked: keep pipelined commands for later (up to a
        limit), stop waiting at the client's end or at server shutdown."""
        conn = self.conn
        conn.parsed(0, partial=False)  # waiting is idle time, not a slow request
        while data := await conn.receive():
            conn.parsed(0, partial=False)  # read ahead, parsed later: not a request in flight
            self.pending_input.append(data)
            if sum(map(len, self.pending_input)) > PENDING_INPUT_LIMIT:
                await trio.sleep_forever()  # TCP pushes back on the client
        if not conn.closing:  # the client left; at shutdown, what it sent is still answered
            self.client.close_after_reply = True
        scope.cancel()

    async def write(self, out: list[bytes]) -> None:
        data = b"".join(out)
        if self.outbox is None:
            await self.conn.send(data)
        else:
            self.outbox.put(data)
            await self.outbox.wait_below(OUTBOX_SOFT_LIMIT)


# What the commands of a read came to (_Batch.status), as _run_commands and
# _take_reply leave it: parse on, or first await a command, write what is
# ready, or stop; DONE: the parser has no complete command left.
RUN: Final = 0
CALL: Final = 1
FLUSH: Final = 2
END: Final = 3
DONE: Final = 4


class _Batch:
    """The replies of the commands run since the last parsed() call, and where
    running them stopped: kept across the hand-over from inline serving (the
    core's task) to the connection's task."""

    __slots__ = ("call", "count", "error", "out", "pending", "status")

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.pending = 0  # bytes in `out`
        self.count = 0  # commands run
        self.status = RUN
        self.call: tuple[Call, list[bytes]] | None = None  # the async command to await
        self.error: ProtocolError | None = None

    def take_out(self) -> bytes:
        out, self.out, self.pending = self.out, [], 0
        return out[0] if len(out) == 1 else b"".join(out)


def _run_commands(link: _Link, parser: RequestParser, batch: _Batch) -> int:
    """Run the parsed commands up to one that must be awaited (CALL), a batch
    of replies worth writing (FLUSH), the connection's end (END), or the last
    one (DONE). Synchronous: inline serving calls it from the core's task."""
    client = link.client
    server = client.server
    while (argv := parser.next_command()) is not None:
        if server.stopping:  # SHUTDOWN: Redis exits, running nothing more
            client.close_after_reply = True  # what ran is answered, then the end
            return END
        batch.count += 1
        reply = dispatch(client, argv)
        if type(reply) is Call:
            batch.call = (reply, argv)
            return CALL
        status = _take_reply(client, parser, batch, reply)
        if status != RUN:
            return status
    return DONE


def _take_reply(client: Client, parser: RequestParser, batch: _Batch, reply: Reply) -> int:
    """Add a command's reply to the batch; RUN unless the connection ends
    (END) or the replies are worth writing now (FLUSH)."""
    if client.authenticated != parser.authenticated:  # AUTH, RESET
        parser.authenticated = client.authenticated
    if client.killed:  # by another client: Redis sends nothing more
        return END
    if not (client.replies and client.silenced()):  # CLIENT REPLY
        encoded = encode(reply, client.protocol)
        batch.out.append(encoded)
        batch.pending += len(encoded)
    if client.close_after_reply:
        return END
    return FLUSH if batch.pending >= FLUSH_AT else RUN


async def _serve(link: _Link) -> None:
    conn, client = link.conn, link.client
    server = client.server
    settings = server.settings
    parser = RequestParser(
        max_bulk=settings.max_bulk,
        max_buffer=settings.max_query_buffer,
        authenticated=client.authenticated,
    )
    batch = _Batch()

    def inline(data: bytes) -> bytes | None:
        """A read served in the core's task (Connection.serve_inline): its
        commands' replies, or None to hand what is left to this task."""
        parser.feed(data)
        client.last_interaction = time.monotonic()
        if link.outbox is not None:  # replies go through the outbox, after its pushes
            return None
        try:
            status = _run_commands(link, parser, batch)
        except ProtocolError as exc:
            batch.error = exc
            return None
        if status != DONE or link.outbox is not None:  # a command pushed (SUBSCRIBE)
            batch.status = status
            return None
        conn.parsed(batch.count, partial=parser.has_partial)
        batch.count = 0
        return batch.take_out()

    while True:
        if not await conn.serve_inline(inline):
            data = await conn.receive()
            if not data:
                return
            parser.feed(data)
            client.last_interaction = time.monotonic()
        if not await _finish(link, parser, batch):
            return


async def _finish(link: _Link, parser: RequestParser, batch: _Batch) -> bool:
    """Run what the parser holds in this task, awaiting what must be, then
    send the replies; False when the connection ends."""
    conn, client = link.conn, link.client
    status, batch.status = batch.status, RUN
    refed = False  # input read while a command blocked was fed to the parser
    try:
        if batch.error is not None:
            raise batch.error
        while status != END:
            if status == DONE:
                if not refed:
                    break
                # the parser said "nothing more" before that input came: ask again
                refed, status = False, RUN
            elif status == RUN:
                status = _run_commands(link, parser, batch)
            elif status == CALL:
                assert batch.call is not None
                (pending_call, argv), batch.call = batch.call, None
                if batch.out and "blocking" in pending_call.spec.flags:
                    await link.write(batch.out)  # what came before does not wait with it
                    batch.out, batch.pending = [], 0
                reply = await call(client, pending_call.spec, argv)
                if link.pending_input:  # read while the command blocked
                    parser.feed(b"".join(link.pending_input))
                    link.pending_input.clear()
                    refed = True
                status = _take_reply(client, parser, batch, reply)
            else:  # FLUSH
                await link.write(batch.out)
                batch.out, batch.pending = [], 0
                status = RUN
    except ProtocolError as exc:
        batch.error = None
        if not isinstance(exc, QueryBufferLimit):  # Redis closes those without a word
            batch.out.append(b"-%b\r\n" % str(exc).encode("latin-1", errors="replace"))
        await link.write(batch.out)
        conn.log.info("closing: %s", exc)
        return False
    if client.killed:
        return False
    conn.parsed(batch.count, partial=parser.has_partial)
    batch.count = 0
    if batch.out:
        if link.outbox is None:
            await conn.send(batch.take_out())
        else:
            await link.write(batch.out)
            batch.out, batch.pending = [], 0
    return not client.close_after_reply


class _Outbox:
    """Bytes waiting to be written to one connection, written by `run()`;
    past OUTBOX_LIMIT the client is dropped (Redis's
    client-output-buffer-limit for pubsub)."""

    def __init__(self, conn: Connection, limit: int = OUTBOX_LIMIT) -> None:
        self.conn = conn
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.overflowed = False
        self._ready = trio.Event()
        self._drained = trio.Event()

    def put(self, data: bytes) -> None:
        if self.overflowed:
            return
        self.chunks.append(data)
        self.size += len(data)
        if self.size > self.limit:
            self.overflowed = True
            self.chunks.clear()
            self.conn.log.warning("closing a client %d bytes behind on its output", self.size)
            self.conn.disconnect()
        self._ready.set()

    async def wait_below(self, size: int) -> None:
        """Backpressure for the client's own commands: wait while much is queued."""
        while self.size > size and not self.overflowed:
            self._drained = trio.Event()
            await self._drained.wait()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready = trio.Event()
            if self.overflowed:
                return
            chunks, self.chunks = self.chunks, []
            if chunks:
                await self.conn.send(b"".join(chunks))
            self.size -= sum(len(chunk) for chunk in chunks)
            self._drained.set()
