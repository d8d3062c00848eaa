# The XMPP plugin's sans-IO XML stream layer (RFC 6120 sections 4 and 11):
# StreamParser turns the bytes a client sends into stream events with pyexpat,
# enforcing restricted XML and size/depth/attribute limits, and frees its expat
# parser between stanzas on request (hibernate()); serialize(), stream_header()
# and stream_error() produce the bytes the server sends.
# No I/O here: bytes in, events out, like h11.
from __future__ import annotations

import codecs
import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Final, NoReturn, TypeAlias
from xml.etree.ElementTree import Element
from xml.parsers import expat

__all__ = [
    "CLIENT_NS",
    "STREAMS_ERROR_NS",
    "STREAM_NS",
    "XML_NS",
    "Event",
    "StanzaReceived",
    "StreamClosed",
    "StreamError",
    "StreamOpened",
    "StreamParser",
    "serialize",
    "stream_error",
    "stream_header",
]

STREAM_NS: Final = "http://etherx.jabber.org/streams"
CLIENT_NS: Final = "jabber:client"
STREAMS_ERROR_NS: Final = "urn:ietf:params:xml:ns:xmpp-streams"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"

# RFC 6120 section 4.9.3
CONDITIONS: Final = frozenset(
    {
        "bad-format",
        "bad-namespace-prefix",
        "conflict",
        "connection-timeout",
        "host-gone",
        "host-unknown",
        "improper-addressing",
        "internal-server-error",
        "invalid-from",
        "invalid-namespace",
        "invalid-xml",
        "not-authorized",
        "not-well-formed",
        "policy-violation",
        "remote-connection-failed",
        "reset",
        "resource-constraint",
        "restricted-xml",
        "see-other-host",
        "system-shutdown",
        "undefined-condition",
        "unsupported-encoding",
        "unsupported-feature",
        "unsupported-stanza-type",
        "unsupported-version",
    }
)


class StreamError(Exception):
    """The stream must end with <stream:error><CONDITION xmlns='...xmpp-streams'/>.

    stream_error(exc.condition, exc.text) gives the bytes to send; raised by
    StreamParser.feed(), `events` holds what that read completed before it.
    """

    def __init__(self, condition: str, text: str = "") -> None:
        if condition not in CONDITIONS:
            raise ValueError(f"not an RFC 6120 stream error condition: {condition!r}")
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text
        # what StreamParser.feed() completed in the same read, before the error:
        # handle these first, whatever way TCP split the stream
        self.events: list[Event] = []


@dataclasses.dataclass(frozen=True)
class StreamOpened:
    attributes: dict[str, str]


@dataclasses.dataclass(frozen=True)
class StanzaReceived:
    element: Element


@dataclasses.dataclass(frozen=True)
class StreamClosed:
    pass


Event: TypeAlias = StreamOpened | StanzaReceived | StreamClosed


class _Closed(Exception):
    """Raised from the end handler of </stream:stream> to stop expat mid-buffer."""


class _Restricted(Exception):
    """Raised by the restricted-XML handlers; feed() makes it a StreamError."""


def _refuse(what: str) -> Callable[..., NoReturn]:
    def handler(*_: object) -> NoReturn:
        raise _Restricted(what)

    return handler


# Restricted XML (RFC 6120 11.1): anything reaching these handlers ends the stream.
# A DOCTYPE fails at its start, so no declaration (billion laughs) is ever read.
# Shared by every parser: closures over the parser would cost each one 10 objects.
_RESTRICTED_HANDLERS: Final = {
    "StartDoctypeDeclHandler": _refuse("DTD"),
    "EntityDeclHandler": _refuse("entity declaration"),
    "UnparsedEntityDeclHandler": _refuse("entity declaration"),
    "NotationDeclHandler": _refuse("notation declaration"),
    "ElementDeclHandler": _refuse("element declaration"),
    "AttlistDeclHandler": _refuse("attribute declaration"),
    "ExternalEntityRefHandler": _refuse("external entity"),
    "SkippedEntityHandler": _refuse("entity reference"),
    "CommentHandler": _refuse("comment"),
    "ProcessingInstructionHandler": _refuse("processing instruction"),
}


_LARGE_TOKEN: Final = 2048  # bytes of an unfinished token that are worth not rescanning
_QUOTE_OR_GT: Final = re.compile(rb"['\">]")
_UNDEFINED_ENTITY: Final = expat.errors.codes[expat.errors.XML_ERROR_UNDEFINED_ENTITY]
_XML_WHITESPACE: Final = " \t\r\n"


def _clark(name: str) -> str:
    # expat (namespace_separator="}") reports "uri}local"; ElementTree wants "{uri}local"
    return "{" + name if "}" in name else name


class StreamParser:
    """Feed it the client's bytes; get StreamOpened, StanzaReceived and StreamClosed.

    Each event comes from the feed() holding the ">" that completes it. Limits
    (policy-violation, all settable between feeds): max_stanza_bytes counts a
    stanza from its "<" to its end tag, and any unfinished stanza or header by
    the bytes fed since it began; max_depth counts the stanza element as 1;
    max_attributes counts namespace declarations too. After a StreamError every
    feed() raises it again; after StreamClosed, feed() ignores its data (the
    rest of the chunk holding </stream:stream> included) and returns [] until
    reset().

    The expat parser underneath (about 10 KiB) exists only while it is needed:
    the first feed() creates it, hibernate() frees it between stanzas, and the
    next feed() creates another, primed with a stream header that binds the
    client's namespaces, so that events, errors (their line and column
    included) and limits are those of a parser that never hibernated.
    """

    def __init__(
        self, *, max_stanza_bytes: int = 64 * 1024, max_depth: int = 32, max_attributes: int = 64
    ) -> None:
        self.max_stanza_bytes = max_stanza_bytes
        self.max_depth = max_depth
        self.max_attributes = max_attributes
        self.reset()

    def reset(self) -> None:
        """Start a new stream (the client restarts it after SASL)."""
        self._parser: expat.XMLParserType | None = None  # created by feed()
        # The client's stream header reduced to its namespace declarations, to
        # prime a new parser with after hibernate(); None before the header (or
        # for one it cannot stand for), and hibernate() then does nothing.
        self._header: bytes | None = None
        # Where the stream would be if the current parser had parsed all of it:
        # its byte index is CurrentByteIndex + _base; its line, _line_shift more;
        # its column, _column_shift more on the parser's first line. All 0 for a
        # parser that never hibernated; _resume_at is where hibernate() stopped.
        self._base = 0
        self._line_shift = 0
        self._column_shift = 0
        self._resume_at = (1, 0)  # line, column
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._cut = b""  # a character the last read began: held back from expat
        self._events: list[Event] = []
        self._error: StreamError | None = None
        self._closed = False
        self._depth = 0  # of the document: 1 = directly inside <stream:stream>
        self._stack: list[Element] = []  # the open elements of the current stanza
        self._text: list[str] = []  # character data not yet attached to the tree
        self._ns_decls: dict[str | None, str] = {}  # declared on the element being opened
        self._fed = 0  # bytes received since reset()
        self._parsed = 0  # of which expat consumed these (the rest is an unfinished token)
        # The unfinished token's bytes that expat holds, while it is small (up to
        # _LARGE_TOKEN): kept to scan once if it grows large.
        self._token = b""
        # An unfinished token that grew large is held back from expat (see feed()):
        self._large = False
        self._held = bytearray()  # received but not yet given to expat
        # a large tag's quoting so far: b"" outside quotes, b"'" or b'"' inside
        # one; None for other tokens (comments, CDATA...), which retry at every
        # ">" that arrives once they have doubled since the last try (_retry_at)
        self._quote: bytes | None = None
        self._retry_at = 0
        # Byte index of the last token at stream level (header, stanza start or end,
        # whitespace); the bytes fed since, i.e. the stanza in progress, are capped.
        self._mark = 0

    def hibernate(self) -> None:
        """Free the expat parser (about 10 KiB) if no stanza is half-read
        (has_partial is False): a parser between stanzas then keeps under
        1 KiB, and the next feed() pays about 6 µs to create and prime
        another. Does nothing before the stream header or while a stanza is
        unfinished."""
        parser = self._parser
        if parser is None or self._header is None or self.has_partial:
            return
        self._resume_at = self._position(parser.CurrentLineNumber, parser.CurrentColumnNumber)
        self._parser = None
        # a trailing "\r" expat held (to see whether "\n" follows) goes to the next one
        self._held[:0], self._token = self._token, b""

    def close(self) -> None:
        """The stream is over: free the expat parser now (its handlers refer
        back to this object, so otherwise only the cyclic garbage collector
        would); feed() returns [] until reset()."""
        self._parser = None
        self._closed = True

    def _create_parser(self) -> expat.XMLParserType:
        # encoding= overrides any declared encoding: the stream is UTF-8 (RFC 6120 11.6).
        # intern=None: no dictionary of every name seen, per parser.
        p = expat.ParserCreate(encoding="UTF-8", namespace_separator="}", intern=None)
        if hasattr(p, "SetReparseDeferralEnabled"):  # expat >= 2.6: report tokens at once
            p.SetReparseDeferralEnabled(False)
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        for name, handler in _RESTRICTED_HANDLERS.items():
            setattr(p, name, handler)
        if self._header is not None:
            # After hibernate(): the header puts expat inside a stream element with
            # the client's namespaces (no handlers yet, so no events and no checks),
            # and the client's next byte is at the parser's current position.
            p.Parse(self._header, False)
            line, column = self._resume_at
            self._base = self._parsed - p.CurrentByteIndex
            self._line_shift = line - p.CurrentLineNumber
            self._column_shift = column - p.CurrentColumnNumber
        p.XmlDeclHandler = self._xml_decl
        p.StartNamespaceDeclHandler = self._namespace_decl
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._data
        return p

    def feed(self, data: bytes) -> list[Event]:
        """The events the bytes complete. Raises StreamError (its `events`
        are those completed before the error in this read), and again on
        every later call."""
        if self._error is not None:
            raise StreamError(self._error.condition, self._error.text)
        if self._closed:
            return []
        try:
            self._feed_checked(data)
        except StreamError as exc:
            exc.events, self._events = self._events, []
            raise
        events, self._events = self._events, []
        return events

    def _feed_checked(self, data: bytes) -> None:
        # Expat would say "invalid token" for invalid UTF-8; be precise, but
        # report an error earlier in the read first, as expat fed less would.
        # Expat only ever gets whole characters: the start of one that a read
        # cuts is held back (_cut), so that its bytes reach expat, or are
        # refused, the same way however the stream is split.
        chunk = self._cut + data  # the decoder holds the same start of a character
        try:
            self._utf8.decode(data)
        except UnicodeDecodeError as exc:  # exc.start counts the held bytes too
            self._cut = b""
            self._feed(chunk[: exc.start], force=True)
            if not self._closed:
                self._fail("unsupported-encoding", f"invalid UTF-8: {exc.reason}")
            return
        whole = len(chunk) - len(self._utf8.getstate()[0])
        chunk, self._cut = chunk[:whole], chunk[whole:]
        self._feed(chunk)

    def _feed(self, data: bytes, *, force: bool = False) -> None:
        self._fed += len(data)
        self._held += data
        # Expat rescans an unfinished token on every Parse(), so a large tag fed
        # a byte at a time would cost O(n^2). Once an unfinished token has grown
        # large, its bytes are held until a read may end it: for a tag, a ">"
        # outside quoted attribute values; for other tokens, a ">" once the
        # token has doubled since the last try. (Expat >= 2.6 "reparse
        # deferral", without its stalls: each event comes from the feed holding
        # the ">" that completes it.)
        if self._large and not force and not self._may_end(data):
            self._check_fed()
            return
        retrying = self._large
        held, self._held = bytes(self._held), bytearray()
        parser = self._parser
        if parser is None:
            parser = self._parser = self._create_parser()
        try:
            parser.Parse(held, False)
        except _Closed:
            return
        except _Restricted as refused:  # a name of its own: compiled code types each name once
            self._fail("restricted-xml", str(refused))
        except expat.ExpatError as exc:
            condition = "restricted-xml" if exc.code == _UNDEFINED_ENTITY else "not-well-formed"
            line, column = self._position(exc.lineno, exc.offset)
            where = f"line {line}, column {column}"
            self._fail(condition, f"{expat.errors.messages[exc.code]} ({where})")
        # the unfinished token starts where expat stopped
        self._parsed = max(0, parser.CurrentByteIndex + self._base)
        if self._depth == 1:  # between stanzas: the next one starts no earlier than here
            self._mark = max(self._mark, self._parsed)
        self._note_unfinished(held, retrying)
        self._check_fed()

    def _note_unfinished(self, held: bytes, retrying: bool) -> None:
        """After a parse of `held`: remember the unfinished token, or how to
        tell when a large one may end."""
        unfinished = self._fed - self._parsed
        # its bytes: the end of this read's, after what expat held before if it began there
        token = held[-unfinished:] if 0 < unfinished <= len(held) else self._token + held
        if unfinished <= _LARGE_TOKEN:
            self._token, self._large = token if unfinished else b"", False
            return
        self._token, self._large = b"", True
        if retrying and unfinished > len(held):
            # the same token, tried at a ">" that did not end it: wait till it doubles
            self._quote, self._retry_at = None, 2 * unfinished
        elif token[:1] == b"<" and token[1:2] not in b"!?":  # a start or end tag
            self._quote, self._retry_at = b"", 0
            self._may_end(token[1:])
        else:  # a comment, CDATA section, ...: its first ">" may end it
            self._quote, self._retry_at = None, 0

    def _may_end(self, data: bytes) -> bool:
        """Whether `data`, the next bytes of a large unfinished token, may end it."""
        quote = self._quote
        if quote is None:
            return b">" in data and self._fed - self._parsed >= self._retry_at
        at = 0
        while True:  # in a tag, the first ">" outside quotes ends it
            if quote:
                at = data.find(quote, at)
                if at < 0:
                    break
                quote, at = b"", at + 1
            else:
                found = _QUOTE_OR_GT.search(data, at)
                if found is None:
                    break
                if data[found.start()] == 0x3E:  # ">"
                    return True
                quote, at = found.group(), found.end()
        self._quote = quote
        return False

    @property
    def has_partial(self) -> bool:
        """True while the parser holds the start of a stanza (or of the
        stream header) that is not complete yet; whitespace between stanzas
        (a trailing "\r" included) is not a start."""
        if self._closed:
            return False
        return (
            self._depth >= 2 or self._fed - self._parsed > (self._token == b"\r") or bool(self._cut)
        )

    def _position(self, line: int, column: int) -> tuple[int, int]:
        """The stream's line and column for the current parser's."""
        return line + self._line_shift, column + (self._column_shift if line == 1 else 0)

    def _index(self) -> int:
        """The stream's byte index of the token being parsed (in a handler)."""
        assert self._parser is not None
        return self._parser.CurrentByteIndex + self._base

    def _check_fed(self) -> None:
        # the stanza in progress, or the header, may not grow past the cap unseen
        if self._fed - self._mark > self.max_stanza_bytes:
            self._fail("policy-violation", f"stanza larger than {self.max_stanza_bytes} bytes")

    def _fail(self, condition: str, text: str) -> NoReturn:
        self._error = StreamError(condition, text)
        raise self._error

    def _check_size(self) -> None:
        if self._index() - self._mark > self.max_stanza_bytes:
            self._fail("policy-violation", f"stanza larger than {self.max_stanza_bytes} bytes")

    def _xml_decl(self, version: str, encoding: str | None, standalone: int) -> None:
        if encoding is not None and encoding.lower() not in ("utf-8", "utf8"):
            self._fail("unsupported-encoding", f"encoding {encoding!r}, not UTF-8")

    def _namespace_decl(self, prefix: str | None, uri: str | None) -> None:
        self._ns_decls[prefix] = uri or ""  # None: xmlns="", no default namespace

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        decls, self._ns_decls = self._ns_decls, {}
        if self._depth > 0:
            self._check_size()
        if len(attributes) + len(decls) > self.max_attributes:
            self._fail("policy-violation", f"more than {self.max_attributes} attributes")
        attrib = {_clark(k): v for k, v in attributes.items()}
        if self._depth == 0:  # RFC 6120 4.8.1, 4.9.3.10
            if name != STREAM_NS + "}stream":
                self._fail(
                    "invalid-namespace", f"expected {{{STREAM_NS}}}stream, got {_clark(name)}"
                )
            if decls.get(None) != CLIENT_NS:
                self._fail("invalid-namespace", f"default namespace must be {CLIENT_NS}")
            self._depth = 1
            self._mark = self._index()
            self._header = _resume_header(decls)
            self._events.append(StreamOpened(attrib))
            return
        self._depth += 1
        element = Element(_clark(name), attrib)
        if self._depth == 2:  # a new stanza
            self._mark = self._index()
            self._stack = [element]
            self._text = []
            return
        if self._depth - 1 > self.max_depth:
            self._fail("policy-violation", f"elements nested deeper than {self.max_depth}")
        self._flush_text()
        self._stack[-1].append(element)
        self._stack.append(element)

    def _end(self, name: str) -> None:
        self._check_size()
        if self._depth == 1:
            self._closed = True
            self._events.append(StreamClosed())
            raise _Closed
        self._flush_text()
        element = self._stack.pop()
        self._depth -= 1
        if self._depth == 1:
            self._mark = self._index()
            self._events.append(StanzaReceived(element))

    def _data(self, data: str) -> None:
        self._check_size()
        if self._depth == 1:  # between stanzas: whitespace keepalives only
            if data.strip(_XML_WHITESPACE):
                self._fail("bad-format", "text outside a stanza")
            # Its end (a byte short after "\r\n", which expat reports as "\n"):
            # keepalives do not count against the next stanza's size.
            self._mark = self._index() + len(data)
            return
        self._text.append(data)

    def _flush_text(self) -> None:
        # the text before the next tag is the text of the innermost open element,
        # or the tail of its last child
        if not self._text:
            return
        text, self._text = "".join(self._text), []
        parent = self._stack[-1]
        if len(parent):
            last = parent[-1]
            last.tail = (last.tail or "") + text
        else:
            parent.text = (parent.text or "") + text


def _resume_header(decls: dict[str | None, str]) -> bytes | None:
    """A stream start tag binding the namespaces the client's did (`decls`),
    to prime a parser after hibernation; None if two prefixes are bound to
    the streams namespace, since the end tag must repeat the client's."""
    prefixes = [prefix for prefix, uri in decls.items() if uri == STREAM_NS and prefix]
    if len(prefixes) != 1:
        return None
    bindings = "".join(
        f" xmlns='{_attr(uri)}'" if prefix is None else f" xmlns:{prefix}='{_attr(uri)}'"
        for prefix, uri in decls.items()
    )
    return f"<{prefixes[0]}:stream{bindings}>".encode()


# -- serialising --------------------------------------------------------------------------

_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Names are checked only so far that they cannot break the markup: no ASCII
# punctuation but "-", "." and "_", no colon, no whitespace, not starting with a
# digit, "-" or "." (a superset of what expat accepts, so parsed names pass).
_NAME: Final = re.compile(
    r"(?![0-9.\-])[^\x00-\x2c/\x3a-\x40\[-\^`\x7b-\x7f\s\ud800-\udfff\ufffe\uffff]+"
)
_TEXT: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": "&#10;", "\r": "&#13;"})
_ATTR: Final = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;"}
    | {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)


def _checked(value: str) -> str:
    bad = _NOT_XML_CHAR.search(value)
    if bad:
        raise ValueError(f"{bad.group()!r} cannot appear in XML 1.0")
    return value


def _text(value: str) -> str:
    return _checked(value).translate(_TEXT)


def _attr(value: str) -> str:
    return _checked(value).translate(_ATTR)


@functools.lru_cache(maxsize=1024)
def _split(name: str) -> tuple[str | None, str]:
    """'{ns}local' -> (ns, local); 'local' -> (None, local); checks local is a name."""
    ns, local = (None, name) if not name.startswith("{") else name[1:].split("}", 1)
    if not _NAME.fullmatch(local):
        raise ValueError(f"not an XML name: {name!r}")
    return ns, local


def serialize(element: Element, *, default_ns: str = CLIENT_NS) -> bytes:
    """One stanza as XML bytes on one line, for a stream whose default namespace is default_ns.

    No newlines are added, and newlines in text and attribute values are written
    as &#10;, so a line-based client sees one stanza per line. The default
    namespace is not repeated and there are no ns0: prefixes: an element in
    another namespace than its parent's gets xmlns='...'. Text escapes &, <, >;
    attribute values (in single quotes) also escape both quotes and tabs.

    A tag without a namespace takes its parent's (default_ns at the top), so
    Element("message") is a jabber:client message. The element's tail is not
    written. Raises ValueError for characters XML 1.0 forbids and bad names.
    """
    out: list[str] = []
    _write(element, default_ns, out)
    return "".join(out).encode()


def _write(element: Element, inherited: str, out: list[str]) -> None:
    if not isinstance(element.tag, str):  # ElementTree's Comment and PI
        raise ValueError("only elements can be serialised")
    ns, local = _split(element.tag)
    ns = inherited if ns is None else ns
    out.append("<" + local)
    if ns != inherited:
        out.append(f" xmlns='{_attr(ns)}'")
    for i, (name, value) in enumerate(element.attrib.items()):
        attr_ns, attr_local = _split(name)
        if attr_ns is None:
            out.append(f" {attr_local}='{_attr(value)}'")
        elif attr_ns == XML_NS:
            out.append(f" xml:{attr_local}='{_attr(value)}'")
        else:  # rare in XMPP: a prefix local to this element
            out.append(f" xmlns:a{i}='{_attr(attr_ns)}' a{i}:{attr_local}='{_attr(value)}'")
    if not element.text and not len(element):
        out.append("/>")
        return
    out.append(">")
    if element.text:
        out.append(_text(element.text))
    for child in element:
        _write(child, ns, out)
        if child.tail:
            out.append(_text(child.tail))
    out.append(f"</{local}>")


def stream_header(
    *,
    stream_id: str,
    from_domain: str,
    to: str | None = None,
    version: str = "1.0",
    lang: str = "en",
) -> bytes:
    """The server's opening <stream:stream> (RFC 6120 4.7), with the XML declaration."""
    attributes = [("id", stream_id), ("from", from_domain)]
    if to is not None:
        attributes.append(("to", to))
    attributes += [("version", version), ("xml:lang", lang)]
    return (
        f"<?xml version='1.0'?><stream:stream xmlns='{CLIENT_NS}' xmlns:stream='{STREAM_NS}'"
        + "".join(f" {name}='{_attr(value)}'" for name, value in attributes)
        + ">"
    ).encode()


def stream_error(condition: str, text: str | None = None) -> bytes:
    """<stream:error> (RFC 6120 4.9) followed by the closing </stream:stream>."""
    if condition not in CONDITIONS:
        raise ValueError(f"not an RFC 6120 stream error condition: {condition!r}")
    out = f"<stream:error><{condition} xmlns='{STREAMS_ERROR_NS}'/>"
    if text:
        out += f"<text xmlns='{STREAMS_ERROR_NS}' xml:lang='en'>{_text(text)}</text>"
    return (out + "</stream:error></stream:stream>").encode()
