# The PROXY protocol (HAProxy's, versions 1 and 2), sans-IO: how long the
# header at the start of a connection is, what it says (the real client's
# address and the one it connected to), and which peers are trusted to send
# one (--forwarded-allow-ips). The server (_server.py) reads the header off
# the socket before TLS and before the plugin sees a byte.
# Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
from __future__ import annotations

import dataclasses
import ipaddress
import struct

from ._address import SocketAddress

__all__ = [
    "DEFAULT_TRUSTED_PROXIES",
    "V1_MAX_LENGTH",
    "V2_SIGNATURE",
    "ProxyHeader",
    "ProxyHeaderError",
    "TrustedProxies",
    "header_length",
    "parse_header",
]

DEFAULT_TRUSTED_PROXIES = "127.0.0.1,::1"  # as uvicorn's --forwarded-allow-ips, and ::1
V1_PREFIX = b"PROXY "
V1_MAX_LENGTH = 107  # the longest v1 line, CRLF included (spec 2.1)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family/transport, length
# address block sizes of the v2 families this server accepts (stream only)
V2_TCP4, V2_TCP6, V2_UNIX = 0x11, 0x21, 0x31
V2_ADDRESS_SIZES = {V2_TCP4: 12, V2_TCP6: 36, V2_UNIX: 216}
V2_LOCAL, V2_PROXY = 0x20, 0x21


class ProxyHeaderError(ValueError):
    """The bytes at the start of a connection are not a valid PROXY header."""


@dataclasses.dataclass(frozen=True)
class ProxyHeader:
    """What a PROXY header says. `source` is the real client and `destination`
    the address it connected to. `local` (v2 LOCAL, a health check): the
    connection is the proxy's own. Otherwise both None when the proxy does not
    know the client's address (v1 UNKNOWN, v2 UNSPEC): a client from anywhere."""

    version: int
    source: SocketAddress | None = None
    destination: SocketAddress | None = None
    local: bool = False


def header_length(data: bytes) -> int | None:
    """The length of the PROXY header `data` starts with, once enough of it
    is there to tell; None if more bytes are needed. Raises ProxyHeaderError
    as soon as `data` cannot be the start of a header."""
    if not data:
        return None
    if data[0] == V1_PREFIX[0]:
        if not data.startswith(V1_PREFIX[: len(data)]):
            raise ProxyHeaderError("not a PROXY protocol header")
        end = data.find(b"\r\n", 0, V1_MAX_LENGTH)
        if end >= 0:
            return end + 2
        if len(data) >= V1_MAX_LENGTH:
            raise ProxyHeaderError(f"PROXY v1 line longer than {V1_MAX_LENGTH} bytes")
        return None
    if not data.startswith(V2_SIGNATURE[: len(data)]):
        raise ProxyHeaderError("not a PROXY protocol header")
    if len(data) < V2_FIXED:
        return None
    return V2_FIXED + int.from_bytes(data[14:16], "big")


def parse_header(header: bytes) -> ProxyHeader:
    """Parse one whole header, as header_length() delimited it."""
    if header.startswith(V2_SIGNATURE):
        return _parse_v2(header)
    return _parse_v1(header)


def _parse_v1(header: bytes) -> ProxyHeader:
    if not header.startswith(V1_PREFIX) or not header.endswith(b"\r\n"):
        raise ProxyHeaderError("not a PROXY protocol header")
    line = header[len(V1_PREFIX) : -2]
    if line == b"UNKNOWN" or line.startswith(b"UNKNOWN "):
        return ProxyHeader(1)  # the rest is to be ignored (spec 2.1)
    fields = line.split(b" ")
    if len(fields) != 5 or fields[0] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError(f"malformed PROXY v1 line {header[:-2]!r}")
    version = 4 if fields[0] == b"TCP4" else 6
    source = _v1_address(fields[1], fields[3], version)
    destination = _v1_address(fields[2], fields[4], version)
    return ProxyHeader(1, source, destination)


def _v1_address(host: bytes, port: bytes, version: int) -> SocketAddress:
    try:
        ip = ipaddress.ip_address(host.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProxyHeaderError(f"PROXY v1: {host!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        raise ProxyHeaderError(f"PROXY v1: {host!r} is not an IP address (a zone id)")
    if ip.version != version:
        raise ProxyHeaderError(f"PROXY v1: {host!r} is not an IPv{version} address")
    # decimal, no sign, no leading zero (the spec forbids them: octal confusion)
    if not port.isdigit() or (port.startswith(b"0") and port != b"0") or int(port) > 65535:
        raise ProxyHeaderError(f"PROXY v1: {port!r} is not a port number")
    return SocketAddress("tcp", host=str(ip), port=int(port))


def _parse_v2(header: bytes) -> ProxyHeader:
    command, family, length = struct.unpack_from("!BBH", header, 12)
    if len(header) != V2_FIXED + length:
        raise ProxyHeaderError("PROXY v2 header length does not match its contents")
    if command == V2_LOCAL:
        return ProxyHeader(2, local=True)  # the proxy's own connection (a health check)
    if command != V2_PROXY:
        raise ProxyHeaderError(f"PROXY v2: unknown version/command byte 0x{command:02x}")
    if family >> 4 == 0x0:
        return ProxyHeader(2)  # UNSPEC (any transport): the proxy does not know the addresses
    size = V2_ADDRESS_SIZES.get(family)
    if size is None:
        raise ProxyHeaderError(
            f"PROXY v2: address family/transport 0x{family:02x} is not TCP or a Unix stream"
        )
    if length < size:
        raise ProxyHeaderError("PROXY v2 header too short for its addresses")
    body = header[V2_FIXED : V2_FIXED + size]  # what follows are TLVs, not used here
    if family == V2_TCP4:
        src, dst, sport, dport = struct.unpack("!4s4sHH", body)
    elif family == V2_TCP6:
        src, dst, sport, dport = struct.unpack("!16s16sHH", body)
    else:
        return ProxyHeader(2, _unix_address(body[:108]), _unix_address(body[108:]))
    source = SocketAddress("tcp", host=str(ipaddress.ip_address(src)), port=sport)
    destination = SocketAddress("tcp", host=str(ipaddress.ip_address(dst)), port=dport)
    return ProxyHeader(2, source, destination)


def _unix_address(raw: bytes) -> SocketAddress:
    return SocketAddress("unix", path=raw.split(b"\0", 1)[0].decode(errors="replace"))


@dataclasses.dataclass(frozen=True)
class TrustedProxies:
    """The peers whose word about the real client is taken: a PROXY header
    is read only from them, and the HTTP plugin's X-Forwarded-* and Forwarded
    headers only count from them. Unix-socket peers are always trusted (who
    may connect is the socket file's permissions' business)."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    everyone: bool = False

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """`127.0.0.1,10.0.0.0/8,::1` or `*` (every peer: only when nothing
        but the proxy can reach the port)."""
        items = [item.strip() for item in text.split(",") if item.strip()]
        if "*" in items:
            return cls(everyone=True)
        networks = []
        for item in items:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (10.0.0.0/8), nor *"
                ) from None
        return cls(tuple(networks))

    def trusts(self, peer: SocketAddress) -> bool:
        if self.everyone or peer.transport == "unix":
            return True
        ip = peer.ip
        return ip is not None and any(ip in network for network in self.networks)

    def __str__(self) -> str:
        return "*" if self.everyone else ",".join(str(n) for n in self.networks)
