# The XMPP service: the sessions of every connected user, routing between
# them (RFC 6121: messages by bare and full JID, presence to the user's other
# resources and contacts, unavailable presence when a session ends), and the
# server's own answers (roster, ping, disco, bots and users' IQ handlers).
from __future__ import annotations

import dataclasses
import logging
import math
import secrets
import time
from collections.abc import Sequence
from xml.etree.ElementTree import Element, SubElement

import trio

from netsvc import Access, AppError, Connection, ListenAddress, Runtime, Service, listens_locally

from ._accounts import Accounts
from ._app import Sender, XmppApp
from ._jid import JID
from ._session import Session
from ._settings import XmppSettings
from ._stanzas import (
    CLIENT_NS,
    DISCO_INFO_NS,
    DISCO_ITEMS_NS,
    PING_NS,
    ROSTER_NS,
    iq_result,
    q,
    stanza_error,
)
from ._xml import stream_error, stream_header

__all__ = ["XmppService"]

log = logging.getLogger("netsvc.xmpp")


LOGIN_FAILURE_LOG_INTERVAL = 1.0  # seconds between logged failed logins from one address
MAX_LOGIN_FAILURE_ADDRESSES = 4096  # addresses remembered for that, then forgotten at once


class XmppService(Service):
    nursery: trio.Nursery  # from start(): the sessions' writer tasks run in it

    def __init__(self, app: XmppApp, settings: XmppSettings, runtime: Runtime) -> None:
        self.app = app
        self.settings = settings
        self.domain = settings.domain.lower()
        self.accounts = Accounts(settings.users_file, any_password=settings.insecure_any_password)
        self.scram_secret = secrets.token_bytes(32)  # fake SCRAM salts for unknown users
        self.sessions: dict[str, dict[str, Session]] = {}  # user -> resource -> session
        self._login_failures_logged: dict[str, float] = {}  # address -> when last logged

    def check_listen(self, addresses: Sequence[ListenAddress]) -> None:
        settings = self.settings
        if not settings.insecure_any_password or settings.insecure_any_password_off_loopback:
            return
        for address in addresses:
            if not listens_locally(address):
                raise AppError(
                    f"--xmpp-insecure-any-password lets anyone log in as anyone, so it serves "
                    f"only loopback and Unix-socket listeners, and {_where(address)} is not one: "
                    "listen on 127.0.0.1, give accounts with --xmpp-users-file, or, to open it "
                    "deliberately, add --xmpp-insecure-any-password-off-loopback true"
                )

    async def start(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery

    def access(self) -> Access:
        if self.settings.insecure_any_password:  # no authentication at all
            return Access(
                note="--xmpp-insecure-any-password: any login works, for development",
                advice="drop --xmpp-insecure-any-password-off-loopback and listen on 127.0.0.1",
            )
        return Access(
            "accounts (SASL SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN; "
            "EXTERNAL with a client certificate)"
        )

    def login_failed(self, conn: Connection, user: str) -> None:
        """A wrong password: counted (the listener's logins_failed) and logged
        with the client's address at most once a second per address."""
        conn.counters.login_failed()
        now = time.monotonic()
        address = conn.peer.host or str(conn.peer)
        if now - self._login_failures_logged.get(address, -math.inf) < LOGIN_FAILURE_LOG_INTERVAL:
            return
        if len(self._login_failures_logged) >= MAX_LOGIN_FAILURE_ADDRESSES:
            self._login_failures_logged.clear()
        self._login_failures_logged[address] = now
        conn.log.warning(
            "authentication failed for %r (%d failed logins on %s so far)",
            user,
            conn.counters.logins_failed,
            conn.listener_url,
        )

    def refusal(self) -> bytes:
        header = stream_header(stream_id=secrets.token_hex(8), from_domain=self.domain)
        return header + stream_error("resource-constraint", "too many connections") + b"\n"

    async def handle(self, conn: Connection) -> None:
        await Session(self, conn).run()

    def plain_allowed(self, conn: Connection) -> bool:
        """PLAIN sends the password in the clear: only over TLS or loopback,
        unless a setting allows it."""
        return conn.tls or self.settings.allow_plain_without_tls or conn.peer.is_loopback

    # -- sessions ------------------------------------------------------------

    def bind(self, session: Session, user: str, wanted: str) -> JID:
        resources = self.sessions.setdefault(user, {})
        resource = wanted or secrets.token_hex(4)
        if resource in resources:  # RFC 6120 7.7.2.2: a new resource for the newcomer
            resource = f"{resource}-{secrets.token_hex(2)}"
        resources[resource] = session
        return JID(user, self.domain, resource)

    def leave(self, session: Session) -> None:
        jid = session.jid
        if jid is None:
            return
        resources = self.sessions.get(jid.local, {})
        if resources.get(jid.resource) is session:
            del resources[jid.resource]
            if not resources:
                del self.sessions[jid.local]
        if session.presence is not None:  # a session that ends cannot wait: queued as is
            gone = Element(q(CLIENT_NS, "presence"), {"type": "unavailable", "from": str(jid)})
            for other, copy in self._presence_copies(jid, gone):
                other.send(copy)

    def undelivered(self, stanzas: list[Element]) -> None:
        """Messages and IQ requests a client never got (it was dropped with
        them queued, or left while they waited): each goes back to its sender
        as an error, service-unavailable as for a user who is not online.
        Errors, headlines and IQ results are never answered (RFC 6120 8.3.1).
        What already left for the client's socket counts as delivered."""
        for stanza in stanzas:
            kind = stanza.tag.rpartition("}")[2]
            if stanza.get("type") in ("error", "headline") or (
                kind == "iq" and stanza.get("type") not in ("get", "set")
            ):
                continue  # never answered (headlines: RFC 6121 8.5.2.1.1 drops them)
            sender = JID.parse_or_none(stanza.get("from", ""))
            session = self.sessions.get(sender.local, {}).get(sender.resource) if sender else None
            if session is None:
                log.info("a %s from %s was not delivered and its sender is gone", kind, sender)
                continue
            session.send(stanza_error(stanza, "service-unavailable"))

    def _available(self, user: str) -> list[Session]:
        return [s for s in self.sessions.get(user, {}).values() if s.presence is not None]

    # -- routing -------------------------------------------------------------

    async def route(self, session: Session, kind: str, stanza: Element) -> None:
        assert session.jid is not None
        stanza.set("from", str(session.jid))  # always stamped by the server
        if kind == "message":
            await self._message(session, stanza)
        elif kind == "presence":
            await self._presence(session, stanza)
        elif kind == "iq":
            await self._iq(session, stanza)
        else:
            session.send(stanza_error(stanza, "service-unavailable", sender=self.domain))

    async def _message(self, session: Session, message: Element) -> None:
        target = JID.parse_or_none(message.get("to", ""))
        if target is None:
            session.send(stanza_error(message, "jid-malformed", sender=self.domain))
            return
        if target.domain != self.domain or not target.local:
            session.send(stanza_error(message, "service-unavailable"))
            return
        bot = self.app.bots.get(target.local)
        if bot is not None:
            assert session.jid is not None
            reply = await bot(Sender(session.jid), message)
            if reply is not None:
                session.send(_bot_reply(reply, message, target, session.jid))
            return
        kind = message.get("type", "normal")
        resources = self.sessions.get(target.local, {})
        if target.resource and target.resource in resources:
            await resources[target.resource].route_in(message, bounce=True)
            return
        if kind == "groupchat" or (target.resource and kind == "headline"):
            session.send(stanza_error(message, "service-unavailable"))
            return
        # RFC 6121 8.5.2.1: a bare JID (or an offline full JID, for chat and
        # normal messages) reaches the resources with non-negative priority
        receivers = [s for s in self._available(target.local) if s.priority >= 0]
        if not receivers:
            if kind != "error":
                session.send(stanza_error(message, "service-unavailable"))
            return
        for receiver in receivers:  # bounced only if nobody else gets it
            await receiver.route_in(message, bounce=len(receivers) == 1)

    async def _presence(self, session: Session, presence: Element) -> None:
        assert session.jid is not None
        kind = presence.get("type")
        if presence.get("to"):  # directed presence and subscriptions: out of scope
            return
        if kind is None:
            first = session.presence is None
            session.presence = presence
            try:
                session.priority = int(presence.findtext(q(CLIENT_NS, "priority")) or 0)
            except ValueError:
                session.priority = 0
            await self._broadcast_presence(session.jid, presence)
            if first:  # tell the newcomer who is here
                for contact in [*self.accounts.roster(session.jid.local), session.jid.local]:
                    for other in self._available(contact):
                        if other is not session and other.presence is not None:
                            copy = _copy(other.presence)
                            copy.set("to", str(session.jid))
                            session.send(copy)
        elif kind == "unavailable":
            session.presence = None
            await self._broadcast_presence(session.jid, presence)

    async def _broadcast_presence(self, jid: JID, presence: Element) -> None:
        for other, copy in self._presence_copies(jid, presence):
            await other.route_in(copy, bounce=False)

    def _presence_copies(self, jid: JID, presence: Element) -> list[tuple[Session, Element]]:
        """A copy for each of the user's other resources and of the contacts
        in their roster that are online."""
        copies = []
        for user in [jid.local, *self.accounts.roster(jid.local)]:
            for other in self._available(user):
                if other.jid != jid:
                    copy = _copy(presence)
                    copy.set("to", str(other.jid))
                    copies.append((other, copy))
        return copies

    async def _iq(self, session: Session, iq: Element) -> None:
        assert session.jid is not None
        kind = iq.get("type")
        target = JID.parse_or_none(iq.get("to", "")) if iq.get("to") else None
        if target is not None and target.local and target != session.jid.bare:
            resources = self.sessions.get(target.local, {})
            if target.resource in resources:  # an IQ for another user's resource
                await resources[target.resource].route_in(iq, bounce=True)
            elif kind in ("get", "set"):
                session.send(stanza_error(iq, "service-unavailable"))
            return
        if kind not in ("get", "set"):
            return
        payload = next(iter(iq), None)
        namespace = payload.tag[1:].partition("}")[0] if payload is not None else ""
        sender = self.domain if target is None or not target.local else str(session.jid.bare)
        handler = self.app.iq_handlers.get(namespace)
        if handler is not None:
            result = await handler(Sender(session.jid), iq)
            session.send(iq_result(iq, result, sender=sender))
        elif namespace == ROSTER_NS and kind == "get":
            session.send(iq_result(iq, self._roster(session.jid.local), sender=sender))
        elif namespace == PING_NS and kind == "get":
            session.send(iq_result(iq, sender=sender))
        elif namespace == DISCO_INFO_NS and kind == "get":
            session.send(iq_result(iq, self._disco_info(), sender=sender))
        elif namespace == DISCO_ITEMS_NS and kind == "get":
            session.send(iq_result(iq, Element(q(DISCO_ITEMS_NS, "query")), sender=sender))
        else:
            session.send(stanza_error(iq, "service-unavailable", sender=sender))

    def _roster(self, user: str) -> Element:
        query = Element(q(ROSTER_NS, "query"))
        for contact in self.accounts.roster(user):
            attrs = {"jid": f"{contact}@{self.domain}", "subscription": "both"}
            SubElement(query, q(ROSTER_NS, "item"), attrs)
        for bot in self.app.bots:
            attrs = {"jid": f"{bot}@{self.domain}", "subscription": "both", "name": bot}
            SubElement(query, q(ROSTER_NS, "item"), attrs)
        return query

    def _disco_info(self) -> Element:
        query = Element(q(DISCO_INFO_NS, "query"))
        SubElement(
            query,
            q(DISCO_INFO_NS, "identity"),
            {"category": "server", "type": "im", "name": "netsvc"},
        )
        for feature in (DISCO_INFO_NS, DISCO_ITEMS_NS, PING_NS, ROSTER_NS, *self.app.iq_handlers):
            SubElement(query, q(DISCO_INFO_NS, "feature"), {"var": feature})
        return query


def _copy(element: Element) -> Element:
    clone = Element(element.tag, dict(element.attrib))
    clone.text, clone.tail = element.text, None
    clone.extend(_copy(child) for child in element)
    for original, copied in zip(element, clone, strict=True):
        copied.tail = original.tail
    return clone


def _bot_reply(reply: str | Element, message: Element, bot: JID, user: JID) -> Element:
    if isinstance(reply, Element):
        reply.set("from", str(bot))
        reply.set("to", str(user))
        return reply
    answer = Element(
        q(CLIENT_NS, "message"),
        {"from": str(bot), "to": str(user), "type": message.get("type", "chat")},
    )
    SubElement(answer, q(CLIENT_NS, "body")).text = reply
    return answer


def _where(address: ListenAddress) -> str:
    if address.proxy:  # its clients are the proxy's, from anywhere
        return f"{_where(dataclasses.replace(address, proxy=False))} behind a proxy (+proxy)"
    if address.transport == "tcp":
        host = f"[{address.host}]" if address.host and ":" in address.host else address.host
        return f"{host}:{address.port if address.port is not None else 5222}"
    if address.transport == "fd":
        return f"the inherited socket (fd {address.fd})"
    return f"the {address.transport} socket"
