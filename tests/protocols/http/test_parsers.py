# The httptools parser (protocols/http/_httptools.py) against h11, sans-IO:
# the same bytes in, whole and one byte at a time, give the same events,
# states, errors (their status) and response bytes out, for a table of
# valid and malformed requests and a few kinds of response. Where httptools
# is stricter than h11 itself, the driver's own checks (_strict) refuse the
# request for h11 too: checked here for each such case.
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h11
import httpx
import pytest

from protocols.http import _parse
from protocols.http._driver import refusal
from protocols.http._httptools import HttptoolsConnection
from protocols.http._parse import RequestHead
from protocols.http._settings import HttpSettings
from protocols.http._strict import ChunkedBody, FramingError
from tests.protocols.http.test_framing import BAD, GOOD
from tests.serveprocess import ServeProcess, run_netsvc

H = b"Host: x\r\n"
POST = b"POST /p HTTP/1.1\r\n" + H
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"

# (id, bytes a client sends, then closes)
CASES: list[tuple[str, bytes]] = [
    ("get", b"GET / HTTP/1.1\r\n" + H + b"\r\n"),
    ("get-query", b"GET /a/b?c=d&e=%20f#frag HTTP/1.1\r\n" + H + b"\r\n"),
    (
        "many-headers",
        b"GET / HTTP/1.1\r\n" + H + b"A: 1\r\nB:2\r\nC:  3  \r\nD:\r\nE: x \t y\r\n\r\n",
    ),
    ("header-case", b"GET / HTTP/1.1\r\nHOST: x\r\nX-Thing: A\r\n\r\n"),
    ("obs-text-value", b"GET / HTTP/1.1\r\n" + H + b"X: caf\xc3\xa9\r\n\r\n"),
    ("pipelined", b"GET /1 HTTP/1.1\r\n" + H + b"\r\nGET /2 HTTP/1.1\r\n" + H + b"\r\n"),
    (
        "pipelined-bodies",
        POST + b"Content-Length: 3\r\n\r\nabc" + CHUNKED + b"2\r\nde\r\n0\r\n\r\n",
    ),
    ("http-1.0", b"GET / HTTP/1.0\r\n\r\n"),
    (
        "http-1.0-keep-alive",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
    ),
    ("connection-close", b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"),
    (
        "connection-list",
        b"GET / HTTP/1.1\r\n" + H + b"Connection: foo, Close\r\n\r\nGET / HTTP/1.1\r\n",
    ),
    ("head", b"HEAD / HTTP/1.1\r\n" + H + b"\r\n"),
    ("content-length", POST + b"Content-Length: 11\r\n\r\nhello world"),
    ("content-length-zero", POST + b"Content-Length: 0\r\n\r\n"),
    ("content-length-leading-zeros", POST + b"Content-Length: 005\r\n\r\nhello"),
    ("same-length-twice", POST + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nok"),
    ("length-list", POST + b"Content-Length: 2, 2\r\n\r\nok"),
    ("chunked", CHUNKED + b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"),
    ("chunked-upper", POST + b"Transfer-Encoding: CHUNKED\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"),
    ("trailers", CHUNKED + b"1\r\na\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\n"),
    ("space-before-chunk-ext", CHUNKED + b"5 ;a\r\nhello\r\n0\r\n\r\n"),  # h11 refuses it
    ("twenty-digit-chunk-size", CHUNKED + b"0" * 19 + b"5\r\nhello\r\n0\r\n\r\n"),
    ("trailer-bad-length", CHUNKED + b"1\r\na\r\n0\r\nContent-Length: x\r\n\r\n"),
    ("body-cut-short", POST + b"Content-Length: 10\r\n\r\nhello"),
    ("chunked-cut-short", CHUNKED + b"5\r\nhel"),
    ("head-cut-short", b"GET / HTTP/1.1\r\nHost: x\r\n"),
    ("head-too-large", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 5000),  # 431
    ("head-large-but-whole", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 5000 + b"\r\n\r\n"),
    ("nothing", b""),
    ("expect-100", POST + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\nok"),
    (
        "expect-100-http-1.0",
        b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    ),
    (
        "upgrade",
        b"GET /ws HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET",
    ),
    ("upgrade-no-connection", b"GET / HTTP/1.1\r\n" + H + b"Upgrade: h2c\r\n\r\n"),
    ("connect", b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n"),
    ("custom-method", b"PURGE-ALL /x HTTP/1.1\r\n" + H + b"\r\n"),
    ("lower-case-method", b"get / HTTP/1.1\r\n" + H + b"\r\n"),
    ("http-2.0-line", b"GET / HTTP/2.0\r\n" + H + b"\r\n"),
    ("http-1.9", b"GET / HTTP/1.9\r\n" + H + b"\r\n"),
    ("http-0.9-line", b"GET / HTTP/0.9\r\n\r\n"),
    ("bare-lf", b"GET / HTTP/1.1\n" + b"Host: x\nX: y\n\n"),
    ("bare-lf-end", b"GET / HTTP/1.1\r\nHost: x\r\n\n"),
    ("obs-fold", b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n  b\r\n\tc\r\n\r\n"),
    ("leading-crlf", b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    ("leading-lf", b"\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    ("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    ("space-first", b" GET / HTTP/1.1\r\n" + H + b"\r\n"),
    ("te-gzip-chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("te-identity", POST + b"Transfer-Encoding: identity\r\n\r\n"),
    (
        "te-twice",
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    ("host-missing-1.1", b"GET / HTTP/1.1\r\n\r\n"),
    ("cr-in-line", b"GET / HTTP/1.1\r\n" + H + b"X: a\rb\r\n\r\n"),
    ("huge-length", POST + b"Content-Length: 123456789012345678901\r\n\r\n"),
    # heads llhttp refuses, read again as h11 reads them (found by fuzzing)
    ("cr-before-value", b"GET / HTTP/1.1\r\nHost:\r 127.0.0.1:8080\r\n\r\n"),
    ("cr-values", b"GET / HTTP/1.1\r\nHost: x\r\nX: \r \r \r\n\r\n"),
    ("folded-name", b"POST / HTTP/1.1\nTransfer-Encoding\r\n : chunked\nHost: x\n\n0\r\n\r\n"),
    ("length-list-and-nul", POST + b"Content-Length: 2, 2\r\nX: a\x00b\r\n\r\nok"),
    ("length-list-and-control", POST + b"Content-Length: 2, 2\r\nX: a\x01b\r\n\r\nok"),
    ("coding-and-control", POST + b"Transfer-Encoding: gzip, chunked\r\nX: a\x01b\r\n\r\n"),
    ("nul-in-coding", POST + b"Transfer-Encoding: chunked\x00\r\n\r\n0\r\n\r\n"),
    (
        "data-after-close",
        b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    ),
    *((f"bad:{name}", data) for name, data, _ in BAD),
    *((f"good:{name}", data) for name, data, _ in GOOD),
]

# Where the httptools parser refuses and h11 does not: a chunked body's
# framing, which the driver checks ahead of h11 with the same ChunkedBody
# (tests below), so the server answers both the same.
STRICTER = {
    "bad:control-char-in-ext",
    "bad:nul-in-ext",
    "bad:bare-cr-in-ext",
    "bad:unclosed-quote-in-ext",
    "bad:bare-semicolon",
    "bad:space-after-chunk-size",
    "bad:bare-lf-ends-trailers",
    "bad:folded-trailer",
}
CONTROL_CHARACTERS = [b"\x01", b"\x08", b"\x0b", b"\x0c", b"\x1b", b"\x1f", b"\x7f"]
CASES += [
    (f"control-{c.hex()}", b"GET / HTTP/1.1\r\n" + H + b"X: a" + c + b"b\r\n\r\n")
    for c in CONTROL_CHARACTERS
]
# (h11 lets all but \x0b and \x0c through, and so does the httptools parser:
# the driver refuses them after the parser's own checks, for both)


def respond_with_length(conn: _parse.ServerParser) -> bytes:
    head = h11.Response(
        status_code=200, headers=[(b"content-type", b"text/plain"), (b"content-length", b"2")]
    )
    return conn.send(head) + conn.send(h11.Data(data=b"ok")) + conn.send(h11.EndOfMessage())


def respond_streamed(conn: _parse.ServerParser) -> bytes:
    # as the driver sends a body: send_data() and send_end(), no events
    out = conn.send(h11.Response(status_code=200, headers=[(b"x-a", b"1")], reason=b"OK"))
    for chunk in (b"one", b"", b"two"):
        out += conn.send_data(chunk)
    return out + conn.send_end()


def respond_no_content(conn: _parse.ServerParser) -> bytes:
    return conn.send(h11.Response(status_code=204, headers=[])) + conn.send_end()


def respond_and_close(conn: _parse.ServerParser) -> bytes:
    head = h11.Response(
        status_code=404, headers=[(b"Connection", b"keep-alive, x"), (b"content-length", b"0")]
    )
    return conn.send(head) + conn.send(h11.EndOfMessage())


def respond_too_much(conn: _parse.ServerParser) -> bytes:
    out = conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"1")]))
    return out + conn.send_data(b"toolong")


def respond_with_both(conn: _parse.ServerParser) -> bytes:
    head = [(b"Content-Length", b"9"), (b"transfer-encoding", b"chunked"), (b"x", b"y")]
    out = conn.send(h11.Response(status_code=500, headers=head))
    return out + conn.send(h11.Data(data=b"abc")) + conn.send(h11.EndOfMessage())


RESPONSES: dict[str, Callable[[_parse.ServerParser], bytes]] = {
    "length": respond_with_length,
    "streamed": respond_streamed,
    "no-content": respond_no_content,
    "close": respond_and_close,
    "too-much": respond_too_much,
    "both-framings": respond_with_both,
}


def transcript(
    conn: _parse.ServerParser,
    data: bytes,
    step: int,
    respond: Callable[[_parse.ServerParser], bytes],
) -> list[object]:
    """What `conn` makes of `data` fed `step` bytes at a time, then the
    client's close: its events (Data joined), the bytes of the responses
    `respond` makes (and a 100 Continue when asked), its states, errors."""
    record: list[object] = []
    feed = [data[i : i + step] for i in range(0, len(data), step)] + [b""]
    body = b""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if not feed:
                    break
                conn.receive_data(feed.pop(0))
                continue
            if type(event) is h11.Data:
                body += bytes(event.data)
                continue
            if body:
                record.append(("data", body))
                body = b""
            if type(event) is RequestHead:
                record.append(
                    ("request", event.method, event.target, event.http_version, list(event.headers))
                )
                # what each parser found of the head for the driver, in its own pass
                record.append(
                    (
                        "scanned",
                        event.size,
                        event.length,
                        event.has_length,
                        event.host,
                        event.upgrade,
                        event.forwarded,
                        event.control,
                    )
                )
                record.append(("waiting-100", conn.they_are_waiting_for_100_continue))
                if conn.they_are_waiting_for_100_continue:
                    record.append(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                continue
            if type(event) is h11.EndOfMessage:
                record.append(("end", list(event.headers)))
            elif type(event) is h11.ConnectionClosed:
                record.append("closed")
            record.append(("states", conn.our_state, conn.their_state))
            if conn.our_state is h11.SEND_RESPONSE:
                try:
                    record.append(respond(conn))
                except h11.LocalProtocolError:
                    record.append(("refused", conn.our_state))
                    break
                record.append(("states", conn.our_state, conn.their_state))
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
            elif event is h11.PAUSED or type(event) is h11.ConnectionClosed:
                break
    except h11.RemoteProtocolError as exc:
        if body:
            record.append(("data", body))
        # what is left in the buffer then does not matter: the connection ends
        return [*record, ("error", exc.error_status_hint, conn.our_state, conn.their_state)]
    if body:
        record.append(("data", body))
    record.append(("trailing", conn.trailing_data))
    return record


@pytest.fixture(scope="session")
def http_parser() -> str:
    """Not run once per parser (conftest.py): these tests use both."""
    return "both"


def compare(
    case: str, data: bytes, step: int, respond: Callable[[_parse.ServerParser], bytes]
) -> None:
    expected = transcript(_parse.H11Parser(max_head=4096), data, step, respond)
    got = transcript(HttptoolsConnection(max_incomplete_event_size=4096), data, step, respond)
    if case in STRICTER:
        last = got[-1]
        assert isinstance(last, tuple) and last[:2] == ("error", 400), got  # h11: the driver
    else:
        assert got == expected


@pytest.mark.parametrize("step", [1, 7, 1 << 20], ids=["bytewise", "by-7", "whole"])
@pytest.mark.parametrize(("case", "data"), CASES, ids=[c[0] for c in CASES])
def test_httptools_reads_requests_as_h11_does(case: str, data: bytes, step: int) -> None:
    compare(case, data, step, respond_with_length)


VALID = [
    case
    for case in CASES
    if case[0]
    in {
        "get",
        "pipelined",
        "pipelined-bodies",
        "http-1.0",
        "http-1.0-keep-alive",
        "connection-close",
        "head",
        "chunked",
        "expect-100",
        "upgrade",
        "body-cut-short",
    }
]


@pytest.mark.parametrize("response", sorted(RESPONSES))
@pytest.mark.parametrize(("case", "data"), VALID, ids=[c[0] for c in VALID])
def test_httptools_writes_responses_as_h11_does(case: str, data: bytes, response: str) -> None:
    compare(case, data, 1 << 20, RESPONSES[response])
    compare(case, data, 1, RESPONSES[response])


def driver_refuses(data: bytes) -> bool:
    """Whether the driver's own checks refuse `data` with h11 as the
    parser: the head (its refusal()), and a chunked body's framing, checked
    byte for byte before h11 sees it (ChunkedBody)."""
    conn = _parse.H11Parser(max_head=16 * 1024)
    conn.receive_data(data)
    event = conn.next_event()
    assert type(event) is RequestHead
    if refusal(event, max_header_size=4096, max_body=1 << 20) is not None:
        return True
    if event.length is None:  # chunked
        try:
            ChunkedBody(4096).feed(conn.trailing_data[0])
        except FramingError:
            return True
    return False


# The same response head meets requests of every kind (the driver sends it
# with send_head and send_whole); what the httptools adapter writes for it is
# kept per kind of request (HEAD or not, HTTP version, keep-alive): each
# must still be h11's, in any order.
KINDS = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"HEAD / HTTP/1.0\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.mark.parametrize(
    "headers", [[(b"content-type", b"text/plain")], [(b"content-length", b"3")]]
)
@pytest.mark.parametrize("send", ["send_head", "send_whole"])
def test_one_response_head_met_by_every_kind_of_request_is_written_as_h11_writes_it(
    headers: list[tuple[bytes, bytes]], send: str
) -> None:
    for request in KINDS + KINDS[::-1]:
        written = []
        for conn in (_parse.H11Parser(max_head=16 * 1024), HttptoolsConnection()):
            conn.receive_data(request)
            assert type(conn.next_event()) is RequestHead
            assert type(conn.next_event()) is h11.EndOfMessage
            body: object = b""
            if send == "send_head":
                head = conn.send_head(200, list(headers))
                try:
                    body = conn.send(h11.Data(data=b"abc")) + conn.send(h11.EndOfMessage())
                except h11.LocalProtocolError as exc:  # a body to HEAD, past its length
                    body = str(exc)
            else:  # no body for HEAD, as the driver sends it
                payload = b"" if request.startswith(b"HEAD") else b"abc"
                head = conn.send_whole(200, list(headers), payload)
            written.append((head, body, conn.our_state))
        assert written[0] == written[1], request


EXPECTING = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"


def test_a_client_that_sends_its_body_without_waiting_for_100_is_no_longer_waiting() -> None:
    seen = []
    for conn in (_parse.H11Parser(max_head=16 * 1024), HttptoolsConnection()):
        conn.receive_data(EXPECTING + b"hel")
        assert type(conn.next_event()) is RequestHead
        waiting = conn.they_are_waiting_for_100_continue
        assert type(conn.next_event()) is h11.Data
        seen.append((waiting, conn.they_are_waiting_for_100_continue))
    assert seen == [(True, False), (True, False)]


def test_a_response_without_100_continue_ends_the_wait() -> None:
    seen = []
    for conn in (_parse.H11Parser(max_head=16 * 1024), HttptoolsConnection()):
        conn.receive_data(EXPECTING)
        assert type(conn.next_event()) is RequestHead
        conn.send(h11.Response(status_code=417, headers=[(b"content-length", b"0")]))
        seen.append(conn.they_are_waiting_for_100_continue)
    assert seen == [False, False]


@pytest.mark.parametrize("case", sorted(STRICTER))
def test_where_httptools_is_stricter_the_driver_refuses_for_h11(case: str) -> None:
    data = dict(CASES)[case]
    assert driver_refuses(data)


def test_the_driver_refuses_none_of_the_valid_cases() -> None:
    # the check above is not one that refuses everything
    assert not any(
        driver_refuses(data)
        for _, data in VALID
        if b"HTTP/1.0" not in data[:20] and not data.startswith(b"GET /1")
    )


# -- choosing the parser ------------------------------------------------------------------


@pytest.fixture
def without_httptools(tmp_path: Path) -> dict[str, str]:
    """An environment where `import httptools` fails, as where netsvc is
    installed without its `fast` extra."""
    (tmp_path / "httptools").mkdir()
    (tmp_path / "httptools" / "__init__.py").write_text("raise ImportError('not installed')\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_httptools_asked_for_but_not_installed_is_a_usage_error(
    without_httptools: dict[str, str],
) -> None:
    done = run_netsvc(
        "serve",
        "--protocol",
        "http",
        "--port",
        "0",
        "--http-parser",
        "httptools",
        env=without_httptools,
    )
    assert done.returncode == 2, done.stderr
    assert "httptools is not installed" in done.stderr
    assert "pip install 'netsvc[fast]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_parser_is_a_usage_error() -> None:
    done = run_netsvc(
        "serve", "--protocol", "http", "--port", "0", env={"NETSVC_HTTP_PARSER": "llhttp"}
    )
    assert done.returncode == 2, done.stderr
    assert "--http-parser: expected one of auto, h11, httptools, got 'llhttp'" in done.stderr


@pytest.mark.parametrize(
    "installed", [True, False], ids=["httptools-installed", "without-httptools"]
)
def test_auto_picks_httptools_when_it_is_installed(
    installed: bool, without_httptools: dict[str, str]
) -> None:
    env = {"NETSVC_HTTP_PARSER": "auto", **({} if installed else without_httptools)}
    args = ["--protocol", "http", "--port", "0", "--log-level", "info"]
    with ServeProcess(args, env=env) as server:
        with httpx.Client(base_url=server.urls[0]) as client:
            assert client.get("/").status_code == 200
    expected = "httptools" if installed else "h11"
    assert f"HTTP/1.1 parser: {expected}" in server.log


def test_each_choice_gives_its_parser() -> None:
    for name in ("h11", "httptools"):
        settings = HttpSettings(parser=name)
        parser = _parse.new_parser(_parse.resolve(settings.parser), 1024)
        assert type(parser) is (_parse.H11Parser if name == "h11" else HttptoolsConnection)


def test_a_2xx_to_connect_or_a_101_is_refused_not_sent() -> None:
    # a protocol switch: h11 would hand the connection over; the driver
    # never sends one, and the httptools parser refuses to, even for a
    # response head it has written before for another request
    ok = h11.Response(status_code=200, headers=[(b"content-length", b"0")])
    conn = HttptoolsConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nCONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert type(conn.next_event()) is RequestHead
    assert type(conn.next_event()) is h11.EndOfMessage
    assert (
        conn.send(ok) + conn.send(h11.EndOfMessage())
        == b"HTTP/1.1 200 \r\ncontent-length: 0\r\n\r\n"
    )
    conn.start_next_cycle()
    assert type(conn.next_event()) is RequestHead
    with pytest.raises(h11.LocalProtocolError):
        conn.send(ok)
    switch = HttptoolsConnection()
    switch.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n")
    switch.next_event()
    with pytest.raises(h11.LocalProtocolError):
        switch.send(h11.InformationalResponse(status_code=101, headers=[]))


@pytest.mark.parametrize(
    "data",
    [b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost x\r\n\r\n"],
    ids=["no-host", "malformed-line"],
)
def test_a_malformed_head_is_refused_without_the_error_found_first(data: bytes) -> None:
    # raised `from None` (the compiled build must not show the error being
    # handled either: mypyc's raise ignores `from`), and raised again as is
    conn = HttptoolsConnection()
    conn.receive_data(data)
    for _ in range(2):
        with pytest.raises(h11.RemoteProtocolError) as raised:
            conn.next_event()
        assert raised.value.error_status_hint == 400
        assert raised.value.__suppress_context__, repr(raised.value.__context__)


# header lines (after the request line) of heads a connection may see in turn
SEQUENCE_HEADS = [
    b"Host: x\r\n\r\n",
    b"Host: x\r\nConnection: close\r\n\r\n",
    b"Host: x\r\nConnection: keep-alive\r\n\r\n",
    b"Host: x\r\nContent-Length: 0\r\n\r\n",
    b"Host: x\r\nContent-Length: 5\r\n\r\n",
    b"Host: x\r\nContent-Length: 5, 5\r\n\r\n",
    b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"Host: x\r\nUpgrade: h2c\r\n\r\n",
    b"Host: x\r\nExpect: 100-continue\r\n\r\n",
    b"Host: x\r\nX-Folded: a\r\n b\r\n\r\n",
    b"Host: x\nX-Bare-LF: 1\n\n",
    b"Host: x\r\nX-Control: a\x01b\r\n\r\n",
    b"Host x\r\n\r\n",
    b"Host: x\r\nX-Bare-CR: a\rb\r\n\r\n",  # its error names llhttp's reason
]


def read_fields(conn: HttptoolsConnection, lines: bytes) -> object:
    try:
        return conn._header_fields(lines)
    except (h11.LocalProtocolError, h11.RemoteProtocolError) as exc:
        return type(exc), str(exc)


def test_a_kept_llhttp_parser_reads_each_head_as_a_new_one_would() -> None:
    # the adapter keeps llhttp for the next head after one without a body
    # (a new parser per head was a sixth of a head's parse): after any head,
    # the next is read as a fresh parser reads it, fields and errors alike
    for first in SEQUENCE_HEADS:
        for second in SEQUENCE_HEADS:
            conn = HttptoolsConnection()
            read_fields(conn, first)
            assert read_fields(conn, second) == read_fields(HttptoolsConnection(), second), (
                first,
                second,
            )


@pytest.mark.parametrize("name", ["h11", "httptools"])
@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (b"", h11.NEED_DATA),
        (b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", RequestHead),  # pipelined
        (b"GET /b HTTP/1.1\r\n", h11.NEED_DATA),  # the next head in part
        (None, h11.ConnectionClosed),  # the client's close
    ],
    ids=["nothing", "pipelined", "partial", "closed"],
)
def test_between_requests_a_parser_waits_only_with_nothing_left(
    name: str, after: bytes | None, expected: object
) -> None:
    # both parsers answer NEED_DATA between requests without parsing (h11's
    # own answer costs 4% of a request): only when nothing was read past
    # the request and the client has not closed, as h11 itself answers
    conn = _parse.new_parser(name, 4096)
    assert conn.next_event() is h11.NEED_DATA
    conn.receive_data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + (after or b""))
    if after is None:
        conn.receive_data(b"")
    assert type(conn.next_event()) is RequestHead
    assert type(conn.next_event()) is h11.EndOfMessage
    conn.send_whole(200, [(b"content-length", b"2")], b"ok")
    conn.start_next_cycle()
    event = conn.next_event()
    assert event is expected or type(event) is expected
    if after == b"GET /b HTTP/1.1\r\n":  # the rest of it
        conn.receive_data(b"Host: x\r\n\r\n")
        assert type(conn.next_event()) is RequestHead
