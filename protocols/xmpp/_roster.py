# Rosters and presence subscriptions (RFC 6121 sections 2 and 3), sans-IO:
# a roster item, how each subscription stanza changes a user's state with one
# contact (the tables of RFC 6121 Appendix A, with pre-approvals, section
# 3.4), the checks a roster set must pass (section 2.3.3) and the <item/>
# elements the server writes. No storage and no sockets here.
from __future__ import annotations

import dataclasses
from xml.etree.ElementTree import Element, SubElement

from ._jid import JID
from ._stanzas import ROSTER_NS, q

__all__ = [
    "MAX_NAME_LENGTH",
    "SUBSCRIPTION_TYPES",
    "Change",
    "Item",
    "RosterError",
    "RosterSet",
    "inbound",
    "item_element",
    "outbound",
    "parse_roster_set",
]

SUBSCRIPTION_TYPES = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")
MAX_NAME_LENGTH = 1023  # characters of an item's name or of one group (not-acceptable past it)


@dataclasses.dataclass(frozen=True)
class Item:
    """One contact in a user's roster. `subscription` is "none", "to" (the
    user sees the contact's presence), "from" (the contact sees the user's)
    or "both"; `ask` is a request of the user's the contact has not answered
    (pending out); `approved` a pre-approval of a request still to come."""

    jid: str  # the contact's bare JID
    name: str = ""
    groups: tuple[str, ...] = ()
    subscription: str = "none"
    ask: bool = False
    approved: bool = False

    @property
    def to(self) -> bool:
        return self.subscription in ("to", "both")

    @property
    def from_(self) -> bool:
        return self.subscription in ("from", "both")


def _subscription(to: bool, from_: bool) -> str:
    return {(False, False): "none", (True, False): "to", (False, True): "from"}.get(
        (to, from_), "both"
    )


@dataclasses.dataclass(frozen=True)
class Change:
    """What a subscription stanza does to the user's state with a contact:
    the item afterwards (None: not in the roster), whether a request of the
    contact's is pending in afterwards, whether the stanza goes on (routed to
    the contact for an outbound one, delivered to the user's resources for
    an inbound one) and, for an inbound subscribe the server answers itself,
    the answer ("subscribed")."""

    item: Item | None
    pending_in: bool
    passes: bool
    reply: str | None = None


def _with(
    item: Item | None,
    jid: str,
    *,
    to: bool | None = None,
    from_: bool | None = None,
    ask: bool | None = None,
    approved: bool | None = None,
) -> Item:
    """`item` (or a new one for `jid`, subscription none) with what is given changed."""
    base = item if item is not None else Item(jid)
    return dataclasses.replace(
        base,
        subscription=_subscription(
            base.to if to is None else to, base.from_ if from_ is None else from_
        ),
        ask=base.ask if ask is None else ask,
        approved=base.approved if approved is None else approved,
    )


def outbound(kind: str, jid: str, item: Item | None, pending_in: bool) -> Change:
    """The user sends `kind` to the contact `jid` (RFC 6121 A.2; 3.1.2, 3.2.2,
    3.3.2, 3.1.5 and 3.4 say which are routed)."""
    if kind == "subscribe":  # A.2.1: None -> None + Pending Out, From -> From + Pending Out
        if item is not None and (item.to or item.ask):
            return Change(item, pending_in, passes=True)
        return Change(_with(item, jid, ask=True), pending_in, passes=True)
    if kind == "unsubscribe":  # A.2.2: To -> None, Both -> From, Pending Out cancelled
        if item is None:
            return Change(None, pending_in, passes=True)
        return Change(_with(item, jid, to=False, ask=False), pending_in, passes=True)
    if kind == "subscribed":  # A.2.3: Pending In -> From (Both from To)
        if pending_in:
            return Change(_with(item, jid, from_=True, approved=False), False, passes=True)
        if item is not None and item.from_:
            return Change(item, False, passes=True)
        return Change(_with(item, jid, approved=True), False, passes=False)  # 3.4: pre-approval
    if kind == "unsubscribed":  # A.2.4: From -> None, Both -> To, Pending In refused
        if item is None:  # a request from someone not in the roster, refused
            return Change(None, False, passes=pending_in)
        if pending_in or item.from_:
            return Change(_with(item, jid, from_=False, approved=False), False, passes=True)
        if item.approved:  # 3.4: cancels a pre-approval
            return Change(_with(item, jid, approved=False), False, passes=False)
        return Change(item, False, passes=False)
    raise ValueError(f"not a subscription stanza: {kind!r}")


def inbound(kind: str, jid: str, item: Item | None, pending_in: bool) -> Change:
    """The contact `jid` sends `kind` to the user (RFC 6121 A.3, whose
    "deliver" column is `passes`)."""
    if kind == "subscribe":  # A.3.1
        if item is not None and item.from_:  # already approved: answered at once (3.1.3)
            return Change(item, False, passes=False, reply="subscribed")
        if item is not None and item.approved:  # 3.4: pre-approved
            approved = _with(item, jid, from_=True, approved=False)
            return Change(approved, False, passes=False, reply="subscribed")
        return Change(item, True, passes=not pending_in)
    if kind == "unsubscribe":  # A.3.2
        if pending_in or (item is not None and item.from_):
            return Change(None if item is None else _with(item, jid, from_=False), False, True)
        return Change(item, pending_in, passes=False)
    if kind == "subscribed":  # A.3.3
        if item is not None and item.ask:
            return Change(_with(item, jid, to=True, ask=False), pending_in, passes=True)
        return Change(item, pending_in, passes=False)
    if kind == "unsubscribed":  # A.3.4
        if item is not None and (item.to or item.ask):
            return Change(_with(item, jid, to=False, ask=False), pending_in, passes=True)
        return Change(item, pending_in, passes=False)
    raise ValueError(f"not a subscription stanza: {kind!r}")


class RosterError(ValueError):
    """A roster set the server refuses, with the stanza error's condition."""

    def __init__(self, condition: str, text: str) -> None:
        super().__init__(text)
        self.condition = condition


@dataclasses.dataclass(frozen=True)
class RosterSet:
    """A checked roster set: add or change the item for `jid`, or remove it.
    `unparsed`: a removal whose JID does not parse, as given, for an item an
    older version stored before names were prepared as RFC 8265 says (it
    matches only that exact string)."""

    jid: str
    remove: bool
    name: str = ""
    groups: tuple[str, ...] = ()
    unparsed: bool = False


def parse_roster_set(query: Element, user: JID) -> RosterSet:
    """The roster set in `query` from `user`, or RosterError (RFC 6121 2.3.3;
    a JID that is not a bare JID is jid-malformed, RFC 6120 8.3.3.8; one's
    own JID not-allowed, as Prosody). A removal whose JID does not parse is
    passed on `unparsed`: the caller removes an item stored under it, if any,
    and answers jid-malformed otherwise."""
    items = list(query)
    if len(items) != 1 or items[0].tag != q(ROSTER_NS, "item"):
        raise RosterError("bad-request", "a roster set holds exactly one <item/>")
    item = items[0]
    jid = JID.parse_or_none(item.get("jid", ""))
    if jid is None and item.get("subscription") == "remove" and item.get("jid"):
        return RosterSet(item.get("jid", ""), remove=True, unparsed=True)
    if jid is None or jid.resource:
        raise RosterError("jid-malformed", f"not a bare JID: {item.get('jid', '')!r}")
    if jid == user.bare:
        raise RosterError("not-allowed", "one's own JID cannot be a contact")
    if item.get("subscription") == "remove":
        return RosterSet(str(jid), remove=True)
    name = item.get("name", "")
    groups = [group.text or "" for group in item if group.tag == q(ROSTER_NS, "group")]
    if len(set(groups)) != len(groups):
        raise RosterError("bad-request", "a group is repeated")
    if any(not group for group in groups):
        raise RosterError("not-acceptable", "a group has no name")
    if len(name) > MAX_NAME_LENGTH or any(len(group) > MAX_NAME_LENGTH for group in groups):
        raise RosterError("not-acceptable", f"names are at most {MAX_NAME_LENGTH} characters")
    return RosterSet(str(jid), remove=False, name=name, groups=tuple(groups))


def item_element(item: Item, *, subscription: str | None = None) -> Element:
    """<item/> as a roster result or push writes it (`subscription` overrides
    the item's: "remove" in a push, "both" for a bot)."""
    attributes = {"jid": item.jid, "subscription": subscription or item.subscription}
    if item.name:
        attributes["name"] = item.name
    if item.ask and subscription is None:
        attributes["ask"] = "subscribe"
    if item.approved and subscription is None:
        attributes["approved"] = "true"
    element = Element(q(ROSTER_NS, "item"), attributes)
    for group in item.groups:
        SubElement(element, q(ROSTER_NS, "group")).text = group
    return element
