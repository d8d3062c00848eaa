# The plugin contract: what a protocol plugin declares (name, URL schemes,
# default port, settings, connection limits) and the per-process Service it
# creates to handle connections. Everything a plugin needs from the core is
# here or in Connection; the core never looks inside a plugin's application.
from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import trio

from ._address import ListenAddress
from ._connection import Connection, ConnectionLimits
from ._proxy import DEFAULT_TRUSTED_PROXIES, TrustedProxies
from ._stats import Counters

__all__ = ["Access", "AppError", "ListenerInfo", "Protocol", "Runtime", "Service"]

AppT = TypeVar("AppT")
SettingsT = TypeVar("SettingsT")


class AppError(Exception):
    """The application given with --app does not fit the plugin; says why."""


@dataclasses.dataclass(frozen=True)
class ListenerInfo:
    """One bound listener: the URL a client uses, and its live counters."""

    url: str
    protocol: str
    counters: Counters


class Runtime:
    """What a Service can see of the server running it (for status pages)."""

    def __init__(self, request_shutdown: Callable[[], None] | None = None) -> None:
        self._request_shutdown = request_shutdown
        self.counters = Counters()
        self.listeners: list[ListenerInfo] = []
        self.certificate = False
        """Whether the server has a certificate (--certfile): TLS listeners use
        it, and plain ones can switch to TLS (Connection.start_tls)."""
        self.trusted_proxies = TrustedProxies.parse(DEFAULT_TRUSTED_PROXIES)
        """Peers whose word about the real client is taken (--forwarded-allow-ips):
        PROXY protocol headers, and a plugin's forwarding headers (X-Forwarded-For)."""

    def request_shutdown(self) -> None:
        """Start the server's graceful shutdown, as SIGTERM does: a plugin's
        command to stop the server (RESP's SHUTDOWN). It returns at once;
        the service's connections are then closed as at any shutdown."""
        if self._request_shutdown is None:
            raise RuntimeError("this Runtime belongs to no server that could shut down")
        self._request_shutdown()


@dataclasses.dataclass(frozen=True)
class Access:
    """Who a protocol's listeners let in, for the startup audit line."""

    authentication: str | None = None
    """How clients prove who they are ("password", "accounts"); None: nobody is asked."""
    by_app: bool = False
    """Authentication is the application's business (HTTP): no warning without it."""
    note: str = ""
    """Said after the authentication ("protected mode: only loopback clients...")."""
    risk: str = "anyone who reaches it gets in"
    """What the warning says happens to clients from elsewhere."""
    advice: str = ""
    """The way out, said in the warning for a listener others can reach with no
    authentication ("set a password with --resp-requirepass ...")."""


class Service(abc.ABC):
    """A plugin's live state in one process: one per protocol per server.

    All listeners of the protocol share it, so state such as a keyspace, a
    pub/sub registry or the map of logged-in users is shared by all of them.
    """

    def check_listen(self, addresses: Sequence[ListenAddress]) -> None:  # noqa: B027
        """Before anything is bound: raise AppError to refuse to listen at
        these addresses (this protocol's), e.g. a development-only mode off
        loopback. `netsvc.listens_locally(address)` tells loopback from the
        rest. The default allows any."""

    def check_tls(self, client_certs: Sequence[str | None]) -> None:  # noqa: B027
        """Before anything is bound: raise AppError to refuse this protocol's
        TLS setup. One entry per listener of this protocol: None for a plain
        one, else what the TLS listener asks of its clients ("none",
        "optional" or "required": --client-certs). The default allows any."""

    def access(self) -> Access:
        """Who this protocol lets in, for the audit line each listener gets at
        startup (a warning for one reachable from elsewhere without any
        authentication). The default: nobody is asked who they are."""
        return Access()

    async def start(self, nursery: trio.Nursery) -> None:  # noqa: B027 (optional hook)
        """Before any listener accepts: start background tasks in `nursery`."""

    async def stop(self) -> None:  # noqa: B027 (optional hook)
        """After every connection has ended; background tasks are cancelled next."""

    @abc.abstractmethod
    async def handle(self, conn: Connection) -> None:
        """Serve one connection until it ends. Exceptions close only this one."""

    def refusal(self) -> bytes:
        """What a connection over the listener's limit is sent before closing."""
        return b""

    def internal_error(self, conn: Connection) -> bytes:
        """What a connection is sent when `handle` raised (an error, not a
        timeout or a lost client), before it is closed: the protocol's own
        "internal error" (`-ERR ...`, `SERVER_ERROR`, `<internal-server-error/>`),
        or b"" to send nothing. The default sends nothing. Only send it if no
        message of yours can be half-written at that point."""
        return b""


class Protocol(abc.ABC, Generic[AppT, SettingsT]):
    """A protocol plugin. Subclass it, fill in the class attributes, and
    register an instance under the entry-point group `netsvc.protocols`."""

    name: ClassVar[str]
    """Short lower-case name: `netsvc serve --protocol NAME`."""
    schemes: ClassVar[Sequence[str]]
    """URL schemes of plain listeners; the first is used in reported URLs."""
    tls_schemes: ClassVar[Sequence[str]] = ()
    """URL schemes of TLS listeners (`rediss`, `https`)."""
    default_port: ClassVar[int]
    description: ClassVar[str]
    """One line for `netsvc protocols`."""
    settings_class: ClassVar[type[Any] | None] = None
    """A dataclass whose fields are made with `netsvc.setting(...)`."""
    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    """Default connection limits; each can be overridden from the CLI."""
    multiprocess_safe: ClassVar[bool] = False
    """True if several processes may serve it (`--workers`): no state that
    must be shared between connections lives in the process."""

    def default_app(self) -> AppT:
        """The application served when no --app is given; a protocol with no
        application needs not override it (its services get None)."""
        return None  # type: ignore[return-value]

    def check_app(self, app: object) -> AppT:
        """Accept (or adapt) a user's --app object, or raise AppError saying why."""
        return app  # type: ignore[return-value]

    @abc.abstractmethod
    def create_service(self, app: AppT, settings: SettingsT, runtime: Runtime) -> Service:
        """Make the Service that handles this process's connections."""
