# Listen URLs: parsing every form, refusing malformed ones with a reason,
# and the URL reported for a bound socket.
from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsvc import AddressError, ListenAddress, SocketAddress, listens_locally, parse_listen_url
from netsvc._address import client_url, systemd_fds


@pytest.mark.parametrize(
    ("url", "scheme", "address"),
    [
        ("redis://127.0.0.1:6380", "redis", ListenAddress("tcp", host="127.0.0.1", port=6380)),
        ("redis://127.0.0.1:6380/", "redis", ListenAddress("tcp", host="127.0.0.1", port=6380)),
        ("http://[::1]:8080", "http", ListenAddress("tcp", host="::1", port=8080)),
        ("http://[::]:0", "http", ListenAddress("tcp", host="::", port=0)),
        ("REDIS://localhost", "redis", ListenAddress("tcp", host="localhost", port=None)),
        ("rediss://0.0.0.0:6380", "rediss", ListenAddress("tcp", host="0.0.0.0", port=6380)),
        ("redis+unix:///run/app.sock", "redis", ListenAddress("unix", path="/run/app.sock")),
        ("redis+unix://app.sock", "redis", ListenAddress("unix", path="app.sock")),
        ("http+fd://3", "http", ListenAddress("fd", fd=3)),
        ("http+systemd://web", "http", ListenAddress("systemd", name="web")),
        ("http+systemd://", "http", ListenAddress("systemd", name=None)),
    ],
)
def test_parse(url: str, scheme: str, address: ListenAddress) -> None:
    assert parse_listen_url(url) == (scheme, address)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("127.0.0.1:6380", "has no scheme"),
        ("://127.0.0.1", "has no scheme"),
        ("redis://127.0.0.1:99999", "Port out of range"),
        ("redis://127.0.0.1:http", "Port could not be cast"),
        ("redis://:6380", "no host"),
        ("redis://127.0.0.1:6380/0", "not a path"),
        ("redis://user@127.0.0.1", "not a path or user"),
        ("redis+unix://", "needs a path"),
        ("redis+fd://three", "expected a file descriptor number"),
        ("redis+pipe://x", "unknown transport 'pipe'"),
        ("redis+unix+fd://3", "one transport"),
        ("redis+proxy+proxy://127.0.0.1", "and \\+proxy at most"),
    ],
)
def test_malformed(url: str, reason: str) -> None:
    with pytest.raises(AddressError, match=reason):
        parse_listen_url(url)


@given(st.text())
def test_any_text_parses_or_is_refused_with_address_error(text: str) -> None:
    with contextlib.suppress(AddressError):
        parse_listen_url(text)


def test_client_url_of_bound_sockets(tmp_path: object) -> None:
    with socket.socket() as v4:
        v4.bind(("127.0.0.1", 0))
        assert client_url("redis", v4) == f"redis://127.0.0.1:{v4.getsockname()[1]}"
    if socket.has_ipv6:
        with socket.socket(socket.AF_INET6) as v6:
            v6.bind(("::1", 0))
            assert client_url("http", v6) == f"http://[::1]:{v6.getsockname()[1]}"


def test_systemd_fds_ignores_variables_meant_for_another_process() -> None:
    environ = {"LISTEN_PID": "1", "LISTEN_FDS": "1"}
    assert systemd_fds(environ) == []
    assert environ == {"LISTEN_PID": "1", "LISTEN_FDS": "1"}


def test_systemd_fds_rejects_garbage() -> None:
    with pytest.raises(AddressError, match="expected numbers"):
        systemd_fds({"LISTEN_PID": "me", "LISTEN_FDS": "1"})


@pytest.mark.parametrize(
    ("address", "text", "loopback"),
    [
        (SocketAddress("tcp", "127.0.0.1", 6379), "127.0.0.1:6379", True),
        (SocketAddress("tcp", "127.8.9.10", 1), "127.8.9.10:1", True),
        (SocketAddress("tcp", "::1", 6379), "[::1]:6379", True),
        (SocketAddress("tcp", "::ffff:127.0.0.1", 80), "[::ffff:127.0.0.1]:80", True),
        (SocketAddress("tcp", "192.0.2.1", 80), "192.0.2.1:80", False),
        (SocketAddress("tcp", "2001:db8::1", 80), "[2001:db8::1]:80", False),
        (SocketAddress("unix", path="/run/app.sock"), "/run/app.sock", True),
        (SocketAddress("unix"), "unix", True),
    ],
)
def test_socket_address_text_and_loopback(
    address: SocketAddress, text: str, loopback: bool
) -> None:
    assert str(address) == text
    assert address.is_loopback is loopback


def test_socket_address_of_both_ends_of_real_sockets(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            server, _ = listener.accept()
            with server:
                assert SocketAddress.of(server, peer=False) == SocketAddress(
                    "tcp", "127.0.0.1", port
                )
                peer = SocketAddress.of(server, peer=True)
                assert peer == SocketAddress("tcp", "127.0.0.1", client.getsockname()[1])
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
            server, _ = listener.accept()
            with server:
                assert SocketAddress.of(server, peer=False) == SocketAddress("unix", path=path)
                assert SocketAddress.of(server, peer=True) == SocketAddress("unix")


def test_listens_locally_needs_every_address_to_be_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a name resolving to a loopback and another address is not local (this
    # machine's resolver has no such name: the lookup is stubbed)
    v4 = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))
    outside = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", 0))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: [v4, outside])
    assert not listens_locally(ListenAddress("tcp", "both.example", 0))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: [v4])
    assert listens_locally(ListenAddress("tcp", "local.example", 0))
    assert listens_locally(ListenAddress("unix", path="/run/x.sock"))
    assert not listens_locally(ListenAddress("fd", fd=3))
