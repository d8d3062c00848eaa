# The XMPP session's output and what an idle one keeps, in-process over real
# sockets: an idle session holds no writer task, no queue and no expat parser;
# a sender whose receiver has OUTGOING_STANZAS queued waits (and is not read)
# while others go on; a receiver that never reads is dropped once a send
# outlasts send_timeout, even in the middle of a stanza, and what it did not
# get goes back to the senders as errors, none lost; what is queued when
# a session ends is still sent before the connection closes; a stanza split
# across reads survives the parser's hibernation between them.
from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from netsvc import SendTimeout
from netsvc.testing import RunningServer
from protocols.xmpp._service import XmppService
from protocols.xmpp._session import OUTGOING_STANZAS, Session, _unsent
from tests.protocols.xmpp.rawclient import Client, Received, serve_xmpp


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


def message(to: bytes, size: int = 1000, id: int = 0) -> bytes:
    return b"<message to='%s' type='chat' id='%d'><body>%s</body></message>" % (to, id, b"x" * size)


COMPLETE_MESSAGE = re.compile(rb"<message [^>]*\bid='(\d+)'[^>]*>.*?</message>")
BOUNCE = re.compile(rb"<message [^>]*\btype='error'[^>]*>")


def ids(data: bytes, pattern: re.Pattern[bytes] = COMPLETE_MESSAGE) -> list[int]:
    """The ids of the whole messages in `data` (not errors), in order."""
    return [int(m.group(1)) for m in pattern.finditer(data) if not BOUNCE.match(m.group(0))]


def bounced_ids(data: bytes) -> list[int]:
    found = re.finditer(rb"<message [^>]*\btype='error'[^>]*>", data)
    return [int(re.search(rb"\bid='(\d+)'", m.group(0)).group(1)) for m in found]  # type: ignore[union-attr]


async def wait_until_full(running: RunningServer, user: str) -> None:
    with trio.fail_after(20):
        while not session(running, user).full:
            await trio.sleep(0.01)


async def test_a_flood_waits_for_a_slow_reader_and_loses_nothing(
    running: RunningServer,
) -> None:
    alice = await client(running, "alice")  # reads nothing for now
    bob = await client(running, "bob")
    carol = await client(running, "carol")
    count = 3 * OUTGOING_STANZAS
    pong_at = math.inf
    async with trio.open_nursery() as nursery:

        async def flood() -> None:
            nonlocal pong_at
            for i in range(count):
                await bob.say(message(b"alice@localhost/r", 16_000, id=i))
            await bob.ping()  # answered once everything before it was routed
            pong_at = trio.current_time()

        nursery.start_soon(flood)
        await wait_until_full(running, "alice")
        # bob waits on alice's queue, and his connection is not read meanwhile;
        # carol is answered at once
        with trio.fail_after(5):
            await carol.ping()
        await trio.sleep(0.5)
        queued = session(running, "alice")._outgoing
        assert queued is not None and len(queued) <= OUTGOING_STANZAS
        assert pong_at == math.inf and not session(running, "alice").closed
        # alice reads: every message arrives, in order, and bob goes on
        reading_from = trio.current_time()
        received: list[int] = []
        with trio.fail_after(60):
            while len(received) < count:
                received += ids(await alice.line())  # one stanza per line
    assert received == list(range(count))
    assert reading_from < pong_at < math.inf
    assert not session(running, "alice").closed and not session(running, "bob").closed


async def test_many_senders_flooding_many_readers_lose_nothing(running: RunningServer) -> None:
    # the routing benchmark that lost messages: senders outpace the readers'
    # writer tasks on the same event loop; now they wait instead
    pairs, each = 10, 1500
    senders = [await client(running, f"s{i}") for i in range(pairs)]
    readers = [await client(running, f"r{i}") for i in range(pairs)]
    got = [[] for _ in range(pairs)]  # type: list[list[int]]

    async def send(i: int) -> None:
        to = f"r{i}@localhost/r".encode()
        for start in range(0, each, 50):
            await senders[i].say(b"".join(message(to, 200, id=n) for n in range(start, start + 50)))

    async def read(i: int) -> None:
        while len(got[i]) < each:
            got[i] += ids(await readers[i].line())

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for i in range(pairs):
                nursery.start_soon(send, i)
                nursery.start_soon(read, i)
    assert got == [list(range(each))] * pairs
    assert all(not session(running, f"r{i}").closed for i in range(pairs))


async def test_a_client_that_does_not_read_its_answers_is_not_read(
    running: RunningServer,
) -> None:
    alice = await client(running, "alice")  # asks and asks, reads nothing for now
    carol = await client(running, "carol")
    count = 40_000  # their answers are more than the sockets' buffers hold
    disco = b"<iq type='get' id='%d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    async with trio.open_nursery() as nursery:

        async def ask() -> None:
            for i in range(0, count, 100):
                await alice.say(b"".join(disco % n for n in range(i, i + 100)))

        nursery.start_soon(ask)
        await wait_until_full(running, "alice")
        # reads wait while her queue is full: it goes past the limit by at
        # most what one read asks for, however long she does not read
        limit = OUTGOING_STANZAS + running.server._listeners[0].limits.receive_size // 80
        queued = session(running, "alice")._outgoing
        assert queued is not None
        sizes = []
        for _ in range(5):
            sizes.append(len(queued))
            await trio.sleep(0.1)
        assert max(sizes) <= limit, sizes
        with trio.fail_after(5):
            await carol.ping()  # others are served
        answered = 0
        with trio.fail_after(60):
            while answered < count:
                answered += (await alice.line()).startswith(b"<iq ")
    assert not session(running, "alice").closed


async def test_a_receiver_that_never_reads_is_dropped_and_its_messages_go_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # with offline storage off (test_offline.py: with it, they are stored)
    caplog.set_level(logging.INFO, "netsvc")
    async with serve_xmpp(send_timeout=0.5, offline_limit=0) as running:
        alice = await client(running, "alice")  # never reads
        bob = await client(running, "bob")
        count = 2 * OUTGOING_STANZAS
        bob_got = Received(bob)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(bob_got.run)
            with trio.fail_after(30):
                for i in range(count):
                    await bob.say(message(b"alice@localhost/r", 4000, id=i))
                while "alice" in service(running).sessions:  # dropped at the send timeout
                    await trio.sleep(0.01)
                await bob.say(b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
                while b"id='p'" not in bob_got.data:  # answered after all that came before
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        with trio.fail_after(10):
            alice_got = await alice.until_eof()
        assert "a send did not finish within 0.5s" in caplog.text
    delivered, bounced = ids(alice_got), bounced_ids(bob_got.data)
    assert delivered == list(range(len(delivered)))  # in order, none skipped
    assert sorted(set(delivered) | set(bounced)) == list(range(count))  # none vanished
    assert not set(delivered) & set(bounced)  # and none both
    assert len(bounced) >= OUTGOING_STANZAS


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
        with trio.fail_after(5):  # the session's handler ends with the send timeout
            while writers(running) or "a send did not finish within 0.5s" not in caplog.text:
                await trio.sleep(0.05)
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


def test_a_cut_write_hands_on_the_stanzas_that_did_not_go_out_whole() -> None:
    # the writer sends many stanzas in one write; when it fails, those the
    # connection says went out count as delivered, the rest go on to offline
    # storage or back to their senders; all of them when nobody knows (TLS)
    batch = [(b"a" * 10, None), (b"b" * 20, None), (b"c" * 30, None)]
    for sent, left in [(0, 3), (9, 3), (10, 2), (29, 2), (30, 1), (59, 1), (60, 0), (None, 3)]:
        timeout = SendTimeout("cut")
        timeout.sent = sent
        assert _unsent(batch, timeout) == batch[3 - left :], sent
    assert _unsent(batch, RuntimeError("cancelled")) == batch  # any other end: not known
