# The PROXY protocol from outside: a `+proxy` listener takes the real client's
# address from the header a proxy sends first (v1 and v2, whole or a byte at
# a time, before TLS), for every protocol; a peer that is not a trusted
# proxy, garbage, or no header in time closes the connection with a warning.
# Last, Debian's HAProxy with send-proxy and send-proxy-v2 in front of RESP.
from __future__ import annotations

import logging
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trio
import trustme

from netsvc import ConnectionLimits, ListenAddress, TrustedProxies
from netsvc.testing import RunningServer, serve
from tests.lineclient import LineClient
from tests.netsvc.probe import protocol as probe
from tests.netsvc.test_proxy import v2, v2_tcp4, v2_tcp6
from tests.serveprocess import Certificates, ServeProcess, host_port

uses_line_clients = pytest.mark.usefixtures("close_line_clients")

PROXY_LISTENER = ListenAddress("tcp", host="127.0.0.1", port=0, proxy=True)
V1 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"


async def through_proxy(
    running: RunningServer, header: bytes, *, split: bool = False
) -> LineClient:
    """A probe client that sent `header` first (a byte at a time if `split`)."""
    stream = await running.connect()
    if split:
        for byte in header:
            await stream.send_all(bytes([byte]))
            await trio.sleep(0.001)
    else:
        await stream.send_all(header)
    return LineClient(stream)


@uses_line_clients
async def test_a_v1_header_gives_the_real_client() -> None:
    async with serve(probe, address=PROXY_LISTENER) as running:
        assert running.url.startswith("probe+proxy://127.0.0.1:")
        client = await through_proxy(running, V1)
        assert await client.line() == b"HELLO"
        assert await client.ask("PEER") == b"192.0.2.1:56324"


@uses_line_clients
@pytest.mark.parametrize(
    ("header", "peer"),
    [
        (V1, b"192.0.2.1:56324"),
        (v2_tcp4("203.0.113.7", "198.51.100.2", 40000, 6380), b"203.0.113.7:40000"),
        (v2_tcp6("2001:db8::7", "::1", 40001, 6380), b"[2001:db8::7]:40001"),
    ],
)
async def test_a_header_a_byte_at_a_time_then_a_command_in_the_same_write(
    header: bytes, peer: bytes
) -> None:
    async with serve(probe, address=PROXY_LISTENER) as running:
        client = await through_proxy(running, header[:-1], split=True)
        await client.send(header[-1:] + b"PEER\n")  # the header's last byte, then the stream
        assert await client.line() == b"HELLO"
        assert await client.line() == peer


@uses_line_clients
async def test_a_local_header_is_the_proxys_own_connection() -> None:
    async with serve(probe, address=PROXY_LISTENER) as running:
        client = await through_proxy(running, v2(0x20, 0x00, b""))  # HAProxy's health check
        assert await client.line() == b"HELLO"
        assert (await client.ask("PEER")).startswith(b"127.0.0.1:")


UNKNOWN_CLIENTS = [
    b"PROXY UNKNOWN\r\n",
    v2(0x21, 0x00, b""),  # UNSPEC
    v2(0x21, 0x31, b"/run/client.sock".ljust(108, b"\0") + bytes(108)),  # a Unix socket there
]


@uses_line_clients
@pytest.mark.parametrize("header", UNKNOWN_CLIENTS, ids=["v1-unknown", "v2-unspec", "v2-unix"])
async def test_a_client_the_proxy_cannot_name_is_from_an_unknown_address(header: bytes) -> None:
    # not the proxy's own loopback address: such a client may be anywhere
    async with serve(probe, address=PROXY_LISTENER) as running:
        client = await through_proxy(running, header)
        assert await client.line() == b"HELLO"
        assert await client.ask("PEER") == b"unknown address"


@pytest.mark.parametrize("header", UNKNOWN_CLIENTS, ids=["v1-unknown", "v2-unspec", "v2-unix"])
async def test_protected_mode_refuses_a_client_the_proxy_cannot_name(header: bytes) -> None:
    async with serve("resp", address=PROXY_LISTENER) as running:
        stream = await running.connect()
        await stream.send_all(header + b"PING\r\n")
        with trio.fail_after(5):
            reply = await stream.receive_some(1000)
        assert reply.startswith(b"-DENIED Redis is running in protected mode")
        await stream.aclose()


@pytest.mark.parametrize(
    ("trusted", "header", "warning"),
    [
        ("10.0.0.1", V1, "not a trusted proxy (--forwarded-allow-ips 10.0.0.1/32)"),
        ("127.0.0.1", b"PEER\n", "not a PROXY protocol header"),
        ("127.0.0.1", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a PROXY protocol header"),
        (
            "127.0.0.1",
            b"PROXY TCP4 192.0.2.1 nowhere 1 2\r\n",
            "PROXY v1: b'nowhere' is not an IP address",
        ),
        (
            "127.0.0.1",
            v2(0x21, 0x12, bytes(12)),
            "PROXY v2: address family/transport 0x12 is not TCP or a Unix stream",
        ),
    ],
    # plain ids: mutmut runs tests by id on a command line
    ids=["untrusted-proxy", "not-proxy", "http-request", "v1-bad-address", "v2-not-tcp"],
)
async def test_a_connection_without_a_trusted_valid_header_is_closed_with_a_warning(
    trusted: str, header: bytes, warning: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxies = TrustedProxies.parse(trusted)
    async with serve(probe, address=PROXY_LISTENER, trusted_proxies=proxies) as running:
        client = await through_proxy(running, header)
        assert await client.line() == b""  # closed, no greeting: the plugin never saw it
        assert await client.closed()
        # which listener, which peer, why, and how many so far
        said = rf"{re.escape(running.url)}: closing the connection from 127\.0\.0\.1:\d+: "
        said += rf"{re.escape(warning)} \(1 so far\)"
        assert any(
            re.fullmatch(said, r.getMessage()) and r.levelno == logging.WARNING
            for r in caplog.records
        ), [r.getMessage() for r in caplog.records]
        await client.aclose()
        with trio.fail_after(5):  # and the server lets it go
            while running.server.runtime.counters.snapshot()["connections_open"]:
                await trio.sleep(0.01)


@uses_line_clients
async def test_no_header_in_time_closes_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    limits = ConnectionLimits(handshake_timeout=0.5)
    async with serve(probe, address=PROXY_LISTENER, limits=limits) as running:
        silent = LineClient(await running.connect())
        dribbler = await through_proxy(running, b"PROXY TCP4 192.0.2.1 ")  # and no more
        started = trio.current_time()
        assert await silent.closed() and await dribbler.closed()
        assert 0.4 < trio.current_time() - started < 3.0
        assert "no PROXY header within 0.5s" in caplog.text


async def test_a_client_that_closes_inside_its_header_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serve(probe, address=PROXY_LISTENER) as running:
        stream = await running.connect()
        await stream.send_all(b"PROXY TCP4 192.0.2.1 ")
        await stream.send_eof()
        with trio.fail_after(5):
            assert await stream.receive_some(100) == b""  # closed: the plugin never saw it
        with trio.fail_after(5):
            while "PROXY header" not in caplog.text:
                await trio.sleep(0.01)
    [warning] = [r.getMessage() for r in caplog.records if "PROXY header" in r.getMessage()]
    assert warning.endswith(": closed before the end of its PROXY header (1 so far)")


@uses_line_clients
async def test_tls_starts_after_the_header(tmp_path: Path) -> None:
    certificates = Certificates.issue(trustme.CA(), tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.certfile, certificates.keyfile)
    async with serve(probe, address=PROXY_LISTENER, ssl_context=context) as running:
        assert running.url.startswith("probes+proxy://127.0.0.1:")
        host, port = host_port(running.url)
        tcp = await trio.open_tcp_stream(host, port)
        await tcp.send_all(v2_tcp4("192.0.2.9", "198.51.100.2", 1234, 443))
        tls = trio.SSLStream(tcp, certificates.client_context(), server_hostname=host)
        client = LineClient(tls)
        assert await client.line() == b"HELLO"
        assert await client.ask("PEER") == b"192.0.2.9:1234"


# -- the real protocols ------------------------------------------------------------------------


async def test_resp_sees_the_real_client_in_client_info() -> None:
    settings = {"protected_mode": False}  # else 192.0.2.1 is refused: see the CLI test
    async with serve("resp", address=PROXY_LISTENER, settings=settings) as running:
        stream = await running.connect()
        await stream.send_all(V1 + b"CLIENT INFO\r\n")
        reply = b""
        with trio.fail_after(5):
            while not reply.endswith(b"\r\n") or reply.count(b"\r\n") < 2:
                reply += await stream.receive_some(65536)
        assert b" addr=192.0.2.1:56324 " in reply
        assert b" laddr=198.51.100.2:443 " in reply


async def test_http_sees_the_real_client_in_its_scope() -> None:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        assert scope["type"] == "http"
        body = repr((scope["client"], scope["server"])).encode()
        await send({"type": "http.response.start", "status": 200})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    async with serve("http", app=app, address=PROXY_LISTENER) as running:
        stream = await running.connect()
        header = v2_tcp6("2001:db8::7", "2001:db8::80", 40001, 8080)
        await stream.send_all(header + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 200 ")
        assert b"\r\n(('2001:db8::7', 40001), ('2001:db8::80', 8080))\r\n" in response


async def test_xmpp_logs_the_real_client(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="netsvc.connection")
    settings = {"insecure_any_password": True, "insecure_any_password_off_loopback": True}
    async with serve("xmpp", address=PROXY_LISTENER, settings=settings) as running:
        stream = await running.connect()
        await stream.send_all(
            V1 + b"<stream:stream to='localhost' xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        )
        with trio.fail_after(5):
            received = b""
            while b"</stream:features>" not in received:
                received += await stream.receive_some(65536)
        opened = [r for r in caplog.records if r.getMessage().startswith("connection opened")]
        assert [getattr(r, "peer", None) for r in opened] == ["192.0.2.1:56324"]


def test_the_cli_puts_the_protocol_listener_behind_a_proxy() -> None:
    args = ["--protocol", "resp", "--port", "0", "--proxy-protocol"]
    with ServeProcess(args) as server:
        (url,) = server.urls
        assert url.startswith("redis+proxy://127.0.0.1:")
        print(server.log)
        local = b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 6380\r\n"
        with socket.create_connection(host_port(url), timeout=5) as sock:
            sock.sendall(local + b"PING\r\n")
            assert sock.recv(100) == b"+PONG\r\n"
        with socket.create_connection(host_port(url), timeout=5) as sock:
            sock.sendall(V1 + b"PING\r\n")  # protected mode sees the real client: not local
            assert sock.recv(100).startswith(b"-DENIED Redis is running in protected mode")
        with socket.create_connection(host_port(url), timeout=5) as sock:
            sock.sendall(b"PING\r\n")  # no header: closed, said in the log
            assert sock.recv(100) == b""
        server.wait_for_log("not a PROXY protocol header")


# -- HAProxy ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[tuple[int, int, ServeProcess]]:
    """Debian's HAProxy in front of `netsvc serve --protocol resp`: one port
    with send-proxy (v1), one with send-proxy-v2."""
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: ./dev test installs it")
    args = ["--listen", "redis+proxy://127.0.0.1:0", "--resp-protected-mode", "no"]
    with ServeProcess(args) as server:
        backend = host_port(server.urls[0])[1]
        v1_port, v2_port = free_port(), free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(
            f"""
global
    log stderr format raw local0 warning
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend v1
    bind 127.0.0.1:{v1_port}
    default_backend v1
frontend v2
    bind 127.0.0.1:{v2_port}
    default_backend v2
backend v1
    server netsvc 127.0.0.1:{backend} send-proxy
backend v2
    server netsvc 127.0.0.1:{backend} send-proxy-v2
"""
        )
        output = open(tmp_path / "haproxy.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)], stdout=output, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", v2_port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield v1_port, v2_port, server
        finally:
            process.terminate()
            process.wait(timeout=10)
            output.close()


@pytest.mark.parametrize("version", [1, 2])
def test_haproxy_gives_resp_the_real_client(
    haproxy: tuple[int, int, ServeProcess], version: int
) -> None:
    port = haproxy[version - 1]
    # the client's own address: 127.0.0.2, where HAProxy connects from 127.0.0.1
    with socket.create_connection(
        ("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0)
    ) as sock:
        client_port = sock.getsockname()[1]
        sock.sendall(b"CLIENT INFO\r\n")
        reply = b""
        while reply.count(b"\r\n") < 2:
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
    assert f" addr=127.0.0.2:{client_port} ".encode() in reply
    assert f" laddr=127.0.0.1:{port} ".encode() in reply
    # and a real client through it, for more than one request
    client = redis.Redis(port=port, socket_timeout=5)
    assert client.set("through", "haproxy") and client.get("through") == b"haproxy"
    client.close()
