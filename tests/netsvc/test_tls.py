# TLS in the core, from outside with real TLS clients: client certificates
# (none, optional, required; checked against --ca-certs, one from a CA the
# server does not trust refused), the verified subject a plugin sees, TLS 1.2
# at least, and a certificate reloaded on SIGHUP (open connections keep
# theirs, new ones get the new one; a broken file keeps the old one).
from __future__ import annotations

import logging
import signal
import socket
import ssl
import subprocess
import warnings
from pathlib import Path

import pytest
import trio
import trustme

from netsvc import PeerCertificate, TlsConfig, TlsError
from netsvc.testing import RunningServer, serve
from tests.lineclient import LineClient
from tests.netsvc.probe import protocol as probe
from tests.serveprocess import NETSVC, PROBE, Certificates, ServeProcess, host_port

# alice's certificate subject, least significant first (trustme adds its O and OU)
ALICE = b"CN=alice,OU=Testing cert #"


class Pki:
    """A CA the server trusts for clients, its server certificate, alice's
    client certificate, and mallory's from a CA the server does not trust."""

    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.server = Certificates.issue(self.ca, folder)
        self.alice = self.ca.issue_cert("alice@example.org", common_name="alice")
        self.mallory = trustme.CA().issue_cert("mallory@example.org", common_name="mallory")

    def config(self, client_certs: str) -> TlsConfig:
        return TlsConfig(
            str(self.server.certfile),
            str(self.server.keyfile),
            ca_certs=str(self.server.cafile),
            client_certs=client_certs,
        )

    def client(self, cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
        context = self.server.client_context()
        if cert is not None:
            cert.configure_cert(context)
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


async def ask_cert(running: RunningServer, context: ssl.SSLContext) -> bytes:
    """The probe's CERT answer over a new TLS connection with `context`
    (cut after alice's OU, whose number trustme picks at random); b"refused"
    if the server ends the connection instead."""
    host, port = running.host, running.port
    assert host is not None and port is not None
    tcp = await trio.open_tcp_stream(host, port)
    stream = trio.SSLStream(tcp, context, server_hostname=host)
    client = LineClient(stream)
    try:
        assert await client.line() == b"HELLO"  # TLS 1.3: a refusal shows at the first read
        answer = await client.ask("CERT")
        return ALICE if answer.startswith(ALICE) else answer
    except (trio.BrokenResourceError, EOFError, AssertionError):
        return b"refused"
    finally:
        await trio.aclose_forcefully(stream)
        LineClient.opened.remove(client)


def audit(caplog: pytest.LogCaptureFixture) -> str:
    """The startup audit's line about TLS (the listener's security at a glance)."""
    [line] = [r.getMessage() for r in caplog.records if "; TLS " in r.getMessage()]
    return line.split("; ")[1]


async def test_required_client_certificates(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "netsvc.server")
    config = pki.config("required")
    async with serve(probe, ssl_context=config.context()) as running:
        assert audit(caplog) == "TLS on, client certificates required"
        assert await ask_cert(running, pki.client(pki.alice)) == ALICE
        assert await ask_cert(running, pki.client()) == b"refused"
        assert await ask_cert(running, pki.client(pki.mallory)) == b"refused"
        assert await ask_cert(running, pki.client(pki.alice)) == ALICE  # still serving


async def test_optional_client_certificates(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "netsvc.server")
    async with serve(probe, ssl_context=pki.config("optional").context()) as running:
        assert audit(caplog) == "TLS on, client certificates optional"
        assert await ask_cert(running, pki.client(pki.alice)) == ALICE
        assert await ask_cert(running, pki.client()) == b"none"
        assert await ask_cert(running, pki.client(pki.mallory)) == b"refused"  # sent: must verify


async def test_without_client_certificates_none_is_asked_for(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "netsvc.server")
    async with serve(probe, ssl_context=pki.config("none").context()) as running:
        assert audit(caplog) == "TLS on"
        assert await ask_cert(running, pki.client(pki.alice)) == b"none"


def test_client_certificates_need_a_ca_bundle(pki: Pki) -> None:
    with pytest.raises(TlsError, match=r"--ca-certs"):
        TlsConfig(str(pki.server.certfile), client_certs="required")
    with pytest.raises(TlsError, match=r"choose one of none, optional, required"):
        TlsConfig(str(pki.server.certfile), client_certs="sometimes")


async def test_tls_1_2_is_the_minimum(pki: Pki) -> None:
    async with serve(probe, ssl_context=pki.config("none").context()) as running:
        tls12 = pki.client()
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        assert await ask_cert(running, tls12) == b"none"
        old = pki.client()
        with warnings.catch_warnings():  # the point: a deprecated version
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        assert await ask_cert(running, old) == b"refused"


# -- netsvc serve ---------------------------------------------------------------------------


def tls_args(pki: Pki, client_certs: str) -> list[str]:
    return [*pki.server.args, "--ca-certs", str(pki.server.cafile), "--client-certs", client_certs]


def redis_cli(port: int, pki: Pki, *args: str, cert: trustme.LeafCert | None = None) -> str:
    command = ["redis-cli", "-p", str(port), "--tls", "--cacert", str(pki.server.cafile)]
    if cert is not None:
        folder = pki.server.certfile.parent
        cert.cert_chain_pems[0].write_to_path(str(folder / "client.pem"))
        cert.private_key_pem.write_to_path(str(folder / "client-key.pem"))
        command += ["--cert", str(folder / "client.pem"), "--key", str(folder / "client-key.pem")]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=10)
    return (done.stdout + done.stderr).strip()


def test_redis_cli_with_a_client_certificate(pki: Pki) -> None:
    args = ["--protocol", "resp", "--port", "0", *tls_args(pki, "required")]
    with ServeProcess(args) as server:
        port = host_port(server.urls[0])[1]
        assert redis_cli(port, pki, "PING", cert=pki.alice) == "PONG"
        assert "PONG" not in redis_cli(port, pki, "PING")  # no certificate: refused
        assert "PONG" not in redis_cli(port, pki, "PING", cert=pki.mallory)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--client-certs", "required"], "needs --certfile"),
        (["--ca-certs", "x.pem"], "needs --certfile"),
    ],
)
def test_client_certificate_options_need_a_certificate(extra: list[str], error: str) -> None:
    done = subprocess.run(
        [NETSVC, "serve", "--protocol", PROBE, "--port", "0", *extra],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert error in done.stderr


def server_certificate(port: int, pki: Pki) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with pki.client().wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return der


def test_sighup_reloads_the_certificate(pki: Pki) -> None:
    args = ["--protocol", PROBE, "--port", "0", *pki.server.args]
    with ServeProcess(args) as server:
        port = host_port(server.urls[0])[1]
        before = server_certificate(port, pki)
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        with pki.client().wrap_socket(sock, server_hostname="127.0.0.1") as open_connection:
            assert open_connection.recv(100) == b"HELLO\n"
            renewed = pki.ca.issue_cert(*Certificates.IDENTITIES)
            renewed.cert_chain_pems[0].write_to_path(str(pki.server.certfile))
            renewed.private_key_pem.write_to_path(str(pki.server.keyfile))
            server.proc.send_signal(signal.SIGHUP)
            server.wait_for_log(r"SIGHUP: reloaded the TLS certificate from ")
            after = server_certificate(port, pki)
            assert after != before
            assert after == ssl.PEM_cert_to_DER_cert(renewed.cert_chain_pems[0].bytes().decode())
            open_connection.sendall(b"ECHO still here\n")  # it survived the reload
            assert open_connection.recv(100) == b"still here\n"


@pytest.mark.server_errors(r"SIGHUP: cannot load certificate")
def test_a_broken_certificate_file_keeps_the_old_one(pki: Pki) -> None:
    args = ["--protocol", PROBE, "--port", "0", *pki.server.args]
    with ServeProcess(args) as server:
        port = host_port(server.urls[0])[1]
        before = server_certificate(port, pki)
        pki.server.certfile.write_text("not a certificate\n")
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for_log(r"still serving the previous certificate")
        assert server_certificate(port, pki) == before


def test_sighup_reaches_every_worker(pki: Pki) -> None:
    args = ["--protocol", "echo", "--port", "0", "--workers", "2", *pki.server.args]
    with ServeProcess(args) as server:
        port = host_port(server.urls[0])[1]
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for_log(r"SIGHUP: passing it to 2 worker\(s\)")
        server.wait_for_log(r"SIGHUP: reloaded the TLS certificate", count=2)
        assert server_certificate(port, pki)  # both still serve
        assert server.proc.poll() is None


@pytest.mark.server_errors(r"SIGHUP: cannot load certificate")
def test_a_half_renewed_pair_keeps_the_old_one(pki: Pki) -> None:
    # a renewal caught mid-write: the new certificate next to the old key
    args = ["--protocol", PROBE, "--port", "0", *pki.server.args]
    with ServeProcess(args) as server:
        port = host_port(server.urls[0])[1]
        before = server_certificate(port, pki)
        renewed = pki.ca.issue_cert(*Certificates.IDENTITIES)
        renewed.cert_chain_pems[0].write_to_path(str(pki.server.certfile))
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for_log(r"still serving the previous certificate")
        assert server_certificate(port, pki) == before


def test_the_context_asks_for_tls_1_2_at_least(pki: Pki) -> None:
    # (the TLS 1.1 client above is refused by this OpenSSL anyway)
    assert pki.config("none").context().minimum_version == ssl.TLSVersion.TLSv1_2


def test_two_common_names_make_none() -> None:
    # which one a login by certificate would believe is a guess: none is
    certificate = PeerCertificate(
        der=b"", subject=(("organizationName", "Example"), ("commonName", "a"), ("commonName", "b"))
    )
    assert certificate.common_name is None
    assert certificate.rfc4514_name() == "CN=b,CN=a,O=Example"
