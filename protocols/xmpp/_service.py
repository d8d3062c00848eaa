# The XMPP service: the sessions of every connected user, routing between
# them (RFC 6121: messages by bare and full JID, presence to the user's other
# resources and to the contacts subscribed to it, directed presence,
# unavailable presence when a session ends), rosters and presence
# subscriptions (RFC 6121 sections 2-3: the state changes are _roster's,
# kept in _store), offline messages (XEP-0160: stored when the user has no
# available resource, delivered at their next initial presence), and the
# server's own answers (roster, ping, disco, bots and users' IQ handlers),
# and accounts clients manage themselves (XEP-0077: registration before
# login when allowed; a new password, or the account's removal, after).
from __future__ import annotations

import dataclasses
import logging
import math
import secrets
import sqlite3
import time
from collections.abc import Sequence
from xml.etree.ElementTree import Element, ParseError, SubElement, fromstring

import trio

from netsvc import Access, AppError, Connection, ListenAddress, Runtime, Service, listens_locally

from ._accounts import AccountError, Accounts, AccountStore, lookup_name
from ._app import Sender, XmppApp
from ._jid import JID
from ._register import (
    Budget,
    RegistrationError,
    address_key,
    check_password,
    parse_request,
    registered_form,
    registration_form,
)
from ._roster import (
    SUBSCRIPTION_TYPES,
    Item,
    RosterError,
    inbound,
    item_element,
    outbound,
    parse_roster_set,
)
from ._session import Copies, Session
from ._settings import XmppSettings
from ._stanzas import (
    CHAT_STATES_NS,
    CLIENT_NS,
    DELAY_NS,
    DISCO_INFO_NS,
    DISCO_ITEMS_NS,
    HINTS_NS,
    PING_NS,
    REGISTER_NS,
    ROSTER_NS,
    delay,
    iq_result,
    q,
    stanza_error,
)
from ._store import Store
from ._xml import serialize, stream_error, stream_header

__all__ = ["XmppService"]

log = logging.getLogger("netsvc.xmpp")


LOGIN_FAILURE_LOG_INTERVAL = 1.0  # seconds between logged failed logins from one address
MAX_LOGIN_FAILURE_ADDRESSES = 4096  # addresses remembered for that, then forgotten at once
MAX_RATED_USERS = 4096  # users whose subscription budget is remembered (full ones are forgotten)
MAX_DIRECTED = 256  # JIDs a session's directed presence is remembered for (to end it)
MAX_PENDING_REQUESTS = 1000  # subscription requests waiting for one user's answer
STOP_WRITERS_TIMEOUT = 5.0  # seconds stop() lets writer tasks finish before cancelling them
DATABASE_ERROR_LOG_INTERVAL = 1.0  # seconds between logged database errors
# How long a database call waits for a lock another program (adduser) holds:
# the event loop, and every connection, waits with it.
BUSY_TIMEOUT = 0.2
DELAY = q(DELAY_NS, "delay")
DATABASE_ERROR_TEXT = "the server could not use its database: try again later"


class XmppService(Service):
    nursery: trio.Nursery  # from start(): the sessions' writer tasks run in it

    def __init__(self, app: XmppApp, settings: XmppSettings, runtime: Runtime) -> None:
        self.runtime = runtime
        self.app = app
        self.settings = settings
        self.domain = settings.domain.lower()
        self.store, self.accounts = _open_storage(settings, self.domain)
        self.scram_secret = secrets.token_bytes(32)  # fake SCRAM salts for unknown users
        self.sessions: dict[str, dict[str, Session]] = {}  # user -> resource -> session
        self._login_failures_logged: dict[str, float] = {}  # address -> when last logged
        self._subscribe_budget: dict[str, tuple[float, float]] = {}  # user -> (tokens, when)
        self._full_mailboxes: set[str] = set()  # users whose full offline storage was logged
        self._registrations = Budget(settings.registrations_per_hour)  # per client address
        self.writers: set[trio.CancelScope] = set()  # the sessions' writer tasks running
        self._writers_gone: trio.Event | None = None  # set when the last one ends, if awaited
        self.unrouted: list[Element] = []  # messages read, not routed: a shutdown cancelled them
        self._database_errors_logged = (-math.inf, 0)  # when last logged, how many since

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

    async def stop(self) -> None:
        """Every connection has ended; writer tasks may still hold stanzas (a
        client that stopped reading, cut by the shutdown): they are given
        STOP_WRITERS_TIMEOUT to finish, then cancelled, and what they did not
        send goes to offline storage before the database closes, and so do
        the messages read but not routed when the grace period ended."""
        with trio.move_on_after(STOP_WRITERS_TIMEOUT):
            await self._no_writers()
        for scope in list(self.writers):
            scope.cancel()
        await self._no_writers()  # a cancelled writer's bookkeeping does not wait
        self.undelivered(self.unrouted)  # after what the writers held: they came later
        self.store.close()

    async def _no_writers(self) -> None:
        while self.writers:
            self._writers_gone = trio.Event()
            await self._writers_gone.wait()

    def writer_ended(self, scope: trio.CancelScope) -> None:
        self.writers.discard(scope)
        if not self.writers and self._writers_gone is not None:
            self._writers_gone.set()
            self._writers_gone = None

    def database_failed(self, exc: sqlite3.Error) -> None:
        """A database error (disk full, the file locked by another program,
        or gone): logged, at most once a second with how many came since."""
        now = time.monotonic()
        last, since = self._database_errors_logged
        if now - last < DATABASE_ERROR_LOG_INTERVAL:
            self._database_errors_logged = (last, since + 1)
            return
        self._database_errors_logged = (now, 0)
        more = f" ({since} more since the last report)" if since else ""
        log.error("database %s: %s%s", self.settings.database or "in memory", exc, more)

    def access(self) -> Access:
        starttls = self.settings.starttls if self.runtime.certificate else "off"
        tls_note = f"STARTTLS {starttls} on plain listeners" if starttls != "off" else ""
        if self.settings.insecure_any_password:  # no authentication at all
            notes = ["--xmpp-insecure-any-password: any login works, for development"]
            return Access(
                note="; ".join(filter(None, [*notes, tls_note])),
                advice="drop --xmpp-insecure-any-password-off-loopback and listen on 127.0.0.1",
            )
        return Access(
            "accounts (SASL SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN; "
            "EXTERNAL with a client certificate)",
            note=tls_note,
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
        gone = Element(q(CLIENT_NS, "presence"), {"type": "unavailable", "from": str(jid)})
        copies = self._directed_copies(session, gone)
        try:
            copies += self._presence_copies(jid, gone) if session.presence is not None else []
        except sqlite3.Error as exc:  # the contacts are unknown: the user's own resources
            self.database_failed(exc)
            copies += [(s, _addressed_copy(gone, s)) for s in self._available(jid.local)]
        for other, copy in copies:  # a session that ends cannot wait: queued as is
            other.send(copy)

    def undelivered(self, stanzas: list[Element]) -> None:
        """Messages and IQ requests a client never got (it was dropped with
        them queued, or left while they waited, or the server is shutting
        down). A chat or normal message whose user then has no other
        available resource is stored offline (in the order given); the
        others go back to their senders as errors, service-unavailable as
        for a user who is not online (internal-server-error if the database
        failed). Errors, headlines and IQ results are never answered (RFC
        6120 8.3.1). What already left for the client's socket counts as
        delivered. Never raises: writer tasks call it as they fail."""
        offline: dict[str, list[Element]] = {}
        lost = failed = 0  # stanzas whose sender is gone (as the database failed)
        for stanza in stanzas:
            kind = stanza.tag.rpartition("}")[2]
            if stanza.get("type") in ("error", "headline") or (
                kind == "iq" and stanza.get("type") not in ("get", "set")
            ):
                continue  # never answered (headlines: RFC 6121 8.5.2.1.1 drops them)
            user = self._local_user(stanza.get("to", ""))
            kept = kind == "message" and stanza.get("type") != "groupchat"
            if kept and _chat_state_only(stanza):
                continue  # no use later (XEP-0085): not kept, and no error either
            kept = kept and not _no_store(stanza)
            if kept and user is not None and not self._receivers(user, staying=True):
                offline.setdefault(user, []).append(stanza)
                continue
            lost += not self._bounce(stanza)
        for user, messages in offline.items():
            for message, condition, text in self._keep_offline(user, messages):
                gone = not self._bounce(message, condition, text)
                lost += gone
                failed += gone and condition == "internal-server-error"
        if lost:
            because = f", {failed} of them as the database failed" if failed else ""
            log.warning(
                "%d stanzas were neither delivered nor stored, and their senders are gone%s",
                lost,
                because,
            )

    def _bounce(
        self, stanza: Element, condition: str = "service-unavailable", text: str | None = None
    ) -> bool:
        """`stanza` back to its sender as an error, if it is online (False if not)."""
        sender = JID.parse_or_none(stanza.get("from", ""))
        session = self.sessions.get(sender.local, {}).get(sender.resource) if sender else None
        if session is None:
            return False
        wait = "wait" if condition == "internal-server-error" else None
        session.send(stanza_error(stanza, condition, text=text, error_type=wait))
        return True

    def _available(self, user: str) -> list[Session]:
        return [
            s
            for s in self.sessions.get(user, {}).values()
            if s.presence is not None and not s.closed
        ]

    def _receivers(self, user: str, *, staying: bool = False) -> list[Session]:
        """Where a message to `user`'s bare JID goes: the available resources
        with a non-negative priority (RFC 6121 8.5.2.1.1); `staying`: not
        those whose connection is ending (the server is shutting down)."""
        return [
            s for s in self._available(user) if s.priority >= 0 and not (staying and s.conn.closing)
        ]

    def _local_user(self, text: str) -> str | None:
        """The user a JID names at this domain, or None."""
        jid = JID.parse_or_none(text)
        return jid.local if jid is not None and jid.local and jid.domain == self.domain else None

    # -- routing -------------------------------------------------------------

    async def route(self, session: Session, kind: str, stanza: Element) -> None:
        """A stanza from a client. If the database fails (disk full, locked by
        another program), the client gets internal-server-error, type wait
        (RFC 6120 8.3.3.5) for it, and the connection goes on."""
        assert session.jid is not None
        stanza.set("from", str(session.jid))  # always stamped by the server
        for child in stanza.findall(DELAY):  # only the server says when it stored a message
            if _same_domain(child.get("from"), self.domain):
                stanza.remove(child)
        try:
            if kind == "message":
                await self._message(session, stanza)
            elif kind == "presence":
                await self._presence(session, stanza)
            elif kind == "iq":
                await self._iq(session, stanza)
            else:
                session.send(stanza_error(stanza, "service-unavailable", sender=self.domain))
        except sqlite3.Error as exc:
            self.database_failed(exc)
            if stanza.get("type") not in ("error", "result"):
                reply = stanza_error(
                    stanza,
                    "internal-server-error",
                    sender=self.domain,
                    text=DATABASE_ERROR_TEXT,
                    error_type="wait",
                )
                session.send(reply)

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
        resource = self.sessions.get(target.local, {}).get(target.resource)
        if target.resource and resource is not None and not resource.closed:
            await resource.route_in(message, bounce=True)
            return
        if kind == "groupchat":
            session.send(stanza_error(message, "service-unavailable"))
            return
        if kind == "error" or (kind == "headline" and target.resource):
            return  # an error not to a resource here, a headline to one gone: dropped (Prosody)
        # RFC 6121 8.5.2.1: a bare JID (or an offline full JID, for chat and
        # normal messages) reaches the resources with non-negative priority
        receivers = self._receivers(target.local)
        copies = Copies(message, len(receivers))  # kept or bounced once, if none gets it
        queued = 0
        try:
            for receiver in receivers:
                queued += 1  # route_in counts its copy lost if it is cancelled
                await receiver.route_in(message, copies=copies)
        finally:
            if queued < len(receivers) and (lost := copies.lost(len(receivers) - queued)):
                self.undelivered([lost])  # the sender was cancelled before queuing them all
        if receivers or kind == "headline" or _chat_state_only(message):
            return  # 8.5.2.1.1: headlines are not kept, nor chat states alone (XEP-0085)
        if _no_store(message):  # XEP-0334: as if there were no offline storage
            session.send(stanza_error(message, "service-unavailable"))
            return
        for bounced, condition, text in self._keep_offline(target.local, [message]):
            wait = "wait" if condition == "internal-server-error" else None
            session.send(stanza_error(bounced, condition, text=text, error_type=wait))

    # -- offline messages (XEP-0160) -------------------------------------------

    def _keep_offline(
        self, user: str, messages: list[Element]
    ) -> list[tuple[Element, str, str | None]]:
        """Store `messages` for `user` to get at their next initial presence,
        each with a <delay/> (XEP-0203) saying when it came; what cannot be
        kept (no such user, storage off, the mailbox full, the database
        failed) is returned with the condition and text of its bounce."""
        limit = self.settings.offline_limit
        try:
            if limit <= 0 or not self.accounts.exists(user):
                return [(message, "service-unavailable", None) for message in messages]
            now = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
            stanzas = [serialize(self._delayed(m, stamp), default_ns="").decode() for m in messages]
            max_bytes = self.settings.offline_max_bytes
            kept = self.store.store_offline(user, stanzas, now, limit, max_bytes)
        except sqlite3.Error as exc:
            self.database_failed(exc)
            return [(message, "internal-server-error", DATABASE_ERROR_TEXT) for message in messages]
        max_bytes = self.settings.offline_max_bytes
        full = f"{limit} messages" + (f" or {max_bytes:,} bytes" if max_bytes > 0 else "")
        if kept < len(messages) and user not in self._full_mailboxes:
            self._full_mailboxes.add(user)  # said once, until they log in
            log.info("%s's offline storage is full (%s): bouncing the rest", user, full)
        text = f"{user}@{self.domain} is offline and their mailbox is full ({full})"
        return [(message, "service-unavailable", text) for message in messages[kept:]]

    def _delayed(self, message: Element, stamp: str) -> Element:
        """A copy of `message` with this server's <delay/> (a message stored
        again, undelivered from storage, keeps the one it has)."""
        copy = _copy(message)
        if not any(child.tag == DELAY and child.get("from") == self.domain for child in copy):
            copy.append(delay(self.domain, stamp))
        return copy

    async def _deliver_offline(self, session: Session) -> None:
        """The messages kept for the user, in order, to a resource that just
        became available; what it never gets is stored again (undelivered)."""
        assert session.jid is not None
        self._full_mailboxes.discard(session.jid.local)
        try:
            texts = self.store.take_offline(session.jid.local)
        except sqlite3.Error as exc:  # they stay stored for the next login
            self.database_failed(exc)
            return
        for text in texts:
            try:
                message = fromstring(text)
            except ParseError as exc:  # not written by us: the database was edited
                log.warning("an offline message for %s is not XML (%s): dropped", session.jid, exc)
                continue
            await session.route_in(message, bounce=True)

    # -- presence ----------------------------------------------------------------

    async def _presence(self, session: Session, presence: Element) -> None:
        assert session.jid is not None
        kind = presence.get("type")
        to = presence.get("to")
        if to is None:
            if kind is None or kind == "unavailable":
                await self._own_presence(session, presence)
            elif kind != "error":
                session.send(stanza_error(presence, "bad-request", sender=self.domain))
            return
        target = JID.parse_or_none(to)
        if target is None:
            session.send(stanza_error(presence, "jid-malformed", sender=self.domain))
        elif kind in SUBSCRIPTION_TYPES:
            await self._subscription_out(session, presence, kind, target.bare)
        elif kind == "probe":
            await self._probe(session, target)
        elif kind in (None, "unavailable", "error"):
            await self._directed(session, target, presence)
        else:
            session.send(stanza_error(presence, "bad-request", sender=self.domain))

    async def _own_presence(self, session: Session, presence: Element) -> None:
        """Presence for everyone (RFC 6121 4.2-4.5): to the user's other
        available resources and to the contacts subscribed to it (from or
        both). The initial one also brings the newcomer the presence of
        those resources and of the contacts it is subscribed to (to or both:
        the answers to the probes of 4.3), the subscription requests waiting
        for an answer, and, with a non-negative priority, the offline
        messages."""
        assert session.jid is not None
        initial = presence.get("type") is None and session.presence is None
        if presence.get("type") is None:
            session.presence = presence
            session.priority = _priority(presence)
        else:
            session.presence = None
        for other, copy in self._presence_copies(session.jid, presence):
            await other.route_in(copy, bounce=False)
        if presence.get("type") == "unavailable":
            for other, copy in self._directed_copies(session, presence):
                await other.route_in(copy, bounce=False)
            session.directed.clear()
        if not initial:
            return
        user = session.jid.local
        for contact in [user, *self._contacts(user, ("to", "both"))]:
            for other in self._available(contact):
                if other is not session and other.presence is not None:
                    copy = _copy(other.presence)
                    copy.set("to", str(session.jid))
                    await session.route_in(copy)
        for request in self.store.pending_in(user):  # re-sent until answered, as Prosody
            await session.queue(request.encode() + b"\n")
        if session.priority >= 0:
            await self._deliver_offline(session)

    def _presence_copies(self, jid: JID, presence: Element) -> list[tuple[Session, Element]]:
        """A copy for each of the user's other available resources and for
        those of the contacts subscribed to the user's presence."""
        copies = []
        for user in [jid.local, *self._contacts(jid.local, ("from", "both"))]:
            for other in self._available(user):
                if other.jid != jid:
                    copy = _copy(presence)
                    copy.set("to", str(other.jid))
                    copies.append((other, copy))
        return copies

    def _contacts(self, user: str, subscriptions: tuple[str, ...]) -> list[str]:
        """The users here (not bots) among `user`'s contacts with one of these
        subscriptions: ("from", "both") see the user's presence, ("to",
        "both") are seen by the user."""
        contacts = []
        for jid in self.store.contacts(user, subscriptions):
            local = self._local_user(jid)
            if local is not None and local not in self.app.bots:
                contacts.append(local)
        return contacts

    async def _directed(self, session: Session, target: JID, presence: Element) -> None:
        """Presence to one JID (RFC 6121 4.6): delivered to it; the server
        remembers it, unless the target is subscribed anyway, so that it gets
        unavailable presence when the session ends."""
        assert session.jid is not None
        user = self._local_user(str(target))
        if user is None or user in self.app.bots:
            return
        if presence.get("type") != "error" and target.bare != session.jid.bare:
            item = self.store.item(session.jid.local, str(target.bare))
            if presence.get("type") == "unavailable":
                session.directed.discard(str(target))
            elif (item is None or not item.from_) and len(session.directed) < MAX_DIRECTED:
                session.directed.add(str(target))
        for other, copy in self._addressed(target, presence):
            await other.route_in(copy, bounce=False)

    def _directed_copies(
        self, session: Session, presence: Element
    ) -> list[tuple[Session, Element]]:
        """Copies of `presence` for those the session sent directed presence to."""
        copies = []
        for text in sorted(session.directed):
            target = JID.parse_or_none(text)
            if target is not None:
                copies += self._addressed(target, presence)
        return copies

    def _addressed(self, target: JID, stanza: Element) -> list[tuple[Session, Element]]:
        """Copies of `stanza` for `target`: its resource, or for a bare JID its
        available resources."""
        if target.resource:
            found = self.sessions.get(target.local, {}).get(target.resource)
            receivers = [found] if found is not None and not found.closed else []
        else:
            receivers = self._available(target.local)
        copies = []
        for receiver in receivers:
            copy = _copy(stanza)
            copy.set("to", str(receiver.jid))
            copies.append((receiver, copy))
        return copies

    async def _probe(self, session: Session, target: JID) -> None:
        """A client's own probe (RFC 6121 4.3): the contact's presence if it
        may see it (unavailable if the contact is offline); nothing if not."""
        assert session.jid is not None
        contact = self._local_user(str(target))
        if contact is None or contact in self.app.bots:
            return
        item = self.store.item(contact, str(session.jid.bare))
        if item is None or not item.from_:
            return  # 4.3.2: nothing for those not subscribed
        available = self._available(contact)
        for other in available:
            if other.presence is not None:
                copy = _copy(other.presence)
                copy.set("to", str(session.jid))
                session.send(copy)
        if not available:  # 4.3.2: offline, said with unavailable presence
            attributes = {"type": "unavailable", "from": str(target.bare), "to": str(session.jid)}
            session.send(Element(q(CLIENT_NS, "presence"), attributes))

    async def _presence_of(self, user: str, to: JID, *, unavailable: bool = False) -> None:
        """The presence of `user`'s available resources (or their unavailable
        presence) to the available resources of `to`, who just became (or
        stopped being) subscribed to it."""
        receivers = self._available(to.local)
        for mine in self._available(user):
            if unavailable:
                presence = Element(q(CLIENT_NS, "presence"), {"type": "unavailable"})
            else:
                assert mine.presence is not None
                presence = _copy(mine.presence)
            presence.set("from", str(mine.jid))
            for receiver in receivers:
                copy = _copy(presence)
                copy.set("to", str(receiver.jid))
                await receiver.route_in(copy, bounce=False)

    # -- subscriptions (RFC 6121 section 3) ------------------------------------

    async def _subscription_out(
        self, session: Session, presence: Element, kind: str, contact: JID
    ) -> None:
        """A subscription stanza the user sends: the user's side changes
        (RFC 6121 A.2), then the contact's receives it (A.3)."""
        assert session.jid is not None
        user, me = session.jid.local, session.jid.bare
        if contact == me:
            return  # no self contacts (Prosody)
        if contact.domain != self.domain:  # no server-to-server connections here
            session.send(stanza_error(presence, "remote-server-not-found", sender=self.domain))
            return
        if not contact.local:
            session.send(stanza_error(presence, "service-unavailable", sender=self.domain))
            return
        if kind == "subscribe" and not self._may_subscribe(user):
            self._too_fast(session, presence)
            return
        if contact.local in self.app.bots:
            await self._bot_subscription(session, kind, contact)
            return
        if kind == "subscribe" and self._too_many_requests(contact.local, me):
            text = f"{contact} has too many subscription requests waiting for an answer"
            reply = stanza_error(presence, "resource-constraint", text=text, error_type="wait")
            session.send(reply)
            return
        item, pending = self.store.relation(user, str(contact))
        change = outbound(kind, str(contact), item, pending)
        if kind == "subscribed" and not change.passes and change.item != item:  # pre-approval
            if not self.accounts.exists(contact.local):
                return  # no such user here: nothing kept (a pre-approval is never answered)
            if not self._may_subscribe(user):
                self._too_fast(session, presence)
                return
        if item is None and change.item is not None and self._roster_full(user):
            session.send(self._roster_full_error(presence))
            return
        if (change.item, change.pending_in) != (item, pending):
            self.store.save(user, str(contact), change.item, change.pending_in)
        if change.item != item:
            await self._push(user, str(contact), change.item)
        if not change.passes:
            return
        await self._subscription_in(me, contact, kind, presence)
        if kind == "subscribed":  # 3.1.5: the new subscriber gets the user's presence
            await self._presence_of(user, contact)
        elif kind == "unsubscribed" and item is not None and item.from_:  # 3.2.2
            await self._presence_of(user, contact, unavailable=True)
        elif kind == "unsubscribe" and item is not None and item.to:  # 3.3.3
            await self._presence_of(contact.local, me, unavailable=True)

    async def _subscription_in(
        self, sender: JID, receiver: JID, kind: str, original: Element | None = None
    ) -> None:
        """A subscription stanza from `sender` reaches `receiver`'s account
        (RFC 6121 A.3): the state changes, the roster is pushed, the stanza
        is delivered if the table says so (a request is also kept, and
        re-sent at each login until answered), and a request already
        approved is answered at once."""
        user = receiver.local
        if not self.accounts.exists(user):
            if kind == "subscribe":  # RFC 6121 3.1.3: no such contact, as a refusal
                await self._subscription_in(receiver, sender, "unsubscribed")
            return
        stanza = Element(
            q(CLIENT_NS, "presence"), {"type": kind, "from": str(sender), "to": str(receiver)}
        )
        if original is not None:  # a <status/> or a nickname (XEP-0172) goes along
            stanza.extend(_copy(child) for child in original)
        item, pending = self.store.relation(user, str(sender))
        change = inbound(kind, str(sender), item, pending)
        if (change.item, change.pending_in) != (item, pending):
            request = serialize(stanza).decode()
            self.store.save(user, str(sender), change.item, change.pending_in, request)
        if change.item != item:
            await self._push(user, str(sender), change.item)
        if change.passes:
            for other in self._available(user):
                copy = _copy(stanza)
                await other.route_in(copy, bounce=False)
        if change.reply == "subscribed":
            await self._subscription_in(receiver, sender, "subscribed")
            await self._presence_of(user, sender)

    async def _bot_subscription(self, session: Session, kind: str, bot: JID) -> None:
        """Bots are everyone's contacts (both): a request is approved at once
        and answered with the bot's presence; the rest changes nothing."""
        assert session.jid is not None
        if kind != "subscribe":
            return
        for answer in ({"type": "subscribed"}, {}):
            attributes = {**answer, "from": str(bot), "to": str(session.jid.bare)}
            session.send(Element(q(CLIENT_NS, "presence"), attributes))

    def _too_fast(self, session: Session, presence: Element) -> None:
        """policy-violation: past the subscriptions_per_minute budget."""
        rate = self.settings.subscriptions_per_minute
        text = f"too many subscription requests and pre-approvals: at most {rate} a minute"
        session.send(stanza_error(presence, "policy-violation", text=text, error_type="wait"))

    def _roster_full(self, user: str) -> bool:
        """Whether `user`'s roster holds max_roster_items items already."""
        limit = self.settings.max_roster_items
        return limit > 0 and self.store.roster_count(user) >= limit

    def _roster_full_error(self, stanza: Element, sender: str | None = None) -> Element:
        """not-allowed (the type cancel: waiting does not help) for a stanza
        that would add an item to a full roster."""
        limit = self.settings.max_roster_items
        text = f"your roster is full: at most {limit} contacts (remove one first)"
        return stanza_error(stanza, "not-allowed", sender=sender, text=text)

    def _too_many_requests(self, contact: str, me: JID) -> bool:
        """Whether `contact` has MAX_PENDING_REQUESTS requests waiting for an
        answer already, not counting one of `me`'s (a request re-sent)."""
        requests = self.store.pending_count(contact)
        if requests < MAX_PENDING_REQUESTS:
            return False
        return not self.store.relation(contact, str(me))[1]

    def _may_subscribe(self, user: str) -> bool:
        """A token bucket per user: subscriptions_per_minute requests at once,
        and as many more each minute."""
        rate = self.settings.subscriptions_per_minute
        if rate <= 0:
            return True
        now = time.monotonic()
        tokens, last = self._subscribe_budget.get(user, (float(rate), now))
        tokens = min(float(rate), tokens + (now - last) * rate / 60)
        if len(self._subscribe_budget) >= MAX_RATED_USERS:  # forget the refilled ones
            self._subscribe_budget = {
                name: (spent, when)
                for name, (spent, when) in self._subscribe_budget.items()
                if spent + (now - when) * rate / 60 < rate
            }
        allowed = tokens >= 1
        self._subscribe_budget[user] = (tokens - allowed, now)
        return allowed

    # -- rosters (RFC 6121 section 2) --------------------------------------------

    async def _push(self, user: str, jid: str, item: Item | None) -> None:
        """A roster push (RFC 6121 2.1.6) to each of the user's resources that
        asked for the roster, through flow control (route_in)."""
        if item is None:
            pushed = Element(q(ROSTER_NS, "item"), {"jid": jid, "subscription": "remove"})
        else:
            pushed = self._item_element(item)
        for session in list(self.sessions.get(user, {}).values()):
            if session.interested and not session.closed:
                iq = Element(
                    q(CLIENT_NS, "iq"),
                    {"type": "set", "id": f"push-{secrets.token_hex(6)}", "to": str(session.jid)},
                )
                SubElement(iq, q(ROSTER_NS, "query")).append(_copy(pushed))
                await session.route_in(iq)

    def _item_element(self, item: Item) -> Element:
        """A stored item as the client sees it: bots are always `both`."""
        local = self._local_user(item.jid)
        bot = local is not None and local in self.app.bots
        return item_element(item, subscription="both" if bot else None)

    def _roster(self, user: str) -> Element:
        """The roster (RFC 6121 2.1.3): the stored items, then the bots that
        are not among them (every bot is everyone's contact)."""
        query = Element(q(ROSTER_NS, "query"))
        listed = set()
        for item in self.store.roster(user):
            query.append(self._item_element(item))
            listed.add(item.jid)
        for bot in self.app.bots:
            if f"{bot}@{self.domain}" not in listed:
                query.append(item_element(Item(f"{bot}@{self.domain}", bot, (), "both")))
        return query

    async def _roster_set(self, session: Session, iq: Element, query: Element) -> None:
        """Add, change or remove an item (RFC 6121 2.3-2.5); removing one
        also cancels the subscriptions both ways (2.5.2)."""
        assert session.jid is not None
        user, me = session.jid.local, session.jid.bare
        try:
            request = parse_roster_set(query, me)
        except RosterError as exc:
            session.send(stanza_error(iq, exc.condition, sender=str(me), text=str(exc)))
            return
        item, pending = self.store.relation(user, request.jid)
        if request.unparsed and item is None:  # not a JID, nor one stored as it is
            text = f"not a bare JID: {request.jid!r}"
            session.send(stanza_error(iq, "jid-malformed", sender=str(me), text=text))
            return
        if not request.remove and item is None and self._roster_full(user):
            session.send(self._roster_full_error(iq, str(me)))
            return
        if not request.remove:
            base = item if item is not None else Item(request.jid)
            changed = dataclasses.replace(base, name=request.name, groups=request.groups)
            self.store.save(user, request.jid, changed, pending)
            session.send(iq_result(iq, sender=str(me)))
            await self._push(user, request.jid, changed)
            return
        if item is None:
            session.send(stanza_error(iq, "item-not-found", sender=str(me), error_type="modify"))
            return
        self.store.save(user, request.jid, None, False)
        session.send(iq_result(iq, sender=str(me)))
        await self._push(user, request.jid, None)
        await self._cancel_subscriptions(me, request.jid, item, pending)

    async def _cancel_subscriptions(
        self, me: JID, jid: str, item: Item | None, pending: bool
    ) -> None:
        """The contact's side of a removed roster item (RFC 6121 2.5.2): the
        subscription from the user, or a request pending in, is refused
        (unsubscribed, and unavailable presence); the one to them, or a request
        pending out, is cancelled (unsubscribe). Nothing for a contact whose
        JID does not parse (stored by an older version): no user here has it."""
        contact = JID.parse_or_none(jid)
        if contact is None or self._local_user(jid) is None or contact.local in self.app.bots:
            return
        if (item is not None and item.from_) or pending:
            await self._subscription_in(me, contact, "unsubscribed")
            if item is not None and item.from_:
                await self._presence_of(me.local, contact, unavailable=True)
        if item is not None and (item.to or item.ask):
            await self._subscription_in(me, contact, "unsubscribe")
            if item.to:  # 3.3.3: the contact is not seen any more
                await self._presence_of(contact.local, me, unavailable=True)

    # -- accounts clients manage (XEP-0077) ---------------------------------------

    @property
    def _accounts_changeable(self) -> bool:
        """Whether users may change their password and remove their account
        from a client, as Prosody lets them: with the accounts in the
        database (an account file is adduser's alone)."""
        return self.settings.database is not None and not self.settings.insecure_any_password

    def register(self, session: Session, iq: Element) -> None:
        """A jabber:iq:register IQ before login (XEP-0077 3.1): the form, or a
        new account. Refused when registration is off (service-unavailable),
        over a connection a password may not cross (policy-violation, as
        Prosody), past the address's budget (policy-violation, wait), and
        for a name taken by a user or a bot (conflict)."""
        kind = iq.get("type")
        if kind not in ("get", "set"):
            return  # results and errors are never answered
        if not self.settings.allow_registration:
            text = "in-band registration is off here"
            session.send(stanza_error(iq, "service-unavailable", text=text))
            return
        if not session.may_send_secrets:
            session.send(stanza_error(iq, "policy-violation", text="encryption is required"))
            return
        query = iq.find(q(REGISTER_NS, "query"))
        assert query is not None
        if kind == "get":
            session.send(iq_result(iq, registration_form()))
            return
        request = parse_request(query)
        try:
            if request.remove:  # Prosody: there is no account to remove before login
                raise RegistrationError("registration-required", "log in to remove an account")
            name, password = request.new_account()
        except RegistrationError as exc:
            reply = stanza_error(iq, exc.condition, text=str(exc), error_type=exc.error_type)
            session.send(reply)
            return
        address = address_key(session.conn.peer.ip)
        if not self._registrations.take(address, time.monotonic()):
            wait = self._registrations.wait(address, time.monotonic())
            rate = self.settings.registrations_per_hour
            text = f"at most {rate} new accounts an hour from your address: try in {wait:g} s"
            session.send(stanza_error(iq, "policy-violation", text=text, error_type="wait"))
            return
        try:
            created = name not in self.app.bots and self.store.create_user(name, password)
        except AccountError as exc:  # what check_password missed: refused, not a crash
            session.send(stanza_error(iq, "not-acceptable", text=f"the password: {exc}"))
            return
        if not created:
            text = f"{name}@{self.domain} is taken"
            session.send(stanza_error(iq, "conflict", text=text))
            return
        session.conn.log.info("registered %s@%s", name, self.domain)
        session.send(iq_result(iq))

    async def _account(self, session: Session, iq: Element, query: Element, sender: str) -> None:
        """A jabber:iq:register IQ from a logged-in user: the form says they
        are registered (XEP-0077 3.2.1); a set with their user name and a new
        password changes it (3.3), and their other sessions end with the
        stream error `reset`, as Prosody ends them; <remove/> removes the
        account (3.2)."""
        assert session.jid is not None
        user = session.jid.local
        if iq.get("type") == "get":
            session.send(iq_result(iq, registered_form(user), sender=sender))
            return
        if not self._accounts_changeable:
            text = "accounts are changed by the administrator here"
            session.send(stanza_error(iq, "not-allowed", sender=sender, text=text))
            return
        request = parse_request(query)
        if request.remove:
            await self._remove_account(session, iq, sender)
            return
        name = lookup_name((request.username or "").strip())
        if name != user or request.password is None:  # Prosody: bad-request
            text = f"give your user name ({user}) and the new password"
            session.send(stanza_error(iq, "bad-request", sender=sender, text=text))
            return
        try:
            if not request.password:
                raise RegistrationError("not-acceptable", "the password is empty")
            check_password(request.password)
        except RegistrationError as exc:
            session.send(stanza_error(iq, exc.condition, sender=sender, text=str(exc)))
            return
        if not session.may_send_secrets:  # XEP-0077 3.3: not over this connection
            text = "a password may not cross an unencrypted connection"
            session.send(stanza_error(iq, "not-authorized", sender=sender, text=text))
            return
        try:
            self.store.set_password(user, request.password)
        except AccountError as exc:  # what check_password missed: refused, not a crash
            text = f"the password: {exc}"
            session.send(stanza_error(iq, "not-acceptable", sender=sender, text=text))
            return
        session.conn.log.info("%s changed their password", user)
        session.send(iq_result(iq, sender=sender))
        for other in list(self.sessions.get(user, {}).values()):
            if other is not session:
                other.end("reset", "the password was changed")

    async def _remove_account(self, session: Session, iq: Element, sender: str) -> None:
        """XEP-0077 3.2: the answer first, then the contacts' subscriptions
        are cancelled as for removed roster items (RFC 6121 2.5.2), all that
        is the user's is deleted, and each of their sessions ends with the
        stream error `not-authorized`."""
        assert session.jid is not None
        user, me = session.jid.local, session.jid.bare
        session.send(iq_result(iq, sender=sender))
        requesters = set(self.store.requesters(user))
        for item in self.store.roster(user):
            await self._cancel_subscriptions(me, item.jid, item, item.jid in requesters)
            requesters.discard(item.jid)
        for jid in sorted(requesters):  # requests from those not in the roster: refused
            await self._cancel_subscriptions(me, jid, None, True)
        self.store.remove_user(user, str(me))
        session.conn.log.info("%s removed their account", user)
        for other in list(self.sessions.get(user, {}).values()):
            other.end("not-authorized", "the account was removed")

    # -- IQs -----------------------------------------------------------------------

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
        elif namespace == ROSTER_NS and payload is not None and kind == "get":
            session.interested = True  # it gets roster pushes from now on
            session.send(iq_result(iq, self._roster(session.jid.local), sender=sender))
        elif namespace == ROSTER_NS and payload is not None:
            await self._roster_set(session, iq, payload)
        elif namespace == REGISTER_NS and payload is not None:
            await self._account(session, iq, payload, sender)
        elif namespace == PING_NS and kind == "get":
            session.send(iq_result(iq, sender=sender))
        elif namespace == DISCO_INFO_NS and kind == "get":
            session.send(iq_result(iq, self._disco_info(), sender=sender))
        elif namespace == DISCO_ITEMS_NS and kind == "get":
            session.send(iq_result(iq, Element(q(DISCO_ITEMS_NS, "query")), sender=sender))
        else:
            session.send(stanza_error(iq, "service-unavailable", sender=sender))

    def _disco_info(self) -> Element:
        query = Element(q(DISCO_INFO_NS, "query"))
        SubElement(
            query,
            q(DISCO_INFO_NS, "identity"),
            {"category": "server", "type": "im", "name": "netsvc"},
        )
        features: tuple[str, ...] = (DISCO_INFO_NS, DISCO_ITEMS_NS, PING_NS, ROSTER_NS)
        features += ("msgoffline",)
        if self._accounts_changeable:  # a new password, the account removed (XEP-0077)
            features += (REGISTER_NS,)
        for feature in (*features, *self.app.iq_handlers):
            SubElement(query, q(DISCO_INFO_NS, "feature"), {"var": feature})
        return query


def _open_storage(settings: XmppSettings, domain: str) -> tuple[Store, AccountStore]:
    """The store of rosters and offline messages (the database, or memory),
    and the accounts logins are checked against: the database (into which an
    account file's new users are imported first), or the account file."""
    any_password = settings.insecure_any_password
    file = Accounts(settings.users_file, any_password=any_password) if settings.users_file else None
    if settings.database is None:
        log.info(
            "rosters and offline messages are kept in memory and lost at exit: "
            "--xmpp-database FILE keeps them"
        )
        store = Store(any_password=any_password)
        if file is None:
            return store, store
        for name in file.passwords:  # an account file's contacts: mutual subscriptions
            store.add_contacts(name, file.roster(name), domain)
        return store, file
    store = Store(settings.database, any_password=any_password, busy_timeout=BUSY_TIMEOUT)
    if file is not None:
        report = store.import_accounts(file, domain)
        if report.users:
            log.info(
                "imported %d users (%s) and %d roster items from %s into %s",
                len(report.users),
                ", ".join(report.users),
                report.contacts,
                settings.users_file,
                settings.database,
            )
        if report.removed:
            log.info(
                "%d users of %s were removed from %s since they were imported, and stay "
                "removed (adduser gives one a new account): %s",
                len(report.removed),
                settings.users_file,
                settings.database,
                ", ".join(report.removed),
            )
        if report.kept:
            log.info(
                "%d users of %s are in %s already and were left as they are: %s",
                len(report.kept),
                settings.users_file,
                settings.database,
                ", ".join(report.kept),
            )
    elif not any_password and not store.users():
        log.warning(
            "%s has no accounts yet: add some with "
            "`python -m protocols.xmpp adduser --database %s NAME`",
            settings.database,
            settings.database,
        )
    return store, store


def _priority(presence: Element) -> int:
    """<priority/> (RFC 6121 4.7.2.3), -128 to 127; 0 if absent or not a number."""
    try:
        return max(-128, min(127, int(presence.findtext(q(CLIENT_NS, "priority")) or 0)))
    except ValueError:
        return 0


def _chat_state_only(message: Element) -> bool:
    """A message with a chat state (XEP-0085) and no body: nothing to keep."""
    return message.find(q(CLIENT_NS, "body")) is None and any(
        child.tag.startswith(f"{{{CHAT_STATES_NS}}}") for child in message
    )


def _no_store(message: Element) -> bool:
    """A message whose sender asks that it not be stored (XEP-0334)."""
    return message.find(q(HINTS_NS, "no-store")) is not None


def _same_domain(text: str | None, domain: str) -> bool:
    return text is not None and text.strip().lower().rstrip(".") == domain


def _addressed_copy(stanza: Element, receiver: Session) -> Element:
    copy = _copy(stanza)
    copy.set("to", str(receiver.jid))
    return copy


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
