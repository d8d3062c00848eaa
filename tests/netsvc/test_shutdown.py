# Graceful shutdown of `netsvc serve` on the real protocols, from outside:
# --graceful-timeout (and its variable) lets a request shorter than the grace
# period finish and cancels a longer one at the grace period; a connection
# that reaches the server only after the shutdown has begun (its TLS handshake
# finishes late) gets the protocol's goodbye and a clean end at once, not at
# the end of the grace period; a plugin's command to stop the server
# (Runtime.request_shutdown, RESP's SHUTDOWN) is such a graceful shutdown.
from __future__ import annotations

import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
import trustme

from tests.serveprocess import ServeProcess, host_port

GRACE = 1.0
LATE = 0.6  # how late the end of the grace period may be seen from here
NATIVE = ["--app", "tests.protocols.http.apps:native"]


def nap(url: str, seconds: float) -> socket.socket:
    """A request to the HTTP test app that stays in flight for `seconds`;
    returns once the server has started answering it."""
    sock = socket.create_connection(host_port(url), timeout=10)
    sock.sendall(b"GET /nap?s=%g HTTP/1.1\r\nhost: x\r\n\r\n" % seconds)
    received = b""
    while b"started\n" not in received:
        data = sock.recv(65536)
        assert data, f"closed before the request started: {received!r}"
        received += data
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    received = b""
    try:
        while data := sock.recv(65536):
            received += data
    except ConnectionResetError:
        pass  # a cancelled response may end either way: only what came matters
    return received


@pytest.mark.parametrize(
    ("env", "args"),
    [
        pytest.param({}, ["--graceful-timeout", str(GRACE)], id="option"),
        pytest.param({"NETSVC_GRACEFUL_TIMEOUT": str(GRACE)}, [], id="variable"),
        pytest.param(
            {"NETSVC_GRACEFUL_TIMEOUT": "6"},
            ["--graceful-timeout", str(GRACE)],
            id="option-beats-variable",
        ),
    ],
)
def test_grace_period_finishes_short_requests_and_cancels_long_ones(
    env: dict[str, str], args: list[str]
) -> None:
    server = ServeProcess(["--protocol", "http", "--port", "0", *NATIVE, *args], env=env)
    with server:
        (url,) = server.urls
        short, long = nap(url, 0.3), nap(url, 30)
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        with short, long:
            finished = read_to_end(short)
            cut = read_to_end(long)
            cut_after = time.monotonic() - signalled
        assert server.wait(10) == 0
        exited_after = time.monotonic() - signalled
    assert finished.endswith(b"done\n\r\n0\r\n\r\n")  # the whole chunked response
    assert b"done" not in cut and not cut.endswith(b"0\r\n\r\n")
    assert GRACE <= cut_after < GRACE + LATE, cut_after
    assert GRACE <= exited_after < GRACE + 2 * LATE, exited_after
    assert "grace period over: cancelled the connections still open" in server.log


class LateTlsClient:
    """A TLS client that connects now and finishes its handshake later: its
    last handshake flight and its first data go out in one write, so the
    server reads them together and the connection starts with a request."""

    def __init__(self, url: str, context: ssl.SSLContext) -> None:
        context.minimum_version = ssl.TLSVersion.TLSv1_3  # the client's Finished goes last
        self.sock = socket.create_connection(host_port(url), timeout=10)
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._in, self._out, server_hostname="127.0.0.1")

    def finish_handshake_and_send(self, data: bytes) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self._out.read())
                self._receive()
        self.tls.write(data)
        self.sock.sendall(self._out.read())  # the Finished and the data, in one write

    def _receive(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the TCP connection")
        self._in.write(data)

    def read_to_end(self) -> tuple[bytes, str]:
        """Everything the server sends, and how it ended: "eof" for TLS's
        close_notify followed by TCP's end."""
        received = b""
        while True:
            try:
                data = self.tls.read(65536)
            except ssl.SSLWantReadError:
                try:
                    self._receive()
                except EOFError:
                    return received, "TCP end without close_notify"
                continue
            if not data:  # close_notify
                return received, "eof" if self.sock.recv(65536) == b"" else "data after the end"
            received += data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[list[str], ssl.SSLContext]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return ["--certfile", str(certfile), "--keyfile", str(keyfile)], context


XMPP_HEADER = (
    b"<stream:stream to='localhost' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)


@pytest.mark.parametrize(
    ("args", "request_bytes"),
    [
        pytest.param(
            ["--listen", "xmpps://127.0.0.1:0", "--xmpp-insecure-any-password", "true"],
            XMPP_HEADER,
            id="xmpp",
        ),
        pytest.param(
            ["--listen", "https://127.0.0.1:0"],
            b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",
            id="http",
        ),
    ],
)
def test_a_connection_that_arrives_during_shutdown_gets_the_goodbye_at_once(
    certificates: tuple[list[str], ssl.SSLContext], args: list[str], request_bytes: bytes
) -> None:
    tls_args, context = certificates
    grace = 8.0  # idle connections would wait this long if not told to close
    serve = [*args, *tls_args, "--graceful-timeout", str(grace), "--idle-timeout", "30"]
    with ServeProcess(serve) as server:
        client = LateTlsClient(server.urls[0], context)  # accepted; no handshake yet
        try:
            server.signal(signal.SIGTERM)
            server.wait_for_log(r"shutting down: waiting up to")
            started = time.monotonic()
            client.finish_handshake_and_send(request_bytes)
            data, end = client.read_to_end()
            ended_after = time.monotonic() - started
        finally:
            client.close()
        assert server.wait(grace + 5) == 0
    assert end == "eof"
    assert ended_after < 2, ended_after
    if request_bytes == XMPP_HEADER:  # answered, then the stream's goodbye
        assert data.startswith(b"<?xml") or data.startswith(b"<stream:stream")
        assert b"<stream:features" in data and data.endswith(b"</stream:stream>\n")
    else:  # answered, saying that the connection closes
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nok\n")
        assert b"\r\nconnection: close\r\n" in data.lower()
    assert "grace period over" not in server.log


def test_a_plugin_command_shuts_the_server_down_gracefully() -> None:
    args = ["--protocol", "tests.netsvc.probe:protocol", "--port", "0"]
    with ServeProcess([*args, "--graceful-timeout", "5"]) as server:
        (url,) = server.urls
        with socket.create_connection(host_port(url), timeout=10) as busy:
            with socket.create_connection(host_port(url), timeout=10) as stopper:
                busy.sendall(b"ECHO asleep\nSLEEP 0.5\n")  # one read: ECHO's reply, then SLEEP
                received = b""
                while b"asleep\n" not in received:
                    received += busy.recv(100)
                stopper.sendall(b"SHUTDOWN\n")
                assert read_to_end(stopper) == b"HELLO\nOK\nBYE\n"
            assert received + read_to_end(busy) == b"HELLO\nasleep\nSLEPT\nBYE\n"
        assert server.wait(10) == 0
