# Fuzzing the HTTP plugin: near-valid requests (tests/fuzzing.py's generators,
# driven by Hypothesis) through the parser (h11, httptools) as the driver sets
# it up, with the driver's own head checks and its check of a chunked body's
# framing ahead of the parser, fed whole, split at random points and a byte at
# a time, and the two parsers against each other; then mutated inputs over
# real connections to `netsvc serve --protocol http`.
from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import h11
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from protocols.http._driver import refusal
from protocols.http._parse import RequestHead, new_parser
from protocols.http._settings import HttpSettings
from protocols.http._strict import ChunkedBody, FramingError
from tests.fuzzing import fuzz_server, fuzz_settings, http_phases, log_problems, serve_args
from tests.rawclient import open_raw
from tests.serveprocess import ServeProcess, host_port

FUZZ = fuzz_settings()
DEFAULTS = HttpSettings()
# Under the 431 limit: h11 limits only a head that arrives in pieces, and the
# driver measures a whole one its own way, so near the limit the split decides.
SPLIT_MAX = 12 * 1024


def drive(chunks: list[bytes], parser: str) -> list[tuple[Any, ...]]:
    """What HttpConnection sees of the client's bytes (fed in chunks, then the
    client's EOF) with `parser`: its events (h11's; bodies joined), a 404 sent after each request
    (as the default app answers most; a 2xx to CONNECT would switch protocols:
    see test_connect_answered_with_2xx), the driver's 431, 501, 400 and 413 checks (its refusal()),
    a chunked body's framing checked ahead of h11, and the status of the error
    that ends it. Anything but h11.RemoteProtocolError and FramingError escapes."""
    h = new_parser(parser, DEFAULTS.max_header_size)
    pending = [*chunks, b""]
    assert all(chunks), "an empty read is the client's EOF"
    seen: list[tuple[Any, ...]] = []
    chunked: ChunkedBody | None = None
    try:
        while True:
            event = h.next_event()
            if event is h11.NEED_DATA:
                data = pending.pop(0)
                if chunked is not None and not chunked.done:
                    chunked.feed(data)
                h.receive_data(data)
            elif type(event) is RequestHead:
                headers = list(event.headers)
                seen.append(("request", event.method, event.target, event.http_version, headers))
                refused = refusal(
                    event,
                    max_header_size=DEFAULTS.max_header_size,
                    max_body=DEFAULTS.max_body_size,
                )
                if refused is not None:
                    return [*seen, ("error", refused[0])]
                chunked = None
                if event.length is None:  # chunked
                    chunked = ChunkedBody(DEFAULTS.max_header_size)
                    chunked.feed(h.trailing_data[0])
            elif type(event) is h11.Data:
                if seen[-1][0] == "data":
                    seen[-1] = ("data", seen[-1][1] + bytes(event.data))
                else:
                    seen.append(("data", bytes(event.data)))
            elif type(event) is h11.EndOfMessage:
                seen.append(("end", list(event.headers)))
                h.send(h11.Response(status_code=404, headers=[(b"content-length", b"0")]))
                h.send(h11.EndOfMessage())
                if h.our_state is h11.MUST_CLOSE or h.their_state is not h11.DONE:
                    return seen
                h.start_next_cycle()
            else:  # ConnectionClosed; PAUSED after a protocol switch
                return [*seen, (type(event).__name__,)]
    except (h11.RemoteProtocolError, FramingError) as exc:
        status = exc.error_status_hint if isinstance(exc, h11.RemoteProtocolError) else 400
        while seen and seen[-1][0] == "data":  # the framing checks run ahead of h11: how
            seen.pop()  # much of a bad body h11 passed on before the error depends on the reads
        return [*seen, ("error", status)]


def near_valid(rng: random.Random) -> bytes:
    return b"".join(http_phases(rng))[:SPLIT_MAX]


REQUESTS = st.randoms(use_true_random=False).map(near_valid)


@FUZZ
@given(REQUESTS, st.data())
def test_split_requests_drive_as_whole_requests(
    http_parser: str, data: bytes, draw: st.DataObject
) -> None:
    whole = drive([data] if data else [], http_parser)
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    # b"" is the client's EOF
    assert drive([chunk for chunk in chunks if chunk], http_parser) == whole
    if len(data) <= 1500:
        assert drive([data[i : i + 1] for i in range(len(data))], http_parser) == whole


@FUZZ
@given(REQUESTS)
def test_both_parsers_drive_the_same(http_parser: str, data: bytes) -> None:
    # a request refused by one and served by the other would be a bug
    if http_parser == "httptools":  # once is enough: it runs both
        chunks = [data] if data else []
        assert verdicts(drive(chunks, "httptools")) == verdicts(drive(chunks, "h11"))


def verdicts(seen: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """drive()'s record less a request whose head is refused: httptools
    refuses some heads itself which h11 passes on to the driver's checks
    (a control character in a value); the status is the same."""
    return [
        item
        for item, after in zip(seen, [*seen[1:], ("",)], strict=True)
        if not (item[0] == "request" and after[0] == "error")
    ]


async def test_server_survives_mutated_inputs() -> None:
    await fuzz_server("http")


# -- what fuzzing found (serving tests.fuzzing:asgi_app) --------------------------------------


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[ServeProcess]:
    with ServeProcess(serve_args("http", "tests.fuzzing:asgi_app")) as process:
        yield process


async def send_and_read(process: ServeProcess, data: bytes) -> tuple[bytes, list[str]]:
    """Send `data`, shut down writing, read until EOF; what the server answered
    and the problems (ERROR lines, tracebacks) its log shows meanwhile."""
    start = len(process.lines)
    stream = await open_raw(*host_port(process.urls[0]))
    received = b""
    async with stream:
        await stream.send_all(data)
        await stream.send_eof()
        with trio.move_on_after(5):
            while chunk := await stream.receive_some():
                received += chunk
    await trio.sleep(0.2)  # for the log line to arrive
    return received, log_problems(process.lines[start:])


async def test_connect_answered_with_2xx(asgi_server: ServeProcess) -> None:
    request = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    received, problems = await send_and_read(asgi_server, request)
    assert received.startswith(b"HTTP/1.1 501 ")  # no tunnels: never a 2xx that switches
    assert not problems


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", b"HTTP/1.1 400 "),  # a bad chunk size
        (b"Transfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", b"HTTP/1.1 400 "),
        (b"Content-Length: 10\r\n\r\nhello", b""),  # the client's EOF, 5 bytes short
    ],
    ids=["bad-chunk-size", "bad-trailer", "eof-mid-body"],
)
async def test_a_bad_body_for_an_asgi_app(
    asgi_server: ServeProcess, body: bytes, status: bytes
) -> None:
    received, problems = await send_and_read(asgi_server, b"POST / HTTP/1.1\r\nHost: x\r\n" + body)
    assert received.startswith(status)
    assert not problems
