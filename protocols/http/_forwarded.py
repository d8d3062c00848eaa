# Behind a proxy, sans-IO: the client's address, the scheme and the host a
# trusted proxy says the client used, read from one kind of header, the one
# the proxies in front are configured to write: X-Forwarded-For,
# X-Forwarded-Proto and X-Forwarded-Host, or RFC 7239's Forwarded. The other
# kind is never read: a proxy passes on what it does not write itself, so
# there it is the client's own word. Each proxy appends the address it got
# the request from, so the list is walked from the right past the proxies
# trusted (--forwarded-allow-ips): the first address that is not one is the
# client (uvicorn >= 0.30 does the same), and everything to its left, which
# that client may have written itself, is ignored. The host is read only
# when asked for: a proxy that does not set it passes the client's on.
# Whether the connection's own peer may send these headers at all is the
# caller's to check. A malformed value is ignored, never an error.
from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterable

from ._strict import valid_host

__all__ = ["KINDS", "Forwarded", "read_forwarded"]

# the kinds of proxy header (--http-proxy-headers), and the header names of each
KINDS = {
    "x-forwarded": (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"),
    "forwarded": (b"forwarded",),
}

# X-Forwarded-Proto and Forwarded's proto= values, as the http scope's scheme
SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}

_TOKEN = r"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
# a forwarded-pair (RFC 7239 4): token "=" ( token / quoted-string ), with the
# whitespace proxies put around the separators forgiven
_QUOTED = r'"((?:[\t !\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"'
_PAIR = re.compile(r"[ \t]*(" + _TOKEN + r")=(?:(" + _TOKEN + r")|" + _QUOTED + r")[ \t]*")
_QUOTED_PAIR = re.compile(r"\\(.)")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclasses.dataclass(frozen=True, slots=True)
class Forwarded:
    """What the proxy headers say; None where they say nothing usable."""

    client: tuple[str, int] | None = None
    """The client's IP address and port (0 when not given)."""
    scheme: str | None = None
    """"http" or "https": the scheme the client used."""
    host: str | None = None
    """The host (and port) the client asked for, as in a Host header."""


def read_forwarded(
    headers: Iterable[tuple[bytes, bytes]],
    trusted: Callable[[str], bool],
    *,
    kind: str = "x-forwarded",
    host: bool = False,
) -> Forwarded | None:
    """What the proxy headers of `kind` ("x-forwarded" or "forwarded") in a
    request from a trusted peer say, or None if it has none. `trusted(ip)`
    says whether an address is a trusted proxy; `host` whether the host
    the client asked for is read too."""
    values: dict[bytes, list[str]] = {name: [] for name in KINDS[kind]}
    for name, value in headers:
        if name in values:
            values[name].append(value.decode("latin-1"))
    if not any(values.values()):
        return None
    if kind == "forwarded":
        forwarded = _forwarded(values[b"forwarded"], trusted)
    else:
        forwarded = _x_forwarded(
            values[b"x-forwarded-for"],
            values[b"x-forwarded-proto"],
            values[b"x-forwarded-host"],
            trusted,
        )
    if forwarded is not None and not host and forwarded.host is not None:
        forwarded = dataclasses.replace(forwarded, host=None)
    return forwarded


def _x_forwarded(
    xff: list[str], xfp: list[str], xfh: list[str], trusted: Callable[[str], bool]
) -> Forwarded:
    hops = [item.strip() for item in ",".join(xff).split(",")] if xff else []
    chosen, client = _walk([_address(hop) for hop in hops], trusted)
    skipped = len(hops) - 1 - chosen if hops else 0  # trusted proxies to the client's right
    proto = _hop_value(xfp, skipped)
    host = _hop_value(xfh, skipped)
    return Forwarded(
        client=client,
        scheme=SCHEMES.get(proto.lower()) if proto is not None else None,
        host=host if host is not None and _valid_forwarded_host(host) else None,
    )


def _hop_value(values: list[str], skipped: int) -> str | None:
    """X-Forwarded-Proto's or -Host's value for the hop the client's address
    was taken from: a single value as it is (a proxy that sets it rather
    than appending), or in a list, the one as far from the right as the
    client's address is in X-Forwarded-For."""
    items = [item.strip() for item in ",".join(values).split(",")]
    if len(items) == 1:
        return items[0]
    return items[len(items) - 1 - skipped] if skipped < len(items) else None


def _forwarded(values: list[str], trusted: Callable[[str], bool]) -> Forwarded | None:
    elements = [_parse_element(text) for value in values for text in value.split(",")]
    elements = [element for element in elements if element != {}]  # empty list items
    if not elements:
        return None
    nodes = [_node(element.get("for")) if element is not None else None for element in elements]
    chosen, client = _walk(nodes, trusted)
    element = elements[chosen] or {}
    proto = element.get("proto")
    host = element.get("host")
    return Forwarded(
        client=client,
        scheme=SCHEMES.get(proto.lower()) if proto is not None else None,
        host=host if host is not None and _valid_forwarded_host(host) else None,
    )


def _walk(
    addresses: list[tuple[str, int] | None], trusted: Callable[[str], bool]
) -> tuple[int, tuple[str, int] | None]:
    """From the right, the first hop that is not a trusted proxy's address
    (an unknown, obfuscated or malformed one is not): its index, and its
    address if it is one. When every hop is trusted, the left-most."""
    for index in range(len(addresses) - 1, -1, -1):
        address = addresses[index]
        if address is None or not trusted(address[0]):
            return index, address
    return 0, addresses[0] if addresses else None


def _parse_element(text: str) -> dict[str, str] | None:
    """One forwarded-element (RFC 7239 4) as a dict of its parameters (names
    in lower case, quoted values unquoted), {} if it is empty; None if it is
    malformed. The header is cut into elements at every comma, quoted or
    not: no valid for=, proto= or host= value has one, and a client's
    malformed element (an open quote, a parameter twice) then spoils its
    own hop only, never the one its proxy appended after it. The price: an
    element with a comma in a quoted extension value (`ext="a,b"`) is
    malformed, an unknown hop, which the walk stops at."""
    element: dict[str, str] = {}
    position, end = 0, len(text)
    while position < end:
        if text[position] in " \t;":
            position += 1
            continue
        match = _PAIR.match(text, position)
        if match is None:
            return None
        name = match[1].lower()
        if name in element:  # "MUST NOT occur more than once per forwarded-element"
            return None
        element[name] = match[2] if match[2] is not None else _QUOTED_PAIR.sub(r"\1", match[3])
        position = match.end()
        if position < end and text[position] != ";":
            return None
    return element


def _node(node: str | None) -> tuple[str, int] | None:
    """A Forwarded for= node (RFC 7239 6): an IPv4 address or an IPv6 one in
    brackets, each with an optional port; None for `unknown`, an obfuscated
    identifier (`_hidden`), a missing or malformed one."""
    if node is None or (node.count(":") > 1 and not node.startswith("[")):
        return None  # IPv6 must be in brackets here
    return _address(node)


def _address(text: str) -> tuple[str, int] | None:
    """An IP address with an optional port: 192.0.2.1, 192.0.2.1:8080,
    2001:db8::1, [2001:db8::1], [2001:db8::1]:8080. An obfuscated port
    (`_abc`) counts as none. None for anything else."""
    port_text = ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if text.startswith("[") and ip.version != 6:
        return None
    if not port_text or port_text.startswith("_"):
        return str(ip), 0
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        return None
    return str(ip), int(port_text)


def _valid_forwarded_host(host: str) -> bool:
    try:
        encoded = host.encode("ascii")
    except UnicodeEncodeError:
        return False
    return bool(encoded) and valid_host(encoded)
