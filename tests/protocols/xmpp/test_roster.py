# Rosters and presence subscriptions (RFC 6121 sections 2-3), from outside
# with raw clients: every row of the subscription state tables of Appendix A
# (the user's state with a contact before and after each of the four
# subscription stanzas, sent and received, and whether a received one is
# delivered), the same tables against _roster's functions, roster get, set
# and remove with their errors and pushes to each resource that asked for the
# roster, requests re-sent at login until answered, pre-approvals, probes
# and broadcasts that follow the subscriptions, directed presence, the
# subscription rate limit, bots; then slixmpp's roster adding a contact, kept
# across a restart of a server with a database.
from __future__ import annotations

import asyncio
import random
import threading
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import slixmpp
import trio

from netsvc.testing import RunningServer, serve
from protocols.xmpp._roster import Item, inbound, outbound
from tests.protocols.xmpp.rawclient import Client
from tests.serveprocess import ServeProcess, host_port

SETTINGS = {"insecure_any_password": True, "max_bytes_per_second": 0}
ROSTER = "{jabber:iq:roster}"
STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


@pytest.fixture
async def running() -> AsyncIterator[RunningServer]:
    async with serve("xmpp", settings=SETTINGS) as running:
        yield running


async def online(running: RunningServer, user: str, resource: str = "r") -> Client:
    """A client logged in as user/resource, available and interested in its
    roster (it asked for it), with what that brought already read."""
    client = Client(await running.connect())
    await client.login(user, resource)
    await client.say(
        b"<presence/><iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>"
    )
    await client.settle()
    return client


def presence(kind: str, to: str) -> bytes:
    return f"<presence type='{kind}' to='{to}'/>".encode()


async def send(data: bytes, sender: Client, *others: Client) -> list[list[ET.Element]]:
    """`data` from `sender`; then what each of `others` got because of it."""
    await sender.say(data)
    own = await sender.settle()  # handled, and whatever it caused queued for the others
    got = []
    for other in others:
        lines = own if other is sender else await other.settle()
        got.append([ET.fromstring(line) for line in lines])
    return got


async def roster(client: Client) -> dict[str, ET.Element]:
    await client.settle()
    await client.say(b"<iq type='get' id='get'><query xmlns='jabber:iq:roster'/></iq>")
    result = ET.fromstring(await client.line())
    assert result.get("type") == "result" and result.get("id") == "get"
    return {item.get("jid", ""): item for item in result.iter(f"{ROSTER}item")}


async def requests_at_login(running: RunningServer, user: str) -> list[str]:
    """Who has a subscription request waiting for `user`: what a new resource
    of theirs is sent when it becomes available."""
    client = Client(await running.connect())
    await client.login(user, "check")
    await client.say(b"<presence/>")
    found = [ET.fromstring(line) for line in await client.settle()]
    await client.stream.aclose()
    return [p.get("from", "") for p in found if p.get("type") == "subscribe"]


# -- RFC 6121 Appendix A ---------------------------------------------------------

# how the user (u) and the contact (c) reach each state of the user's
STATES: dict[str, list[tuple[str, str]]] = {
    "None": [],
    "None + Pending Out": [("u", "subscribe")],
    "None + Pending In": [("c", "subscribe")],
    "None + Pending Out+In": [("u", "subscribe"), ("c", "subscribe")],
    "To": [("u", "subscribe"), ("c", "subscribed")],
    "To + Pending In": [("u", "subscribe"), ("c", "subscribed"), ("c", "subscribe")],
    "From": [("c", "subscribe"), ("u", "subscribed")],
    "From + Pending Out": [("c", "subscribe"), ("u", "subscribed"), ("u", "subscribe")],
    "Both": [("u", "subscribe"), ("c", "subscribed"), ("c", "subscribe"), ("u", "subscribed")],
}
SAME = "no change"
SUBSCRIPTION_KINDS = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")

# A.2: the user sends the stanza; the user's state before -> after
OUTBOUND: dict[str, dict[str, str]] = {
    "subscribe": {  # A.2.1
        "None": "None + Pending Out",
        "None + Pending Out": SAME,
        "None + Pending In": "None + Pending Out+In",
        "None + Pending Out+In": SAME,
        "To": SAME,
        "To + Pending In": SAME,
        "From": "From + Pending Out",
        "From + Pending Out": SAME,
        "Both": SAME,
    },
    "unsubscribe": {  # A.2.2
        "None": SAME,
        "None + Pending Out": "None",
        "None + Pending In": SAME,
        "None + Pending Out+In": "None + Pending In",
        "To": "None",
        "To + Pending In": "None + Pending In",
        "From": SAME,
        "From + Pending Out": "From",
        "Both": "From",
    },
    "subscribed": {  # A.2.3
        "None": SAME,
        "None + Pending Out": SAME,
        "None + Pending In": "From",
        "None + Pending Out+In": "From + Pending Out",
        "To": SAME,
        "To + Pending In": "Both",
        "From": SAME,
        "From + Pending Out": SAME,
        "Both": SAME,
    },
    "unsubscribed": {  # A.2.4
        "None": SAME,
        "None + Pending Out": SAME,
        "None + Pending In": "None",
        "None + Pending Out+In": "None + Pending Out",
        "To": SAME,
        "To + Pending In": "To",
        "From": "None",
        "From + Pending Out": "None + Pending Out",
        "Both": "To",
    },
}

# A.3: the contact sends the stanza; the user's state before -> (after, delivered)
INBOUND: dict[str, dict[str, tuple[str, bool]]] = {
    "subscribe": {  # A.3.1
        "None": ("None + Pending In", True),
        "None + Pending Out": ("None + Pending Out+In", True),
        "None + Pending In": (SAME, False),
        "None + Pending Out+In": (SAME, False),
        "To": ("To + Pending In", True),
        "To + Pending In": (SAME, False),
        "From": (SAME, False),
        "From + Pending Out": (SAME, False),
        "Both": (SAME, False),
    },
    "unsubscribe": {  # A.3.2
        "None": (SAME, False),
        "None + Pending Out": (SAME, False),
        "None + Pending In": ("None", True),
        "None + Pending Out+In": ("None + Pending Out", True),
        "To": (SAME, False),
        "To + Pending In": ("To", True),
        "From": ("None", True),
        "From + Pending Out": ("None + Pending Out", True),
        "Both": ("To", True),
    },
    "subscribed": {  # A.3.3
        "None": (SAME, False),
        "None + Pending Out": ("To", True),
        "None + Pending In": (SAME, False),
        "None + Pending Out+In": ("To + Pending In", True),
        "To": (SAME, False),
        "To + Pending In": (SAME, False),
        "From": (SAME, False),
        "From + Pending Out": ("Both", True),
        "Both": (SAME, False),
    },
    "unsubscribed": {  # A.3.4
        "None": (SAME, False),
        "None + Pending Out": ("None", True),
        "None + Pending In": (SAME, False),
        "None + Pending Out+In": ("None + Pending In", True),
        "To": ("None", True),
        "To + Pending In": ("None + Pending In", True),
        "From": (SAME, False),
        "From + Pending Out": ("From", True),
        "Both": ("From", True),
    },
}

OUTBOUND_ROWS = [
    (kind, state, after) for kind, rows in OUTBOUND.items() for state, after in rows.items()
]
INBOUND_ROWS = [
    (kind, state, after, delivered)
    for kind, rows in INBOUND.items()
    for state, (after, delivered) in rows.items()
]


def state_name(subscription: str, ask: bool, pending_in: bool) -> str:
    pending = {(True, True): "Out+In", (True, False): "Out", (False, True): "In"}.get(
        (ask, pending_in)
    )
    return subscription.capitalize() + (f" + Pending {pending}" if pending else "")


def state_of(name: str) -> tuple[Item | None, bool]:
    """A state name as _roster sees it: the item (None for plain None) and pending in."""
    subscription, _, pending = name.partition(" + Pending ")
    ask = pending in ("Out", "Out+In")
    item = Item("c@localhost", subscription=subscription.lower(), ask=ask)
    return (None if item == Item("c@localhost") else item), pending in ("In", "Out+In")


def name_of(item: Item | None, pending_in: bool) -> str:
    if item is None:
        return state_name("none", False, pending_in)
    return state_name(item.subscription, item.ask, pending_in)


@pytest.mark.parametrize(("kind", "state", "after"), OUTBOUND_ROWS)
def test_the_outbound_table_in_the_state_machine(kind: str, state: str, after: str) -> None:
    change = outbound(kind, "c@localhost", *state_of(state))
    assert name_of(change.item, change.pending_in) == (state if after == SAME else after)


@pytest.mark.parametrize(("kind", "state", "after", "delivered"), INBOUND_ROWS)
def test_the_inbound_table_in_the_state_machine(
    kind: str, state: str, after: str, delivered: bool
) -> None:
    change = inbound(kind, "c@localhost", *state_of(state))
    assert name_of(change.item, change.pending_in) == (state if after == SAME else after)
    assert change.passes == delivered


async def reach(state: str, u: Client, c: Client) -> None:
    for actor, kind in STATES[state]:
        sender, other = (u, c) if actor == "u" else (c, u)
        to = "c@localhost" if actor == "u" else "u@localhost"
        await send(presence(kind, to), sender, other)


async def user_state(running: RunningServer, u: Client, user: str = "u", contact: str = "c") -> str:
    """The user's state with the contact, from outside: the roster item's
    subscription and ask, and whether the contact's request is re-sent at
    the user's next login."""
    item = (await roster(u)).get(f"{contact}@localhost")
    subscription = item.get("subscription", "none") if item is not None else "none"
    ask = item is not None and item.get("ask") == "subscribe"
    pending_in = f"{contact}@localhost" in await requests_at_login(running, user)
    return state_name(subscription, ask, pending_in)


MIRROR = {"None": "None", "To": "From", "From": "To", "Both": "Both"}


def mirrored(state: str) -> str:
    """The contact's state when the user's is `state`: to and from swap, and
    so do pending out and pending in."""
    subscription, _, pending = state.partition(" + Pending ")
    pending = {"Out": "In", "In": "Out"}.get(pending, pending)
    return MIRROR[subscription] + (f" + Pending {pending}" if pending else "")


@pytest.mark.parametrize("seed", range(6))
async def test_both_sides_stay_mirror_images(running: RunningServer, seed: int) -> None:
    # random subscription stanzas, pre-approvals and roster removals from
    # either side: after each, the contact's state is the user's mirrored
    rng = random.Random(seed)
    u, c = await online(running, "u"), await online(running, "c")
    for _ in range(12):
        actor, other, to = rng.choice([(u, c, "c@localhost"), (c, u, "u@localhost")])
        kind = rng.choice([*SUBSCRIPTION_KINDS, "remove"])
        if kind == "remove":
            await send(roster_set(f"<item jid='{to}' subscription='remove'/>"), actor, other)
        else:
            await send(presence(kind, to), actor, other)
        mine = await user_state(running, u)
        assert await user_state(running, c, "c", "u") == mirrored(mine), (actor is u, kind)


@pytest.mark.parametrize("state", STATES)
async def test_each_state_is_reached(running: RunningServer, state: str) -> None:
    u, c = await online(running, "u"), await online(running, "c")
    await reach(state, u, c)
    assert await user_state(running, u) == state


@pytest.mark.parametrize(("kind", "state", "after"), OUTBOUND_ROWS)
async def test_the_user_sends_a_subscription_stanza_rfc_6121_a2(
    running: RunningServer, kind: str, state: str, after: str
) -> None:
    u, c = await online(running, "u"), await online(running, "c")
    await reach(state, u, c)
    await send(presence(kind, "c@localhost"), u, c)
    assert await user_state(running, u) == (state if after == SAME else after)


@pytest.mark.parametrize(("kind", "state", "after", "delivered"), INBOUND_ROWS)
async def test_the_user_receives_a_subscription_stanza_rfc_6121_a3(
    running: RunningServer, kind: str, state: str, after: str, delivered: bool
) -> None:
    u, c = await online(running, "u"), await online(running, "c")
    await reach(state, u, c)
    (got,) = await send(presence(kind, "u@localhost"), c, u)
    stanzas = [p for p in got if p.tag == "presence" and p.get("type") == kind]
    assert [p.get("from") for p in stanzas] == (["c@localhost"] if delivered else [])
    assert await user_state(running, u) == (state if after == SAME else after)


# -- subscriptions and presence ---------------------------------------------------


async def test_a_subscription_from_request_to_both(running: RunningServer) -> None:
    u, c = await online(running, "u"), await online(running, "c")
    # u asks: c gets the request (from u's bare JID); u's roster shows it pending
    (got,) = await send(
        b"<presence type='subscribe' to='c@localhost'><status>hi</status></presence>", u, c
    )
    request = next(p for p in got if p.get("type") == "subscribe")
    assert (request.get("from"), request.get("to"), request.findtext("status")) == (
        "u@localhost",
        "c@localhost",
        "hi",
    )
    item = (await roster(u))["c@localhost"]
    assert (item.get("subscription"), item.get("ask")) == ("none", "subscribe")
    # c approves: u is told, and gets c's presence at once
    (got,) = await send(presence("subscribed", "u@localhost"), c, u)
    kinds = [(p.tag, p.get("type"), p.get("from")) for p in got]
    assert ("presence", "subscribed", "c@localhost") in kinds
    assert ("presence", None, "c@localhost/r") in kinds
    item = (await roster(u))["c@localhost"]
    assert (item.get("subscription"), item.get("ask")) == ("to", None)
    assert (await roster(c))["u@localhost"].get("subscription") == "from"
    # u's presence now goes to c only when c subscribes too
    (got,) = await send(b"<presence><show>away</show></presence>", u, c)
    assert got == []
    await send(presence("subscribe", "u@localhost"), c, u)
    await send(presence("subscribed", "c@localhost"), u, c)
    (got,) = await send(b"<presence><show>dnd</show></presence>", u, c)
    assert [(p.get("from"), p.findtext("show")) for p in got] == [("u@localhost/r", "dnd")]
    assert (await roster(c))["u@localhost"].get("subscription") == "both"


async def test_a_request_already_approved_is_answered_by_the_server(running: RunningServer) -> None:
    u, c = await online(running, "u"), await online(running, "c")
    await reach("Both", u, c)
    await send(b"<presence><status>c is in</status></presence>", c, u)
    # u asks again (a client that lost its roster): c is not asked; its server
    # answers, and u gets c's presence again (RFC 6121 3.1.3, as Prosody)
    got_u, got_c = await send(presence("subscribe", "c@localhost"), u, u, c)
    assert [p.get("type") for p in got_c if p.tag == "presence"] == []
    assert [(p.get("from"), p.findtext("status")) for p in got_u] == [("c@localhost/r", "c is in")]
    assert await user_state(running, u) == "Both"


async def test_requests_wait_for_an_answer_across_logins(running: RunningServer) -> None:
    u = await online(running, "u")
    await send(
        b"<presence type='subscribe' to='c@localhost'><status>it is u</status></presence>", u
    )
    for _ in range(2):  # re-sent at each login until answered
        c = Client(await running.connect())
        await c.login("c")
        await c.say(b"<presence/>")
        requests = [ET.fromstring(line) for line in await c.settle()]
        assert [(p.get("type"), p.get("from"), p.findtext("status")) for p in requests] == [
            ("subscribe", "u@localhost", "it is u")
        ]
        await c.stream.aclose()
    c = await online(running, "c")  # gets the request again, and refuses it
    await send(presence("unsubscribed", "u@localhost"), c, u)
    assert await requests_at_login(running, "c") == []
    assert (await roster(u))["c@localhost"].get("ask") is None  # refused: no longer pending


async def test_a_pre_approval_answers_the_request_to_come(running: RunningServer) -> None:
    u, c = await online(running, "u"), await online(running, "c")
    await send(presence("subscribed", "c@localhost"), u, c)  # RFC 6121 3.4
    item = (await roster(u))["c@localhost"]
    assert (item.get("subscription"), item.get("approved")) == ("none", "true")
    got_u, got_c = await send(presence("subscribe", "u@localhost"), c, u, c)
    assert [p.get("type") for p in got_u if p.tag == "presence"] == []  # u is not asked
    assert ("subscribed", "u@localhost") in [(p.get("type"), p.get("from")) for p in got_c]
    item = (await roster(u))["c@localhost"]
    assert (item.get("subscription"), item.get("approved")) == ("from", None)


async def test_initial_presence_brings_the_presence_of_contacts_one_may_see(
    running: RunningServer,
) -> None:
    u, c = await online(running, "u"), await online(running, "c")
    await reach("To", u, c)  # u sees c; c does not see u
    await send(b"<presence><status>c here</status></presence>", c, u)
    late_u = Client(await running.connect())
    await late_u.login("u", "late")
    await late_u.say(b"<presence/>")
    got = [ET.fromstring(line) for line in await late_u.settle()]
    assert ("c@localhost/r", "c here") in [(p.get("from"), p.findtext("status")) for p in got]
    late_c = Client(await running.connect())
    await late_c.login("c", "late")
    await late_c.say(b"<presence/>")
    got = [ET.fromstring(line) for line in await late_c.settle()]
    assert not [p for p in got if (p.get("from") or "").startswith("u@")]


async def test_presence_goes_only_to_subscribers(running: RunningServer) -> None:
    u, c, d = [await online(running, name) for name in ("u", "c", "d")]
    await reach("From", u, c)  # c sees u
    got_c, got_d = await send(b"<presence><show>chat</show></presence>", u, c, d)
    assert [p.get("from") for p in got_c] == ["u@localhost/r"]
    assert got_d == []
    await u.say(b"</stream:stream>")
    await u.until_eof()
    (got_c,) = [[ET.fromstring(line) for line in await c.settle()]]
    assert [(p.get("from"), p.get("type")) for p in got_c] == [("u@localhost/r", "unavailable")]


async def test_directed_presence_and_its_end(running: RunningServer) -> None:
    u, d = await online(running, "u"), await online(running, "d")
    (got,) = await send(b"<presence to='d@localhost'><show>xa</show></presence>", u, d)
    assert [(p.get("from"), p.findtext("show")) for p in got] == [("u@localhost/r", "xa")]
    await u.say(b"</stream:stream>")
    await u.until_eof()
    got = [ET.fromstring(line) for line in await d.settle()]
    assert [(p.get("from"), p.get("type")) for p in got] == [("u@localhost/r", "unavailable")]


async def test_a_subscription_flood_is_rate_limited() -> None:
    settings = {**SETTINGS, "subscriptions_per_minute": 5}
    async with serve("xmpp", settings=settings) as running:
        u = await online(running, "u")
        await u.say(b"".join(presence("subscribe", f"c{i}@localhost") for i in range(8)))
        errors = [ET.fromstring(line) for line in await u.settle()]
        errors = [p for p in errors if p.get("type") == "error"]
        assert [p.get("to") for p in errors] == ["u@localhost/r"] * 3
        for error in errors:
            detail = error.find("error")
            assert detail is not None and detail.get("type") == "wait"
            assert detail.find(f"{STANZAS}policy-violation") is not None
            assert "and pre-approvals: at most 5 a minute" in (
                detail.findtext(f"{STANZAS}text") or ""
            )
        asked = await roster(u)
        assert sorted(asked) == [f"c{i}@localhost" for i in range(5)]
        other = await online(running, "v")  # the limit is per user
        await send(presence("subscribe", "c0@localhost"), other)
        assert "c0@localhost" in await roster(other)


async def test_bots_are_everyones_contacts() -> None:
    from examples.echobot import app

    async with serve("xmpp", settings=SETTINGS, app=app) as running:
        u = await online(running, "u")
        assert (await roster(u))["echo@localhost"].get("subscription") == "both"
        (got,) = await send(presence("subscribe", "echo@localhost"), u, u)
        assert [(p.get("type"), p.get("from")) for p in got] == [
            ("subscribed", "echo@localhost"),
            (None, "echo@localhost"),
        ]
        await send(
            b"<iq type='set' id='s'><query xmlns='jabber:iq:roster'>"
            b"<item jid='echo@localhost' name='Echo'/></query></iq>",
            u,
        )
        item = (await roster(u))["echo@localhost"]
        assert (item.get("name"), item.get("subscription")) == ("Echo", "both")


# -- roster get, set, remove (RFC 6121 section 2) ------------------------------------


def roster_set(item: str, id: str = "s") -> bytes:
    return f"<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'>{item}</query></iq>".encode()


async def test_roster_pushes_go_to_each_resource_that_asked_for_the_roster(
    running: RunningServer,
) -> None:
    first, second = await online(running, "u", "one"), await online(running, "u", "two")
    quiet = Client(await running.connect())  # never asked for the roster: no pushes
    await quiet.login("u", "quiet")
    await first.settle()  # two's presence
    await first.say(roster_set("<item jid='c@localhost' name='Cee'><group>Friends</group></item>"))
    result = await first.line()
    assert b"type='result'" in result and b"id='s'" in result, result
    for client, resource in ((first, "one"), (second, "two")):
        (push,) = [ET.fromstring(line) for line in await client.settle()]
        assert (
            push.get("type") == "set"
            and push.get("id")
            and push.get("to") == f"u@localhost/{resource}"
        )
        (item,) = push.iter(f"{ROSTER}item")
        assert (item.get("jid"), item.get("name"), item.get("subscription")) == (
            "c@localhost",
            "Cee",
            "none",
        )
        assert [g.text for g in item.iter(f"{ROSTER}group")] == ["Friends"]
    assert await quiet.settle() == []
    await second.say(roster_set("<item jid='c@localhost' subscription='remove'/>", "rm"))
    assert b"type='result'" in await second.line()
    for client in (first, second):
        (push,) = [ET.fromstring(line) for line in await client.settle()]
        (item,) = push.iter(f"{ROSTER}item")
        assert (item.get("jid"), item.get("subscription")) == ("c@localhost", "remove")
    assert await roster(first) == {}


async def test_a_roster_set_keeps_the_subscription(running: RunningServer) -> None:
    u, c = await online(running, "u"), await online(running, "c")
    await reach("Both", u, c)
    await send(roster_set("<item jid='c@localhost' name='C' subscription='none'/>"), u)
    item = (await roster(u))["c@localhost"]
    assert (item.get("name"), item.get("subscription")) == ("C", "both")


@pytest.mark.parametrize(
    ("item", "condition"),
    [
        ("<item jid='not a jid@localhost'/>", "jid-malformed"),
        ("<item jid='c@localhost/phone'/>", "jid-malformed"),
        ("<item jid=''/>", "jid-malformed"),
        ("<item jid='u@localhost'/>", "not-allowed"),
        ("<item jid='c@localhost'/><item jid='d@localhost'/>", "bad-request"),
        ("", "bad-request"),
        ("<item jid='c@localhost'><group>a</group><group>a</group></item>", "bad-request"),
        ("<item jid='c@localhost'><group></group></item>", "not-acceptable"),
        (f"<item jid='c@localhost' name='{'n' * 1024}'/>", "not-acceptable"),
        ("<item jid='c@localhost' subscription='remove'/>", "item-not-found"),
    ],
)
async def test_a_bad_roster_set_gets_its_error(
    running: RunningServer, item: str, condition: str
) -> None:
    u = await online(running, "u")
    await u.say(roster_set(item, "bad"))
    reply = ET.fromstring(await u.line())
    assert (reply.get("type"), reply.get("id")) == ("error", "bad")
    assert reply.find(f"error/{STANZAS}{condition}") is not None
    assert await roster(u) == {}


async def test_removing_a_contact_cancels_both_subscriptions(running: RunningServer) -> None:
    u, c = await online(running, "u"), await online(running, "c")
    await reach("Both", u, c)
    await u.say(roster_set("<item jid='c@localhost' subscription='remove'/>"))
    assert b"type='result'" in await u.line()
    got = [ET.fromstring(line) for line in await c.settle()]
    presences = [(p.get("type"), p.get("from")) for p in got if p.tag == "presence"]
    assert ("unsubscribed", "u@localhost") in presences
    assert ("unsubscribe", "u@localhost") in presences
    assert ("unavailable", "u@localhost/r") in presences  # c no longer sees u
    assert (await roster(c))["u@localhost"].get("subscription") == "none"
    assert "c@localhost" not in await roster(u)


# -- slixmpp, and a restart ---------------------------------------------------------


def test_slixmpp_adds_a_contact_and_it_survives_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "xmpp.db"
    args = ["--protocol", "xmpp", "--port", "0", "--xmpp-insecure-any-password", "true"]
    args += ["--xmpp-database", str(database)]
    got: dict[str, object] = {}
    with ServeProcess(args) as server:
        host, port = host_port(server.urls[0])

        async def scenario() -> None:
            def make(jid: str) -> slixmpp.ClientXMPP:
                client = slixmpp.ClientXMPP(
                    jid, "pw", plugin_config={"feature_mechanisms": {"unencrypted_plain": True}}
                )
                client.enable_starttls = client.enable_direct_tls = False
                client.enable_plaintext = True
                return client

            alice, bob = make("alice@localhost/sx"), make("bob@localhost/sx")
            started = {name: asyncio.Event() for name in ("alice", "bob")}
            authorized = {name: asyncio.Event() for name in ("alice", "bob")}

            async def on_start(client: slixmpp.ClientXMPP, name: str) -> None:
                client.send_presence()
                await client.get_roster()
                started[name].set()

            for client, name in ((alice, "alice"), (bob, "bob")):
                client.add_event_handler(
                    "session_start",
                    lambda _, c=client, n=name: asyncio.ensure_future(on_start(c, n)),
                )
                client.add_event_handler(
                    "roster_subscription_authorized", lambda _, n=name: authorized[n].set()
                )
                client.connect(host=host, port=port)
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), 20)
            # alice adds bob; bob's slixmpp approves, and asks back (auto_subscribe)
            alice.send_presence_subscription(pto="bob@localhost")
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in authorized.values())), 20)
            await alice.get_roster()
            got["alice"] = alice.client_roster["bob@localhost"]["subscription"]
            alice.disconnect()
            bob.disconnect()
            await asyncio.sleep(0.2)

        thread = threading.Thread(target=lambda: asyncio.run(scenario()))
        thread.start()
        thread.join(60)
        assert not thread.is_alive()
    assert got.get("alice") == "both"
    with ServeProcess(args) as server:  # the roster is in the database

        async def check() -> dict[str, ET.Element]:
            client = Client(await trio.open_tcp_stream(*host_port(server.urls[0])))
            async with client.stream:
                await client.login("bob")
                return await roster(client)

        items = trio.run(check)
    assert items["alice@localhost"].get("subscription") == "both"
