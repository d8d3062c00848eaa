# SASL EXTERNAL (XEP-0178) with client certificates, over real TLS: offered
# first when the client shows a verified certificate, it logs in the account
# the certificate names (an email address at the domain, or else its CN);
# an authorization identity must match; a certificate for no account, or no
# certificate, is refused.
from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import slixmpp
import trio
import trustme

from netsvc import TlsConfig
from netsvc.testing import RunningServer, serve
from protocols.xmpp import Accounts
from tests.protocols.xmpp.rawclient import BIND, HEADER, Client
from tests.serveprocess import Certificates, ServeProcess, host_port

EXTERNAL = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>"


class Setup:
    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.server = Certificates.issue(self.ca, folder)
        self.alice = self.ca.issue_cert("alice@localhost", common_name="Alice Liddell")
        self.bob = self.ca.issue_cert("bob.example", common_name="bob")  # no email: the CN
        self.nobody = self.ca.issue_cert("nobody@localhost", common_name="nobody")
        accounts = Accounts()
        accounts.path = folder / "users"
        accounts.add("alice", "wonderland", [])
        accounts.add("bob", "builder", [])
        accounts.add("kevin", "bacon", [])
        accounts.save()
        self.users = str(accounts.path)

    def context(self, cert: trustme.LeafCert | None) -> ssl.SSLContext:
        context = self.server.client_context()
        if cert is not None:
            cert.configure_cert(context)
        return context


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, Setup]]:
    setup = Setup(tmp_path)
    tls = TlsConfig(
        str(setup.server.certfile),
        str(setup.server.keyfile),
        ca_certs=str(setup.server.cafile),
        client_certs="optional",
    )
    settings = {"users_file": setup.users}
    async with serve("xmpp", settings=settings, ssl_context=tls.context()) as server:
        yield server, setup


async def connect(running: RunningServer, context: ssl.SSLContext) -> tuple[Client, bytes]:
    """A TLS client that opened its stream: it and the features it was offered."""
    assert running.host is not None and running.port is not None
    tcp = await trio.open_tcp_stream(running.host, running.port)
    client = Client(trio.SSLStream(tcp, context, server_hostname="127.0.0.1"))
    await client.say(HEADER)
    await client.line()
    return client, await client.line()


async def external(client: Client, authzid: str = "") -> bytes:
    token = base64.b64encode(authzid.encode()) if authzid else b"="
    await client.say(EXTERNAL + token + b"</auth>")
    with trio.fail_after(5):
        return await client.line()


async def test_a_certificate_logs_in_its_account(running: tuple[RunningServer, Setup]) -> None:
    server, setup = running
    for cert, user, authzid in [
        (setup.alice, "alice", ""),
        (setup.alice, "alice", "alice@localhost"),
        (setup.bob, "bob", ""),
    ]:
        client, features = await connect(server, setup.context(cert))
        assert features.index(b">EXTERNAL<") < features.index(b">PLAIN<")
        assert (await external(client, authzid)).startswith(b"<success")
        await client.say(HEADER)
        await client.line()
        await client.line()
        await client.say(b"<iq type='set' id='b'>" + BIND + b"</iq>")
        assert f"<jid>{user}@localhost/r</jid>".encode() in await client.line()
        await client.stream.aclose()


async def test_external_is_refused_without_its_conditions(
    running: tuple[RunningServer, Setup],
) -> None:
    server, setup = running
    client, features = await connect(server, setup.context(None))  # no certificate
    assert b"EXTERNAL" not in features
    assert b"<invalid-mechanism/>" in await external(client)
    await client.stream.aclose()
    client, _ = await connect(server, setup.context(setup.nobody))  # no such account
    assert b"<not-authorized/>" in await external(client)
    await client.stream.aclose()
    client, _ = await connect(server, setup.context(setup.alice))  # someone else's identity
    assert b"<invalid-authzid/>" in await external(client, "bob@localhost")
    await client.stream.aclose()


def test_slixmpp_logs_in_with_its_certificate(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    cert, key = tmp_path / "alice.pem", tmp_path / "alice-key.pem"
    setup.alice.cert_chain_pems[0].write_to_path(str(cert))
    setup.alice.private_key_pem.write_to_path(str(key))
    args = ["--listen", "xmpps://127.0.0.1:0", *setup.server.args, "--xmpp-users-file"]
    args += [setup.users, "--ca-certs", str(setup.server.cafile), "--client-certs", "optional"]
    got: dict[str, object] = {}

    async def scenario(host: str, port: int) -> None:
        client = slixmpp.ClientXMPP("alice@localhost/cert", "")  # no password: the certificate
        client.ca_certs = setup.server.cafile
        client.certfile, client.keyfile = str(cert), str(key)
        started = asyncio.Event()

        def on_start(_: object) -> None:
            got["jid"] = str(client.boundjid)
            started.set()

        client.add_event_handler("session_start", on_start)
        client.add_event_handler("failed_auth", lambda e: got.setdefault("failed", str(e)))
        try:
            client.connect(host, port)
            await asyncio.wait_for(started.wait(), 20)
        except TimeoutError:
            got["timed out"] = True
        finally:
            client.cancel_connection_attempt()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 5)

    with ServeProcess(args) as server:
        host, port = host_port(server.urls[0])
        thread = threading.Thread(target=lambda: asyncio.run(scenario(host, port)))
        thread.start()
        thread.join(60)
        assert not thread.is_alive()
    assert got == {"jid": "alice@localhost/cert"}


@pytest.mark.parametrize(
    ("identity", "common_name"),
    [
        ("bob@partner.example", "bob"),  # an address elsewhere names nobody here, CN or not
        ("kevin.example", "\u212aevin"),  # KELVIN SIGN: no Unicode folding into "kevin"
    ],
    ids=["email-at-another-domain", "non-ascii-cn"],
)
async def test_external_logs_in_only_who_the_certificate_names(
    running: tuple[RunningServer, Setup], identity: str, common_name: str
) -> None:
    server, setup = running  # bob and kevin have accounts
    cert = setup.ca.issue_cert(identity, common_name=common_name)
    client, _ = await connect(server, setup.context(cert))
    assert b"<not-authorized/>" in await external(client)
    await client.stream.aclose()
