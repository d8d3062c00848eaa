# When the database fails, from outside with raw clients: a full disk
# (provoked with sqlite's max_page_count on the server's own connection, so
# that any write needing a new page gets SQLITE_FULL) or a file another
# program holds locked. The client whose stanza needed the database gets
# internal-server-error, type wait (RFC 6120 8.3.3.5), and goes on; a
# stalled receiver cut while the disk is full has its messages bounced with
# the same error, never lost silently, and the server does not crash; what
# a shutdown can neither store nor bounce is counted in a warning. A lock
# freezes the server for at most the short busy timeout, not seconds.
from __future__ import annotations

import contextlib
import itertools
import logging
import re
import socket
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from netsvc import ConnectionLimits
from netsvc.testing import RunningServer, serve
from protocols.xmpp import Store
from protocols.xmpp._service import XmppService
from protocols.xmpp._session import RESUME_AT
from tests.protocols.xmpp.rawclient import HEADER, Client, Received, logged_in
from tests.serveprocess import host_port

SETTINGS = {"max_bytes_per_second": 0}
STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
DATABASE_ERROR = r"database .*(full|locked)"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "xmpp.db"
    store = Store(str(path))
    for name in ("alice", "bob", "carol"):
        store.add_user(name, "pw")
    store.close()
    return path


def fill_the_disk(running: RunningServer) -> None:
    """From now on, every write that needs a new page fails with SQLITE_FULL."""
    service = running.server._services["xmpp"]  # type: ignore[index]
    assert isinstance(service, XmppService)
    db = service.store.db
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")


def internal_error(line: bytes, id: str) -> None:
    """`line` is the internal-server-error, type wait, for stanza `id`."""
    stanza = ET.fromstring(line)
    assert (stanza.get("id"), stanza.get("type")) == (id, "error"), line
    error = stanza.find("error")
    assert error is not None and error.get("type") == "wait", line
    assert error.find(f"{STANZAS}internal-server-error") is not None, line


@pytest.fixture
async def running(database: Path) -> AsyncIterator[RunningServer]:
    async with serve("xmpp", settings={**SETTINGS, "database": str(database)}) as running:
        yield running


@pytest.mark.server_errors(DATABASE_ERROR)
async def test_a_full_disk_gets_internal_server_error_and_the_connection_goes_on(
    running: RunningServer,
) -> None:
    bob = await logged_in(running, "bob")
    await bob.say(b"<presence/>")
    await bob.settle()
    fill_the_disk(running)
    big = "x" * 30_000  # more than the free room of any page
    await bob.say(
        f"<message to='alice@localhost' type='chat' id='m1'><body>{big}</body></message>".encode()
    )
    (line,) = await bob.settle()
    internal_error(line, "m1")
    groups = "".join(f"<group>{c * 1000}</group>" for c in "ghijklmn")  # 8 KB: new pages
    item = f"<item jid='carol@localhost' name='{'n' * 1000}'>{groups}</item>"
    await bob.say(
        f"<iq type='set' id='rs'><query xmlns='jabber:iq:roster'>{item}</query></iq>".encode()
    )
    (line,) = await bob.settle()
    internal_error(line, "rs")
    await bob.say(b"<message to='alice@localhost' type='chat' id='m2'><body>hi</body></message>")
    assert await bob.settle() == []  # a small one fits: the connection, and the database, go on
    alice = await logged_in(running, "alice")
    await alice.say(b"<presence/>")
    got = [ET.fromstring(line) for line in await alice.settle()]
    assert [m.get("id") for m in got if m.tag.endswith("message")] == ["m2"]


@pytest.mark.server_errors(DATABASE_ERROR)
async def test_a_receiver_cut_while_the_disk_is_full_bounces_what_it_held(
    database: Path,
) -> None:
    limits = ConnectionLimits(send_timeout=1)
    settings = {**SETTINGS, "database": str(database)}
    async with serve("xmpp", settings=settings, limits=limits) as running:
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(host_port(running.url))
        alice = Client(trio.SocketStream(sock))
        await alice.login("alice", password="pw")
        await alice.say(b"<presence/>")
        await alice.settle()  # and never reads again
        bob = await logged_in(running, "bob")
        bob_got = Received(bob)

        fill_the_disk(running)
        count = 3000
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bob_got.run)
            with trio.fail_after(60):
                for first in range(0, count, 100):
                    await bob.say(
                        b"".join(
                            f"<message to='alice@localhost/r' type='chat' id='{i}'>"
                            f"<body>{'x' * 2000}</body></message>".encode()
                            for i in range(first, first + 100)
                        )
                    )
                await bob.say(b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
                while b"id='p'" not in bob_got.data:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        alice_got = alice.buffer
        async with alice.stream:
            with trio.fail_after(30), contextlib.suppress(trio.BrokenResourceError):
                while chunk := await alice.stream.receive_some():
                    alice_got += chunk
        got = {int(id) for id in _ids(rb"<message [^>]*id='(\d+)'[^>]*>.*?</message>", alice_got)}
        back = bob_got.data.split(b"\n")
        bounced = [
            line for line in back if line.startswith(b"<message") and b"type='error'" in line
        ]
        for line in bounced:
            internal_error(line, ET.fromstring(line).get("id", ""))
        ids = {int(ET.fromstring(line).get("id", "")) for line in bounced}
        later = await logged_in(running, "alice", "later")  # the few that still fitted
        await later.say(b"<presence/>")
        stored = {int(m.get("id", "")) for m in map(ET.fromstring, await later.settle())}
        print(f"{count} sent: {len(got)} reached alice, {len(ids)} came back, {len(stored)} kept")
        assert sorted([*got, *ids, *stored]) == list(range(count))  # none vanished, none twice
        assert len(ids) >= 1000
        await bob.ping()  # bob's connection, and the server, go on


def _ids(pattern: bytes, data: bytes) -> list[bytes]:
    import re

    return re.findall(pattern, data, re.DOTALL)


@pytest.mark.server_errors(DATABASE_ERROR)
async def test_a_locked_database_answers_wait_and_does_not_freeze_others(
    running: RunningServer, database: Path
) -> None:
    bob = await logged_in(running, "bob")
    carol = await logged_in(running, "carol")
    other = sqlite3.connect(database, isolation_level=None)  # another program writing
    try:
        other.execute("BEGIN IMMEDIATE")
        started = trio.current_time()
        async with trio.open_nursery() as nursery:

            async def bob_writes() -> None:
                message = (
                    b"<message to='alice@localhost' type='chat' id='m1'><body>hi</body></message>"
                )
                await bob.say(message)
                (line,) = await bob.settle()
                internal_error(line, "m1")

            nursery.start_soon(bob_writes)
            await carol.ping()  # answered while the database is locked
        waited = trio.current_time() - started
        print(f"locked: bob answered and carol's ping within {waited:.2f}s")
        assert waited < 2  # the busy timeout was 5 s, and froze every connection with it
    finally:
        other.execute("ROLLBACK")
        other.close()
    await bob.say(b"<message to='alice@localhost' type='chat' id='m2'><body>hi</body></message>")
    assert await bob.settle() == []  # unlocked: kept again


@pytest.mark.server_errors(DATABASE_ERROR)
async def test_a_registration_while_the_database_is_locked_is_told_to_wait(
    database: Path,
) -> None:
    settings = {**SETTINGS, "database": str(database), "allow_registration": True}
    async with serve("xmpp", settings=settings) as running:
        other = sqlite3.connect(database, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            new = Client(await running.connect())
            await new.say(HEADER)
            await new.line()
            await new.line()
            fields = "<username>dave</username><password>pw</password>"
            form = f"<query xmlns='jabber:iq:register'>{fields}</query>"
            await new.say(f"<iq type='set' id='reg'>{form}</iq>".encode())
            internal_error(await new.line(), "reg")
        finally:
            other.execute("ROLLBACK")
            other.close()
        await new.say(f"<iq type='set' id='reg2'>{form}</iq>".encode())
        assert b"type='result'" in await new.line()  # the same connection, once unlocked


@pytest.mark.server_errors(DATABASE_ERROR)
async def test_what_a_shutdown_loses_to_a_failing_database_is_a_warning_with_a_count(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A receiver that stopped reading holds a full queue when the server
    # shuts down with the disk full: what it holds can be neither stored
    # nor bounced (its sender's connection ends with the shutdown), and the
    # operator is told how much at WARNING (once for what the writer held,
    # once for what was read and not routed).
    settings = {**SETTINGS, "database": str(database)}
    limits = ConnectionLimits(send_timeout=60)  # the shutdown cuts alice, not the send timeout
    async with serve("xmpp", settings=settings, limits=limits, graceful_timeout=1) as running:
        service = running.server._services["xmpp"]  # type: ignore[index]
        assert isinstance(service, XmppService)
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(host_port(running.url))
        alice = Client(trio.SocketStream(sock))
        await alice.login("alice", "a", password="pw")
        await alice.say(b"<presence/>")
        await alice.settle()  # and never reads again
        bob = await logged_in(running, "bob")

        async def flood() -> None:  # until cancelled
            for first in itertools.count(0, 100):
                await bob.say(
                    b"".join(
                        f"<message to='alice@localhost/a' type='chat' id='{i}'>"
                        f"<body>{'x' * 2000}</body></message>".encode()
                        for i in range(first, first + 100)
                    )
                )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            with trio.fail_after(60):
                while len(service.sessions["alice"]["a"]._outgoing or ()) < RESUME_AT:
                    await trio.sleep(0.2)
            nursery.cancel_scope.cancel()
        fill_the_disk(running)
        caplog.set_level(logging.WARNING, logger="netsvc.xmpp")
    lost = [r for r in caplog.records if "neither delivered nor stored" in r.getMessage()]
    counts = [tuple(map(int, re.findall(r"\d+", r.getMessage()))) for r in lost]
    assert {r.levelno for r in lost} == {logging.WARNING}
    assert all(failed == count for count, failed in counts), counts  # all to the database
    assert sum(count for count, _ in counts) >= RESUME_AT, counts  # at least what alice held
    await alice.stream.aclose()
    await bob.stream.aclose()
