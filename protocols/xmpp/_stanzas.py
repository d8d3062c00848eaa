# Building the stanzas and replies the server sends: features, SASL answers,
# IQ results, stanza errors (RFC 6120 8.3, with text), delays (XEP-0203).
from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

__all__ = [
    "BIND_NS",
    "CHAT_STATES_NS",
    "CLIENT_NS",
    "DELAY_NS",
    "DISCO_INFO_NS",
    "DISCO_ITEMS_NS",
    "HINTS_NS",
    "PING_NS",
    "PRE_APPROVAL_NS",
    "REGISTER_FEATURE_NS",
    "REGISTER_NS",
    "ROSTER_NS",
    "SASL_NS",
    "SESSION_NS",
    "STANZA_ERROR_NS",
    "TLS_NS",
    "delay",
    "features_after_auth",
    "features_before_auth",
    "iq_result",
    "stanza_error",
]

CLIENT_NS = "jabber:client"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind"
SESSION_NS = "urn:ietf:params:xml:ns:xmpp-session"
STANZA_ERROR_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
ROSTER_NS = "jabber:iq:roster"
PING_NS = "urn:xmpp:ping"
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS_NS = "http://jabber.org/protocol/disco#items"
DELAY_NS = "urn:xmpp:delay"
PRE_APPROVAL_NS = "urn:xmpp:features:pre-approval"
REGISTER_NS = "jabber:iq:register"  # XEP-0077
REGISTER_FEATURE_NS = "http://jabber.org/features/iq-register"
STREAMS_NS = "http://etherx.jabber.org/streams"
CHAT_STATES_NS = "http://jabber.org/protocol/chatstates"  # XEP-0085
HINTS_NS = "urn:xmpp:hints"  # XEP-0334
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

ERROR_TYPES = {
    "service-unavailable": "cancel",
    "bad-request": "modify",
    "conflict": "cancel",
    "not-authorized": "auth",
    "registration-required": "auth",
    "feature-not-implemented": "cancel",
    "item-not-found": "cancel",
    "not-allowed": "cancel",
    "internal-server-error": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "policy-violation": "modify",
    "remote-server-not-found": "cancel",
}


def q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}"


def features_before_auth(
    *,
    external: bool = False,
    starttls: str = "off",
    scram: tuple[str, ...] = (),
    register: bool = False,
) -> Element:
    """STARTTLS ("optional", or "required": then nothing else, RFC 6120
    5.3.1), the SASL mechanisms: EXTERNAL first when the client has shown a
    verified certificate (XEP-0178), then `scram` (strongest first), then
    PLAIN; and with `register`, in-band registration (XEP-0077 4)."""
    features = Element(q(STREAMS_NS, "features"))
    if starttls != "off":
        offer = SubElement(features, q(TLS_NS, "starttls"))
        if starttls == "required":
            SubElement(offer, q(TLS_NS, "required"))
            return features
    mechanisms = SubElement(features, q(SASL_NS, "mechanisms"))
    if external:
        SubElement(mechanisms, q(SASL_NS, "mechanism")).text = "EXTERNAL"
    for mechanism in (*scram, "PLAIN"):
        SubElement(mechanisms, q(SASL_NS, "mechanism")).text = mechanism
    if register:
        SubElement(features, q(REGISTER_FEATURE_NS, "register"))
    return features


def features_after_auth() -> Element:
    features = Element(q(STREAMS_NS, "features"))
    SubElement(features, q(BIND_NS, "bind"))
    session = SubElement(features, q(SESSION_NS, "session"))
    SubElement(session, q(SESSION_NS, "optional"))
    SubElement(features, q(PRE_APPROVAL_NS, "sub"))  # RFC 6121 3.4
    return features


def iq_result(
    request: Element, payload: Element | None = None, *, sender: str | None = None
) -> Element:
    result = Element(q(CLIENT_NS, "iq"), {"type": "result", "id": request.get("id", "")})
    if request.get("from"):
        result.set("to", request.get("from", ""))
    if sender:
        result.set("from", sender)
    if payload is not None:
        result.append(payload)
    return result


def stanza_error(
    stanza: Element,
    condition: str,
    *,
    sender: str | None = None,
    text: str | None = None,
    error_type: str | None = None,
) -> Element:
    """The error reply to `stanza`: same kind and id, to and from swapped;
    `text` for people, `error_type` to override the condition's usual type."""
    reply = Element(stanza.tag, {"type": "error"})
    for name in ("id",):
        if stanza.get(name) is not None:
            reply.set(name, stanza.get(name, ""))
    if stanza.get("from"):
        reply.set("to", stanza.get("from", ""))
    origin = sender or stanza.get("to")
    if origin:
        reply.set("from", origin)
    kind = error_type or ERROR_TYPES.get(condition, "cancel")
    error = SubElement(reply, q(CLIENT_NS, "error"), {"type": kind})
    SubElement(error, q(STANZA_ERROR_NS, condition))
    if text:
        SubElement(error, q(STANZA_ERROR_NS, "text"), {XML_LANG: "en"}).text = text
    return reply


def delay(domain: str, stamp: str) -> Element:
    """XEP-0203's <delay/>: when `domain` received a stanza it delivers late."""
    return Element(q(DELAY_NS, "delay"), {"from": domain, "stamp": stamp})
