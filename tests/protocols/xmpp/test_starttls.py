# STARTTLS (RFC 6120 5.4) on a plain XMPP listener with a certificate, byte
# for byte with a raw client: required by default (only <starttls/> is
# offered, PLAIN is refused before it), optional, or off; bytes after
# <starttls/> before TLS are refused (the injection attack); a failed
# handshake closes the connection; after TLS the stream restarts and a
# client certificate is offered SASL EXTERNAL. slixmpp over STARTTLS is in
# test_tls.py.
from __future__ import annotations

import base64
import re
import socket
import ssl
from pathlib import Path

import pytest
import trustme

from tests.serveprocess import Certificates, ServeProcess, host_port

HEADER = (
    b"<stream:stream to='localhost' xmlns='jabber:client'"
    b" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
PLAIN = (
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
    + base64.b64encode(b"\0alice\0pw")
    + b"</auth>"
)
BIND = (
    b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    b"<resource>r</resource></bind></iq>"
)


class RawClient:
    """Lines in, bytes out, over a socket that can turn to TLS."""

    def __init__(self, url: str) -> None:
        self.sock: socket.socket = socket.create_connection(host_port(url), timeout=10)
        self.buffer = b""
        self.stream_ids: list[bytes] = []

    def say(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buffer)
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def until_eof(self) -> bytes:
        while data := self.sock.recv(65536):
            self.buffer += data
        rest, self.buffer = self.buffer, b""
        return rest

    def open_stream(self) -> bytes:
        """Send a stream header; the features the server answers with."""
        self.say(HEADER)
        header = self.line()
        assert b"<stream:stream " in header
        self.stream_ids.append(re.search(rb" id='([^']+)'", header).group(1))  # type: ignore[union-attr]
        return self.line()

    def start_tls(self, context: ssl.SSLContext) -> None:
        self.say(STARTTLS)
        assert self.line() == b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
        assert self.buffer == b""
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")

    def close(self) -> None:
        self.sock.close()


def serve(certificates: Certificates, *extra: str) -> ServeProcess:
    args = ["--listen", "xmpp://127.0.0.1:0", *certificates.args]
    return ServeProcess([*args, "--xmpp-insecure-any-password", "true", *extra])


def test_required_by_default_offers_only_starttls(certificates: Certificates) -> None:
    with serve(certificates) as server:
        server.wait_for_log(r"\(STARTTLS required on plain listeners\)|STARTTLS required")
        client = RawClient(server.urls[0])
        features = client.open_stream()
        assert features == (
            b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
            b"<required/></starttls></stream:features>"
        )
        client.say(PLAIN)  # a login in the clear is refused, even on loopback
        assert b"<encryption-required/>" in client.line()
        client.start_tls(certificates.client_context())
        features = client.open_stream()  # the stream restarts over TLS
        assert b"starttls" not in features and b"<mechanism>PLAIN</mechanism>" in features
        client.say(PLAIN)
        assert client.line().startswith(b"<success ")
        client.open_stream()
        client.say(BIND)
        assert b"<jid>alice@localhost/r</jid>" in client.line()
        assert len(set(client.stream_ids)) == 3  # each restarted stream has a new id
        client.close()


def test_optional_offers_starttls_and_logins(certificates: Certificates) -> None:
    with serve(certificates, "--xmpp-starttls", "optional") as server:
        client = RawClient(server.urls[0])
        features = client.open_stream()
        assert b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" in features
        assert b"<mechanism>PLAIN</mechanism>" in features
        client.say(PLAIN)  # in the clear, allowed on loopback
        assert client.line().startswith(b"<success ")
        client.close()


def test_off_offers_no_starttls_and_refuses_it(certificates: Certificates) -> None:
    with serve(certificates, "--xmpp-starttls", "off") as server:
        client = RawClient(server.urls[0])
        assert b"starttls" not in client.open_stream()
        client.say(STARTTLS)
        assert client.line() == b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
        assert client.until_eof() == b"</stream:stream>\n"
        client.close()


def test_without_a_certificate_nothing_changes() -> None:
    args = ["--listen", "xmpp://127.0.0.1:0", "--xmpp-insecure-any-password", "true"]
    with ServeProcess(args) as server:
        client = RawClient(server.urls[0])
        features = client.open_stream()
        assert b"starttls" not in features and b"<mechanism>PLAIN</mechanism>" in features
        client.close()


@pytest.mark.parametrize(
    "after",
    [PLAIN, b"<iq type='get' id='x'>", b"<"],
    ids=["a stanza", "half a stanza", "a byte"],
)
def test_bytes_after_starttls_in_the_clear_are_refused(
    certificates: Certificates, after: bytes
) -> None:
    # they could be an attacker's, injected in the hope that the server takes
    # them for the client's, encrypted (the STARTTLS injection attack)
    with serve(certificates) as server:
        client = RawClient(server.urls[0])
        client.open_stream()
        client.say(STARTTLS + after)
        rest = client.until_eof()
        assert b"proceed" not in rest
        assert b"<policy-violation" in rest
        client.close()


def test_a_failed_handshake_closes_the_connection(certificates: Certificates) -> None:
    with serve(certificates) as server:
        client = RawClient(server.urls[0])
        client.open_stream()
        client.say(STARTTLS)
        assert b"proceed" in client.line()
        client.say(b"this is not a TLS ClientHello\r\n")
        assert client.until_eof() == b""
        client.close()
        server.wait_for_log(r"STARTTLS: TLS handshake failed")
        # and the server goes on
        other = RawClient(server.urls[0])
        assert b"starttls" in other.open_stream()
        other.close()


def test_a_client_certificate_gets_external_after_starttls(
    tls_ca: trustme.CA, tmp_path: Path
) -> None:
    certificates = Certificates.issue(tls_ca, tmp_path)
    alice = tls_ca.issue_cert("alice@localhost", common_name="alice")
    args = ["--ca-certs", str(certificates.cafile), "--client-certs", "optional"]
    with serve(certificates, *args) as server:
        client = RawClient(server.urls[0])
        client.open_stream()
        context = certificates.client_context()
        alice.configure_cert(context)
        client.start_tls(context)
        features = client.open_stream()
        assert b"<mechanism>EXTERNAL</mechanism><mechanism>PLAIN</mechanism>" in features
        client.say(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
        assert client.line().startswith(b"<success ")
        client.close()
