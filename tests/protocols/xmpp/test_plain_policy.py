# SASL PLAIN sends the password in the clear: the service allows it over TLS,
# on loopback and Unix sockets, and elsewhere only when a setting says so.
# (Tests may only reach loopback, so the peer address of a socket pair is set
# by hand: the decision reads nothing else.)
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from netsvc import Connection, ConnectionLimits, Counters, Runtime, SocketAddress
from netsvc._connection import Watchdog
from netsvc._socketstream import SocketStream
from protocols.xmpp import XmppApp, XmppSettings
from protocols.xmpp._service import XmppService


@pytest.fixture
def pair() -> Iterator[SocketStream]:
    ours, theirs = socket.socketpair()
    yield SocketStream(ours)
    ours.close()
    theirs.close()


def connection(stream: SocketStream, peer: str, *, tls: bool = False) -> Connection:
    if peer == "unix":
        address = SocketAddress("unix")
    else:
        host, _, port = peer.rpartition(":")
        address = SocketAddress("tcp", host.strip("[]"), int(port))
    return Connection(
        stream,
        transport=stream,
        watchdog=Watchdog(),
        id=1,
        peer=address,
        local=SocketAddress("tcp", "0.0.0.0", 5222),
        listener_url="xmpp://0.0.0.0:5222",
        tls=tls,
        limits=ConnectionLimits(),
        counters=Counters(),
    )


@pytest.mark.parametrize(
    ("peer", "tls", "allow", "allowed"),
    [
        ("127.0.0.1:5000", False, False, True),
        ("[::1]:5000", False, False, True),
        ("unix", False, False, True),
        ("192.0.2.10:5000", False, False, False),
        ("[2001:db8::1]:5000", False, False, False),
        ("[::ffff:127.0.0.1]:5000", False, False, True),
        ("192.0.2.10:5000", True, False, True),
        ("192.0.2.10:5000", False, True, True),
    ],
)
def test_plain_policy(pair: SocketStream, peer: str, tls: bool, allow: bool, allowed: bool) -> None:
    settings = XmppSettings(insecure_any_password=True, allow_plain_without_tls=allow)
    service = XmppService(XmppApp(), settings, Runtime())
    assert service.plain_allowed(connection(pair, peer, tls=tls)) is allowed
