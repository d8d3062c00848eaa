# Connection.start_tls(), the core's STARTTLS, from outside with a real TLS
# client on the same TCP connection: the switch itself (what the plugin then
# sees: tls, the version, the client's certificate), a plain listener without
# a certificate, a second switch, and a client that never handshakes or sends
# something else (ConnectionLost with the reason, the connection closed).
from __future__ import annotations

import logging
import ssl

import pytest
import trio
import trustme

from netsvc import (
    Connection,
    ConnectionLimits,
    ConnectionLost,
    Protocol,
    Runtime,
    SendTimeout,
    Service,
)
from netsvc.testing import RunningServer, serve
from tests.lineclient import LineClient

pytestmark = pytest.mark.usefixtures("close_line_clients")

LIMITS = ConnectionLimits(handshake_timeout=0.5, send_timeout=0.3)


class StartTlsService(Service):
    """Lines: STARTTLS (GO, then the switch, if it can be made), FORCE (the
    switch with no questions asked), WHO (what the connection is now: tls,
    its version, the client certificate's name, whether it can switch)."""

    async def handle(self, conn: Connection) -> None:
        await conn.send(b"HELLO can\n" if conn.can_start_tls else b"HELLO cannot\n")
        buffer = b""
        while data := await conn.receive():
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            conn.parsed(len(lines), partial=bool(buffer))
            for line in lines:
                if line in (b"STARTTLS", b"FORCE"):
                    try:
                        if line == b"STARTTLS":
                            await conn.send(b"GO\n")
                        await conn.start_tls()
                    except RuntimeError as exc:
                        await conn.send(f"NO {exc}\n".encode())
                    except ConnectionLost as exc:
                        # raised `from None`: a traceback would show no context
                        context = "" if exc.__suppress_context__ else " (with a context)"
                        conn.log.info("start_tls: ConnectionLost: %s%s", exc, context)
                        try:
                            await conn.send(b"too late\n")
                        except ConnectionLost as then:
                            conn.log.info("then: ConnectionLost: %s", then)
                        return
                elif line == b"FLOOD":  # more than the client will read: a send timeout
                    try:
                        await conn.send(b"x" * 50_000_000)
                    except SendTimeout as exc:
                        conn.log.info("flood: SendTimeout, sent %s", exc.sent)
                        return
                elif line == b"WHO":
                    cert = conn.peer_certificate
                    name = cert.common_name if cert is not None else "none"
                    can = "can" if conn.can_start_tls else "cannot"
                    await conn.send(f"{conn.tls} {conn.tls_version} {name} {can}\n".encode())


class StartTlsProtocol(Protocol[None, None]):
    name = "starttls-probe"
    schemes = ("starttls-probe",)
    tls_schemes = ("starttls-probes",)
    default_port = 7071
    description = "STARTTLS for testing the core"

    def default_app(self) -> None:
        return None

    def create_service(self, app: None, settings: None, runtime: Runtime) -> Service:
        return StartTlsService()


PROTOCOL = StartTlsProtocol()


class Pki:
    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(self.server)
        self.ca.configure_trust(self.server)
        self.server.verify_mode = ssl.CERT_OPTIONAL  # client certificates optional
        self.client = ssl.create_default_context()
        self.ca.configure_trust(self.client)
        self.ca.issue_cert("alice@example.org", common_name="alice").configure_cert(self.client)


async def plain_client(running: RunningServer) -> tuple[trio.SocketStream, LineClient]:
    assert running.host is not None and running.port is not None
    tcp = await trio.open_tcp_stream(running.host, running.port)
    return tcp, LineClient(tcp)


async def told_go(running: RunningServer) -> tuple[trio.SocketStream, LineClient]:
    """A plain client the server has just told to start its TLS handshake."""
    tcp, plain = await plain_client(running)
    assert await plain.line() == b"HELLO can"
    assert await plain.ask("STARTTLS") == b"GO"
    return tcp, plain


async def test_starttls_switches_the_connection_to_tls() -> None:
    pki = Pki()
    async with serve(PROTOCOL, ssl_context=pki.server, starttls=True, limits=LIMITS) as running:
        tcp, plain = await plain_client(running)
        assert await plain.line() == b"HELLO can"
        assert await plain.ask("WHO") == b"False None none can"
        assert await plain.ask("STARTTLS") == b"GO"
        secure = LineClient(trio.SSLStream(tcp, pki.client, server_hostname="127.0.0.1"))
        # the plugin now sees TLS, its version and the verified client certificate
        assert await secure.ask("WHO") == b"True TLSv1.3 alice cannot"
        # a second switch is refused: the connection is TLS already
        assert await secure.ask("FORCE") == (
            b"NO start_tls() needs a plain connection and a certificate"
        )
        assert await secure.ask("WHO") == b"True TLSv1.3 alice cannot"


async def test_without_a_certificate_a_plain_connection_cannot_start_tls() -> None:
    async with serve(PROTOCOL, limits=LIMITS) as running:
        _, plain = await plain_client(running)
        assert await plain.line() == b"HELLO cannot"
        assert await plain.ask("FORCE") == (
            b"NO start_tls() needs a plain connection and a certificate"
        )
        assert await plain.ask("WHO") == b"False None none cannot"  # still served, in plain text


async def test_a_tls_listener_has_no_starttls() -> None:
    pki = Pki()
    async with serve(PROTOCOL, ssl_context=pki.server, client_ssl_context=pki.client) as running:
        client = LineClient(await running.connect())
        assert await client.line() == b"HELLO cannot"
        assert await client.ask("WHO") == b"True TLSv1.3 alice cannot"


async def test_a_failed_send_over_tls_cannot_say_how_much_went_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # what reached the kernel is TLS records, not the plugin's bytes
    caplog.set_level(logging.INFO, "netsvc")
    pki = Pki()
    async with serve(PROTOCOL, ssl_context=pki.server, starttls=True, limits=LIMITS) as running:
        tcp, plain = await plain_client(running)
        assert await plain.line() == b"HELLO can"
        await tcp.send_all(b"FLOOD\n")  # plain: the count is known
        tcp2, _ = await told_go(running)
        secure = trio.SSLStream(tcp2, pki.client, server_hostname="127.0.0.1")
        await secure.send_all(b"FLOOD\n")  # and never read
        with trio.fail_after(5):
            while sum("flood:" in r.getMessage() for r in caplog.records) < 2:
                await trio.sleep(0.05)
    said = [r.getMessage() for r in caplog.records if "flood:" in r.getMessage()]
    said.remove("flood: SendTimeout, sent None")  # the TLS one
    assert int(said[0].rsplit(" ", 1)[1]) > 0  # the plain one


def lost(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "ConnectionLost" in r.getMessage()]


async def test_a_client_that_never_handshakes_is_closed_after_the_handshake_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "netsvc")
    pki = Pki()
    async with serve(PROTOCOL, ssl_context=pki.server, starttls=True, limits=LIMITS) as running:
        _, plain = await told_go(running)
        started = trio.current_time()
        assert await plain.closed(timeout=5)
        assert 0.4 < trio.current_time() - started < 3
    assert lost(caplog) == [
        "start_tls: ConnectionLost: no TLS handshake within 0.5s",
        # the connection is broken for good: no plain text after a failed switch
        "then: ConnectionLost: no TLS handshake within 0.5s",
    ]


async def test_a_client_that_answers_go_with_plain_text_is_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "netsvc")
    pki = Pki()
    async with serve(PROTOCOL, ssl_context=pki.server, starttls=True, limits=LIMITS) as running:
        tcp, plain = await told_go(running)
        await tcp.send_all(b"WHO\nWHO\nWHO\n" * 100)
        assert await plain.closed(timeout=5)
    [first, then] = lost(caplog)
    assert first.startswith("start_tls: ConnectionLost: TLS handshake failed: ")
    assert "WRONG_VERSION_NUMBER" in first or "wrong version number" in first
    assert then == first.replace("start_tls:", "then:")
