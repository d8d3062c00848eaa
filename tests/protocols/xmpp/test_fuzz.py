# Fuzzing the XMPP plugin: the sans-IO StreamParser fed near-valid streams
# (tests/fuzzing.py's generators, driven by Hypothesis) whole, split at random
# points and a byte at a time, and stanzas that never end, against its limits;
# then mutated sessions over real connections to `netsvc serve --protocol xmpp`.
from __future__ import annotations

import base64
import random
import re
import socket
import time
from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.xmpp._xml import (
    Event,
    StanzaReceived,
    StreamClosed,
    StreamError,
    StreamOpened,
    StreamParser,
    serialize,
)
from tests.fuzzing import XMPP_PASSWORD, fuzz_server, fuzz_settings, serve_args, xmpp_phases
from tests.serveprocess import ServeProcess, host_port

FUZZ = fuzz_settings()
SPLIT_MAX = 16 * 1024  # under max_stanza_bytes: near the limit, the split decides
HEADER = (
    b"<stream:stream to='localhost' xmlns='jabber:client'"
    b" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
Result = tuple[list[tuple[Any, ...]], str | None]


def canon(element: Element) -> tuple[Any, ...]:
    return (
        element.tag,
        sorted(element.attrib.items()),
        element.text or "",
        element.tail or "",
        [canon(child) for child in element],
    )


def feed(chunks: list[bytes], parser: StreamParser) -> Result:
    """The events (those a StreamError carries included), and the stream
    error that ended them (or None). Any other exception escapes: the parser
    may raise nothing but StreamError. Every stanza must serialise, as the
    server sends stanzas on."""
    events: list[tuple[Any, ...]] = []

    def note(completed: list[Event]) -> None:
        for event in completed:
            if isinstance(event, StanzaReceived):
                serialize(event.element)
                events.append(("stanza", canon(event.element)))
            elif isinstance(event, StreamOpened):
                events.append(("open", event.attributes))
            else:
                assert isinstance(event, StreamClosed)
                events.append(("closed",))

    try:
        for chunk in chunks:
            note(parser.feed(chunk))
    except StreamError as exc:
        note(exc.events)
        return events, f"{exc.condition}: {POSITION.sub('', exc.text)}"
    return events, None


# Where expat reports an error depends on where the stream was split: given
# b"8\x00xml version" whole it says column 2, fed byte by byte column 1 (it
# reports the token it stopped on, and a split changes which token that is).
# So the position is left out of what splits are compared on: the stream
# error's condition and expat's message (the kind of error), and with them
# the events before the error, which include every stanza completed first.
POSITION = re.compile(r" \(line \d+, column \d+\)$")


def near_valid(rng: random.Random) -> bytes:
    return b"".join(xmpp_phases(rng))[:SPLIT_MAX]


STREAMS = st.randoms(use_true_random=False).map(near_valid)


# A token (tag, CDATA section...) of more than 2 KiB: the parser holds such a
# token back until it may be complete, and can stall on it (see
# test_a_large_tag_completed_in_a_later_read_is_not_held_back).
LARGE_TOKEN = re.compile(rb"<[^<]{2048,}")


@FUZZ
@given(STREAMS, st.data())
def test_split_stream_parses_as_whole_stream(data: bytes, draw: st.DataObject) -> None:
    parser = StreamParser()
    whole = feed([data], parser)
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    results = [whole, feed(chunks, StreamParser())]
    if len(data) <= 1500:
        results.append(feed([data[i : i + 1] for i in range(len(data))], StreamParser()))
    if whole[1] is not None:
        with pytest.raises(StreamError):  # after a stream error, every feed raises it again
            parser.feed(b"<presence/>")
    # Every split gives the same events (those before an error included) and
    # the same error, with one exception: an error inside a large unfinished
    # token may wait for the ">" that could end it, so a split can stall on it
    # with no error yet where others fail.
    assert all(events == whole[0] for events, _ in results), results
    errors = {error for _, error in results}
    assert len(errors - {None}) <= 1, results
    if LARGE_TOKEN.search(data) is None:
        assert len(errors) == 1, results


def test_an_error_whose_column_depends_on_the_split_compares_equal() -> None:
    data = b"8\x00xml version"  # found by the test above: column 2 whole, 1 split
    results = [
        feed(chunks, StreamParser())
        for chunks in ([data], [data[:1], data[1:]], [data[i : i + 1] for i in range(len(data))])
    ]
    assert results == [([], "not-well-formed: not well-formed (invalid token)")] * 3


MAX_STANZA, MAX_DEPTH, MAX_ATTRIBUTES = 2000, 8, 8
# (start after the header, a unit repeated forever, the error condition)
ENDLESS = [
    (b"<message><body>", b"x", "policy-violation"),
    (b"<message><body>", "é".encode(), "policy-violation"),
    (b"<message to='", b"x", "policy-violation"),
    (b"<message", b" ", "policy-violation"),
    (b"<", b"m", "policy-violation"),
    (b"<message>", b"<a/>", "policy-violation"),
    (b"<message>", b"<a>", "policy-violation"),
    (b"<message>", b"&amp;", "policy-violation"),
    (b"<message><![CDATA[", b"x", "policy-violation"),
    (b"<message><body>", b"</x>", "not-well-formed"),
    (b"<iq><query xmlns='a'>", b"<item jid='x'/>", "policy-violation"),
]


@FUZZ
@given(st.sampled_from(ENDLESS), st.integers(1, 3000), st.booleans())
def test_an_endless_stanza_stays_within_the_limits(
    endless: tuple[bytes, bytes, str], chunk: int, header_alone: bool
) -> None:
    # Fed without end, a stanza is refused once it passes a limit: the parser
    # never holds more than the stanza limit and one read.
    start, unit, condition = endless
    parser = StreamParser(
        max_stanza_bytes=MAX_STANZA, max_depth=MAX_DEPTH, max_attributes=MAX_ATTRIBUTES
    )
    fed = 0
    if header_alone:
        assert [type(e) for e in parser.feed(HEADER)] == [StreamOpened]
        fed = len(HEADER)
        stream = start
    else:
        stream = HEADER + start
    stream += unit * ((MAX_STANZA + 2 * chunk) // len(unit) + 2)
    bound = len(HEADER) + len(start) + MAX_STANZA + chunk + len(unit)
    with pytest.raises(StreamError) as info:
        for i in range(0, len(stream), chunk):
            piece = stream[i : i + chunk]
            for event in parser.feed(piece):
                assert not isinstance(event, StanzaReceived)
            fed += len(piece)
            assert fed <= bound, "past the limit, still buffering"
    assert info.value.condition == condition


@FUZZ
@given(st.integers(1, MAX_STANZA), st.sampled_from([b" ", b"\n", b"\r\n", b"\t "]))
def test_endless_keepalives_are_no_stanza(chunk: int, unit: bytes) -> None:
    # Whitespace between stanzas never counts against the stanza limit (when
    # it comes in reads no larger than the limit: see
    # test_keepalives_larger_than_the_stanza_limit_in_one_read).
    parser = StreamParser(max_stanza_bytes=MAX_STANZA)
    parser.feed(HEADER)
    stream = unit * (4 * MAX_STANZA // len(unit))
    for i in range(0, len(stream), chunk):
        assert parser.feed(stream[i : i + chunk]) == []
    assert [type(e) for e in parser.feed(b"<presence/>")] == [StanzaReceived]
    assert not parser.has_partial


async def test_server_survives_mutated_inputs() -> None:
    await fuzz_server("xmpp")


# -- what fuzzing found -----------------------------------------------------------------------


def test_the_first_error_in_a_read_is_reported() -> None:
    data = b"<\x00/>\x80"  # a NUL (not well-formed), then a byte that is not UTF-8
    whole, bytewise = StreamParser(), StreamParser()
    whole.feed(HEADER)
    bytewise.feed(HEADER)
    first = feed([data[i : i + 1] for i in range(len(data))], bytewise)[1]
    assert first is not None and first.startswith("not-well-formed")
    assert feed([data], whole)[1] == first


LOGIN = [
    HEADER,
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
    + base64.b64encode(f"\0alice\0{XMPP_PASSWORD}".encode())
    + b"</auth>",
    HEADER,
    b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    with ServeProcess(serve_args("xmpp")) as process:
        yield host_port(process.urls[0])


def until(sock: socket.socket, marker: bytes) -> bytes:
    """What the server sends until `marker` (or EOF)."""
    received = b""
    while marker not in received and (data := sock.recv(65536)):
        received += data
    return received


def test_stanzas_before_a_stream_error_in_the_same_read_are_handled(
    server: tuple[str, int],
) -> None:
    with socket.create_connection(server, 5) as sock:
        for step, marker in zip(LOGIN, [b"</stream:features>", b"\n"] * 2, strict=True):
            sock.sendall(step)
            until(sock, marker)
        message = b"<message to='echo@localhost' type='chat'><body>hi</body></message>"
        sock.sendall(message + b"<a></b>")  # one read: a stanza, then a mismatched tag
        received = until(sock, b"</stream:stream>")
    # the echo bot's answer, before the error
    assert received.index(b"<body>hi</body>") < received.index(b"<not-well-formed ")


def test_a_large_tag_completed_in_a_later_read_is_not_held_back(server: tuple[str, int]) -> None:
    with socket.create_connection(server, 5) as sock:
        for step, marker in zip(LOGIN, [b"</stream:features>", b"\n"] * 2, strict=True):
            sock.sendall(step)
            until(sock, marker)
        # a stanza, then the start of a message whose start tag is 2.1 KiB
        sock.sendall(b"<presence/><message to='echo@localhost' type='chat' id='" + b"a" * 2100)
        time.sleep(0.2)
        sock.sendall(b"'><body>hi</body></message>")  # the rest, in another read
        sock.settimeout(2)
        try:
            received = until(sock, b"<body>hi</body>")
        except TimeoutError:
            received = b""
    assert b"<body>hi</body>" in received  # the echo bot's answer


def test_keepalives_larger_than_the_stanza_limit_in_one_read(server: tuple[str, int]) -> None:
    with socket.create_connection(server, 5) as sock:
        sock.sendall(HEADER)
        until(sock, b"</stream:features>")
        sock.sendall(b" " * 5000 + LOGIN[1])  # over the 4096 bytes allowed before auth
        received = until(sock, b"\n")
    assert received.startswith(b"<success "), received


def test_a_large_tag_with_gt_in_an_attribute_completes_when_fed_byte_by_byte() -> None:
    parser = StreamParser(max_stanza_bytes=1 << 20)
    parser.feed(HEADER)
    data = b"<message id='" + b">" * 8000 + b"'/>"
    events = [event for i in range(len(data)) for event in parser.feed(data[i : i + 1])]
    assert len(events) == 1


def test_a_character_cut_by_a_read_is_refused_as_the_whole_read_refuses_it() -> None:
    # found by the split property: "\xed\xa0\x80" (a UTF-16 surrogate) where
    # a quote belongs. Whole, it is invalid UTF-8; a byte at a time, expat got
    # the "\xed" first and said not-well-formed. Expat now gets whole characters.
    data = HEADER.replace(b"to='localhost'", b"to=\xed\xa0\x80'x'")
    whole = feed([data], StreamParser())
    bytewise = feed([data[i : i + 1] for i in range(len(data))], StreamParser())
    assert whole == bytewise
    assert whole[1] == "unsupported-encoding: invalid UTF-8: invalid continuation byte"
