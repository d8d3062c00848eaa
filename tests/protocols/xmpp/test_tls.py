# XMPP over real TLS (xmpps://, direct TLS, with a certificate from a trustme
# CA): slixmpp with its default settings (direct TLS first, no plaintext, SASL
# PLAIN only over an encrypted stream) logs two users in who chat. (Servers in
# tests bind loopback only, where PLAIN is allowed without TLS too: the policy
# off loopback is tested in test_plain_policy.py.)
from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from pathlib import Path

import pytest
import slixmpp

from tests.serveprocess import Certificates, ServeProcess, host_port

USERS = {"alice": "wonderland", "bob": "builder"}


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from protocols.xmpp import Accounts

    accounts = Accounts()
    accounts.path = tmp_path_factory.mktemp("xmpp") / "users"
    accounts.add("alice", USERS["alice"], ["bob"])
    accounts.add("bob", USERS["bob"], ["alice"])
    accounts.save()
    return accounts.path


def serve(users_file: Path, certificates: Certificates, *urls: str) -> ServeProcess:
    args = [arg for url in urls for arg in ("--listen", url)]
    args += ["--xmpp-users-file", str(users_file), *certificates.args]
    return ServeProcess(args, listeners=len(urls))


def slixmpp_chat(
    alice_at: tuple[str, int], bob_at: tuple[str, int], cafile: Path
) -> dict[str, object]:
    """alice and bob log in with slixmpp (default settings but for the CA they
    trust and the port), alice writes to bob, bob answers. What each saw."""
    got: dict[str, object] = {}
    troubles: list[str] = []  # why a login did not happen, to show when one did not

    async def scenario() -> None:
        clients: dict[str, slixmpp.ClientXMPP] = {}
        ready = {name: asyncio.Event() for name in USERS}  # saw the other one available
        delivered = {name: asyncio.Event() for name in USERS}

        def make(name: str) -> slixmpp.ClientXMPP:
            client = slixmpp.ClientXMPP(f"{name}@localhost/tls", USERS[name])
            client.ca_certs = cafile  # the rest as slixmpp ships it

            def on_start(_: object) -> None:
                tls = client.socket  # what slixmpp itself asks before it sends PLAIN
                got[f"{name}-tls"] = tls.version() if isinstance(tls, ssl.SSLObject) else None
                client.send_presence()

            def on_presence(presence: slixmpp.Presence) -> None:
                # the server has the other's presence: a message to the bare
                # JID reaches them (it goes to available resources only)
                if presence["from"].bare != f"{name}@localhost":
                    ready[name].set()

            def on_message(message: slixmpp.Message) -> None:
                got[f"{name}-got"] = (str(message["from"]), message["body"])
                delivered[name].set()

            def on_trouble(event: str) -> None:
                def note(detail: object) -> None:
                    troubles.append(f"{name}: {event}: {detail}")

                client.add_event_handler(event, note)

            client.add_event_handler("session_start", on_start)
            client.add_event_handler("presence_available", on_presence)
            client.add_event_handler("message", on_message)
            for event in ("failed_auth", "connection_failed", "ssl_invalid_chain", "stream_error"):
                on_trouble(event)
            clients[name] = client
            return client

        alice, bob = make("alice"), make("bob")
        try:
            alice.connect(*alice_at)
            bob.connect(*bob_at)
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready.values())), 20)
            alice.send_message(
                mto=slixmpp.JID("bob@localhost"), mbody="hello over tls", mtype="chat"
            )
            await asyncio.wait_for(delivered["bob"].wait(), 10)
            bob.send_message(
                mto=slixmpp.JID("alice@localhost/tls"), mbody="back over tls", mtype="chat"
            )
            await asyncio.wait_for(delivered["alice"].wait(), 10)
        except TimeoutError:
            got["timed out"] = True
        finally:
            for client in clients.values():
                client.cancel_connection_attempt()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), 5)

    thread = threading.Thread(target=lambda: asyncio.run(scenario()))
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "slixmpp did not finish"
    if troubles:
        got["troubles"] = troubles
    return got


def assert_chatted_over_tls(got: dict[str, object]) -> None:
    assert got.get("bob-got") == ("alice@localhost/tls", "hello over tls"), got
    assert got.get("alice-got") == ("bob@localhost/tls", "back over tls"), got
    for name in USERS:
        assert str(got.get(f"{name}-tls")).startswith("TLSv1."), got


def test_slixmpp_users_chat_over_direct_tls(users_file: Path, certificates: Certificates) -> None:
    with serve(users_file, certificates, "xmpps://127.0.0.1:0") as server:
        (url,) = server.urls
        assert url.startswith("xmpps://127.0.0.1:")
        got = slixmpp_chat(host_port(url), host_port(url), certificates.cafile)
    assert_chatted_over_tls(got)


def test_slixmpp_users_chat_over_starttls(users_file: Path, certificates: Certificates) -> None:
    # a plain listener and a certificate: STARTTLS, required (the default)
    with serve(users_file, certificates, "xmpp://127.0.0.1:0") as server:
        (url,) = server.urls
        assert url.startswith("xmpp://127.0.0.1:")
        got = slixmpp_chat(host_port(url), host_port(url), certificates.cafile)
    assert_chatted_over_tls(got)
