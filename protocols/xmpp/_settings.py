# The XMPP plugin's settings (options --xmpp-NAME, variables NETSVC_XMPP_NAME).
from __future__ import annotations

import dataclasses

from netsvc import setting

__all__ = ["STARTTLS_CHOICES", "XmppSettings"]

STARTTLS_CHOICES = ("required", "optional", "off")


@dataclasses.dataclass(frozen=True)
class XmppSettings:
    domain: str = setting("localhost", help="the domain users are at (alice@DOMAIN)")
    users_file: str | None = setting(
        None,
        help="account file (python -m protocols.xmpp adduser FILE NAME); with --xmpp-database, "
        "its users not in the database yet are imported at start",
    )
    database: str | None = setting(
        None,
        help="sqlite file for accounts, rosters and offline messages (created if missing; "
        "python -m protocols.xmpp adduser --database FILE NAME); without it, rosters and "
        "offline messages are kept in memory and lost at exit",
    )
    offline_limit: int = setting(
        1000,
        help="messages kept per user while they are offline (XEP-0160); past it the sender "
        "gets service-unavailable (0: none kept)",
    )
    offline_max_bytes: int = setting(
        4 * 1024 * 1024,
        help="bytes of offline messages kept per user (XEP-0160); past it the sender gets "
        "service-unavailable (0: no limit but --xmpp-offline-limit)",
    )
    max_roster_items: int = setting(
        1000,
        help="contacts a user's roster may hold; past it a roster set, subscription request "
        "or pre-approval that adds one gets not-allowed (0: no limit)",
    )
    subscriptions_per_minute: int = setting(
        30,
        help="subscription requests and pre-approvals a user may send per minute, in bursts "
        "of as many; past it policy-violation (0: no limit)",
    )
    allow_registration: bool = setting(
        False,
        help="in-band registration (XEP-0077): clients create their own accounts in "
        "--xmpp-database, over TLS or loopback only",
    )
    registrations_per_hour: int = setting(
        5,
        help="new accounts per client address (IPv4, or IPv6 /64) an hour, in bursts of "
        "as many; past it policy-violation (0: no limit)",
    )
    insecure_any_password: bool = setting(
        False,
        help="DEVELOPMENT ONLY: accept any user name and password (loopback and Unix "
        "socket listeners only)",
    )
    insecure_any_password_off_loopback: bool = setting(
        False,
        help="let --xmpp-insecure-any-password serve listeners others can reach: anyone "
        "who reaches the port logs in as anyone",
    )
    starttls: str = setting(
        "required",
        help="STARTTLS on plain listeners when --certfile gives a certificate: required "
        "(nothing else before it), optional, or off",
    )
    allow_plain_without_tls: bool = setting(
        False, help="allow PLAIN (clear-text) logins off loopback without TLS"
    )
    max_stanza_size: int = setting(
        64 * 1024, help="largest stanza, in bytes (policy-violation past it)"
    )
    max_stanza_size_before_auth: int = setting(
        4 * 1024, help="largest stanza before authentication, in bytes"
    )
    max_bytes_per_second: int = setting(
        256 * 1024,
        help="read rate per connection; faster clients are paused, not cut (0: no limit)",
    )
