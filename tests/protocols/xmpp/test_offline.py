# Offline messages (XEP-0160), from outside with raw clients: a chat or
# normal message to a user with no available resource (bare JID, or a full
# JID that is gone) waits for the user's next initial presence with a
# non-negative priority and arrives then, in order, with XEP-0203's <delay/>;
# headlines, groupchat and errors are not kept; past the per-user cap the
# sender gets service-unavailable saying the mailbox is full; a server
# restart loses nothing (a subprocess with its database in tmp_path); and
# what a dropped receiver did not get is stored, not bounced, while IQs
# still go back.
from __future__ import annotations

import calendar
import contextlib
import itertools
import logging
import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from netsvc import ConnectionLimits
from netsvc.testing import RunningServer, serve
from protocols.xmpp._service import XmppService
from protocols.xmpp._session import OUTGOING_STANZAS, RESUME_AT
from tests.protocols.xmpp.rawclient import SETTINGS, Client, Received, logged_in, serve_xmpp
from tests.serveprocess import ServeProcess, host_port

DELAY = "{urn:xmpp:delay}delay"
STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


@pytest.fixture
async def running() -> AsyncIterator[RunningServer]:
    async with serve_xmpp() as running:
        yield running


def message(to: str, id: int | str, kind: str | None = "chat", body: str = "") -> bytes:
    type_ = f" type='{kind}'" if kind else ""
    text = body or f"message {id}"
    return f"<message to='{to}' id='{id}'{type_}><body>{text}</body></message>".encode()


def parsed(lines: list[bytes]) -> list[ET.Element]:
    return [ET.fromstring(line) for line in lines]


async def arrive(
    running: RunningServer, user: str, presence: bytes = b"<presence/>"
) -> list[ET.Element]:
    """Log `user` in, send `presence`; the messages that brings."""
    new = await logged_in(running, user, "later")
    await new.say(presence)
    return [m for m in parsed(await new.settle()) if m.tag == "message"]


async def test_a_message_to_an_offline_user_waits_for_their_next_login(
    running: RunningServer,
) -> None:
    bob = await logged_in(running, "bob")
    sent_at = time.time()
    await bob.say(message("alice@localhost", 1))
    await bob.say(message("alice@localhost", 2, kind="normal"))
    await bob.say(message("alice@localhost", 3, kind=None))  # normal too
    assert await bob.settle() == []  # kept: no error
    got = await arrive(running, "alice")
    assert [(m.get("id"), m.get("from"), m.findtext("body")) for m in got] == [
        ("1", "bob@localhost/r", "message 1"),
        ("2", "bob@localhost/r", "message 2"),
        ("3", "bob@localhost/r", "message 3"),
    ]
    for stored in got:
        (delay,) = stored.iter(DELAY)
        assert delay.get("from") == "localhost"
        stamp = calendar.timegm(time.strptime(delay.get("stamp", ""), "%Y-%m-%dT%H:%M:%SZ"))
        assert sent_at - 2 <= stamp <= time.time() + 1
    assert await arrive(running, "alice") == []  # delivered once


async def test_a_negative_priority_does_not_take_them(running: RunningServer) -> None:
    bob = await logged_in(running, "bob")
    await bob.say(message("alice@localhost", 1))
    assert await bob.settle() == []
    # RFC 6121 8.5.2.1.1 and XEP-0160: a resource with a negative priority
    # neither gets them at its initial presence nor takes new ones
    assert await arrive(running, "alice", b"<presence><priority>-1</priority></presence>") == []
    await bob.say(message("alice@localhost", 2))
    assert await bob.settle() == []
    got = await arrive(running, "alice", b"<presence><priority>0</priority></presence>")
    assert [m.get("id") for m in got] == ["1", "2"]


async def test_a_full_jid_that_is_gone_is_kept_for_the_user(running: RunningServer) -> None:
    bob = await logged_in(running, "bob")
    await bob.say(message("alice@localhost/phone", 1))
    assert await bob.settle() == []
    got = await arrive(running, "alice")
    assert [(m.get("id"), m.get("to")) for m in got] == [("1", "alice@localhost/phone")]


async def test_headlines_groupchat_and_errors_are_not_kept(running: RunningServer) -> None:
    bob = await logged_in(running, "bob")
    await bob.say(message("alice@localhost", "h", kind="headline"))  # dropped (8.5.2.1.1)
    await bob.say(message("alice@localhost/gone", "hf", kind="headline"))
    await bob.say(message("alice@localhost", "e", kind="error"))
    await bob.say(message("alice@localhost", "g", kind="groupchat"))
    errors = parsed(await bob.settle())
    assert [(e.get("id"), e.get("type")) for e in errors] == [("g", "error")]
    assert errors[0].find(f"error/{STANZAS}service-unavailable") is not None
    assert await arrive(running, "alice") == []


async def test_past_the_cap_the_sender_is_told_the_mailbox_is_full() -> None:
    async with serve_xmpp(offline_limit=3) as running:
        bob = await logged_in(running, "bob")
        for i in range(5):
            await bob.say(message("alice@localhost", i))
        errors = parsed(await bob.settle())
        assert [(e.get("id"), e.get("type"), e.get("to")) for e in errors] == [
            ("3", "error", "bob@localhost/r"),
            ("4", "error", "bob@localhost/r"),
        ]
        for error in errors:
            detail = error.find("error")
            assert detail is not None and detail.get("type") == "cancel"
            assert detail.find(f"{STANZAS}service-unavailable") is not None
            text = detail.findtext(f"{STANZAS}text") or ""
            assert (
                "alice@localhost" in text
                and "mailbox is full (3 messages or 4,194,304 bytes)" in text
            )
        assert [m.get("id") for m in await arrive(running, "alice")] == ["0", "1", "2"]
        await bob.say(message("alice@localhost", 5))  # room again
        assert await bob.settle() == []


async def test_a_restart_loses_no_offline_message(tmp_path: Path) -> None:
    args = ["--protocol", "xmpp", "--port", "0", "--xmpp-insecure-any-password", "true"]
    args += ["--xmpp-database", str(tmp_path / "xmpp.db")]

    async def connect(server: ServeProcess, user: str) -> Client:
        new = Client(await trio.open_tcp_stream(*host_port(server.urls[0])))
        await new.login(user)
        return new

    with ServeProcess(args) as server:
        bob = await connect(server, "bob")
        async with bob.stream:
            await bob.say(message("alice@localhost", 1, body="before the restart"))
            assert await bob.settle() == []
    with ServeProcess(args) as server:
        alice = await connect(server, "alice")
        async with alice.stream:
            await alice.say(b"<presence/>")
            (got,) = parsed(await alice.settle())
    assert (got.get("from"), got.findtext("body")) == ("bob@localhost/r", "before the restart")
    assert got.find(DELAY) is not None


# -- a receiver dropped with messages queued ------------------------------------------

COMPLETE_MESSAGE = re.compile(rb"<message [^>]*\bid='(\d+)'[^>]*>.*?</message>")
IQ = re.compile(rb"<iq [^>]*\bid='(\d+)'[^>]*>")


def ids(data: bytes, pattern: re.Pattern[bytes] = COMPLETE_MESSAGE) -> list[int]:
    """The ids of the whole stanzas in `data` that are not errors, in order."""
    return [int(m.group(1)) for m in pattern.finditer(data) if b"type='error'" not in m.group(0)]


def bounced(data: bytes) -> list[int]:
    return [
        int(m.group(1))
        for m in re.finditer(rb"<(?:message|iq) [^>]*type='error'[^>]*id='(\d+)'", data)
    ]


async def test_a_dropped_receivers_messages_wait_for_its_next_login(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "netsvc")
    count = 2 * OUTGOING_STANZAS
    every = 50  # every 50th stanza is an IQ: those still go back
    requests = set(range(every - 1, count, every))
    async with serve_xmpp(
        send_timeout=0.5, offline_limit=10 * count, offline_max_bytes=0
    ) as running:
        service = running.server._services["xmpp"]  # type: ignore[index]
        assert isinstance(service, XmppService)
        alice = await logged_in(running, "alice")  # available, never reads
        await alice.say(b"<presence/>")
        bob = await logged_in(running, "bob")
        bob_got = Received(bob)

        ping = "<iq type='get' id='{}' to='alice@localhost/r'><ping xmlns='urn:xmpp:ping'/></iq>"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bob_got.run)
            with trio.fail_after(60):
                for i in range(count):
                    if i in requests:
                        await bob.say(ping.format(i).encode())
                    else:
                        await bob.say(message("alice@localhost/r", i, body="x" * 4000))
                while "alice" in service.sessions:  # dropped at the send timeout
                    await trio.sleep(0.01)
                await bob.say(b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
                while b"id='p'" not in bob_got.data:  # answered after all that came before
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        with trio.fail_after(10):
            alice_got = await alice.until_eof()
        assert "a send did not finish within 0.5s" in caplog.text
        later = await logged_in(running, "alice", "later")
        await later.say(b"<presence/>")
        messages = sorted(set(range(count)) - requests)
        delivered, stored = ids(alice_got), []
        with trio.fail_after(30):
            while len(delivered) + len(stored) < len(messages):
                stored += ids(await later.line())
    assert delivered + stored == messages  # in order, none lost, none twice
    # what its queue held at the cut, but for what the last write got out and
    # the IQs among it (bounced, not stored)
    assert len(stored) > RESUME_AT
    assert [i for i in bounced(bob_got.data) if i not in requests] == []  # no message came back
    got, back = set(ids(alice_got, IQ)), set(bounced(bob_got.data))
    assert got | back == requests and not got & back  # IQs: got, or back as errors
    assert back


async def stalled(running: RunningServer, user: str, resource: str) -> Client:
    """`user` logged in at `resource`, available, with a small receive buffer:
    it never reads again, so the send timeout cuts it once its queue is full."""
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(host_port(running.url))
    new = Client(trio.SocketStream(sock))
    await new.login(user, resource)
    await new.say(b"<presence/>")
    await new.settle()
    return new


async def received(client: Client) -> list[int]:
    """The ids of the whole messages a client that stopped reading had on
    their way to it (read now, until the server's end of the connection,
    then closed)."""
    data = client.buffer
    async with client.stream:
        with trio.fail_after(30), contextlib.suppress(trio.BrokenResourceError):
            while chunk := await client.stream.receive_some():
                data += chunk
    return ids(data)


async def test_a_message_to_a_bare_jid_whose_resources_are_all_cut_is_kept() -> None:
    # RFC 6121 8.5.2.1.1: a copy for each resource. When every copy is lost
    # (both resources stop reading and are cut by the send timeout), the
    # message is kept offline: the last copy lost decides, once.
    count = 3 * OUTGOING_STANZAS
    async with serve_xmpp(send_timeout=1, offline_limit=10 * count, offline_max_bytes=0) as running:
        service = running.server._services["xmpp"]  # type: ignore[index]
        assert isinstance(service, XmppService)
        resources = [await stalled(running, "alice", name) for name in ("a", "b")]
        bob = await logged_in(running, "bob")
        bob_got = Received(bob)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(bob_got.run)
            with trio.fail_after(120):
                for first in range(0, count, 100):
                    batch = range(first, min(count, first + 100))
                    data = b"".join(message("alice@localhost", i, body="x" * 2000) for i in batch)
                    await bob.say(data)
                await bob.say(b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
                while b"id='p'" not in bob_got.data:  # all routed (or kept)
                    await trio.sleep(0.01)
                while "alice" in service.sessions:  # both cut by the send timeout
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        got = [await received(resource) for resource in resources]
        later = await logged_in(running, "alice", "later")
        await later.say(b"<presence/>")
        stored: list[int] = []
        with trio.fail_after(30):
            while not stored or stored[-1] != count - 1:
                stored += ids(await later.line())
    print(f"{count} messages: {len(got[0])} and {len(got[1])} reached a, b; {len(stored)} kept")
    assert bounced(bob_got.data) == []  # kept, not bounced
    assert len(stored) == len(set(stored)) and stored == sorted(stored)  # once each, in order
    assert set(got[0]) | set(got[1]) | set(stored) == set(range(count))  # none vanished
    assert not set(stored) & (set(got[0]) | set(got[1]))  # kept only if no resource got it
    assert len(stored) >= OUTGOING_STANZAS


def queued(service: XmppService, user: str) -> int:
    """How many stanzas wait in the queue of `user`'s resource "a" (for its
    socket, once the kernel's buffers are full)."""
    return len(service.sessions[user]["a"]._outgoing or ())


async def test_a_shutdown_keeps_what_receivers_that_stopped_reading_had_queued(
    tmp_path: Path,
) -> None:
    # Receivers that stopped reading hold full queues (their senders wait)
    # when the server shuts down: the grace period ends, the writers are
    # stopped, and what they did not send is stored offline before the
    # database closes. After a restart with the same database each receiver
    # gets the rest, in order: nothing lost, nothing twice, no crash.
    settings = {**SETTINGS, "database": str(tmp_path / "xmpp.db"), "offline_limit": 10_000}
    settings["offline_max_bytes"] = 0
    users = [f"r{i}" for i in range(4)]
    limits = ConnectionLimits(send_timeout=60)  # the shutdown cuts them, not the send timeout
    async with serve("xmpp", settings=settings, limits=limits, graceful_timeout=1) as running:
        service = running.server._services["xmpp"]  # type: ignore[index]
        assert isinstance(service, XmppService)
        receivers = [await stalled(running, user, "a") for user in users]
        senders = [await logged_in(running, f"s{i}") for i in range(len(users))]
        counters = running.server.runtime.counters
        parsed_before = counters.requests  # from now on, only the senders' messages

        async def flood(sender: Client, to: str) -> None:  # until cancelled
            for first in itertools.count(0, 100):
                await sender.say(
                    b"".join(message(to, i, body="x" * 2000) for i in range(first, first + 100))
                )

        async with trio.open_nursery() as nursery:
            for sender, user in zip(senders, users, strict=True):
                nursery.start_soon(flood, sender, f"{user}@localhost/a")
            with trio.fail_after(60):  # until every queue is long and stuck
                before: list[int] = []
                while (now := [queued(service, user) for user in users]) != before or min(
                    now
                ) < RESUME_AT:
                    before = now
                    await trio.sleep(0.5)
            nursery.cancel_scope.cancel()  # the senders stop writing; the server holds on
    read = counters.requests - parsed_before  # every message the server read, to the end
    got = [await received(receiver) for receiver in receivers]
    reached = 0
    async with serve("xmpp", settings=settings) as running:
        for user, before in zip(users, got, strict=True):
            later = await logged_in(running, user, "later")
            await later.say(b"<presence/>")
            stored = ids(b"\n".join(await later.settle()))
            print(f"{user}: {len(before)} read before the shutdown, {len(stored)} kept")
            assert len(stored) > RESUME_AT
            assert before + stored == list(range(len(before) + len(stored))), user
            reached += len(before) + len(stored)
    assert reached == read  # the last ones too: those queued, and those read, not routed


async def test_a_client_cannot_forge_the_servers_delay(running: RunningServer) -> None:
    # A <delay/> from the server's domain is the server's to give: a client's
    # is dropped, and the message stored gets the server's own stamp; a
    # client's delay from elsewhere (its own, XEP-0203 allows it) stays.
    bob = await logged_in(running, "bob")
    forged = "<delay xmlns='urn:xmpp:delay' from='LOCALHOST' stamp='2001-01-01T00:00:00Z'/>"
    own = "<delay xmlns='urn:xmpp:delay' from='bob@localhost/r' stamp='2002-02-02T00:00:00Z'/>"
    body = f"<body>hi</body>{forged}{own}"
    await bob.say(f"<message to='alice@localhost' id='1' type='chat'>{body}</message>".encode())
    assert await bob.settle() == []
    (got,) = await arrive(running, "alice")
    delays = [(d.get("from"), d.get("stamp", "")[:4]) for d in got.iter(DELAY)]
    assert delays == [
        ("bob@localhost/r", "2002"),
        ("localhost", time.strftime("%Y", time.gmtime())),
    ]


async def test_past_the_byte_cap_the_sender_is_told_too() -> None:
    async with serve_xmpp(offline_max_bytes=10_000) as running:
        bob = await logged_in(running, "bob")
        for i in range(5):
            await bob.say(message("alice@localhost", i, body="x" * 3000))
        errors = parsed(await bob.settle())
        assert [e.get("id") for e in errors] == ["3", "4"]  # 3 of about 3.1 KB fit in 10,000
        text = errors[0].findtext(f"error/{STANZAS}text") or ""
        assert "mailbox is full (1000 messages or 10,000 bytes)" in text
        assert [m.get("id") for m in await arrive(running, "alice")] == ["0", "1", "2"]
