# profanity (Debian's), a real XMPP client in a terminal, driven in a tmux
# session of the test's own: against `netsvc serve` with a trustme
# certificate (STARTTLS required, the default) and a database holding alice
# and bob, alice logs in with profanity (`/connect ... tls trust`, the
# password typed at its prompt), adds bob and asks for his presence; bob is
# slixmpp with its default security (STARTTLS, SCRAM), which approves and
# asks back; alice allows it, and they chat. The screen is read with
# capture-pane, waiting for text. Both rosters end with subscription both.
# Then profanity registers an account in-band (XEP-0077), logs in with it
# and changes its password.
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import slixmpp

from protocols.xmpp import Store
from tests.serveprocess import Certificates, ServeProcess, host_port

pytestmark = pytest.mark.slow

PASSWORDS = {"alice": "through the looking glass", "bob": "can we fix it"}
WAIT = 60.0  # seconds for any text to show up on the screen (a loaded machine)


class Terminal:
    """A tmux server of the test's own (a unique socket name, its folder in
    `home`) running one command in a 200x50 window, with HOME and the XDG
    folders in `home` too: profanity's configuration and logs stay there."""

    def __init__(self, home: Path) -> None:
        self.socket = f"netsvc-{secrets.token_hex(4)}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "XDG_"))},
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "TMUX_TMPDIR": str(home),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
        }

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def start(self, *command: str) -> None:
        self.tmux("new-session", "-d", "-x", "200", "-y", "50", *command)

    def type(self, text: str) -> None:
        """Type `text` (literally) and Enter."""
        self.tmux("send-keys", "-l", text)
        self.tmux("send-keys", "Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for(self, pattern: str, timeout: float = WAIT) -> str:
        """The screen once a line matches `pattern` (a regular expression)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.MULTILINE)
        while True:
            screen = self.screen()
            if regex.search(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on the screen after {timeout}s:\n{screen}")
            time.sleep(0.2)

    def kill(self) -> None:
        """Stop the tmux server and what runs in it; wait until it is gone."""
        with contextlib.suppress(subprocess.SubprocessError):
            self.tmux("kill-server")
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                self.tmux("list-sessions")
            except subprocess.CalledProcessError:
                return  # no server
            time.sleep(0.1)


@contextlib.contextmanager
def terminal(home: Path) -> Iterator[Terminal]:
    for program in ("tmux", "profanity"):
        if shutil.which(program) is None:
            pytest.fail(f"{program} is missing: ./dev test installs it (Debian package {program})")
    home.mkdir()
    opened = Terminal(home)
    try:
        yield opened
    finally:
        opened.kill()


class Bob:
    """bob on slixmpp, in a thread of his own, with slixmpp's default
    security (STARTTLS required, SCRAM) and roster habits (a subscription
    request is approved, and asked back); he answers each message."""

    def __init__(self, address: tuple[str, int], cafile: Path) -> None:
        self.address, self.cafile = address, cafile
        self.online = threading.Event()
        self.asked = threading.Event()  # alice's subscription request came
        self.got: list[tuple[str, str]] = []  # (from, body)
        self.troubles: list[str] = []
        self.tls: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    def __enter__(self) -> Bob:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "slixmpp did not stop"

    async def _run(self) -> None:
        client = slixmpp.ClientXMPP("bob@localhost/sx", PASSWORDS["bob"])
        client.ca_certs = self.cafile  # the rest as slixmpp ships it

        def on_start(_: object) -> None:
            tls = client.socket
            self.tls = tls.version() if isinstance(tls, ssl.SSLObject) else None
            client.send_presence()
            client.get_roster()
            self.online.set()

        def on_subscribe(presence: slixmpp.Presence) -> None:
            if presence["from"].bare == "alice@localhost":
                self.asked.set()

        def on_message(message: slixmpp.Message) -> None:
            if message["type"] in ("chat", "normal") and message["body"]:
                self.got.append((str(message["from"]), message["body"]))
                client.send_message(mto=message["from"], mbody="hello from slixmpp", mtype="chat")

        client.add_event_handler("session_start", on_start)
        client.add_event_handler("presence_subscribe", on_subscribe)
        client.add_event_handler("message", on_message)
        for event in ("failed_auth", "connection_failed", "ssl_invalid_chain", "stream_error"):
            client.add_event_handler(
                event, lambda detail, e=event: self.troubles.append(f"{e}: {detail}")
            )
        client.connect(*self.address)
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._stop.wait, 300)
        finally:
            client.cancel_connection_attempt()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 5)


def database(path: Path) -> Path:
    store = Store(str(path))
    for name, password in PASSWORDS.items():
        store.add_user(name, password)
    store.close()
    return path


def test_profanity_adds_slixmpp_and_they_chat(tmp_path: Path, certificates: Certificates) -> None:
    db = database(tmp_path / "xmpp.db")
    args = ["--listen", "xmpp://127.0.0.1:0", *certificates.args, "--xmpp-database", str(db)]
    with ServeProcess(args) as server, terminal(tmp_path / "home") as screen:
        port = host_port(server.urls[0])[1]
        screen.start("profanity")
        screen.wait_for(r"Type '/help' to show complete help")
        screen.type(f"/connect alice@localhost server 127.0.0.1 port {port} tls trust")
        screen.wait_for(r"Enter password:")
        screen.type(PASSWORDS["alice"])
        screen.wait_for(r"alice@localhost/\S+ logged in successfully")
        server.wait_for_log(r"authenticated as alice \(SCRAM-SHA-(1|256)\)")
        screen.type("/roster add bob@localhost")
        screen.wait_for(r"Roster item added: bob@localhost")
        screen.type("/sub request bob@localhost")
        screen.wait_for(r"Sent subscription request to bob@localhost")
        with Bob(host_port(server.urls[0]), certificates.cafile) as bob:
            assert bob.online.wait(WAIT), bob.troubles
            assert bob.asked.wait(WAIT), bob.troubles  # the request waited for his login
            screen.wait_for(r"Subscription received from bob@localhost")  # approved
            screen.wait_for(r"Received authorization request from bob@localhost")  # asked back
            screen.type("/sub allow bob@localhost")
            screen.type("/msg bob@localhost hello from profanity")
            screen.wait_for(r"bob@localhost/sx: hello from slixmpp")  # bob's answer
            ((sender, body),) = bob.got
            assert (sender.partition("/")[0], body) == ("alice@localhost", "hello from profanity")
            assert str(bob.tls).startswith("TLSv1."), bob.tls
            screen.type("/win 1")
            screen.type("/roster")
            screen.wait_for(r"^\S+ -\s+bob@localhost - both\s*$")
        server.wait_for_log(r"authenticated as bob \(SCRAM-SHA-(1|256)\)")
    store = Store(str(db))  # the server's side, kept
    assert store.item("alice", "bob@localhost").subscription == "both"  # type: ignore[union-attr]
    assert store.item("bob", "alice@localhost").subscription == "both"  # type: ignore[union-attr]
    store.close()


def test_profanity_registers_an_account_and_changes_its_password(
    tmp_path: Path, certificates: Certificates
) -> None:
    # in-band registration (XEP-0077) as profanity does it: /register, the
    # password typed twice; then, in a new profanity (0.13 logs in badly on
    # the connection it registered on), a login and /changepassword
    db = database(tmp_path / "xmpp.db")
    args = ["--listen", "xmpp://127.0.0.1:0", *certificates.args, "--xmpp-database", str(db)]
    args += ["--xmpp-allow-registration", "true"]
    with ServeProcess(args) as server, terminal(tmp_path / "home") as screen:
        port = host_port(server.urls[0])[1]
        screen.start("profanity")
        screen.wait_for(r"Type '/help' to show complete help")
        screen.type(f"/register dora localhost port {port} tls trust")
        for prompt in ("Enter password:", "Confirm password:"):
            screen.wait_for(prompt)
            screen.type("the map")
        screen.wait_for(r"Registration successful\.")
        server.wait_for_log(r"registered dora@localhost")
        screen.type("/quit")
        screen.kill()
        screen.start("profanity")
        screen.wait_for(r"Type '/help' to show complete help")
        screen.type(f"/connect dora@localhost server 127.0.0.1 port {port} tls trust")
        screen.wait_for(r"Enter password:")
        screen.type("the map")
        screen.wait_for(r"dora@localhost/\S+ logged in successfully")
        screen.type("/changepassword")
        for prompt in ("Enter password:", "Confirm password:"):
            screen.wait_for(prompt)
            screen.type("backpack")
        screen.wait_for(r"Password successfully changed\.")
        server.wait_for_log(r"dora changed their password")
    store = Store(str(db))
    assert store.check("dora", "backpack") and not store.check("dora", "the map")
    store.close()
