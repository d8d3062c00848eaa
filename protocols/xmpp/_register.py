# In-band registration (XEP-0077), sans-IO: the form a client is shown
# before login (and the one a logged-in user sees), what a request asks for
# (a new account, a new password, the account's removal), and the budget of
# new accounts per client address: a token bucket per IPv4 address or IPv6
# /64 network, as a host that has one usually has the whole /64.
from __future__ import annotations

import dataclasses
import ipaddress
import math
from xml.etree.ElementTree import Element, SubElement

from ._accounts import AccountError, check_name
from ._precis import PrepError, saslprep
from ._stanzas import REGISTER_NS, q

__all__ = [
    "Budget",
    "RegistrationError",
    "Request",
    "address_key",
    "check_password",
    "parse_request",
    "registered_form",
    "registration_form",
]

INSTRUCTIONS = "Choose a user name and password for use with this service."
EMPTY_ONCE_PREPARED = "the password is empty once prepared (SASLprep maps what it holds to nothing)"
MAX_ADDRESSES = 4096  # addresses whose budget is remembered; refilled ones are forgotten


class RegistrationError(Exception):
    """A request refused with a stanza error `condition` (and its type, if
    not the condition's usual one), and a text for people."""

    def __init__(self, condition: str, text: str, error_type: str | None = None) -> None:
        super().__init__(text)
        self.condition = condition
        self.error_type = error_type


@dataclasses.dataclass(frozen=True)
class Request:
    """A jabber:iq:register set: <remove/>, or a user name and password
    (None: the field is missing)."""

    remove: bool
    username: str | None
    password: str | None

    def new_account(self) -> tuple[str, str]:
        """The user name (as accounts keep it) and password of a new account,
        checked as `adduser` checks them; not-acceptable if unusable, as
        XEP-0077 3.1 and Prosody answer a form without what it needs."""
        if not self.username or not self.password:
            raise RegistrationError("not-acceptable", "a user name and a password are required")
        try:
            name = check_name(self.username)
        except AccountError as exc:
            raise RegistrationError("not-acceptable", str(exc)) from None
        check_password(self.password)
        return name, self.password


def check_password(password: str) -> None:
    """RegistrationError not-acceptable unless SASLprep (RFC 4013) takes
    `password` as a password to store, and leaves something of it (a soft
    hyphen or a zero width space alone is mapped to nothing)."""
    try:
        prepared = saslprep(password, stored=True)
    except PrepError as exc:
        raise RegistrationError("not-acceptable", f"the password: {exc}") from None
    if not prepared:
        raise RegistrationError("not-acceptable", EMPTY_ONCE_PREPARED)


def parse_request(query: Element) -> Request:
    """The fields of a <query xmlns='jabber:iq:register'/> set."""
    return Request(
        remove=query.find(q(REGISTER_NS, "remove")) is not None,
        username=query.findtext(q(REGISTER_NS, "username")),
        password=query.findtext(q(REGISTER_NS, "password")),
    )


def registration_form() -> Element:
    """What a new account needs (XEP-0077 3.1): a user name and a password."""
    query = Element(q(REGISTER_NS, "query"))
    SubElement(query, q(REGISTER_NS, "instructions")).text = INSTRUCTIONS
    SubElement(query, q(REGISTER_NS, "username"))
    SubElement(query, q(REGISTER_NS, "password"))
    return query


def registered_form(user: str) -> Element:
    """The form a logged-in user gets (XEP-0077 3.2.1): registered, as `user`."""
    query = Element(q(REGISTER_NS, "query"))
    SubElement(query, q(REGISTER_NS, "registered"))
    SubElement(query, q(REGISTER_NS, "username")).text = user
    SubElement(query, q(REGISTER_NS, "password"))
    return query


def address_key(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    """Whose budget a client spends: its IPv4 address, its IPv6 /64, or one
    shared by the clients with no IP address (Unix sockets)."""
    if ip is None:
        return "local"
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Budget:
    """A token bucket per key: `per_hour` at once, and as many more each hour
    (0: no limit). Keys whose bucket is full again are forgotten when more
    than MAX_ADDRESSES are remembered."""

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self._spent: dict[str, tuple[float, float]] = {}  # key -> (tokens left, when)

    def take(self, key: str, now: float) -> bool:
        """Spend one token of `key`'s at time `now` (seconds); False if none is left."""
        if self.per_hour <= 0:
            return True
        rate = self.per_hour / 3600
        tokens, when = self._spent.get(key, (float(self.per_hour), now))
        tokens = min(float(self.per_hour), tokens + (now - when) * rate)
        if len(self._spent) >= MAX_ADDRESSES:
            self._spent = {
                name: (left, at)
                for name, (left, at) in self._spent.items()
                if left + (now - at) * rate < self.per_hour
            }
        if tokens < 1:
            self._spent[key] = (tokens, now)
            return False
        self._spent[key] = (tokens - 1, now)
        return True

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may register again (0: now)."""
        if self.per_hour <= 0 or key not in self._spent:
            return 0.0
        tokens, when = self._spent[key]
        tokens = min(float(self.per_hour), tokens + (now - when) * self.per_hour / 3600)
        return 0.0 if tokens >= 1 else math.ceil((1 - tokens) * 3600 / self.per_hour)
