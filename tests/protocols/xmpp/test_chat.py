# The XMPP plugin end to end: a person typing one stanza per line over a raw
# socket (as with netcat), and slixmpp, a real client library, logging in two
# users who chat, see each other's presence, read the roster and ping.
from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import slixmpp  # a test dependency: a missing install fails, it does not skip

from tests.serveprocess import ServeProcess, host_port

HEADER = (
    "<stream:stream to='localhost' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)


def auth(user: str, password: str) -> str:
    """A SASL PLAIN <auth/> line for user and password."""
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("xmpp")
    users = folder / "users"
    from protocols.xmpp import Accounts

    accounts = Accounts()
    accounts.path = users
    accounts.add("alice", "wonderland", ["bob"])
    accounts.add("bob", "builder", ["alice"])
    accounts.save()
    args = ["--protocol", "xmpp", "--port", "0", "--xmpp-users-file", str(users)]
    args += ["--app", "examples.echobot:app"]
    with ServeProcess(args) as process:
        yield process.urls[0], users


class LineClient:
    """A person at a terminal: writes lines, reads lines (over TLS with a
    client `context`, as with `openssl s_client`)."""

    def __init__(self, url: str, context: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_connection(host_port(url), timeout=5)
        if context is not None:
            self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.buffer = b""

    def say(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def line(self) -> str:
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed; had {self.buffer!r}")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def login(self, user: str, password: str, resource: str) -> None:
        self.say(HEADER)
        assert "<stream:stream" in self.line()
        assert "<mechanism>PLAIN</mechanism>" in self.line()
        self.say(auth(user, password))
        assert self.line().startswith("<success")
        self.say(HEADER)
        assert "<stream:stream" in self.line()
        assert "urn:ietf:params:xml:ns:xmpp-bind" in self.line()
        bind = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        self.say(f"<iq type='set' id='b1'>{bind}<resource>{resource}</resource></bind></iq>")
        assert f"<jid>{user}@localhost/{resource}</jid>" in self.line()

    def close(self) -> None:
        self.sock.close()


def test_two_people_chat_line_by_line(server: tuple[str, Path]) -> None:
    url, _ = server
    alice, bob = LineClient(url), LineClient(url)
    try:
        alice.login("alice", "wonderland", "nc")
        bob.login("bob", "builder", "term")
        alice.say("<presence/>")
        bob.say("<presence/>")
        assert "from='bob@localhost/term'" in alice.line()  # bob's presence reaches alice
        assert "from='alice@localhost/nc'" in bob.line()  # and alice's reaches bob on his arrival
        alice.say("<message to='bob@localhost' type='chat'><body>hello bob</body></message>")
        received = bob.line()
        assert "from='alice@localhost/nc'" in received and "<body>hello bob</body>" in received
        bob.say(
            "<message to='alice@localhost/nc' type='chat' from='bob@localhost/term'>"
            "<body>hi!</body></message>"
        )
        assert "<body>hi!</body>" in alice.line()
        alice.say("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        roster = alice.line()
        assert "jid='bob@localhost'" in roster and "type='result'" in roster
        alice.say("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        assert "id='p1'" in alice.line()
        alice.say("<message to='nobody@localhost' type='chat'><body>?</body></message>")
        assert "service-unavailable" in alice.line()
        alice.say("<message to='echo@localhost' type='chat'><body>ping</body></message>")
        echoed = alice.line()  # the bot in examples/echobot.py answers
        assert "from='echo@localhost'" in echoed and "<body>ping</body>" in echoed
        bob.say("</stream:stream>")
        assert bob.line() == "</stream:stream>"
        assert "type='unavailable'" in alice.line()
    finally:
        alice.close()
        bob.close()


def test_wrong_password_is_not_authorized(server: tuple[str, Path]) -> None:
    client = LineClient(server[0])
    try:
        client.say(HEADER)
        client.line()
        client.line()
        client.say(auth("alice", "nope"))
        assert "<not-authorized" in client.line()
    finally:
        client.close()


@pytest.mark.parametrize(
    ("send", "condition"),
    [
        ("<message><!-- hi --></message>", "restricted-xml"),
        ("<?pi data?>", "restricted-xml"),
        ("<message><<</message>", "not-well-formed"),
        ("<message>" + "x" * 10_000 + "</message>", "policy-violation"),
    ],
)
def test_stream_errors_before_auth(server: tuple[str, Path], send: str, condition: str) -> None:
    client = LineClient(server[0])
    try:
        client.say(HEADER)
        client.line()
        client.line()
        client.say(send)
        assert f"<{condition} " in client.line()
    finally:
        client.close()


def test_error_before_the_header_sends_a_header_first(server: tuple[str, Path]) -> None:
    client = LineClient(server[0])
    try:
        client.say("<not-a-stream/>")
        assert "<stream:stream" in client.line()
        assert "invalid-namespace" in client.line()
    finally:
        client.close()


def test_slixmpp_clients_chat(server: tuple[str, Path]) -> None:
    url, _ = server
    host, port = host_port(url)
    got: dict[str, object] = {}

    async def scenario() -> None:
        def make(jid: str, password: str) -> slixmpp.ClientXMPP:
            client = slixmpp.ClientXMPP(
                jid, password, plugin_config={"feature_mechanisms": {"unencrypted_plain": True}}
            )
            client.enable_starttls = False
            client.enable_direct_tls = False
            client.enable_plaintext = True
            client.register_plugin("xep_0199")
            return client

        alice, bob = make("alice@localhost/sx", "wonderland"), make("bob@localhost/sx", "builder")
        ready = {name: asyncio.Event() for name in ("alice", "bob")}
        received = asyncio.Event()

        async def on_start(client: slixmpp.ClientXMPP, name: str) -> None:
            client.send_presence()
            await client.get_roster()
            got[f"{name}-roster"] = sorted(str(jid) for jid in client.client_roster)
            ready[name].set()

        def on_message(message: slixmpp.Message) -> None:
            got["message"] = (str(message["from"]), message["body"])
            received.set()

        alice.add_event_handler(
            "session_start", lambda _: asyncio.ensure_future(on_start(alice, "alice"))
        )
        bob.add_event_handler(
            "session_start", lambda _: asyncio.ensure_future(on_start(bob, "bob"))
        )
        bob.add_event_handler("message", on_message)
        bob.add_event_handler(
            "presence_available", lambda p: got.setdefault("bob-saw", str(p["from"]))
        )
        alice.connect(host=host, port=port)
        bob.connect(host=host, port=port)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready.values())), 15)
        alice_got = asyncio.Event()

        def on_reply(message: slixmpp.Message) -> None:
            got["reply"] = (str(message["from"]), message["body"])
            alice_got.set()

        alice.add_event_handler("message", on_reply)
        alice.send_message(mto="bob@localhost", mbody="hello from slixmpp", mtype="chat")
        await asyncio.wait_for(received.wait(), 10)
        bob.send_message(mto="alice@localhost/sx", mbody="hello back", mtype="chat")
        await asyncio.wait_for(alice_got.wait(), 10)
        got["ping"] = await alice.plugin["xep_0199"].ping("localhost", timeout=5)
        alice.disconnect()
        bob.disconnect()
        await asyncio.sleep(0.2)

    thread = threading.Thread(target=lambda: asyncio.run(scenario()))
    thread.start()
    thread.join(40)
    assert got.get("message") == ("alice@localhost/sx", "hello from slixmpp")
    assert got.get("reply") == ("bob@localhost/sx", "hello back")
    assert got.get("bob-saw") == "alice@localhost/sx"  # alice's presence reached bob
    assert "bob@localhost" in got["alice-roster"]  # type: ignore[operator]
    assert got.get("ping") is not None


def test_host_unknown(server: tuple[str, Path]) -> None:
    client = LineClient(server[0])
    try:
        client.say(HEADER.replace("to='localhost'", "to='elsewhere.example'"))
        assert "<stream:stream" in client.line()
        assert "<host-unknown " in client.line()
    finally:
        client.close()


def test_stanzas_before_authentication_are_not_authorized(server: tuple[str, Path]) -> None:
    client = LineClient(server[0])
    try:
        client.say(HEADER)
        client.line()
        client.line()
        client.say("<message to='bob@localhost'><body>sneaky</body></message>")
        assert "<not-authorized " in client.line()
    finally:
        client.close()


def test_a_forged_from_is_invalid_from(server: tuple[str, Path]) -> None:
    client = LineClient(server[0])
    try:
        client.login("alice", "wonderland", "forger")
        client.say(
            "<message from='bob@localhost/term' to='alice@localhost'><body>x</body></message>"
        )
        assert "<invalid-from " in client.line()
    finally:
        client.close()


def test_an_idle_client_gets_connection_timeout(tmp_path: Path) -> None:
    args = ["--protocol", "xmpp", "--port", "0", "--xmpp-insecure-any-password", "true"]
    with ServeProcess([*args, "--idle-timeout", "0.5"]) as process:
        client = LineClient(process.urls[0])
        try:
            client.say(HEADER)
            client.line()
            client.line()
            started = time.monotonic()
            assert "<connection-timeout " in client.line()
            assert time.monotonic() - started < 3
        finally:
            client.close()


def test_a_fast_sender_is_paused_not_cut(tmp_path: Path) -> None:
    args = ["--protocol", "xmpp", "--port", "0", "--xmpp-insecure-any-password", "true"]
    args += ["--xmpp-max-bytes-per-second", "20000"]
    with ServeProcess(args) as process:
        sender, receiver = LineClient(process.urls[0]), LineClient(process.urls[0])
        try:
            sender.login("fast", "x", "a")
            receiver.login("slow", "x", "b")
            receiver.say("<presence/>")
            body = "y" * 900
            started = time.monotonic()
            for i in range(60):  # about 60 kB: three seconds at 20 kB/s
                sender.say(f"<message to='slow@localhost' id='{i}'><body>{body}</body></message>")
            ids = []
            while len(ids) < 60:
                line = receiver.line()
                if "<message" in line:
                    ids.append(int(line.split("id='")[1].split("'")[0]))
            assert ids == list(range(60))  # every message, in order
            assert time.monotonic() - started > 1.5  # (60 kB - a 20 kB burst) at 20 kB/s: paused
        finally:
            sender.close()
            receiver.close()


def test_sendxmpp_delivers_to_a_netcat_user(server: tuple[str, Path]) -> None:
    """sendxmpp (Debian's, on Net::XMPP) is not namespace-aware: it needs the
    stream: prefix on features, which the server writes."""
    import shutil
    import subprocess

    binary = shutil.which("sendxmpp")
    if binary is None:
        pytest.fail("sendxmpp is missing: ./dev test installs it (Debian package sendxmpp)")
    url, _ = server
    port = host_port(url)[1]
    bob = LineClient(url)
    try:
        bob.login("bob", "builder", "nc")
        bob.say("<presence/>")
        result = subprocess.run(
            [binary, "-u", "alice", "-p", "wonderland", "-j", f"localhost:{port}", "bob@localhost"],
            input=b"hello from sendxmpp\n",
            capture_output=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        while "<message" not in (line := bob.line()):
            pass
        assert "from='alice@localhost/" in line and "hello from sendxmpp" in line
    finally:
        bob.close()
