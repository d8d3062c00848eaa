# The XMPP XML stream layer: bytes to stream events (whole and byte by byte),
# every stream error with its trigger, serialisation, fuzzing, and hibernation
# (freeing expat between stanzas) changing none of it.
from __future__ import annotations

import gc
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.xmpp._xml import (
    CLIENT_NS,
    StanzaReceived,
    StreamClosed,
    StreamError,
    StreamOpened,
    StreamParser,
    serialize,
    stream_error,
    stream_header,
)

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DECL = b"<?xml version='1.0'?>"
# what slixmpp sends
HEADER = (
    b"<stream:stream to='example.com' xmlns='jabber:client'"
    b" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
OPENED = ("open", {"to": "example.com", "version": "1.0"})
AUTH = (
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>"
)


def canon(element: ET.Element) -> tuple[Any, ...]:
    return (
        element.tag,
        sorted(element.attrib.items()),
        element.text or "",
        element.tail or "",
        [canon(child) for child in element],
    )


def stanza(xml: str) -> tuple[Any, ...]:
    """The expected event for a stanza, written with explicit namespaces."""
    root = ET.fromstring(xml)
    root.tail = None
    return ("stanza", canon(root))


def normal(events: list[StreamOpened | StanzaReceived | StreamClosed]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for event in events:
        if isinstance(event, StreamOpened):
            out.append(("open", event.attributes))
        elif isinstance(event, StanzaReceived):
            out.append(("stanza", canon(event.element)))
        else:
            assert isinstance(event, StreamClosed)
            out.append(("close",))
    return out


def feed_whole(data: bytes, parser: StreamParser | None = None) -> list[tuple[Any, ...]]:
    return normal((parser or StreamParser()).feed(data))


def feed_bytewise(data: bytes, parser: StreamParser | None = None) -> list[tuple[Any, ...]]:
    parser = parser or StreamParser()
    events = []
    for i in range(len(data)):
        events += parser.feed(data[i : i + 1])
    return normal(events)


FEEDERS = [pytest.param(feed_whole, id="whole"), pytest.param(feed_bytewise, id="bytewise")]

GOOD = {
    "header only": (HEADER, [OPENED]),
    "xml declaration": (DECL + HEADER, [OPENED]),
    "declaration with utf-8 encoding": (
        b"<?xml version='1.0' encoding='UTF-8'?>" + HEADER,
        [OPENED],
    ),
    "full header": (
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'"
        b' from="alice@example.com" to="example.com" version="1.0" xml:lang="en" id="x">',
        [
            (
                "open",
                {
                    "from": "alice@example.com",
                    "to": "example.com",
                    "version": "1.0",
                    XML_LANG: "en",
                    "id": "x",
                },
            )
        ],
    ),
    "other stream prefix": (
        b"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>",
        [("open", {})],
    ),
    "sasl auth": (
        HEADER + AUTH,
        [
            OPENED,
            stanza(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                "AGFsaWNlAHNlY3JldA==</auth>"
            ),
        ],
    ),
    "message with nested children": (
        HEADER + b"<message to='bob@example.com' type='chat' id='m1'><body>Hi, Bob!</body>"
        b"<active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        [
            OPENED,
            stanza(
                "<message xmlns='jabber:client' to='bob@example.com' type='chat' id='m1'>"
                "<body>Hi, Bob!</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
                "</message>"
            ),
        ],
    ),
    "presence, iq, keepalives": (
        HEADER + b"\n  <presence/>\n\t\r\n <iq type='get' id='r1'><query xmlns='jabber:iq:roster'/>"
        b"</iq> \n",
        [
            OPENED,
            stanza("<presence xmlns='jabber:client'/>"),
            stanza(
                "<iq xmlns='jabber:client' type='get' id='r1'>"
                "<query xmlns='jabber:iq:roster'/></iq>"
            ),
        ],
    ),
    "mixed content, tails, entities, CDATA": (
        HEADER
        + b"<message><body>a &lt;b&gt; &amp; &quot;c&apos; &#65;&#x42; \xc3\xa9\xf0\x9f\x98\x80"
        b"</body>tail<x:y xmlns:x='urn:x' x:a='1'>in<![CDATA[<raw>&]]></x:y>end</message>",
        [
            OPENED,
            stanza(
                "<message xmlns='jabber:client'><body>a &lt;b&gt; &amp; \"c' AB \u00e9\U0001f600"
                "</body>tail<y xmlns='urn:x' xmlns:x='urn:x' x:a='1'>in&lt;raw&gt;&amp;</y>end"
                "</message>"
            ),
        ],
    ),
    "newline in text is kept": (
        HEADER + b"<message><body>line 1\nline 2</body></message>",
        [OPENED, stanza("<message xmlns='jabber:client'><body>line 1\nline 2</body></message>")],
    ),
    "close": (
        HEADER + b"<presence/></stream:stream>",
        [OPENED, stanza("<presence xmlns='jabber:client'/>"), ("close",)],
    ),
    "data after close is ignored": (
        HEADER + b"</stream:stream><garbage &foo; <!-- x",
        [OPENED, ("close",)],
    ),
}


@pytest.mark.parametrize("feed", FEEDERS)
@pytest.mark.parametrize(("data", "expected"), GOOD.values(), ids=GOOD.keys())
def test_events(feed: Any, data: bytes, expected: list[tuple[Any, ...]]) -> None:
    assert feed(data) == expected


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(list(GOOD.values())), st.data())
def test_any_split_gives_the_same_events(case: tuple[bytes, Any], data: st.DataObject) -> None:
    raw, expected = case
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    parser, events = StreamParser(), []
    for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        events += parser.feed(raw[start:end])
    assert normal(events) == expected


def test_each_stanza_is_reported_as_soon_as_its_end_tag_arrives() -> None:
    parser = StreamParser()
    assert len(parser.feed(HEADER)) == 1
    assert len(parser.feed(b"<message><body>hi</body></message>")) == 1
    line = b"<presence><status>" + b"s" * 20_000 + b"</status></presence>"
    assert len(parser.feed(line)) == 1
    for i, byte in enumerate(line):
        events = parser.feed(bytes([byte]))
        assert len(events) == (1 if i == len(line) - 1 else 0)
    # a large token (an attribute value) in many pieces: no deferred reparse
    parser.feed(b"<message to='")
    for _ in range(100):
        assert parser.feed(b"a" * 100) == []
    assert len(parser.feed(b"'/>")) == 1
    inner = parser._parser
    assert inner is not None
    if hasattr(inner, "GetReparseDeferralEnabled"):  # expat >= 2.6
        assert not inner.GetReparseDeferralEnabled()


@pytest.mark.parametrize("declaration", [b"", DECL])
def test_reset_accepts_a_new_header(declaration: bytes) -> None:
    parser = StreamParser()
    assert len(parser.feed(DECL + HEADER + AUTH)) == 2
    parser.reset()
    events = parser.feed(declaration + HEADER + b"<iq type='set' id='b'/>")
    assert normal(events) == [OPENED, stanza("<iq xmlns='jabber:client' type='set' id='b'/>")]
    parser.feed(b"</stream:stream>")
    parser.reset()  # also after a close or an error
    assert len(parser.feed(HEADER)) == 1


LAUGHS = (
    b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
    + b"".join(
        b"<!ENTITY lol%d '%s'>" % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>"
    + HEADER
    + b"<message><body>&lol9;</body></message>"
)

BAD = {
    # restricted XML, RFC 6120 11.1
    "comment before header": (b"<!-- hi -->" + HEADER, "restricted-xml"),
    "comment between stanzas": (HEADER + b"<!-- hi -->", "restricted-xml"),
    "comment in stanza": (HEADER + b"<message><!-- hi --></message>", "restricted-xml"),
    "processing instruction": (HEADER + b"<message><?php x?></message>", "restricted-xml"),
    "processing instruction before header": (
        DECL + b"<?xml-stylesheet x?>" + HEADER,
        "restricted-xml",
    ),
    "doctype": (b"<!DOCTYPE stream>" + HEADER, "restricted-xml"),
    "external dtd": (b"<!DOCTYPE s SYSTEM 'http://example.com/x.dtd'>" + HEADER, "restricted-xml"),
    "entity declaration": (DECL + b"<!DOCTYPE s [<!ENTITY e 'x'>]>" + HEADER, "restricted-xml"),
    "billion laughs": (LAUGHS, "restricted-xml"),
    "undefined entity in text": (
        HEADER + b"<message><body>&lol9;</body></message>",
        "restricted-xml",
    ),
    "undefined entity in attribute": (HEADER + b"<message to='&x;'/>", "restricted-xml"),
    # namespaces, RFC 6120 4.8.1 and 4.9.3.10
    "first element not a stream": (b"<message xmlns='jabber:client'/>", "invalid-namespace"),
    "wrong stream namespace": (
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://example.com/streams'>",
        "invalid-namespace",
    ),
    "server content namespace": (
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
        "invalid-namespace",
    ),
    "no content namespace": (
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
        "invalid-namespace",
    ),
    "stream in no namespace": (b"<stream xmlns='jabber:client'>", "invalid-namespace"),
    # limits
    "oversized stanza": (
        HEADER + b"<message><body>" + b"x" * 70_000 + b"</body></message>",
        "policy-violation",
    ),
    "oversized attribute": (HEADER + b"<message to='" + b"x" * 70_000 + b"'/>", "policy-violation"),
    "oversized empty stanza then more": (
        HEADER + b"<presence a='" + b"x" * 70_000 + b"'/><presence/>",
        "policy-violation",
    ),
    "oversized header": (
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        b" to='" + b"x" * 70_000 + b"'><presence/>",
        "policy-violation",
    ),
    "deep nesting": (HEADER + b"<message>" + b"<a>" * 32, "policy-violation"),
    "too many attributes": (
        HEADER + b"<message " + b" ".join(b"a%d='1'" % i for i in range(65)) + b"/>",
        "policy-violation",
    ),
    "too many namespace declarations": (
        HEADER + b"<message " + b" ".join(b"xmlns:p%d='u'" % i for i in range(65)) + b"/>",
        "policy-violation",
    ),
    # encoding, RFC 6120 4.9.3.22 and 11.6
    "invalid utf-8": (HEADER + b"<message><body>\xff</body></message>", "unsupported-encoding"),
    "overlong utf-8": (
        HEADER + b"<message><body>\xc0\xaf</body></message>",
        "unsupported-encoding",
    ),
    "utf-8 surrogate": (
        HEADER + b"<message><body>\xed\xa0\x80</body></message>",
        "unsupported-encoding",
    ),
    "latin-1 in header": (b"<stream:stream to='caf\xe9'", "unsupported-encoding"),
    "declared latin-1": (
        b"<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER,
        "unsupported-encoding",
    ),
    # well-formedness, RFC 6120 4.9.3.13
    "mismatched tag": (HEADER + b"<message><body></message>", "not-well-formed"),
    "bare ampersand": (HEADER + b"<message><body>a & b</body></message>", "not-well-formed"),
    "double lt": (HEADER + b"<<message/>", "not-well-formed"),
    "unbound prefix": (HEADER + b"<x:message/>", "not-well-formed"),
    "duplicate attribute": (HEADER + b"<message to='a' to='b'/>", "not-well-formed"),
    "nul character": (HEADER + b"<message><body>\x00</body></message>", "not-well-formed"),
    "invalid char reference": (HEADER + b"<message><body>&#0;</body></message>", "not-well-formed"),
    "doctype inside the stream": (HEADER + b"<!DOCTYPE x>", "not-well-formed"),
    "declaration inside the stream": (HEADER + DECL, "not-well-formed"),
    "stream closed inside a stanza": (HEADER + b"<message></stream:stream>", "not-well-formed"),
    "junk before header": (b"hello" + HEADER, "not-well-formed"),
    # RFC 6120 4.9.3.1
    "text between stanzas": (HEADER + b"<presence/>hello", "bad-format"),
}


@pytest.mark.parametrize("feed", FEEDERS)
@pytest.mark.parametrize(("data", "condition"), BAD.values(), ids=BAD.keys())
def test_stream_errors(feed: Any, data: bytes, condition: str) -> None:
    parser = StreamParser()
    with pytest.raises(StreamError) as caught:
        feed(data, parser)
    assert caught.value.condition == condition
    with pytest.raises(StreamError) as again:  # the stream is dead
        parser.feed(b" ")
    assert again.value.condition == condition


def test_limits_are_settable_and_inclusive() -> None:
    parser = StreamParser()
    parser.feed(HEADER)
    parser.max_depth = 3
    assert len(parser.feed(b"<message><a><b/></a></message>")) == 1
    with pytest.raises(StreamError, match="nested"):
        parser.feed(b"<message><a><b><c/></b></a></message>")
    parser = StreamParser()
    parser.feed(HEADER)
    parser.max_attributes = 3  # namespace declarations count
    assert len(parser.feed(b"<message a='1' b='2' xmlns:c='u'/>")) == 1
    with pytest.raises(StreamError, match="attributes"):
        parser.feed(b"<message a='1' b='2' xmlns:c='u' xmlns='jabber:client'/>")
    parser = StreamParser()
    parser.feed(HEADER)
    parser.max_stanza_bytes = 200  # the header (128 bytes) counts too
    assert len(parser.feed(b"<message>" + b"x" * 180 + b"</message>")) == 1
    with pytest.raises(StreamError) as caught:
        parser.feed(b"<message>" + b"x" * 200 + b"</message>")
    assert caught.value.condition == "policy-violation"


@pytest.mark.parametrize(
    "opening", [b"<message><body>", b"<message to='", b"<message><body><![CDATA[", b"<message"]
)
def test_byte_cap_holds_for_a_stanza_fed_in_small_pieces(opening: bytes) -> None:
    parser = StreamParser(max_stanza_bytes=10_000)
    parser.feed(HEADER + opening)
    fed = 0
    with pytest.raises(StreamError) as caught:
        while fed < 1_000_000:
            parser.feed(b"x" * 100)
            fed += 100
    assert caught.value.condition == "policy-violation"
    assert fed <= 10_100


class CountingParser:
    """Wraps the expat parser to add up the bytes it scans: an unfinished token is
    scanned again on each Parse()."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.passed = 0
        self.scanned = 0

    def Parse(self, data: bytes, final: bool = False) -> int:
        self.scanned += self.passed - max(0, self.inner.CurrentByteIndex) + len(data)
        self.passed += len(data)
        return int(self.inner.Parse(data, final))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize(
    ("opening", "filler"),
    [
        (b"<message to='", b"x"),
        (b"<message to='", b">"),
        (b"<message", b" a='>'"),
        (b"<message><!--", b">"),
    ],
)
def test_a_large_tag_fed_byte_by_byte_is_not_rescanned_each_time(
    opening: bytes, filler: bytes
) -> None:
    parser = StreamParser()
    parser.feed(HEADER)
    counting = CountingParser(parser._parser)
    parser._parser = counting  # type: ignore[assignment]
    data = opening + filler * (70_000 // len(filler))
    with pytest.raises(StreamError) as caught:
        for i in range(len(data)):
            parser.feed(data[i : i + 1])
    assert caught.value.condition == "policy-violation"
    # small tokens are rescanned (2 KiB^2 / 2), large ones not on every byte: 64 KiB^2 / 2 = 2e9
    assert counting.scanned < 5_000_000


def test_whitespace_keepalives_are_never_capped() -> None:
    parser = StreamParser(max_stanza_bytes=200)
    parser.feed(HEADER)
    for _ in range(1000):
        assert parser.feed(b" \n") == []


# -- serialisation ------------------------------------------------------------------------

ROUND_TRIPS = {
    "roster get": b"<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
    "message": (
        b"<message to='bob@example.com' type='chat' xml:lang='en'><body>Hi</body>"
        b"<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    ),
    "escapes": (
        b"<message to='a&amp;b&apos;c&quot;'><body>&lt;x&gt; &amp; &#10;&#13;</body></message>"
    ),
    "tails": b"<message><b>1</b>two<c xmlns='urn:c'><d/>three</c>four</message>",
    "sasl": AUTH,
    "namespaced attribute": b"<message><x xmlns:p='urn:p' p:a='1' b='2'/></message>",
    "nested namespaces": b"<iq><q xmlns='urn:a'><r><s xmlns='jabber:client'/></r></q></iq>",
}


def parse_one(data: bytes) -> ET.Element:
    events = StreamParser().feed(HEADER + data)
    assert len(events) == 2
    assert isinstance(events[1], StanzaReceived)
    return events[1].element


@pytest.mark.parametrize("data", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip(data: bytes) -> None:
    element = parse_one(data)
    out = serialize(element)
    assert b"\n" not in out
    assert b"ns0" not in out
    assert canon(parse_one(out)) == canon(element)


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        (
            b"<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
            b"<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
        ),
        (
            b"<presence>\n  <show>away</show>\n</presence>",
            b"<presence>&#10;  <show>away</show>&#10;</presence>",
        ),
        (
            b"<message xml:lang='fr'><body>salut</body></message>",
            b"<message xml:lang='fr'><body>salut</body></message>",
        ),
        (AUTH, AUTH),
    ],
)
def test_serialize_exact(xml: bytes, expected: bytes) -> None:
    assert serialize(parse_one(xml)) == expected


def test_serialize_built_elements() -> None:
    message = ET.Element("message", {"to": "a@b", "type": "chat"})
    ET.SubElement(message, "body").text = "a < b & 'c' \"d\"\r\nnext"
    ET.SubElement(message, "{urn:x}x", {"v": 'it\'s "q"\t<&>'})
    assert serialize(message) == (
        b"<message to='a@b' type='chat'><body>a &lt; b &amp; 'c' \"d\"&#13;&#10;next</body>"
        b"<x xmlns='urn:x' v='it&apos;s &quot;q&quot;&#9;&lt;&amp;&gt;'/></message>"
    )
    iq = ET.Element(f"{{{CLIENT_NS}}}iq")
    ET.SubElement(iq, "{jabber:iq:roster}query")
    assert serialize(iq) == b"<iq><query xmlns='jabber:iq:roster'/></iq>"
    assert serialize(iq, default_ns="jabber:server") == (
        b"<iq xmlns='jabber:client'><query xmlns='jabber:iq:roster'/></iq>"
    )


@pytest.mark.parametrize(
    "element",
    [
        ET.Element("message", {"to": "\x00"}),
        ET.Element("a b"),
        ET.Element("{urn:x}x:y"),
        ET.Comment("no"),
    ],
)
def test_serialize_refuses_what_is_not_xml(element: ET.Element) -> None:
    with pytest.raises(ValueError):
        serialize(element)


XML_TEXT = st.text(
    st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="\ufffe\uffff")
    | st.sampled_from("\t\n\r\x7f\x85&<>'\"]]>"),
    max_size=8,
)
TAGS = st.sampled_from(["{jabber:client}message", "{jabber:client}body", "{urn:x}x", "{urn:y}é"])
ATTRS = st.dictionaries(
    st.sampled_from(["to", "id", "{http://www.w3.org/XML/1998/namespace}lang", "{urn:p}a"]),
    XML_TEXT,
    max_size=3,
)


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> ET.Element:
    element = ET.Element(draw(TAGS), draw(ATTRS))
    element.text = draw(XML_TEXT) or None
    if depth < 2:
        for child in draw(st.lists(elements(depth + 1), max_size=3)):
            child.tail = draw(XML_TEXT) or None
            element.append(child)
    return element


@settings(max_examples=100, deadline=None)
@given(elements())
def test_serialize_round_trips_any_element(element: ET.Element) -> None:
    out = serialize(element)
    assert b"\n" not in out
    assert canon(parse_one(out)) == canon(element)


def test_stream_header_and_error() -> None:
    assert stream_header(stream_id="s1", from_domain="example.com") == (
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
        b" xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='example.com'"
        b" version='1.0' xml:lang='en'>"
    )
    header = stream_header(stream_id="a'b", from_domain="x", to="alice@x/r", lang="fr")
    (opened,) = StreamParser().feed(header)
    assert opened == StreamOpened(
        {"id": "a'b", "from": "x", "to": "alice@x/r", "version": "1.0", XML_LANG: "fr"}
    )
    assert stream_error("policy-violation") == (
        b"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"</stream:error></stream:stream>"
    )
    assert stream_error("not-well-formed", "a <b>\nc") == (
        b"<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>a &lt;b&gt;&#10;c"
        b"</text></stream:error></stream:stream>"
    )
    with pytest.raises(ValueError):
        stream_error("made-up/><evil")
    # what the server sends parses as a stream (the client side of it)
    events = StreamParser().feed(header + stream_error("reset", "bye"))
    assert [type(e) for e in events] == [StreamOpened, StanzaReceived, StreamClosed]


# -- fuzzing ------------------------------------------------------------------------------

XMLISH = st.lists(
    st.sampled_from(
        [
            b"<",
            b">",
            b"/",
            b"</",
            b"/>",
            b"message",
            b"body",
            b"x:y",
            b" ",
            b"'",
            b"=",
            b"a",
            b"&",
            b";",
            b"amp",
            b"#",
            b"xmlns",
            b"xmlns:x",
            b"!--",
            b"?",
            b"[CDATA[",
            b"]]>",
            b"!DOCTYPE",
            b"\xc3",
            b"\xa9",
            b"\xff",
            b"\x00",
            b"</stream:stream>",
            AUTH,
        ]
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(st.booleans(), st.one_of(st.binary(max_size=200), XMLISH), st.data())
def test_random_bytes_raise_only_stream_error(
    with_header: bool, garbage: bytes, data: st.DataObject
) -> None:
    parser = StreamParser(max_stanza_bytes=300, max_depth=4, max_attributes=4)
    raw = (HEADER if with_header else b"") + garbage
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=5)))
    try:
        for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
            for event in parser.feed(raw[start:end]):
                if isinstance(event, StanzaReceived):
                    serialize(event.element)  # whatever parses also serialises
    except StreamError:
        pass


# -- hibernation --------------------------------------------------------------------------
# hibernate() frees the expat parser between stanzas; the next feed() primes a new one
# with an equivalent stream header. Nothing a client can see may change: the events, the
# errors (line and column included) and the limits are those of a parser that never
# hibernates, whatever the reads.

STREAM_NS = b"'http://etherx.jabber.org/streams'"
OTHER_PREFIX = b"<s:stream xmlns:s=" + STREAM_NS + b" xmlns='jabber:client'>"
MORE_PREFIXES = (
    b"<stream:stream xmlns:stream=" + STREAM_NS + b" xmlns='jabber:client'"
    b" xmlns:db='jabber:server:dialback' xmlns:q='urn:&quot;q&apos;&#10;&lt;'>"
)
NON_ASCII_PREFIX = (
    b"<str\xc3\xb6m:stream xmlns:str\xc3\xb6m=" + STREAM_NS + b" xmlns='jabber:client'>"
)
SMALL = {"max_stanza_bytes": 300, "max_depth": 3, "max_attributes": 4}  # HEADER has 4
# max_stanza_bytes=300 counts from the "<" to the end tag
AT_LIMIT = b"<message>" + b"x" * 291 + b"</message>"

Parts = list[bytes]
Limits = dict[str, int]
HIBERNATION: dict[str, tuple[Parts, Limits]] = {
    "stanzas and keepalives": (
        [
            DECL + HEADER,
            b"<presence/>",
            b"\n ",
            b"<message to='a@b'><body>hi</body></message>",
            b"\r\n",
        ],
        {},
    ),
    "several stanzas a read": (
        [HEADER + b"<presence/>", b"<iq type='get' id='1'/><presence/>  ", b"<presence/>"],
        {},
    ),
    "a stanza across reads": (
        [HEADER, b"<presence/>", b"<message><bo", b"dy>hi</body></mes", b"sage>", b"<presence/>"],
        {},
    ),
    "entities, CDATA, UTF-8 split": (
        [HEADER, b"<message><body>&amp;&#65;<![CDATA[<x>]]>\xc3", b"\xa9</body>tail</message>"],
        {},
    ),
    "other stream prefix, closed": (
        [OTHER_PREFIX, b"<presence/>", b"<s:features/>", b"</s:stream>", b"<junk &x;"],
        {},
    ),
    "prefixes declared on the header": (
        [MORE_PREFIXES, b"<presence/>", b"<db:result to='a'>key</db:result>", b"<q:x q:a='1'/>"],
        {},
    ),
    "closed, then garbage": ([HEADER, b"<presence/>", b"</stream:stream>", b"<!-- &x; <"], {}),
    "a trailing CR, then LF": (
        [HEADER, b"<presence/>\r", b"\n<message></body>"],
        {},
    ),
    "a trailing CR, then a stanza": (
        [HEADER, b"<presence/>\r", b"<presence/>\r", b"\r\n\r", b"<message></body>"],
        {},
    ),
    "a large tag held back": (
        [HEADER, b"<presence/>", b"<message to='" + b"a" * 3000, b"a" * 3000, b"'/>"],
        {},
    ),
    "a large tag with quoted '>' held back": (
        [HEADER, b"<presence/>", b"<message to='" + b">" * 3000, b"' a=\"" + b">'" * 3000, b'"/>'],
        {},
    ),
    "stanza at the size limit": ([HEADER, b"<presence/>", AT_LIMIT, b"<presence/>"], SMALL),
    # errors after a wake
    "stanza over the size limit": (
        [HEADER, b"<presence/>", AT_LIMIT.replace(b"x", b"xx", 1)],
        SMALL,
    ),
    "unfinished stanza over the size limit": (
        [HEADER, b"<presence/>", b"<message>", b"x" * 200, b"x" * 200],
        SMALL,
    ),
    "too deep": ([HEADER, b"<presence/>", b"<a><b><c><d/></c></b></a>"], SMALL),
    "too many attributes": (
        [HEADER, b"<presence/>", b"<a b='1' c='2' xmlns:d='u' e='3' f='4'/>"],
        SMALL,
    ),
    "comment": ([HEADER, b"<presence/>", b"<!-- hi -->"], {}),
    "processing instruction": ([HEADER, b"<presence/>", b"<message><?pi x?></message>"], {}),
    "undefined entity": ([HEADER, b"<presence/>", b"<message>&lol;</message>"], {}),
    "mismatched tag on the header's line": ([HEADER, b"<presence/>", b"<message></body>"], {}),
    "mismatched tag lines later": (
        [HEADER, b"<presence/>\n\n", b"  <presence/>\r\n\r", b"\n<message>\n</body>"],
        {},
    ),
    "error after a non-ASCII prefix": (
        [NON_ASCII_PREFIX, b"<presence/>", b"<message><body>\xc3\xa9</body> <</message>"],
        {},
    ),
    "unbound prefix": ([HEADER, b"<presence/>", b"<x:message/>"], {}),
    "xml declaration inside": ([HEADER, b"<presence/>", DECL], {}),
    "doctype inside": ([HEADER, b"<presence/>", b"<!DOCTYPE x>"], {}),
    "text between stanzas": ([HEADER, b"<presence/>", b"hello"], {}),
    "stream closed inside a stanza": ([HEADER, b"<presence/>", b"<message></stream:stream>"], {}),
    "wrong end tag for the stream": ([HEADER, b"<presence/>", b"</s:stream>"], {}),
    "invalid utf-8": ([HEADER, b"<presence/>", b"<message>\xff</message>"], {}),
}


def run(parts: Parts, *, hibernate: bool, **limits: int) -> tuple[list[Any], str | None, int]:
    """Feed `parts` in turn, hibernating after each if asked: the events, the
    stream error ("condition: text", also raised by a later feed) and how many
    times hibernate() freed expat."""
    parser = StreamParser(**limits)
    events: list[Any] = []
    freed = 0
    try:
        for part in parts:
            events += normal(parser.feed(part))
            if hibernate:
                alive = parser._parser is not None
                parser.hibernate()
                freed += alive and parser._parser is None
    except StreamError as exc:
        events += normal(exc.events)
        with pytest.raises(StreamError) as again:
            parser.feed(b" ")
        assert again.value.text == exc.text
        return events, f"{exc.condition}: {exc.text}", freed
    return events, None, freed


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize(("parts", "limits"), HIBERNATION.values(), ids=HIBERNATION.keys())
def test_hibernating_changes_nothing(parts: Parts, limits: Limits, bytewise: bool) -> None:
    if bytewise:
        parts = [bytes([byte]) for byte in b"".join(parts)]
    events, error, freed = run(parts, hibernate=True, **limits)
    assert (events, error) == run(parts, hibernate=False, **limits)[:2]
    assert freed > 0


def test_error_positions_count_from_the_streams_start() -> None:
    parts = [HEADER, b"<presence/>\n", b"<presence/>", b"  <message></body>"]
    _, error, freed = run(parts, hibernate=True)
    assert freed == 3
    assert error == "not-well-formed: mismatched tag (line 2, column 24)"  # at "body"


@pytest.mark.parametrize("feed", FEEDERS)
@pytest.mark.parametrize("data", [d for d, _ in [*GOOD.values(), *BAD.values()]])
def test_hibernating_after_every_read_changes_nothing(feed: Any, data: bytes) -> None:
    parts = [data] if feed is feed_whole else [bytes([byte]) for byte in data]
    assert run(parts, hibernate=True)[:2] == run(parts, hibernate=False)[:2]


WAKE_HEADERS = [HEADER, DECL + HEADER, OTHER_PREFIX, MORE_PREFIXES, NON_ASCII_PREFIX]
WAKE_STANZAS = [
    b"<presence/>",
    b"\n \t",
    b"\r\n",
    b"<message to='a@b' type='chat'><body>hi &amp; <![CDATA[x<y]]> \xc3\xa9</body>"
    b"<x xmlns='urn:x'><y/>tail</x></message>",
    b"<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
    b"<db:result to='x'>key</db:result>",
    b"<s:features/>",
    b"<presence><status>" + b"z" * 3000 + b"</status></presence>",
]
WAKE_ENDINGS = [
    b"",
    b"</stream:stream>",
    b"</s:stream> <junk",
    b"<!-- c -->",
    b"<?pi x?>",
    b"<a>&foo;</a>",
    b"text",
    b"<a><b></a>",
    b"<a><b><c><d><e/></d></c></b></a>",
    b"<a b='1' c='2' d='3' e='4'/>",
    b"<m>" + b"q" * 70_000 + b"</m>",
    b"<m>\xff</m>",
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(WAKE_HEADERS),
    st.lists(st.sampled_from(WAKE_STANZAS), max_size=8),
    st.sampled_from(WAKE_ENDINGS),
    st.sampled_from([{}, SMALL]),
    st.data(),
)
def test_hibernating_between_any_reads_changes_nothing(
    header: bytes, stanzas: list[bytes], ending: bytes, limits: Limits, data: st.DataObject
) -> None:
    raw = header + b"".join(stanzas) + ending
    # cut anywhere, and often at stanza boundaries, where hibernation frees expat
    edges = list(itertools.accumulate([len(header), *map(len, stanzas)]))
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    cuts = sorted({*cuts, *data.draw(st.lists(st.sampled_from(edges), max_size=len(edges)))})
    parts = [raw[start:end] for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert run(parts, hibernate=True, **limits)[:2] == run(parts, hibernate=False, **limits)[:2]


def test_expat_exists_only_while_needed() -> None:
    parser = StreamParser()
    assert parser._parser is None  # until the first feed
    parser.feed(HEADER[:20])
    parser.hibernate()
    assert parser._parser is not None  # the header is unfinished
    parser.feed(HEADER[20:])
    parser.hibernate()
    assert parser._parser is None
    parser.feed(b"<message><body>")
    parser.hibernate()
    assert parser._parser is not None and parser.has_partial  # a stanza is half-read
    assert len(parser.feed(b"</body></message> ")) == 1
    parser.hibernate()
    assert parser._parser is None
    parser.reset()
    assert parser._parser is None
    parser.feed(HEADER + b"<message>")
    parser.close()
    assert parser._parser is None
    assert parser.feed(b"</message>") == []


def test_no_hibernation_when_two_prefixes_name_the_stream_namespace() -> None:
    # the stream's end tag must repeat the client's prefix, which expat does not report
    header = (
        b"<a:stream xmlns:a=" + STREAM_NS + b" xmlns:b=" + STREAM_NS + b" xmlns='jabber:client'>"
    )
    parser = StreamParser()
    parser.feed(header + b"<presence/>")
    parser.hibernate()
    assert parser._parser is not None
    assert normal(parser.feed(b"</a:stream>")) == [("close",)]


def test_a_closed_or_hibernated_parser_needs_no_garbage_collection() -> None:
    """Expat's handlers refer back to the StreamParser: while expat lives, the
    two are a cycle that only the cyclic garbage collector frees."""

    def freed_by_refcount(data: bytes, finish: Callable[[StreamParser], None]) -> bool:
        parser = StreamParser()
        parser.feed(data)
        finish(parser)
        gc.collect()  # garbage of before: what follows counts only the parser's
        del parser
        return gc.collect() == 0  # (no weakref: compiled, StreamParser takes none)

    gc.disable()
    try:
        assert not freed_by_refcount(HEADER + b"<message>", lambda parser: None)
        assert freed_by_refcount(HEADER + b"<message>", StreamParser.close)
        assert freed_by_refcount(HEADER + b"<presence/>", StreamParser.hibernate)
    finally:
        gc.enable()


# -- what fuzzing found ---------------------------------------------------------------------


def test_keepalives_do_not_count_against_the_next_stanza() -> None:
    parser = StreamParser(max_stanza_bytes=300)
    parser.feed(HEADER)
    events = parser.feed(b" \r\n\t" * 500 + AT_LIMIT)  # 2000 bytes of whitespace, one read
    assert [type(event) for event in events] == [StanzaReceived]
    assert not parser.has_partial


def test_a_trailing_cr_between_stanzas_is_no_partial_stanza() -> None:
    parser = StreamParser()
    parser.feed(HEADER + b"<presence/>\r")
    assert not parser.has_partial
    parser.hibernate()
    assert parser._parser is None
    assert [type(e) for e in parser.feed(b"\n<presence/>")] == [StanzaReceived]


def test_a_stream_error_carries_the_events_completed_before_it() -> None:
    parser = StreamParser()
    with pytest.raises(StreamError) as info:
        parser.feed(HEADER + b"<presence/><iq type='get' id='1'/><a></b>")
    assert [type(e) for e in info.value.events] == [StreamOpened, StanzaReceived, StanzaReceived]
    with pytest.raises(StreamError) as again:  # raised again, with nothing more
        parser.feed(b"<presence/>")
    assert again.value.events == []


@pytest.mark.parametrize("quote", [b"'", b'"'])
def test_a_large_tag_with_quoted_gt_completes_at_its_end(quote: bytes) -> None:
    # held back while large, parsed again only at a ">" outside quotes: one
    # byte at a time, it completes with its last byte
    parser = StreamParser(max_stanza_bytes=1 << 20)
    parser.feed(HEADER)
    data = b"<message id=" + quote + b">" * 8000 + quote + b" a='>\"'/>"
    for i in range(len(data) - 1):
        assert parser.feed(data[i : i + 1]) == []
    assert [type(e) for e in parser.feed(data[-1:])] == [StanzaReceived]


@pytest.mark.parametrize("before", [b"", b"<message><body>hi</body></message>"])
@pytest.mark.parametrize("cut", [1, 60, 120, 160])
def test_a_stanza_under_the_limit_passes_however_its_start_tag_is_cut(
    before: bytes, cut: int
) -> None:
    # while its start tag is unfinished, a stanza is counted from its own
    # "<", not from the stream header or the previous stanza's end tag
    stanza = b"<presence id='" + b"x" * 150 + b"'/>"  # 167 bytes
    parser = StreamParser(max_stanza_bytes=200)
    parser.feed(HEADER)
    first = parser.feed(before + stanza[:cut])
    events = first + parser.feed(stanza[cut:])
    assert [type(e) for e in events][-1] is StanzaReceived
    assert len(events) == (2 if before else 1)
