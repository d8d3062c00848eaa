# Where to listen: parsing listen URLs (`redis://[::1]:6380`,
# `redis+unix:///run/app.sock`, `redis+fd://3`, `redis+systemd://name`, and
# `+proxy` in any of them for a PROXY protocol header first),
# opening the sockets they name (TCP, Unix, inherited fds, systemd socket
# activation), writing the URL a client should use for a bound socket, and
# the structured address of either end of a connection.
from __future__ import annotations

import dataclasses
import errno
import ipaddress
import os
import socket
import stat
import urllib.parse
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

__all__ = [
    "AddressError",
    "ListenAddress",
    "SocketAddress",
    "bind_tcp",
    "client_url",
    "listens_locally",
    "open_sockets",
    "parse_listen_url",
    "socket_count",
    "systemd_fds",
]

SD_LISTEN_FDS_START = 3
UNIX_PROBE_TIMEOUT = 1.0  # seconds to find out whether a Unix socket file is live
TRANSPORTS = ("tcp", "unix", "fd", "systemd")


class AddressError(ValueError):
    """A listen address is malformed or cannot be bound; says why."""


@dataclasses.dataclass(frozen=True)
class ListenAddress:
    """One place to listen. Exactly the fields of its transport are set."""

    transport: str  # one of TRANSPORTS
    host: str | None = None  # tcp
    port: int | None = None  # tcp; None means the protocol's default port
    path: str | None = None  # unix
    fd: int | None = None  # fd
    name: str | None = None  # systemd: LISTEN_FDNAMES entry; None means all
    reuse_port: bool = False  # tcp: share the port with other processes (--workers)
    proxy: bool = False  # each connection starts with a PROXY protocol header (+proxy)


@dataclasses.dataclass(frozen=True, slots=True)
class SocketAddress:
    """One end of a connection: `conn.peer` (the client) or `conn.local`.

    TCP: `host` (IPv6 without brackets) and `port`. Unix: `path` (often ""
    for a client, whose socket has no name) and port 0. `str()` gives
    `1.2.3.4:5678`, `[::1]:5678`, or the path ("unix" when it has none).
    """

    transport: str  # "tcp" or "unix"
    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def of(cls, sock: socket.socket, *, peer: bool) -> SocketAddress:
        """The peer's (or our own) address of a connected socket."""
        try:
            address = sock.getpeername() if peer else sock.getsockname()
        except OSError:
            address = None
        return cls.from_os(sock.family, address)

    @classmethod
    def from_os(cls, family: int, address: Any) -> SocketAddress:
        """An address as the socket module gives it (accept(), getpeername()):
        a path for AF_UNIX, a (host, port, ...) tuple for IP; None if unknown."""
        if family == socket.AF_UNIX:
            return cls("unix", path=address if isinstance(address, str) else "")
        if not address:
            return cls("tcp")
        return cls("tcp", host=address[0], port=address[1])

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The host as an IP address (an IPv4-mapped IPv6 one as IPv4, as a
        dual-stack socket reports IPv4 clients); None for a Unix socket."""
        try:
            ip = ipaddress.ip_address(self.host)
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        return ip

    @property
    def is_loopback(self) -> bool:
        """True for a Unix socket or a loopback IP (127.0.0.0/8, ::1, and
        IPv4-mapped loopback)."""
        if self.transport == "unix":
            return True
        ip = self.ip
        return ip is not None and ip.is_loopback

    def __str__(self) -> str:
        if self.transport == "unix":
            return self.path or "unix"
        if not self.host:
            return "unknown address"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen_url(url: str) -> tuple[str, ListenAddress]:
    """Split a listen URL into its protocol scheme and address.

    `SCHEME://HOST[:PORT]` is TCP (`[::1]` for IPv6), `SCHEME+unix://PATH` a
    Unix socket, `SCHEME+fd://N` an inherited file descriptor and
    `SCHEME+systemd://[NAME]` sockets passed by systemd socket activation.
    `+proxy` (`redis+proxy://...`, `redis+proxy+unix://...`) marks a listener
    behind a proxy that starts each connection with a PROXY protocol header.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise AddressError(f"listen URL {url!r} has no scheme; write it as SCHEME://HOST:PORT")
    base, *modifiers = scheme.lower().split("+")
    proxy = "proxy" in modifiers
    transports = [modifier for modifier in modifiers if modifier != "proxy"]
    if len(transports) > 1 or modifiers.count("proxy") > 1:
        raise AddressError(f"{url!r}: one transport (+unix, +fd or +systemd) and +proxy at most")
    transport = transports[0] if transports else "tcp"
    address = _parse_address(url, base, transport, rest)
    return base, dataclasses.replace(address, proxy=True) if proxy else address


def _parse_address(url: str, base: str, transport: str, rest: str) -> ListenAddress:
    if transport == "unix":
        if not rest:
            raise AddressError(
                f"{url!r}: a Unix socket URL needs a path ({base}+unix:///run/app.sock)"
            )
        return ListenAddress("unix", path=rest)
    if transport == "fd":
        if not rest.isdigit():
            raise AddressError(f"{url!r}: expected a file descriptor number ({base}+fd://3)")
        return ListenAddress("fd", fd=int(rest))
    if transport == "systemd":
        return ListenAddress("systemd", name=rest or None)
    if transport != "tcp":
        raise AddressError(
            f"{url!r}: unknown transport {transport!r} (use +unix, +fd or +systemd, or +proxy)"
        )
    if "/" in rest.rstrip("/") or "?" in rest or "@" in rest:
        raise AddressError(f"{url!r}: a listen URL has only a host and a port, not a path or user")
    try:
        parsed = urllib.parse.urlsplit(f"//{rest.rstrip('/')}")
        port = parsed.port
    except ValueError as exc:
        raise AddressError(f"{url!r}: {exc}") from None
    if parsed.hostname is None:
        raise AddressError(
            f"{url!r}: no host; write {base}://127.0.0.1:PORT or {base}://[::1]:PORT"
        )
    return ListenAddress("tcp", host=parsed.hostname, port=port)


def client_url(scheme: str, sock: socket.socket, *, proxy: bool = False) -> str:
    """The URL a client uses to reach the bound socket `sock` (for a PROXY
    protocol listener, `+proxy` says that only a proxy can)."""
    if proxy:
        scheme += "+proxy"
    if sock.family == socket.AF_UNIX:
        path = sock.getsockname()
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        return f"{scheme}+unix://{path}"
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def systemd_activated(environ: Mapping[str, str]) -> bool:
    """Whether systemd passed this process at least one socket."""
    count = environ.get("LISTEN_FDS", "")
    return environ.get("LISTEN_PID") == str(os.getpid()) and count.isdigit() and int(count) > 0


def systemd_fds(environ: MutableMapping[str, str]) -> list[tuple[int, str]]:
    """The (fd, name) pairs systemd passed this process, consuming the variables.

    Returns [] when LISTEN_PID names another process (the variables were
    inherited, not meant for us).
    """
    pid = environ.get("LISTEN_PID")
    count = environ.get("LISTEN_FDS")
    if pid is None or count is None:
        return []
    if not pid.isdigit() or not count.isdigit():
        raise AddressError(f"LISTEN_PID={pid!r} LISTEN_FDS={count!r}: expected numbers")
    if int(pid) != os.getpid() or int(count) == 0:
        return []
    names = environ.get("LISTEN_FDNAMES", "").split(":") if environ.get("LISTEN_FDNAMES") else []
    for variable in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        environ.pop(variable, None)  # as sd_listen_fds(1): children must not see them
    fds = []
    for index in range(int(count)):
        fd = SD_LISTEN_FDS_START + index
        os.set_inheritable(fd, False)
        fds.append((fd, names[index] if index < len(names) else "unknown"))
    return fds


def _adopt_fd(fd: int) -> socket.socket:
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        raise AddressError(f"file descriptor {fd} is not open: {exc.strerror}") from None
    if not stat.S_ISSOCK(mode):
        raise AddressError(f"file descriptor {fd} is not a socket")
    sock = socket.socket(fileno=fd)  # the family and type are read from the socket
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise AddressError(f"file descriptor {fd} is not a stream socket")
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise AddressError(f"file descriptor {fd} is a socket that is not listening")
    sock.set_inheritable(False)
    return sock


def _remove_stale_unix_socket(path: str) -> None:
    """Remove a socket file nobody listens on (left by a server that died);
    refuse to touch anything else."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise AddressError(f"{path} exists and is not a socket; not replacing it")
    except FileNotFoundError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(UNIX_PROBE_TIMEOUT)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        pass  # nobody listens: stale
    except FileNotFoundError:
        return
    except OSError as exc:  # a datagram socket, no permission, a full backlog...
        reason = exc.strerror or str(exc)
        raise AddressError(f"Unix socket {path} is in use or not ours: {reason}") from None
    else:
        raise AddressError(f"Unix socket {path} is in use by another server")
    finally:
        probe.close()
    try:
        os.unlink(path)
    except OSError as exc:
        raise AddressError(f"cannot remove stale Unix socket {path}: {exc.strerror}") from None


def _bind_unix(path: str, backlog: int) -> socket.socket:
    _remove_stale_unix_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise AddressError(f"cannot listen on Unix socket {path}: {exc.strerror}") from None
    return sock


def bind_tcp(
    host: str, port: int, backlog: int, *, reuse_port: bool = False, listen: bool = True
) -> list[socket.socket]:
    """Bind every address `host` resolves to (IPv6 sockets are IPv6-only, as
    trio's own listeners are). With `reuse_port`, several processes can bind
    the same port and the kernel spreads connections over them."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = _tcp_addresses(host, port)
    except socket.gaierror as exc:
        raise AddressError(f"cannot listen on {where}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, sockaddr in infos:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            if listen:
                sock.listen(backlog)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason = "the address is already in use (another server is listening there)"
        raise AddressError(f"cannot listen on {where}: {reason}") from None
    return sockets


def _tcp_addresses(host: str, port: int) -> list[Any]:
    """The distinct addresses bind_tcp() binds for `host` (raises gaierror)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    unique = {info[4]: info for info in infos}  # the first of each address, in order
    return list(unique.values())


def listens_locally(address: ListenAddress) -> bool:
    """True if only this machine can connect to `address`: a Unix socket, or
    a TCP host whose every address is loopback. An inherited or systemd
    socket, or a host that does not resolve, is not known to be local, nor
    is a `+proxy` listener, whose clients are wherever the proxy's are."""
    if address.proxy:
        return False
    if address.transport == "unix":
        return True
    if address.transport != "tcp" or not address.host:
        return False
    try:
        infos = _tcp_addresses(address.host, address.port or 0)
    except (socket.gaierror, UnicodeError):
        return False
    hosts = [info[4][0] for info in infos]
    return bool(hosts) and all(ipaddress.ip_address(host).is_loopback for host in hosts)


def socket_count(address: ListenAddress) -> int:
    """How many listening sockets open_sockets() will make for `address`: a
    TCP host may resolve to several ("localhost": 127.0.0.1 and ::1), each
    with its own connection limit. 1 when it cannot tell (systemd, a host
    that does not resolve: binding says why)."""
    if address.transport != "tcp" or address.host is None:
        return 1
    try:
        return max(1, len(_tcp_addresses(address.host, address.port or 0)))
    except (socket.gaierror, UnicodeError):
        return 1


def open_sockets(
    address: ListenAddress,
    *,
    default_port: int,
    backlog: int,
    systemd: Sequence[int] = (),
) -> list[socket.socket]:
    """Bind (or adopt) the listening sockets for `address`; `systemd` are the
    fds systemd passed that this address was given."""
    if address.transport == "tcp":
        assert address.host is not None
        port = default_port if address.port is None else address.port
        return bind_tcp(address.host, port, backlog, reuse_port=address.reuse_port)
    if address.transport == "unix":
        assert address.path is not None
        return [_bind_unix(address.path, backlog)]
    if address.transport == "fd":
        assert address.fd is not None
        return [_adopt_fd(address.fd)]
    return [_adopt_fd(fd) for fd in systemd]
