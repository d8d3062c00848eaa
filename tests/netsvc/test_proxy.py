# The PROXY protocol's sans-IO half (netsvc/_proxy.py), table-driven: where
# a header ends and what it says, for whole headers and one byte at a time,
# the headers HAProxy's spec forbids, and the trusted-proxies list.
from __future__ import annotations

import ipaddress
import struct

import pytest

from netsvc import SocketAddress, TrustedProxies
from netsvc._proxy import (
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    header_length,
    parse_header,
)


def tcp(host: str, port: int) -> SocketAddress:
    return SocketAddress("tcp", host=host, port=port)


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", command, family, len(body)) + body


def v2_tcp4(src: str, dst: str, sport: int, dport: int, tlvs: bytes = b"") -> bytes:
    body = struct.pack(
        "!4s4sHH",
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
        sport,
        dport,
    )
    return v2(0x21, 0x11, body + tlvs)


def v2_tcp6(src: str, dst: str, sport: int, dport: int) -> bytes:
    body = struct.pack(
        "!16s16sHH",
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
        sport,
        dport,
    )
    return v2(0x21, 0x21, body)


def v2_unix(src: bytes, dst: bytes) -> bytes:
    return v2(0x21, 0x31, src.ljust(108, b"\0") + dst.ljust(108, b"\0"))


VALID = [
    (
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
        ProxyHeader(1, tcp("192.0.2.1", 56324), tcp("198.51.100.2", 443)),
    ),
    (
        b"PROXY TCP6 2001:db8::1 2001:db8::2 0 65535\r\n",
        ProxyHeader(1, tcp("2001:db8::1", 0), tcp("2001:db8::2", 65535)),
    ),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(1)),
    # UNKNOWN: whatever follows, up to the CRLF, is ignored (spec 2.1)
    (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", ProxyHeader(1)),
    (
        # the longest v1 line there is: 107 bytes
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
        ProxyHeader(
            1,
            tcp("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
            tcp("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
        ),
    ),
    (
        v2_tcp4("192.0.2.1", "198.51.100.2", 56324, 443),
        ProxyHeader(2, tcp("192.0.2.1", 56324), tcp("198.51.100.2", 443)),
    ),
    (
        # TLVs after the addresses (here PP2_TYPE_ALPN "h2") are skipped
        v2_tcp4("192.0.2.1", "198.51.100.2", 1, 2, tlvs=b"\x01\x00\x02h2"),
        ProxyHeader(2, tcp("192.0.2.1", 1), tcp("198.51.100.2", 2)),
    ),
    (
        v2_tcp6("2001:db8::1", "::1", 4000, 6380),
        ProxyHeader(2, tcp("2001:db8::1", 4000), tcp("::1", 6380)),
    ),
    (
        v2_unix(b"/run/client.sock", b"/run/app.sock"),
        ProxyHeader(
            2,
            SocketAddress("unix", path="/run/client.sock"),
            SocketAddress("unix", path="/run/app.sock"),
        ),
    ),
    (v2(0x20, 0x00, b""), ProxyHeader(2, local=True)),  # LOCAL: a health check
    (v2(0x20, 0x11, bytes(12)), ProxyHeader(2, local=True)),  # LOCAL ignores its addresses
    (v2(0x21, 0x00, b""), ProxyHeader(2)),  # PROXY UNSPEC: addresses unknown
    (v2(0x21, 0x01, b""), ProxyHeader(2)),  # UNSPEC over a stream: the same
    (
        # TLVs can make a header longer than 32 KiB: its length is unsigned
        v2_tcp4("192.0.2.1", "198.51.100.2", 1, 2, tlvs=b"\x04\x9c\x40" + bytes(40000)),
        ProxyHeader(2, tcp("192.0.2.1", 1), tcp("198.51.100.2", 2)),
    ),
    (
        # a Unix path that fills its 108 bytes has no NUL: it ends where its field does
        v2_unix(b"/" + b"a" * 107, b"/run/app.sock"),
        ProxyHeader(
            2,
            SocketAddress("unix", path="/" + "a" * 107),
            SocketAddress("unix", path="/run/app.sock"),
        ),
    ),
    (
        # a path that is not UTF-8 is shown with replacement characters, not refused
        v2_unix(b"/run/\xff.sock", b"/run/app.sock"),
        ProxyHeader(
            2,
            SocketAddress("unix", path="/run/\ufffd.sock"),
            SocketAddress("unix", path="/run/app.sock"),
        ),
    ),
]


@pytest.mark.parametrize(("header", "expected"), VALID)
def test_a_whole_header_is_delimited_and_parsed(header: bytes, expected: ProxyHeader) -> None:
    assert header_length(header + b"*3\r\nGET") == len(header)
    assert parse_header(header) == expected


@pytest.mark.parametrize(("header", "expected"), VALID)
def test_a_header_one_byte_at_a_time_has_one_length_once_it_can_be_told(
    header: bytes, expected: ProxyHeader
) -> None:
    # v1: at its CRLF; v2: at its 16th byte, which ends the length field
    known_from = len(header) if header.startswith(b"PROXY") else 16
    for end in range(len(header) + 1):
        assert header_length(header[:end]) == (len(header) if end >= known_from else None)


NOT_PROXY = "^not a PROXY protocol header$"
TOO_LONG = "^PROXY v1 line longer than 107 bytes$"
INVALID = [
    (b"GET / HTTP/1.1\r\n", NOT_PROXY),
    (b"*1\r\n$4\r\nPING\r\n", NOT_PROXY),
    (b"PROXI TCP4", NOT_PROXY),
    (b"\r\n\r\n\x00\r\nQUIX\n", NOT_PROXY),
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2" + b" " * 80, TOO_LONG),
    # 107 bytes and no CRLF yet: refused at the 107th, not after more
    (b"PROXY " + b"U" * 101, TOO_LONG),
    # a CRLF that comes too late does not end a v1 line
    (b"PROXY UNKNOWN" + b" " * 100 + b"\r\n", TOO_LONG),
]


@pytest.mark.parametrize(("data", "message"), INVALID)
def test_bytes_that_cannot_start_a_header_are_refused_as_soon_as_seen(
    data: bytes, message: str
) -> None:
    with pytest.raises(ProxyHeaderError, match=message):
        header_length(data)
    # a byte at a time: refused at the first byte that cannot fit, not later
    for end in range(1, len(data) + 1):
        try:
            header_length(data[:end])
        except ProxyHeaderError:
            break
    else:
        pytest.fail("never refused")
    assert end <= max(len(data), 12)


MALFORMED = [
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n", "malformed PROXY v1 line"),
    (b"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n", "malformed PROXY v1 line"),
    (b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n", "malformed PROXY v1 line"),
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n", "malformed PROXY v1 line"),
    (b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n", "not an IPv4 address"),
    (b"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n", "not an IPv6 address"),
    (b"PROXY TCP4 192.0.2.01 198.51.100.2 1 2\r\n", "not an IP address"),  # octal confusion
    (b"PROXY TCP4 example.org 198.51.100.2 1 2\r\n", "not an IP address"),
    (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "a zone id"),
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 080 2\r\n", "not a port number"),
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n", "not a port number"),
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n", "not a port number"),
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 \xd9\xa1 2\r\n", "not a port number"),
    (v2(0x22, 0x11, bytes(12)), "unknown version/command byte 0x22"),
    (v2(0x11, 0x11, bytes(12)), "unknown version/command byte 0x11"),  # version 1 in v2
    (v2(0x21, 0x12, bytes(12)), "0x12 is not TCP or a Unix stream"),  # UDP
    (v2(0x21, 0x11, bytes(11)), "^PROXY v2 header too short for its addresses$"),
    (v2(0x21, 0x21, bytes(12)), "^PROXY v2 header too short for its addresses$"),
]


@pytest.mark.parametrize(("header", "message"), MALFORMED)
def test_a_malformed_header_is_refused_with_the_reason(header: bytes, message: str) -> None:
    assert header_length(header) == len(header)
    with pytest.raises(ProxyHeaderError, match=message):
        parse_header(header)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        # what header_length() would not have delimited so
        (b"PROXY UNKNOWN", "^not a PROXY protocol header$"),  # no CRLF
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n", "^not a PROXY protocol header$"),
        (v2(0x21, 0x11, bytes(12)) + b"*", "^PROXY v2 header length does not match its contents$"),
        (v2(0x21, 0x11, bytes(12))[:-1], "^PROXY v2 header length does not match its contents$"),
    ],
)
def test_a_header_cut_at_the_wrong_place_is_refused(header: bytes, message: str) -> None:
    with pytest.raises(ProxyHeaderError, match=message):
        parse_header(header)


@pytest.mark.parametrize(
    ("allowed", "shown"),
    [
        ("127.0.0.1, ::1", "127.0.0.1/32,::1/128"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("*", "*"),
        ("", ""),
    ],
)
def test_a_trusted_proxies_list_shows_as_the_option_would_say_it(allowed: str, shown: str) -> None:
    # as the log line of a refused PROXY header names it
    assert str(TrustedProxies.parse(allowed)) == shown


@pytest.mark.parametrize(
    ("allowed", "peer", "trusted"),
    [
        ("127.0.0.1,::1", tcp("127.0.0.1", 1), True),
        ("127.0.0.1,::1", tcp("::1", 1), True),
        ("127.0.0.1,::1", tcp("127.0.0.2", 1), False),
        ("127.0.0.1", tcp("::ffff:127.0.0.1", 1), True),  # IPv4-mapped, on a dual-stack socket
        ("10.0.0.0/8, 192.0.2.7", tcp("10.200.3.4", 1), True),
        ("10.0.0.0/8, 192.0.2.7", tcp("192.0.2.8", 1), False),
        ("10.0.0.0/8", SocketAddress("unix"), True),  # the socket file's permissions decide
        ("*", tcp("203.0.113.9", 1), True),
        ("", tcp("127.0.0.1", 1), False),
    ],
)
def test_trusted_proxies(allowed: str, peer: SocketAddress, trusted: bool) -> None:
    assert TrustedProxies.parse(allowed).trusts(peer) is trusted


def test_a_trusted_proxies_list_that_is_not_addresses_says_which_item() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address or network"):
        TrustedProxies.parse("127.0.0.1,proxy.example")
