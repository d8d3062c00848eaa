# How big a roster may grow, from outside with raw clients against a server
# with a database of real users: --xmpp-max-roster-items caps the items a
# roster set, a subscription request, a pre-approval or an accepted request
# adds (not-allowed, with the limit in the text; changing or removing an
# item still works); a pre-approval for a user who does not exist is not
# kept; pre-approvals are counted with subscription requests against
# --xmpp-subscriptions-per-minute.
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from netsvc.testing import RunningServer, serve
from protocols.xmpp import Store
from tests.protocols.xmpp.rawclient import Client
from tests.protocols.xmpp.test_roster import presence, roster

ROSTER = "{jabber:iq:roster}"
STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
USERS = ["alice", "bob", *(f"u{i}" for i in range(8))]


@asynccontextmanager
async def serve_users(tmp_path: Path, **settings: Any) -> AsyncIterator[RunningServer]:
    """A server whose database has USERS, each with the password "pw"."""
    path = tmp_path / "xmpp.db"
    store = Store(str(path))
    for name in USERS:
        store.add_user(name, "pw")
    store.close()
    settings = {"database": str(path), "max_bytes_per_second": 0, **settings}
    async with serve("xmpp", settings=settings) as running:
        yield running


async def online(running: RunningServer, user: str) -> Client:
    client = Client(await running.connect())
    await client.login(user)
    await client.say(b"<presence/><iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
    await client.settle()
    return client


def roster_set(jid: str, name: str = "", id: str = "s") -> bytes:
    return (
        f"<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'>"
        f"<item jid='{jid}' name='{name}'/></query></iq>"
    ).encode()


async def answers(client: Client, data: bytes) -> list[ET.Element]:
    await client.say(data)
    return [ET.fromstring(line) for line in await client.settle()]


def errors(stanzas: list[ET.Element]) -> list[tuple[str, str, str]]:
    """(error type, condition, text) of each error among `stanzas`."""
    found = []
    for stanza in stanzas:
        if stanza.get("type") == "error":
            error = stanza.find("error")
            assert error is not None
            condition = next(c.tag for c in error if c.tag != f"{STANZAS}text")
            text = error.findtext(f"{STANZAS}text") or ""
            found.append((error.get("type", ""), condition.removeprefix(STANZAS), text))
    return found


FULL = ("cancel", "not-allowed", "your roster is full: at most 3 contacts (remove one first)")


async def test_a_full_roster_takes_no_new_item(tmp_path: Path) -> None:
    async with serve_users(tmp_path, max_roster_items=3, subscriptions_per_minute=0) as running:
        alice = await online(running, "alice")
        for jid in ("u0@localhost", "u1@localhost", "elsewhere@example.org"):
            assert errors(await answers(alice, roster_set(jid))) == []
        # a roster set that adds a fourth item
        assert errors(await answers(alice, roster_set("u2@localhost"))) == [FULL]
        # a subscription request, a pre-approval to a new contact
        assert errors(await answers(alice, presence("subscribe", "u3@localhost"))) == [FULL]
        assert errors(await answers(alice, presence("subscribed", "u4@localhost"))) == [FULL]
        # accepting a request from someone not in the roster adds them too
        bob = await online(running, "bob")
        await answers(bob, presence("subscribe", "alice@localhost"))
        assert errors(await answers(alice, presence("subscribed", "bob@localhost"))) == [FULL]
        assert sorted(await roster(alice)) == [
            "elsewhere@example.org",
            "u0@localhost",
            "u1@localhost",
        ]
        assert (await roster(bob))["alice@localhost"].get("ask") == "subscribe"  # unanswered
        # items already there may change, and be subscribed to
        assert errors(await answers(alice, roster_set("u0@localhost", "Zero"))) == []
        assert errors(await answers(alice, presence("subscribe", "u1@localhost"))) == []
        assert (await roster(alice))["u0@localhost"].get("name") == "Zero"
        # one removed makes room for one
        await answers(
            alice,
            b"<iq type='set' id='rm'><query xmlns='jabber:iq:roster'>"
            b"<item jid='elsewhere@example.org' subscription='remove'/></query></iq>",
        )
        assert errors(await answers(alice, presence("subscribed", "bob@localhost"))) == []
        assert (await roster(alice))["bob@localhost"].get("subscription") == "from"
        assert errors(await answers(alice, roster_set("u2@localhost"))) == [FULL]


async def test_the_cap_can_be_lifted(tmp_path: Path) -> None:
    async with serve_users(tmp_path, max_roster_items=0) as running:
        alice = await online(running, "alice")
        await alice.say(b"".join(roster_set(f"c{i}@example.org", id=f"s{i}") for i in range(1200)))
        assert len(await roster(alice)) == 1200


async def test_a_pre_approval_for_nobody_is_not_kept(tmp_path: Path) -> None:
    async with serve_users(tmp_path) as running:
        alice = await online(running, "alice")
        assert await answers(alice, presence("subscribed", "ghost@localhost")) == []  # no push
        got = await answers(alice, presence("subscribed", "bob@localhost"))
        assert [p.get("type") for p in got] == ["set"]  # the push of the pre-approval
        items = await roster(alice)
        assert list(items) == ["bob@localhost"] and items["bob@localhost"].get("approved") == "true"


async def test_pre_approvals_count_against_the_subscription_rate(tmp_path: Path) -> None:
    async with serve_users(tmp_path, subscriptions_per_minute=3) as running:
        alice = await online(running, "alice")
        got = await answers(
            alice,
            presence("subscribe", "u0@localhost")
            + b"".join(presence("subscribed", f"u{i}@localhost") for i in range(1, 5)),
        )
        rate = "too many subscription requests and pre-approvals: at most 3 a minute"
        assert errors(got) == [("wait", "policy-violation", rate)] * 2
        refused = [p.get("from") for p in got if p.get("type") == "error"]
        assert refused == ["u3@localhost", "u4@localhost"]
        assert sorted(await roster(alice)) == ["u0@localhost", "u1@localhost", "u2@localhost"]
        # answering a request is not limited: that is the other user's request
        for i in range(5, 8):
            user = await online(running, f"u{i}")
            await answers(user, presence("subscribe", "alice@localhost"))
        got = await answers(
            alice, b"".join(presence("subscribed", f"u{i}@localhost") for i in range(5, 8))
        )
        assert errors(got) == []
