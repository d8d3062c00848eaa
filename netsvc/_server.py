# The server: binds every listener, runs one task per connection under the
# listener's limits, keeps a failing connection from touching the others, and
# shuts down gracefully (stop accepting, let connections finish, cancel what is
# left after the grace period). Signal handling lives in the CLI, not here, so
# a Server can be embedded and tested.
from __future__ import annotations

import contextlib
import dataclasses
import errno
import ipaddress
import itertools
import logging
import math
import os
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import trio

from ._address import (
    AddressError,
    ListenAddress,
    SocketAddress,
    client_url,
    open_sockets,
    systemd_fds,
)
from ._connection import (
    Connection,
    ConnectionLimits,
    ConnectionLost,
    ReceiveTimeout,
    SendTimeout,
    Watchdog,
)
from ._parking import Parking
from ._plugin import Access, ListenerInfo, Protocol, Runtime, Service
from ._proxy import (
    V1_MAX_LENGTH,
    ProxyHeader,
    ProxyHeaderError,
    TrustedProxies,
    header_length,
    parse_header,
)
from ._socketstream import SocketStream, close_gracefully
from ._stats import Counters
from ._tls import PeerCertificate

__all__ = ["DEFAULT_BACKLOG", "Listen", "Server", "claim_systemd_fds"]

log = logging.getLogger("netsvc.server")
_CONNECTION_LOG = logging.getLogger("netsvc.connection")  # what Connection.log writes to

ACCEPT_RETRY_DELAY = 0.1  # seconds to wait after accept() fails (EMFILE and friends)
MAX_ACCEPTS_PER_WAKEUP = 1000  # Redis's MAX_ACCEPTS_PER_CALL
# accept() errors that are about one client that already left (trio's list):
# retried at once, not logged
IGNORABLE_ACCEPT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EPERM",
        "ECONNABORTED",
        "EPROTO",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "ENOSR",
        "ESOCKTNOSUPPORT",
        "EPROTONOSUPPORT",
        "ETIMEDOUT",
        "ECONNRESET",
    )
    if hasattr(errno, name)
)
ACCEPT_ERROR_LOG_INTERVAL = 10.0  # seconds between two logs of the same accept failure
REFUSAL_TIMEOUT = 2.0  # seconds a refused connection may take to receive its message
MAX_PENDING_REFUSALS = 64  # past this, over-limit connections are closed without a word
REFUSAL_LOG_INTERVAL = 10.0  # seconds between two "refusing connections" warnings
PROXY_ERROR_LOG_INTERVAL = 1.0  # seconds between two logged bad PROXY headers on a listener
CLOSE_LINGER = 1.0  # seconds to drain a client's unread bytes so it gets our last reply
CLOSE_LINGER_BYTES = 256 * 1024
DEFAULT_BACKLOG = 1024
# Exceptions that end a connection in the ordinary way: logged quietly, not as errors.
QUIET_ENDS = (ReceiveTimeout, SendTimeout, ConnectionLost)


@dataclasses.dataclass(frozen=True)
class Listen:
    """One listener to open: which protocol, where, with TLS or not."""

    protocol: Protocol[Any, Any]
    address: ListenAddress
    tls: bool = False
    limits: ConnectionLimits | None = None  # None: the protocol's own defaults

    def __post_init__(self) -> None:
        if self.tls and not self.protocol.tls_schemes:
            raise ValueError(
                f"protocol {self.protocol.name!r} has no TLS scheme; it cannot serve TLS"
            )


@dataclasses.dataclass
class _Throttle:
    """A log line said at most once per `interval` seconds; counts every event."""

    interval: float
    count: int = 0
    _last: float = -math.inf

    def due(self) -> bool:
        """Count one event; True if it should be logged."""
        self.count += 1
        now = trio.current_time()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True


@dataclasses.dataclass
class _Listener:
    info: ListenerInfo
    sock: socket.socket  # listening, non-blocking
    service: Service
    limits: ConnectionLimits
    tls: bool
    proxy: bool  # each connection starts with a PROXY protocol header
    unix_path: str | None  # a Unix socket file we created, removed at exit
    unix_inode: tuple[int, int] | None = None  # (st_dev, st_ino) of that file
    refusals: _Throttle = dataclasses.field(default_factory=lambda: _Throttle(REFUSAL_LOG_INTERVAL))
    accept_errors: _Throttle = dataclasses.field(
        default_factory=lambda: _Throttle(ACCEPT_ERROR_LOG_INTERVAL)
    )
    proxy_errors: _Throttle = dataclasses.field(
        default_factory=lambda: _Throttle(PROXY_ERROR_LOG_INTERVAL)
    )


class Server:
    """Serves a set of listeners until `shutdown()` is called.

    `apps` and `settings` are keyed by protocol name; a protocol without an
    entry gets its default application and default settings.
    """

    def __init__(
        self,
        listens: list[Listen],
        *,
        apps: Mapping[str, object] | None = None,
        settings: Mapping[str, Any] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        graceful_timeout: float = 30.0,
        backlog: int = DEFAULT_BACKLOG,
        announce: bool = True,
        trusted_proxies: TrustedProxies | None = None,
    ) -> None:
        if not listens:
            raise ValueError("a server needs at least one listener")
        if any(listen.tls for listen in listens) and ssl_context is None:
            raise ValueError("a TLS listener needs a certificate: give --certfile and --keyfile")
        self.runtime = Runtime(request_shutdown=self.shutdown)
        self.runtime.certificate = ssl_context is not None
        if trusted_proxies is not None:
            self.runtime.trusted_proxies = trusted_proxies
        self._listens = listens
        self._apps = dict(apps or {})
        self._settings = dict(settings or {})
        self._ssl_context = ssl_context
        self._graceful_timeout = graceful_timeout
        self._backlog = backlog
        self._announce = announce  # log "listening on URL" (a worker leaves it to its supervisor)
        self._listeners: list[_Listener] = []
        self._watchdog = Watchdog()  # its connections are the open ones
        # where connections idle for PARK_AFTER wait, and where those a plugin
        # serves inline (Connection.serve_inline) wait between reads: apart,
        # so that a request served inline never queues behind a crowd of
        # parked connections waking (None: this OS has no epoll)
        self._parking = Parking() if Parking.supported() else None
        self._inline = Parking() if Parking.supported() else None
        self._ids = itertools.count(1)
        self._shutdown = trio.Event()
        self._pending_refusals = 0
        self._services: dict[str, Service] | None = None
        self._accepting = False

    @property
    def urls(self) -> list[str]:
        """The URLs clients use, one per bound listener."""
        return [listener.info.url for listener in self._listeners]

    @property
    def accepting(self) -> bool:
        """True once the listeners accept connections (services have started)."""
        return self._accepting

    def _current_ssl_context(self) -> ssl.SSLContext | None:
        return self._ssl_context  # SIGHUP may replace it: read at each STARTTLS

    def replace_ssl_context(self, context: ssl.SSLContext) -> None:
        """TLS handshakes from now on use `context` (a renewed certificate:
        SIGHUP); open connections keep theirs."""
        self._ssl_context = context

    @property
    def shutting_down(self) -> bool:
        return self._shutdown.is_set()

    def shutdown(self) -> None:
        """Start a graceful shutdown; serve() returns once it is done."""
        self._shutdown.set()

    async def serve(
        self, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind (unless bind() was called), report the URLs through
        `task_status`, serve until shutdown()."""
        try:
            services = await self.bind()
            async with trio.open_nursery() as service_nursery:
                await service_nursery.start(self._watchdog.run)
                if self._parking is not None and self._inline is not None:
                    await service_nursery.start(self._parking.run)
                    await service_nursery.start(self._inline.run)
                for service in services.values():
                    await service.start(service_nursery)
                await self._serve_connections(task_status)
                for service in services.values():
                    await service.stop()
                service_nursery.cancel_scope.cancel()
        finally:
            self._close_listeners()
        log.info("stopped")

    async def bind(self) -> dict[str, Service]:
        """Create the services and bind every listener, raising AddressError or
        AppError directly; serve() calls it if you have not."""
        if self._services is None:
            services = self._create_services()
            for name, service in services.items():
                mine = [x for x in self._listens if x.protocol.name == name]
                service.check_listen([x.address for x in mine])
                service.check_tls([self._client_certs() if x.tls else None for x in mine])
            try:
                await self._bind(services)
            except BaseException:
                self._close_listeners()
                raise
            self._services = services
        return self._services

    def _create_services(self) -> dict[str, Service]:
        services: dict[str, Service] = {}
        for listen in self._listens:
            protocol = listen.protocol
            if protocol.name in services:
                continue
            app = self._apps.get(protocol.name)
            app = protocol.default_app() if app is None else protocol.check_app(app)
            settings = self._settings.get(protocol.name)
            if settings is None and protocol.settings_class is not None:
                settings = protocol.settings_class()
            services[protocol.name] = protocol.create_service(app, settings, self.runtime)
        return services

    async def _bind(self, services: dict[str, Service]) -> None:
        systemd = claim_systemd_fds(self._listens)
        for index, listen in enumerate(self._listens):
            protocol = listen.protocol
            sockets = open_sockets(
                listen.address,
                default_port=protocol.default_port,
                backlog=self._backlog,
                systemd=systemd.get(index, ()),
            )
            scheme = (protocol.tls_schemes if listen.tls else protocol.schemes)[0]
            for sock in sockets:
                sock.setblocking(False)
                url = client_url(scheme, sock, proxy=listen.address.proxy)
                counters = Counters(parent=self.runtime.counters)
                info = ListenerInfo(url=url, protocol=protocol.name, counters=counters)
                created_path = listen.address.path if listen.address.transport == "unix" else None
                self._listeners.append(
                    _Listener(
                        info=info,
                        sock=sock,
                        service=services[protocol.name],
                        limits=listen.limits or protocol.limits,
                        tls=listen.tls,
                        proxy=listen.address.proxy,
                        unix_path=created_path,
                        unix_inode=_inode(created_path) if created_path else None,
                    )
                )
                self.runtime.listeners.append(info)

    async def _serve_connections(self, task_status: trio.TaskStatus[list[str]]) -> None:
        async with trio.open_nursery() as connection_nursery:
            async with trio.open_nursery() as accept_nursery:
                for listener in self._listeners:
                    accept_nursery.start_soon(self._accept_loop, listener, connection_nursery)
                for listener in self._listeners:
                    log.log(
                        logging.INFO if self._announce else logging.DEBUG,
                        "%s listening on %s",
                        listener.info.protocol,
                        listener.info.url,
                        extra={"url": listener.info.url, "protocol": listener.info.protocol},
                    )
                    self._audit(listener)
                self._accepting = True
                task_status.started(self.urls)
                await self._shutdown.wait()
                accept_nursery.cancel_scope.cancel()
            for listener in self._listeners:
                # clients the kernel has queued would get a reset when the
                # listener closes: take them, to answer and close gracefully
                self._accept_waiting(listener, connection_nursery)
            self._close_listeners()
            open_count = len(self._watchdog.connections)
            log.info(
                "shutting down: waiting up to %gs for %d connection(s)",
                self._graceful_timeout,
                open_count,
                extra={"connections": open_count},
            )
            for conn in list(self._watchdog.connections):
                conn.begin_closing()
            connection_nursery.cancel_scope.deadline = trio.current_time() + self._graceful_timeout
        if connection_nursery.cancel_scope.cancelled_caught:
            log.warning("grace period over: cancelled the connections still open")

    def _close_listeners(self) -> None:
        for listener in self._listeners:
            if listener.sock.fileno() >= 0:
                trio.lowlevel.notify_closing(listener.sock)  # wakes an accept loop
                listener.sock.close()
            path, listener.unix_path = listener.unix_path, None
            if path is not None and _inode(path) == listener.unix_inode:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # only our own file: another server may have replaced it

    async def _accept_loop(self, listener: _Listener, nursery: trio.Nursery) -> None:
        """Accept every connection waiting, up to MAX_ACCEPTS_PER_WAKEUP, each
        time the listener is readable (as Redis does): one accept per trip
        through the scheduler starves new clients while busy ones are served."""
        while True:
            await trio.lowlevel.wait_readable(listener.sock)
            if not self._accept_waiting(listener, nursery):
                await trio.sleep(ACCEPT_RETRY_DELAY)

    def _accept_waiting(self, listener: _Listener, nursery: trio.Nursery) -> bool:
        """Admit the connections waiting to be accepted; False if accept()
        failed (EMFILE and the like), which the caller should wait out."""
        for _ in range(MAX_ACCEPTS_PER_WAKEUP):
            try:
                client, address = listener.sock.accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in IGNORABLE_ACCEPT_ERRNOS:
                    continue  # that client is gone already
                self._log_accept_error(listener, exc)
                return False
            peer = SocketAddress.from_os(client.family, address)
            self._admit(listener, SocketStream(client, self._parking, self._inline), peer, nursery)
        return True

    def _admit(
        self, listener: _Listener, stream: SocketStream, peer: SocketAddress, nursery: trio.Nursery
    ) -> None:
        counters = listener.info.counters
        if counters.connections_open >= listener.limits.max_connections:
            counters.refused()
            self._log_refusal(listener)
            if self._pending_refusals < MAX_PENDING_REFUSALS:
                self._pending_refusals += 1
                nursery.start_soon(self._refuse, stream, listener)
            else:
                stream.socket.close()
            return
        counters.opened()
        nursery.start_soon(self._run_connection, stream, peer, listener)

    def _audit(self, listener: _Listener) -> None:
        """One line per listener: who can reach it, TLS, who is let in; a
        warning when others can reach it and nobody is asked who they are
        (a worker leaves the info lines to its supervisor's view)."""
        client_certs = self._client_certs() if listener.tls else None
        level, message = audit_line(
            listener.info.url,
            local=_is_local(listener.sock) and not listener.proxy,  # clients: anywhere
            client_certs=client_certs,
            access=listener.service.access(),
        )
        if level > logging.INFO or self._announce:
            log.log(level, "%s", message, extra={"url": listener.info.url})

    def _client_certs(self) -> str:
        """What TLS listeners ask of clients (--client-certs)."""
        assert self._ssl_context is not None
        return {
            ssl.CERT_NONE: "none",
            ssl.CERT_OPTIONAL: "optional",
            ssl.CERT_REQUIRED: "required",
        }[self._ssl_context.verify_mode]

    def _log_accept_error(self, listener: _Listener, exc: OSError) -> None:
        if listener.accept_errors.due():
            log.error(
                "accept on %s failed: %s (%s); retrying every %gs (%d failures so far)",
                listener.info.url,
                errno.errorcode.get(exc.errno or 0, "error"),
                exc.strerror,
                ACCEPT_RETRY_DELAY,
                listener.accept_errors.count,
            )

    def _log_refusal(self, listener: _Listener) -> None:
        if listener.refusals.due():
            log.warning(
                "%s: connection limit of %d reached; refusing new connections (%d refused so far)",
                listener.info.url,
                listener.limits.max_connections,
                listener.info.counters.connections_refused,
            )

    async def _refuse(self, raw: SocketStream, listener: _Listener) -> None:
        try:
            with trio.move_on_after(REFUSAL_TIMEOUT):
                stream = await self._secure(raw, listener, most_seconds=REFUSAL_TIMEOUT)
                message = listener.service.refusal()
                if message:
                    await stream.send_all(message)
                await close_gracefully(stream, raw, CLOSE_LINGER_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass
        except Exception:
            log.exception("refusing a connection on %s failed", listener.info.url)
        finally:
            self._pending_refusals -= 1
            raw.close_now()

    async def _secure(
        self, raw: SocketStream, listener: _Listener, most_seconds: float = math.inf
    ) -> trio.abc.Stream:
        if not listener.tls:
            return raw
        assert self._ssl_context is not None
        stream = trio.SSLStream(raw, self._ssl_context, server_side=True)
        with trio.fail_after(min(most_seconds, listener.limits.handshake_timeout)):
            await stream.do_handshake()
        return stream

    async def _read_proxy_header(
        self, raw: SocketStream, peer: SocketAddress, listener: _Listener
    ) -> ProxyHeader | None:
        """Read the PROXY protocol header a +proxy listener's connections
        start with, before TLS and before the plugin: exactly its bytes, so
        that what follows is untouched. None (logged) when the peer is not a
        trusted proxy or sends no valid header in time: close the connection."""
        if not self.runtime.trusted_proxies.trusts(peer):
            self._log_proxy_error(
                listener,
                peer,
                f"not a trusted proxy (--forwarded-allow-ips {self.runtime.trusted_proxies})",
            )
            return None
        sock = raw.socket
        header = b""
        try:
            with trio.fail_after(listener.limits.handshake_timeout):
                while True:
                    # Peek, then take only the header's bytes: a v1 line's
                    # length is known at its CRLF, a v2 header's from its 16th byte.
                    known = header_length(header)
                    limit = (V1_MAX_LENGTH if known is None else known) - len(header)
                    try:
                        peeked = sock.recv(limit, socket.MSG_PEEK)
                    except BlockingIOError:
                        await trio.lowlevel.wait_readable(sock)
                        continue
                    if not peeked:
                        raise ProxyHeaderError("closed before the end of its PROXY header")
                    length = header_length(header + peeked)
                    take = len(peeked) if length is None else length - len(header)
                    header += sock.recv(min(take, len(peeked)))
                    if length is not None and len(header) == length:
                        return parse_header(header)
        except trio.TooSlowError:
            reason = f"no PROXY header within {listener.limits.handshake_timeout:g}s"
        except ProxyHeaderError as exc:
            reason = str(exc)
        except OSError as exc:
            reason = f"lost while reading its PROXY header: {exc.strerror}"
        self._log_proxy_error(listener, peer, reason)
        return None

    def _log_proxy_error(self, listener: _Listener, peer: SocketAddress, reason: str) -> None:
        if listener.proxy_errors.due():
            log.warning(
                "%s: closing the connection from %s: %s (%d so far)",
                listener.info.url,
                peer,
                reason,
                listener.proxy_errors.count,
            )

    async def _run_connection(
        self, raw: SocketStream, peer: SocketAddress, listener: _Listener
    ) -> None:
        conn_id = next(self._ids)
        counters = listener.info.counters
        conn: Connection | None = None
        local = SocketAddress.of(raw.socket, peer=False)
        proxy: SocketAddress | None = None
        # one handshake timeout for the PROXY header and the TLS handshake together
        setup_ends = trio.current_time() + listener.limits.handshake_timeout
        try:
            if listener.proxy:
                header = await self._read_proxy_header(raw, peer, listener)
                if header is None:  # closed with a FIN, not a reset: the client may read
                    with trio.move_on_after(CLOSE_LINGER):
                        await close_gracefully(raw, raw, CLOSE_LINGER_BYTES)
                    return
                if not header.local:  # LOCAL: the proxy's own connection (a health check)
                    proxy, peer = peer, _proxied(header.source)
                    if header.destination is not None and header.destination.transport == "tcp":
                        local = header.destination
            try:
                stream = await self._secure(
                    raw, listener, max(0.0, setup_ends - trio.current_time())
                )
                certificate = PeerCertificate.of(stream) if listener.tls else None
                version: str | None = stream.version() if listener.tls else None  # type: ignore[attr-defined]
            except trio.TooSlowError:
                log.info("TLS handshake with %s failed: timed out", peer)
                return
            except trio.BrokenResourceError as exc:  # the reason is the SSL or OS error
                log.info("TLS handshake with %s failed: %s", peer, exc.__cause__ or "lost")
                return
            conn = Connection(
                stream,
                transport=raw,
                watchdog=self._watchdog,
                id=conn_id,
                peer=peer,
                local=local,
                proxy=proxy,
                listener_url=listener.info.url,
                tls=listener.tls,
                limits=listener.limits,
                counters=counters,
                peer_certificate=certificate,
                tls_version=version,
                tls_context=None if listener.tls else self._current_ssl_context,
            )
            self._watchdog.connections.add(conn)
            if self._shutdown.is_set():
                conn.begin_closing()
            if _CONNECTION_LOG.isEnabledFor(logging.DEBUG):  # else no logger adapter is made
                conn.log.debug("connection opened on %s", listener.info.url)
            try:
                await listener.service.handle(conn)
            except BaseException as exc:
                if _log_handler_end(conn, exc):  # re-raises Cancelled and friends
                    await _say_internal_error(conn, listener.service)
            await conn.aclose(CLOSE_LINGER, CLOSE_LINGER_BYTES)
        finally:
            if conn is not None:
                self._watchdog.connections.discard(conn)
                if _CONNECTION_LOG.isEnabledFor(logging.DEBUG):
                    conn.log.debug("connection closed")
            counters.closed()
            raw.close_now()


def _proxied(source: SocketAddress | None) -> SocketAddress:
    """The client a PROXY header names. One whose address the proxy does not
    know (UNKNOWN, UNSPEC), or that reached the proxy over a Unix socket on
    the proxy's machine, is an unknown address: never loopback, never local."""
    if source is None or source.transport != "tcp":
        return SocketAddress("tcp")
    return source


async def _say_internal_error(conn: Connection, service: Service) -> None:
    """Send the protocol's last words after a handler failed, if it has any."""
    try:
        message = service.internal_error(conn)
    except Exception:
        conn.log.exception("%s.internal_error() failed", type(service).__name__)
        return
    if message:
        with trio.move_on_after(CLOSE_LINGER), contextlib.suppress(*QUIET_ENDS):
            await conn.send(message)


def _log_handler_end(conn: Connection, exc: BaseException) -> bool:
    """Log how a handler ended by an exception; True if it failed (not an
    ordinary end such as a timeout). Re-raises what is not ours to swallow
    (Cancelled, KeyboardInterrupt). Exception groups from a plugin's own
    nursery are split: timeouts and lost clients are ordinary ends."""
    group = exc if isinstance(exc, BaseExceptionGroup) else BaseExceptionGroup("", [exc])
    quiet, rest = group.split(QUIET_ENDS)
    errors, fatal = rest.split(Exception) if rest is not None else (None, None)
    if quiet is not None:
        first = _leaves(quiet)[0]
        if isinstance(first, ReceiveTimeout):
            conn.log.info("closing: %s timeout, %s", first.phase, first)
        elif isinstance(first, SendTimeout):
            conn.log.info("closing: %s", first)
        else:
            conn.log.debug("client went away: %s", first)
    if errors is not None:
        conn.counters.error()
        failure = _leaves(errors)[0] if len(_leaves(errors)) == 1 else errors
        conn.log.error(
            "handler failed; closing this connection (peer %s)",
            conn.peer,
            exc_info=(type(failure), failure, failure.__traceback__),
        )
    if fatal is not None:
        if fatal.exceptions == (exc,):
            raise exc
        raise fatal
    return errors is not None


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for item in group.exceptions:
        found += _leaves(item) if isinstance(item, BaseExceptionGroup) else [item]
    return found


def _inode(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def claim_systemd_fds(listens: list[Listen]) -> dict[int, list[int]]:
    """Which systemd-passed fds each listener (by index) serves: named URLs
    take the fds of their name; one nameless URL takes the rest. An fd is
    never served twice."""
    wanted = [i for i, listen in enumerate(listens) if listen.address.transport == "systemd"]
    if not wanted:
        return {}
    passed = systemd_fds(os.environ)
    claims: dict[int, list[int]] = {}
    taken: set[int] = set()
    nameless = [i for i in wanted if listens[i].address.name is None]
    if len(nameless) > 1:
        raise AddressError(
            "only one listen URL may take all systemd sockets (+systemd:// with no name)"
        )
    for index in wanted:
        name = listens[index].address.name
        if name is None:
            continue
        fds = [fd for fd, fd_name in passed if fd_name == name]
        if set(fds) & taken:
            raise AddressError(f"the systemd socket named {name!r} is given to two listen URLs")
        taken.update(fds)
        claims[index] = fds
        if not fds:
            raise AddressError(_no_systemd_socket(name, passed))
    for index in nameless:
        claims[index] = [fd for fd, _ in passed if fd not in taken]
        if not claims[index]:
            raise AddressError(_no_systemd_socket(None, passed))
    return claims


def _no_systemd_socket(name: str | None, passed: list[tuple[int, str]]) -> str:
    what = f"named {name!r}" if name is not None else "left for +systemd:// (all went to names)"
    if not passed:
        return (
            f"no systemd socket {what}: systemd passed no sockets to this process "
            "(LISTEN_FDS/LISTEN_PID are not set for it, or LISTEN_FDS is 0)"
        )
    names = ", ".join(sorted({fd_name for _, fd_name in passed}))
    return f"no systemd socket {what}; the passed sockets are named: {names}"


def audit_line(
    url: str, *, local: bool, client_certs: str | None, access: Access
) -> tuple[int, str]:
    """The startup audit of one listener: (log level, message). `client_certs`
    is None without TLS, else none/optional/required."""
    reach = "this machine only" if local else "other machines too"
    if client_certs is None:
        tls = "off"
    elif client_certs == "none":
        tls = "on"
    else:
        tls = f"on, client certificates {client_certs}"
    if client_certs == "required":
        who = "client certificate" + (
            f" and {access.authentication}" if access.authentication else ""
        )
    elif access.authentication:
        who = access.authentication
    else:
        who = "by the app" if access.by_app else "none"
    message = f"{url}: reachable from {reach}; TLS {tls}; authentication {who}"
    if access.note:
        message += f" ({access.note})"
    if local or who != "none":
        return logging.INFO, message
    advice = access.advice or "require a client certificate (--client-certs required)"
    return logging.WARNING, f"{message}: {access.risk}; {advice}"


def _is_local(sock: socket.socket) -> bool:
    """True for a Unix socket or one bound to a loopback address."""
    if sock.family == socket.AF_UNIX:
        return True
    try:
        host = sock.getsockname()[0]
        return ipaddress.ip_address(host).is_loopback
    except (OSError, ValueError):
        return False
