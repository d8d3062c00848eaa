# The XMPP session's output and what an idle one keeps, in-process over real
# sockets: an idle session holds no writer task, no queue and no expat parser;
# stanzas routed to a client that stopped reading never hold up their sender;
# that client is disconnected once OUTGOING_STANZAS wait for it or a send
# outlasts send_timeout, even in the middle of a stanza; what is queued when
# a session ends is still sent before the connection closes; a stanza split
# across reads survives the parser's hibernation between them.
from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from netsvc import ConnectionLimits
from netsvc.testing import RunningServer, serve
from protocols.xmpp._service import XmppService
from protocols.xmpp._session import OUTGOING_STANZAS, Session
from tests.protocols.xmpp.rawclient import Client

SETTINGS = {"insecure_any_password": True, "max_bytes_per_second": 0}


@contextlib.asynccontextmanager
async def serve_xmpp(send_timeout: float = 10) -> AsyncIterator[RunningServer]:
    limits = ConnectionLimits(send_timeout=send_timeout)
    async with serve("xmpp", settings=SETTINGS, limits=limits) as running:
        yield running


@pytest.fixture
async def running() -> AsyncIterator[RunningServer]:
    async with serve_xmpp() as running:
        yield running


def service(running: RunningServer) -> XmppService:
    service = running.server._services["xmpp"]  # type: ignore[index]
    assert isinstance(service, XmppService)
    return service


def session(running: RunningServer, user: str) -> Session:
    return service(running).sessions[user]["r"]


def writers(running: RunningServer) -> list[trio.lowlevel.Task]:
    return [task for task in service(running).nursery.child_tasks if task.name.endswith("_write")]


async def client(running: RunningServer, user: str) -> Client:
    new = Client(await running.connect())
    await new.login(user)
    return new


async def test_an_idle_session_keeps_no_writer_queue_or_parser(running: RunningServer) -> None:
    alice = await client(running, "alice")
    await alice.say(b"<presence/>")
    await alice.ping()
    await trio.testing.wait_all_tasks_blocked()
    idle = session(running, "alice")
    assert idle._outgoing is None
    assert idle.parser._parser is None
    assert writers(running) == []
    await alice.say(b"<message to='alice@localhost/r'><body>")  # half a stanza
    await trio.testing.wait_all_tasks_blocked()
    assert idle.parser._parser is not None  # kept until the stanza is whole
    await alice.say(b"hi</body></message>")
    assert b"<body>hi</body>" in await alice.line()
    await trio.testing.wait_all_tasks_blocked()
    assert idle.parser._parser is None
    assert writers(running) == []


def message(to: bytes, size: int = 1000) -> bytes:
    return b"<message to='" + to + b"' type='chat'><body>" + b"x" * size + b"</body></message>"


async def flood_until_closed(running: RunningServer, sender: Client, user: str) -> int:
    """Send messages to a user who does not read until their session ends."""
    stuck = session(running, user)
    sent = 0
    with trio.fail_after(10):
        while not stuck.closed:
            await sender.say(message(f"{user}@localhost/r".encode()))
            sent += 1
    return sent


async def test_a_client_that_stops_reading_is_dropped_and_holds_up_nobody(
    running: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await client(running, "alice")  # reads nothing until the end
    bob = await client(running, "bob")
    sent = await flood_until_closed(running, bob, "alice")
    assert f"closing: {OUTGOING_STANZAS} stanzas queued and not read" in caplog.text
    await bob.ping()  # answered while alice's writer waits for her to read:
    assert writers(running) != []  # nothing routed to alice ever waited on her
    with trio.fail_after(10):
        received = await alice.until_eof()  # what was queued, then the end
    assert OUTGOING_STANZAS < received.count(b"<message ") < sent
    assert "alice" not in service(running).sessions
    assert writers(running) == []


async def test_a_send_past_the_send_timeout_ends_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "netsvc")
    async with serve_xmpp(send_timeout=0.5) as running:
        alice = await client(running, "alice")  # reads nothing until the end
        await alice.say(b"<message><body>")  # and is in the middle of a stanza
        bob = await client(running, "bob")
        # big stanzas fill her socket's buffers, sent slowly enough that her
        # queue cannot reach its cap (OUTGOING_STANZAS) within the send timeout
        stuck = session(running, "alice")
        with trio.fail_after(30):
            while not stuck.closed:
                await bob.say(message(b"alice@localhost/r", 16_000))
                await trio.sleep(0.005)
        with trio.fail_after(5):
            while writers(running):
                await trio.sleep(0.05)
        assert "a send did not finish within 0.5s" in caplog.text
        with trio.fail_after(5):  # at once, not at the request timeout (30 s)
            await alice.until_eof()


async def test_what_is_queued_when_a_session_ends_is_sent_first(running: RunningServer) -> None:
    alice = await client(running, "alice")
    bob = await client(running, "bob")
    count = OUTGOING_STANZAS - 24  # 16 MB: more than the kernel's buffers hold
    for _ in range(count):
        await bob.say(message(b"alice@localhost/r", 16_000))
    await bob.ping()  # all routed to alice; what her socket does not take is queued
    assert session(running, "alice")._outgoing
    await alice.say(b"<message><<")  # a stream error: the session ends
    with trio.fail_after(10):
        received = await alice.until_eof()
    assert received.count(b"<message ") == count
    assert b"<not-well-formed " in received
    assert received.endswith(b"</stream:error></stream:stream>\n")


async def test_a_stanza_split_across_reads_survives_hibernation(running: RunningServer) -> None:
    alice = await client(running, "alice")
    stanza = b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"
    for i in range(len(stanza)):
        await alice.say(stanza[i : i + 1])
        await trio.testing.wait_all_tasks_blocked()  # each byte is a read of its own
    assert b"id='p'" in await alice.line()
    await alice.say(b"  \n")  # a keepalive
    await trio.testing.wait_all_tasks_blocked()
    assert session(running, "alice").parser._parser is None
    await alice.say(b"</stream:stream>")
    with trio.fail_after(5):
        assert await alice.until_eof() == b"</stream:stream>\n"
