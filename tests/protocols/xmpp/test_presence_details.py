# RFC 6121 details, from outside with raw clients: presence probes (4.3: a
# subscriber gets the contact's presence, or unavailable if it is offline;
# anyone else nothing); the user who unsubscribes gets unavailable presence
# from each of the contact's resources (3.3.3), also when a roster item is
# removed (2.5.2); a message to an offline user that carries only a chat
# state (XEP-0085) is dropped, and one with XEP-0334's <no-store/> bounces,
# neither kept offline, even when a receiver cut by the send timeout had
# them queued; roster pushes wait for a slow reader's queue (flow control)
# rather than cut it; and removing an account deletes its offline messages.
from __future__ import annotations

import contextlib
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from netsvc import ConnectionLimits
from netsvc.testing import RunningServer, serve
from protocols.xmpp import Store
from protocols.xmpp._session import HARD_LIMIT
from tests.protocols.xmpp.rawclient import Client
from tests.protocols.xmpp.test_roster import online, presence, roster, send
from tests.serveprocess import host_port

SETTINGS = {"insecure_any_password": True, "max_bytes_per_second": 0}
STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


@contextlib.asynccontextmanager
async def serving(send_timeout: float = 10, **settings: object) -> AsyncIterator[RunningServer]:
    limits = ConnectionLimits(send_timeout=send_timeout)
    async with serve("xmpp", settings={**SETTINGS, **settings}, limits=limits) as running:
        yield running


async def subscribed(user: Client, contact: Client, user_jid: str, contact_jid: str) -> None:
    """`user` subscribed to `contact` (To; the contact has From)."""
    await send(presence("subscribe", contact_jid), user, contact)
    await send(presence("subscribed", user_jid), contact, user)
    await user.settle()


def presences(stanzas: list[ET.Element]) -> list[tuple[str | None, str | None]]:
    return [(p.get("from"), p.get("type")) for p in stanzas if p.tag == "presence"]


async def test_a_probe_answers_subscribers_only() -> None:
    async with serving() as running:
        u, c = await online(running, "u"), await online(running, "c")
        await c.say(b"<presence><show>away</show></presence>")
        await c.settle()
        stranger = await online(running, "s")
        (got,) = await send(b"<presence type='probe' to='c@localhost'/>", stranger, stranger)
        assert got == []  # not subscribed: nothing, not even unavailable
        await subscribed(u, c, "u@localhost", "c@localhost")
        (got,) = await send(b"<presence type='probe' to='c@localhost'/>", u, u)
        assert [(p.get("from"), p.findtext("show")) for p in got] == [("c@localhost/r", "away")]
        await c.say(b"<presence type='unavailable'/>")  # 4.3.2: offline, said so
        await c.settle()
        await u.settle()
        (got,) = await send(b"<presence type='probe' to='c@localhost'/>", u, u)
        assert presences(got) == [("c@localhost", "unavailable")]
        (got,) = await send(b"<presence type='probe' to='c@localhost'/>", stranger, stranger)
        assert got == []


async def test_unsubscribing_brings_unavailable_from_each_resource() -> None:
    async with serving() as running:
        u, c = await online(running, "u"), await online(running, "c")
        c2 = await online(running, "c", "r2")
        await subscribed(u, c, "u@localhost", "c@localhost")
        await c2.settle()
        (got,) = await send(presence("unsubscribe", "c@localhost"), u, u)
        assert sorted(presences(got)) == [
            ("c@localhost/r", "unavailable"),
            ("c@localhost/r2", "unavailable"),
        ]
        # removing the item does the same (RFC 6121 2.5.2)
        await subscribed(u, c, "u@localhost", "c@localhost")
        remove = (
            b"<iq type='set' id='rm'><query xmlns='jabber:iq:roster'>"
            b"<item jid='c@localhost' subscription='remove'/></query></iq>"
        )
        (got,) = await send(remove, u, u)
        assert sorted(presences(got)) == [
            ("c@localhost/r", "unavailable"),
            ("c@localhost/r2", "unavailable"),
        ]


CHAT_STATE = (
    b"<message to='off@localhost' type='chat' id='cs'>"
    b"<composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
)
NO_STORE = (
    b"<message to='off@localhost' type='chat' id='ns'><body>now or never</body>"
    b"<no-store xmlns='urn:xmpp:hints'/></message>"
)
KEPT = b"<message to='off@localhost' type='chat' id='kept'><body>later</body></message>"


async def test_chat_states_and_no_store_messages_are_not_kept_offline() -> None:
    async with serving() as running:
        sender = await online(running, "sender")
        await sender.say(CHAT_STATE + NO_STORE + KEPT)
        got = [ET.fromstring(line) for line in await sender.settle()]
        assert [(m.get("id"), m.get("type")) for m in got] == [("ns", "error")]
        error = got[0].find("error")
        assert error is not None and error.find(f"{STANZAS}service-unavailable") is not None
        off = Client(await running.connect())
        await off.login("off")
        await off.say(b"<presence/>")
        delivered = [ET.fromstring(line) for line in await off.settle()]
        assert [m.get("id") for m in delivered if m.tag == "message"] == ["kept"]


async def test_a_cut_receiver_keeps_neither_chat_states_nor_no_store_messages() -> None:
    async with serving(send_timeout=0.5) as running:
        sender = await online(running, "sender")
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(host_port(running.url))
        off = Client(trio.SocketStream(sock))
        await off.login("off")
        await off.say(b"<presence/>")
        await off.settle()  # from now on it does not read: cut by the send timeout
        filler = b"<body>" + b"x" * 30_000 + b"</body>"
        flood = KEPT.replace(b"<body>later</body>", filler).replace(b"'kept'", b"'f'")
        async with off.stream:
            await sender.say(flood * 100 + CHAT_STATE + NO_STORE + KEPT)
            with trio.fail_after(60):  # until the send timeout cuts off
                while b"id='ns'" not in (line := await sender.line()):
                    assert b"type='error'" not in line, line
            assert b"type='error'" in line
            got = [ET.fromstring(line) for line in await sender.settle()]
            assert [m for m in got if m.get("type") == "error"] == []  # only that one
        again = Client(await running.connect())
        await again.login("off", "again")
        await again.say(b"<presence/>")
        kept = [ET.fromstring(line) for line in await again.settle()]
        ids = [m.get("id") for m in kept if m.tag == "message"]
        assert ids and ids[-1] == "kept" and set(ids) <= {"f", "kept"}


async def test_roster_pushes_wait_for_a_slow_reader() -> None:
    # past HARD_LIMIT stanzas queued a client counts as not reading and is
    # cut: pushes that did not wait for its queue would get there (each of
    # 1 KB, so that they fill the kernel's buffers too)
    count = HARD_LIMIT + 500
    async with serving(send_timeout=60, max_roster_items=0) as running:
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(host_port(running.url))
        slow = Client(trio.SocketStream(sock))
        await slow.login("u", "slow")
        await slow.say(b"<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
        await slow.line()  # the roster: it gets pushes from now on, and reads no more
        busy = await online(running, "u", "busy")
        sets = b"".join(
            f"<iq type='set' id='s{i}'><query xmlns='jabber:iq:roster'>"
            f"<item jid='c{i}@example.org' name='{'n' * 1000}'/></query></iq>".encode()
            for i in range(count)
        )

        done = trio.Event()

        async def send_all() -> None:  # and read the answers meanwhile, as clients do
            last = f"id='s{count - 1}'".encode()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(busy.say, sets)
                while last not in await busy.line():
                    pass
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_all)
            with trio.move_on_after(5):
                await done.wait()
            assert not done.is_set()  # busy waits for slow's queue (and is not read)
            pushed = []
            with trio.fail_after(120):
                while len(pushed) < count:  # an EOF here: slow was cut
                    item = ET.fromstring(await slow.line()).find(".//{jabber:iq:roster}item")
                    assert item is not None
                    pushed.append(item.get("jid", ""))
                await done.wait()
        await slow.stream.aclose()
        assert pushed == [f"c{i}@example.org" for i in range(count)]  # all, in order


async def test_removing_an_account_deletes_its_offline_messages(tmp_path: Path) -> None:
    path = tmp_path / "xmpp.db"
    store = Store(str(path))
    for name in ("alice", "bob"):
        store.add_user(name, "pw")
    store.close()
    async with serve("xmpp", settings={"database": str(path)}) as running:
        bob = Client(await running.connect())
        await bob.login("bob")
        await bob.say(
            b"<message to='alice@localhost' type='chat'><body>1</body></message>"
            b"<message to='alice@localhost' type='chat'><body>2</body></message>"
        )
        await bob.settle()
        alice = Client(await running.connect())
        await alice.login("alice")  # no presence: the messages stay stored
        await alice.say(
            b"<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>"
        )
        assert b"type='result'" in await alice.line()
        await alice.until_eof()
    store = Store(str(path))
    try:
        assert store.users() == ["bob"]
        assert store.offline_count("alice") == 0
        store.add_user("alice", "pw")  # a new alice gets nothing of the old one's
    finally:
        store.close()
    async with serve("xmpp", settings={"database": str(path)}) as running:
        alice = Client(await running.connect())
        await alice.login("alice")
        await alice.say(b"<presence/>")
        assert [line for line in await alice.settle() if line.startswith(b"<message")] == []
        assert await roster(alice) == {}
