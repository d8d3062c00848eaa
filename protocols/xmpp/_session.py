# One client's XMPP session: stream negotiation (header, STARTTLS, SASL,
# in-band registration's IQs, restart, resource binding, the legacy session),
# then stanzas in and out. Input is framed by the sans-IO StreamParser,
# whatever the line breaks; output is one stanza per line, queued and
# written by a task of its own. Flow control: a sender whose stanza finds the
# receiver's queue full waits (its own connection is not read meanwhile, so
# TCP pushes back on a flooding client); a receiver is dropped only when its
# socket stops draining (the send timeout), and the messages and IQs it did
# not get go back to their senders as errors (or offline storage): the copies
# of a message to a bare JID count together, so it is kept or bounced once,
# when the last copy is lost. At shutdown, or when the writer is cancelled,
# the same bookkeeping runs before the task ends. An idle
# session keeps little: the writer task and its queue exist only while there
# is output, and the parser's expat instance only while a stanza is half-read.
from __future__ import annotations

import base64
import binascii
import collections
import secrets
import sqlite3
import time
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, SubElement

import trio

from netsvc import Connection, ConnectionLost, ReceiveTimeout, SendTimeout

from ._accounts import lookup_name
from ._jid import JID
from ._scram import MECHANISMS as SCRAM_MECHANISMS
from ._scram import ScramError, ScramServer
from ._stanzas import (
    BIND_NS,
    CLIENT_NS,
    REGISTER_NS,
    SASL_NS,
    SESSION_NS,
    TLS_NS,
    features_after_auth,
    features_before_auth,
    iq_result,
    q,
    stanza_error,
)
from ._xml import (
    Event,
    StanzaReceived,
    StreamClosed,
    StreamError,
    StreamOpened,
    StreamParser,
    serialize,
    stream_error,
    stream_header,
)

if TYPE_CHECKING:
    from ._service import XmppService

__all__ = ["Copies", "Session"]

OUTGOING_STANZAS = 1024  # queued for one client: senders wait while it has this many
RESUME_AT = OUTGOING_STANZAS // 2  # waiting senders go on once the queue is down to this
# Output that cannot wait (the unavailable presences of a session that ends)
# may go past OUTGOING_STANZAS; at this many the client counts as not reading.
HARD_LIMIT = 8 * OUTGOING_STANZAS
# bytes of queued stanzas the writer sends in one write: one syscall for many
# small stanzas (a flood's chat messages) instead of one each, about 15% of
# the server's time per routed message in bench.xmpp
WRITE_BATCH = 64 * 1024
STREAM_NS = "http://etherx.jabber.org/streams"


class Copies:
    """A stanza queued for one client or more (the copies of a message to a
    bare JID, one per resource): it is undelivered once every copy is."""

    __slots__ = ("left", "stanza")

    def __init__(self, stanza: Element, count: int = 1) -> None:
        self.stanza = stanza
        self.left = count

    def lost(self, count: int = 1) -> Element | None:
        """Copies that did not reach their clients: the stanza if they were the last."""
        self.left -= count
        return self.stanza if self.left == 0 else None


def _unsent(
    batch: list[tuple[bytes, Copies | None]], exc: BaseException
) -> list[tuple[bytes, Copies | None]]:
    """The stanzas of a failed write that did not go out whole: those past
    the bytes the connection says went out (stanzas in the kernel's buffer
    count as delivered, as any sent before); all of them when that is not
    known (TLS, a cancelled write)."""
    sent = exc.sent if isinstance(exc, (SendTimeout, ConnectionLost)) else None
    if sent is None:
        return batch
    for index, (data, _) in enumerate(batch):
        if sent < len(data):
            return batch[index:]
        sent -= len(data)
    return []


def _lost(copies: list[Copies | None]) -> list[Element]:
    """The stanzas whose last copy these were."""
    return [stanza for c in copies if c is not None and (stanza := c.lost()) is not None]


class Session:
    def __init__(self, service: XmppService, conn: Connection) -> None:
        self.service = service
        self.conn = conn
        settings = service.settings
        self.parser = StreamParser(max_stanza_bytes=settings.max_stanza_size_before_auth)
        self.stream_id = secrets.token_hex(8)
        self.header_sent = False
        self.user: str | None = None  # after SASL
        self.jid: JID | None = None  # after binding
        self.presence: Element | None = None  # the last available presence
        self.priority = 0
        self.interested = False  # asked for the roster: gets roster pushes
        self.directed: set[str] = set()  # JIDs it sent directed presence to (RFC 6121 4.6)
        self.closed = False
        self.restarted = False  # SASL succeeded: events of the old parser are stale
        # Output waiting for the writer task; both exist only while there is some.
        # Each entry: the bytes, and the stanza to answer with an error if the
        # client never gets them (a message or IQ another client sent), or None.
        self._outgoing: collections.deque[tuple[bytes, Copies | None]] | None = None
        self._space: trio.Event | None = None  # set when waiting senders may go on
        self._events_after_starttls = False  # the read that brought <starttls/> had more
        self._scram: ScramServer | None = None  # a SCRAM exchange under way
        self._writer_done: trio.Event | None = None  # set when it ends, if run() waits
        self._write_error: Exception | None = None  # why the writer failed, for run()

    # -- output --------------------------------------------------------------

    @property
    def full(self) -> bool:
        """Senders to this client wait: OUTGOING_STANZAS are queued."""
        return self._outgoing is not None and len(self._outgoing) >= OUTGOING_STANZAS

    def deliver(self, data: bytes, undelivered: Copies | None = None) -> None:
        """Queue bytes for this client without waiting (the server's own
        answers, whose sender is this client: its reads wait instead). If it
        never gets them, `undelivered` (the stanza, for the last copy of it)
        goes back to its sender as an error or to offline storage."""
        if self.closed:
            if undelivered is not None:
                self.service.undelivered(_lost([undelivered]))
            return
        if self._outgoing is None:
            self._outgoing = collections.deque([(data, undelivered)])
            self.service.nursery.start_soon(self._write, self._outgoing)
        elif len(self._outgoing) < HARD_LIMIT:
            self._outgoing.append((data, undelivered))
        else:
            self.conn.log.warning("closing: %d stanzas queued and not read", HARD_LIMIT)
            self._close()
            self.conn.disconnect()
            if undelivered is not None:
                self.service.undelivered(_lost([undelivered]))

    def send(self, element: Element) -> None:
        self.deliver(serialize(element) + b"\n")

    async def route_in(
        self, element: Element, *, bounce: bool = False, copies: Copies | None = None
    ) -> None:
        """A stanza from another client (or a broadcast): wait while this
        client's queue is full, then queue it. With `bounce`, it goes back to
        its sender as an error (or to offline storage) if this client never
        gets it; with `copies`, once no client it was queued for gets it. A
        copy never queued (the wait was cancelled) counts as lost."""
        if copies is None and bounce:
            copies = Copies(element)
        await self.queue(serialize(element) + b"\n", copies)

    async def queue(self, data: bytes, copies: Copies | None = None) -> None:
        """Queue `data` for this client once its queue has room (route_in)."""
        try:
            # a session that ended while its writer still holds stanzas: wait
            # for the writer, which sends them or hands them on, in order
            while self._outgoing is not None and (self.full or self.closed):
                if self._space is None:
                    self._space = trio.Event()
                await self._space.wait()
        except BaseException:  # cancelled (shutdown): queued anyway, so it keeps its place
            if self._outgoing is not None:
                self._outgoing.append((data, copies))
            elif copies is not None:
                self.service.undelivered(_lost([copies]))
            raise
        self.deliver(data, copies)

    async def wait_for_space(self) -> None:
        """Wait until this client's own queue has room: called before each
        read, so a client that does not read its answers stops being read."""
        while self.full and not self.closed:
            if self._space is None:
                self._space = trio.Event()
            await self._space.wait()

    def _close(self) -> None:
        """No more output: waiting senders go on (and bounce what they hold)."""
        self.closed = True
        self._let_senders_go()

    def _let_senders_go(self) -> None:
        if self._space is not None:
            self._space.set()
            self._space = None

    async def _write(self, outgoing: collections.deque[tuple[bytes, Copies | None]]) -> None:
        """The writer task (in the service's nursery): send what is queued,
        then end. A failed send (SendTimeout, ConnectionLost) ends the session
        and is raised by run(); what it did not send goes back to its senders
        or to offline storage, also when the task is cancelled (shutdown)."""
        sending: list[tuple[bytes, Copies | None]] = []  # in the write under way
        with trio.CancelScope() as scope:
            self.service.writers.add(scope)
            try:
                while outgoing:
                    size = 0
                    while outgoing and size < WRITE_BATCH:
                        sending.append(outgoing.popleft())
                        size += len(sending[-1][0])
                    if self._space is not None and len(outgoing) <= RESUME_AT:
                        self._let_senders_go()
                    await self.conn.send(b"".join([data for data, _ in sending]))
                    sending.clear()
            except BaseException as exc:
                if isinstance(exc, Exception):
                    self._write_error = exc
                self._close()
                self.conn.disconnect()
                lost = [copies for _, copies in _unsent(sending, exc)]
                lost += [copies for _, copies in outgoing]
                outgoing.clear()
                self.service.undelivered(_lost(lost))
                if not isinstance(exc, Exception):
                    raise
            finally:
                self._outgoing = None
                self._let_senders_go()
                self.service.writer_ended(scope)
                if self._writer_done is not None:
                    self._writer_done.set()

    # -- the connection ------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._read()
        except StreamError as exc:
            self._end_with_error(exc.condition, exc.text)
        except ReceiveTimeout as exc:
            if exc.phase == "idle":
                self._end_with_error("connection-timeout", "no traffic for too long")
            else:
                self._end_with_error("connection-timeout", "a stanza took too long to arrive")
        finally:
            self._close()
            self.parser.close()  # frees expat now, not at the next cyclic garbage collection
            self.service.leave(self)
        if self._outgoing is not None:  # the writer sends what is queued (a goodbye, an error)
            self._writer_done = trio.Event()
            await self._writer_done.wait()
        if self._write_error is not None:
            raise self._write_error

    def end(self, condition: str, text: str) -> None:
        """End this session from elsewhere with a stream error (its account was
        removed, its password changed); what is queued before goes first."""
        if self.closed:
            return
        self._end_with_error(condition, text)
        self.conn.disconnect()

    def _end_with_error(self, condition: str, text: str | None = None) -> None:
        if not self.header_sent:
            self._send_header(None)
        self.conn.log.info("stream error %s: %s", condition, text or "")
        self.deliver(stream_error(condition, text) + b"\n")
        self._close()

    def _send_header(self, opened: StreamOpened | None) -> None:
        to = opened.attributes.get("from") if opened is not None else None
        self.deliver(
            stream_header(stream_id=self.stream_id, from_domain=self.service.domain, to=to) + b"\n"
        )
        self.header_sent = True

    async def _read(self) -> None:
        conn = self.conn
        rate = self.service.settings.max_bytes_per_second
        allowance, last = float(rate), time.monotonic()
        while not self.closed:
            self.parser.hibernate()  # unless a stanza is half-read, expat is freed while we wait
            await self.wait_for_space()  # a client that does not read is not read either
            data = await conn.receive()
            if not data:
                if conn.closing and self.header_sent:
                    self.deliver(b"</stream:stream>\n")  # the server is shutting down
                return
            if rate:  # a token bucket: reading pauses, nothing is dropped
                now = time.monotonic()
                allowance = min(float(rate), allowance + (now - last) * rate) - len(data)
                last = now
                if allowance < 0:
                    await trio.sleep(-allowance / rate)
            await self._handle(data)
            del data  # not kept while waiting for the next read (nor are its stanzas)

    async def _handle(self, data: bytes) -> None:
        """Feed one read to the parser and act on the events it completes
        (those before a stream error in the read too, then the error)."""
        error: StreamError | None = None
        try:
            events = self.parser.feed(data)
        except StreamError as exc:
            events, error = exc.events, exc
        self.conn.parsed(len(events), partial=self.parser.has_partial)
        for index, event in enumerate(events):
            self._events_after_starttls = len(events) - index - 1 > 0 or error is not None
            if type(event) is StreamOpened:
                self._stream_opened(event)
            elif type(event) is StanzaReceived:
                try:
                    await self._stanza(event.element)
                except trio.Cancelled:  # shutdown: the messages read and not routed are kept
                    self._unrouted(events[index + 1 :])
                    raise
            elif type(event) is StreamClosed:
                self.deliver(b"</stream:stream>\n")
                self._close()
            if self.closed:
                return
            if self.restarted:  # what followed <auth/> in the same read belongs to
                self.restarted = False  # the old stream: dropped (RFC 6120 6.4.6)
                self.conn.parsed(0, partial=False)  # the new stream has not begun
                return
        if error is not None:
            raise error

    def _unrouted(self, events: list[Event]) -> None:
        """Messages this client sent that the server read but had no time to
        route (the grace period of a shutdown ended): stored offline once the
        writers have handed on what they hold (service.stop)."""
        if self.jid is None:
            return
        messages = []
        for event in events:
            if type(event) is StanzaReceived and event.element.tag == q(CLIENT_NS, "message"):
                event.element.set("from", str(self.jid))
                messages.append(event.element)
        self.service.unrouted += messages

    def _stream_opened(self, opened: StreamOpened) -> None:
        to = opened.attributes.get("to")
        self._send_header(opened)
        if to is not None and to.lower() != self.service.domain:
            raise StreamError("host-unknown", f"this server is {self.service.domain}")
        if self.user is None:
            features = features_before_auth(
                external=self.conn.peer_certificate is not None,
                starttls=self._starttls_offer(),
                scram=SCRAM_MECHANISMS if self.service.accounts.scram_possible else (),
                register=self.service.settings.allow_registration and self.may_send_secrets,
            )
        else:
            features = features_after_auth()
        # with the stream: prefix the header declared (clients that are not
        # namespace-aware, such as sendxmpp's XML::Stream, look for it)
        inner = b"".join(serialize(child) for child in features)
        self.deliver(b"<stream:features>" + inner + b"</stream:features>\n")

    async def _stanza(self, stanza: Element) -> None:
        tag = stanza.tag
        if self.user is None:
            if tag == q(TLS_NS, "starttls"):
                await self._start_tls()
                return
            try:
                self._before_login(stanza)
            except sqlite3.Error as exc:  # disk full, the file locked: the client may retry
                self.service.database_failed(exc)
                if tag == q(CLIENT_NS, "iq"):
                    text = "the server could not use its database: try again later"
                    condition = "internal-server-error"
                    self.send(stanza_error(stanza, condition, text=text, error_type="wait"))
                else:
                    self._scram = None
                    self._sasl_failure("temporary-auth-failure")  # RFC 6120 6.5.12
            return
        if tag.startswith(f"{{{CLIENT_NS}}}") or tag.startswith("{jabber:server}"):
            sender = stanza.get("from")
            if (
                sender is not None
                and self.jid is not None
                and JID.parse_or_none(sender) not in (self.jid, self.jid.bare)
            ):
                raise StreamError("invalid-from", f"you are {self.jid}")
        kind = tag.rpartition("}")[2]
        if self.jid is None:  # authenticated, not bound: only binding and the session
            if kind == "iq" and self._bind_or_session(stanza):
                return
            self.send(stanza_error(stanza, "not-allowed"))
            return
        if kind == "iq" and stanza.find(q(SESSION_NS, "session")) is not None:
            self.send(iq_result(stanza))
            return
        await self.service.route(self, kind, stanza)

    def _before_login(self, stanza: Element) -> None:
        """SASL, or in-band registration's IQs (XEP-0077), before login."""
        tag = stanza.tag
        if tag == q(SASL_NS, "auth"):
            self._authenticate(stanza)
        elif tag == q(SASL_NS, "response"):
            self._scram_response(stanza)
        elif tag == q(SASL_NS, "abort"):
            self._scram = None
            self._sasl_failure("aborted")
        elif tag == q(CLIENT_NS, "iq") and stanza.find(q(REGISTER_NS, "query")) is not None:
            self.service.register(self, stanza)
        else:
            raise StreamError("not-authorized", "authenticate first")

    @property
    def may_send_secrets(self) -> bool:
        """Whether a password may come over this connection (PLAIN, in-band
        registration, a password change): TLS, or loopback (or the setting
        that allows it anywhere), and STARTTLS is not required first."""
        return self._starttls_offer() != "required" and self.service.plain_allowed(self.conn)

    def _starttls_offer(self) -> str:
        """What the features say of STARTTLS: "required", "optional" or "off"
        (already TLS, no certificate, or --xmpp-starttls off)."""
        return self.service.settings.starttls if self.conn.can_start_tls else "off"

    async def _start_tls(self) -> None:
        """STARTTLS (RFC 6120 5.4): <proceed/>, then the TLS handshake, then
        the client restarts the stream over TLS."""
        if self._starttls_offer() == "off":  # 5.4.2.2: failure, and the stream ends
            self.send(Element(q(TLS_NS, "failure")))
            self.deliver(b"</stream:stream>\n")
            self._close()
            return
        if self.parser.has_partial or self._events_after_starttls:
            # what follows <starttls/> in the clear could be an attacker's, who
            # hopes to see it taken for part of the encrypted stream
            raise StreamError("policy-violation", "nothing may follow <starttls/> before TLS")
        self.send(Element(q(TLS_NS, "proceed")))
        await self._flush()
        if self.closed:
            return
        try:
            await self.conn.start_tls()
        except ConnectionLost as exc:
            self.conn.log.info("STARTTLS: %s", exc)
            self._close()
            return
        self.parser.reset()  # the client restarts the stream, now over TLS
        self.stream_id = secrets.token_hex(8)  # a new stream, a new id (RFC 6120 4.7.3)
        self.restarted = True

    async def _flush(self) -> None:
        """Wait until all queued output has been sent."""
        if self._outgoing is not None:
            self._writer_done = trio.Event()
            await self._writer_done.wait()
            self._writer_done = None

    def _sasl_failure(self, condition: str) -> None:
        failure = Element(q(SASL_NS, "failure"))
        SubElement(failure, q(SASL_NS, condition))
        self.send(failure)

    def _authenticate(self, auth: Element) -> None:
        failure = Element(q(SASL_NS, "failure"))
        mechanism = auth.get("mechanism")
        self._scram = None  # a new <auth/> starts over
        if self._starttls_offer() == "required":
            self._sasl_failure("encryption-required")
            return
        if mechanism == "EXTERNAL" and self.conn.peer_certificate is not None:
            self._authenticate_external(auth)
            return
        if mechanism in SCRAM_MECHANISMS and self.service.accounts.scram_possible:
            self._scram_start(mechanism, auth)
            return
        if mechanism != "PLAIN":
            SubElement(failure, q(SASL_NS, "invalid-mechanism"))
            self.send(failure)
            return
        if not self.service.plain_allowed(self.conn):
            SubElement(failure, q(SASL_NS, "encryption-required"))
            self.send(failure)
            return
        try:
            decoded = base64.b64decode((auth.text or "").strip(), validate=True).decode()
            _authzid, user, password = decoded.split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            SubElement(failure, q(SASL_NS, "malformed-request"))
            self.send(failure)
            return
        name = lookup_name(user)  # RFC 8265: fullwidth ALICE logs in as alice
        if name is None or not self.service.accounts.check(name, password):
            SubElement(failure, q(SASL_NS, "not-authorized"))
            self.service.login_failed(self.conn, user)
            self.send(failure)
            return
        self._authenticated(name)

    def _authenticate_external(self, auth: Element) -> None:
        """SASL EXTERNAL (XEP-0178): the user is the one the verified client
        certificate names (_certificate_user). An authorization identity, if
        given, must be that user's bare JID."""
        certificate = self.conn.peer_certificate
        assert certificate is not None
        failure = Element(q(SASL_NS, "failure"))
        domain = self.service.domain
        user = _certificate_user(certificate.emails, certificate.common_name, domain)
        try:
            text = (auth.text or "").strip()
            authzid = "" if text in ("", "=") else base64.b64decode(text, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            SubElement(failure, q(SASL_NS, "malformed-request"))
            self.send(failure)
            return
        if authzid and authzid.lower() != f"{user}@{domain}":
            SubElement(failure, q(SASL_NS, "invalid-authzid"))
            self.send(failure)
            return
        if not user or not self.service.accounts.exists(user):
            SubElement(failure, q(SASL_NS, "not-authorized"))
            self.service.login_failed(self.conn, user or certificate.rfc4514_name())
            self.send(failure)
            return
        self._authenticated(user, "EXTERNAL")

    def _scram_start(self, mechanism: str, auth: Element) -> None:
        """SCRAM's first round: client-first in, server-first out."""
        scram = ScramServer(mechanism)
        try:
            data = _sasl_data(auth.text)
            if not data:
                raise ScramError("malformed-request", "SCRAM needs an initial response")
            user = scram.first(data)
            me = JID(lookup_name(user) or "", self.service.domain)
            if scram.authzid and JID.parse_or_none(scram.authzid) != me:
                raise ScramError("invalid-authzid", "one may only log in as oneself")
            credentials = self.service.accounts.scram(user, mechanism)
            challenge = scram.challenge(credentials, secret=self.service.scram_secret)
        except ScramError as exc:
            self._sasl_failure(exc.condition)
            return
        self._scram = scram
        answer = Element(q(SASL_NS, "challenge"))
        answer.text = base64.b64encode(challenge).decode()
        self.send(answer)

    def _scram_response(self, response: Element) -> None:
        """SCRAM's second round: client-final in; success with server-final."""
        scram, self._scram = self._scram, None
        if scram is None:
            self._sasl_failure("malformed-request")  # a response to no challenge
            return
        try:
            server_final = scram.final(_sasl_data(response.text))
        except ScramError as exc:
            if exc.condition == "not-authorized":
                self.service.login_failed(self.conn, scram.user)
            self._sasl_failure(exc.condition)
            return
        self._authenticated(scram.user, scram.mechanism, server_final)

    def _authenticated(self, user: str, mechanism: str = "PLAIN", data: bytes = b"") -> None:
        self.user = lookup_name(user)  # the account's name: its keys matched, so it has one
        assert self.user is not None
        self.conn.log.info("authenticated as %s (%s)", self.user, mechanism)
        success = Element(q(SASL_NS, "success"))
        if data:
            success.text = base64.b64encode(data).decode()
        self.send(success)
        self.parser.reset()  # the client restarts the stream
        self.stream_id = secrets.token_hex(8)
        self.restarted = True
        self.parser.max_stanza_bytes = self.service.settings.max_stanza_size

    def _bind_or_session(self, iq: Element) -> bool:
        if iq.get("type") != "set":
            return False
        bind = iq.find(q(BIND_NS, "bind"))
        if bind is not None:
            assert self.user is not None
            wanted = (bind.findtext(q(BIND_NS, "resource")) or "").strip()
            self.jid = self.service.bind(self, self.user, wanted)
            payload = Element(q(BIND_NS, "bind"))
            SubElement(payload, q(BIND_NS, "jid")).text = str(self.jid)
            self.send(iq_result(iq, payload))
            return True
        if iq.find(q(SESSION_NS, "session")) is not None:
            self.send(iq_result(iq))
            return True
        return False


def _sasl_data(text: str | None) -> bytes:
    """The bytes an <auth/> or <response/> carries: base64, "=" for empty."""
    text = (text or "").strip()
    if text in ("", "="):
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ScramError("incorrect-encoding", "not base64") from None


def _certificate_user(emails: list[str], common_name: str | None, domain: str) -> str:
    """The account a client certificate names, or "" for none: its email
    address at this domain if it has email addresses (one at another domain
    names nobody here: no falling back to the CN), else its CN. ASCII names
    only, lowercased in ASCII alone, so no Unicode case folding (a KELVIN
    SIGN) can turn one name into another."""
    if emails:
        here = [
            local
            for local, _, at in (email.rpartition("@") for email in emails)
            if at.isascii() and at.lower() == domain
        ]
        name = here[0] if here else ""
    else:
        name = common_name or ""
    if not name.isascii() or not name or any(ch in "\"&'/:<>@ ,\t\r\n" for ch in name):
        return ""
    return name.lower()
