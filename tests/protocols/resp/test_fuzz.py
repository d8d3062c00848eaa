# Fuzzing the RESP plugin: the sans-IO RequestParser fed near-valid requests
# (tests/fuzzing.py's generators, driven by Hypothesis) whole, split at random
# points and a byte at a time, and requests that never end, against its limits;
# then mutated inputs over real connections to `netsvc serve --protocol resp`;
# and, as plain tests with the exact bytes, the bugs fuzzing found.
from __future__ import annotations

import random
import re
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.resp._parser import ProtocolError, RequestParser
from tests.fuzzing import fuzz_server, fuzz_settings, resp_phases
from tests.serveprocess import ServeProcess, host_port

FUZZ = fuzz_settings()
SPLIT_MAX = 16 * 1024  # well under max_inline: a line's size limit depends on the split
Result = tuple[list[list[bytes]], str | None]


def parse(chunks: list[bytes], parser: RequestParser) -> Result:
    """The commands, and the protocol error that ended them (or None). Any other
    exception escapes: the parser may raise nothing but ProtocolError."""
    commands: list[list[bytes]] = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while (command := parser.next_command()) is not None:
                commands.append(command)
    except ProtocolError as exc:
        return commands, str(exc)
    return commands, None


def near_valid(rng: random.Random) -> bytes:
    return b"".join(resp_phases(rng))[:SPLIT_MAX]


REQUESTS = st.randoms(use_true_random=False).map(near_valid)


@FUZZ
@given(REQUESTS, st.booleans(), st.data())
def test_split_input_parses_as_whole_input(
    data: bytes, authenticated: bool, draw: st.DataObject
) -> None:
    parser = RequestParser(authenticated=authenticated)
    whole = parse([data], parser)
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert parse(chunks, RequestParser(authenticated=authenticated)) == whole
    if len(data) <= 2000:
        bytewise = [data[i : i + 1] for i in range(len(data))]
        assert parse(bytewise, RequestParser(authenticated=authenticated)) == whole
    if whole[1] is not None:  # after a protocol error, nothing more is parsed
        parser.feed(b"*1\r\n$4\r\nPING\r\nPING\r\n")
        with pytest.raises(ProtocolError):
            parser.next_command()


MAX_INLINE, MAX_BULK, MAX_BUFFER = 1000, 5000, 20_000
# (start, a unit repeated forever, the error that must end it, the limit in bytes)
ENDLESS = [
    (b"SET a ", b"x", "too big inline request", MAX_INLINE),
    (b"  ", b" ", "too big inline request", MAX_INLINE),
    (b"PING\x00", b"\r\nx", "too big inline request", MAX_INLINE),  # strchr() stops at NUL
    (b"*", b"1", "too big mbulk count string", MAX_INLINE),
    (b"*1\r\n$", b"1", "too big bulk count string", MAX_INLINE),
    (b"*2147483647\r\n", b"$4000\r\n" + b"x" * 4000 + b"\r\n", "max query buffer", MAX_BUFFER),
    (b"*2\r\n$4999\r\n", b"y", "too big bulk count string", MAX_BULK + MAX_INLINE),
    (b"*1\r\n$5001\r\n", b"z", "invalid bulk length", 0),
]


@FUZZ
@given(st.sampled_from(ENDLESS), st.integers(1, 3000), st.booleans())
def test_an_endless_request_stays_within_the_limits(
    endless: tuple[bytes, bytes, str, int], chunk: int, authenticated: bool
) -> None:
    # Fed without end, a request is refused once it passes its limit: the
    # parser never buffers more than the limit and one read.
    start, unit, message, limit = endless
    parser = RequestParser(
        max_inline=MAX_INLINE,
        max_bulk=MAX_BULK,
        max_buffer=MAX_BUFFER,
        authenticated=authenticated,
    )
    stream = start + unit * ((limit + 2 * chunk) // len(unit) + 2)
    fed = 0
    with pytest.raises(ProtocolError) as info:
        for i in range(0, len(stream), chunk):
            piece = stream[i : i + chunk]
            parser.feed(piece)
            fed += len(piece)
            while (command := parser.next_command()) is not None:
                assert all(len(arg) <= MAX_BULK for arg in command)
            assert fed <= len(start) + limit + chunk + len(unit), "past the limit, still buffering"
    if authenticated:  # before AUTH, lower limits may come first
        assert message in str(info.value)


async def test_server_survives_mutated_inputs() -> None:
    await fuzz_server("resp")


# -- what fuzzing found -----------------------------------------------------------------------


def command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def ask(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(65536)


@pytest.mark.parametrize(
    ("blocked", "writes", "expected"),
    [
        (command(b"BLPOP", b"k", b"0"), [command(b"SET", b"k", b"v")], b"(still blocked)"),
        (
            command(b"BLMOVE", b"src", b"dst", b"LEFT", b"RIGHT", b"0"),
            [command(b"SET", b"dst", b"v"), command(b"LPUSH", b"src", b"a")],
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
    ],
    ids=["blpop-key-becomes-string", "blmove-destination-is-string"],
)
def test_a_write_to_a_key_a_client_blocks_on(
    blocked: bytes, writes: list[bytes], expected: bytes
) -> None:
    with ServeProcess(["--protocol", "resp", "--port", "0"]) as server:
        address = host_port(server.urls[0])
        with (
            socket.create_connection(address, 5) as waiter,
            socket.create_connection(address, 5) as writer,
        ):
            waiter.sendall(blocked)
            time.sleep(0.2)  # the waiter blocks
            for write in writes:
                assert ask(writer, write) in (b"+OK\r\n", b":1\r\n")
            assert ask(writer, command(b"PING")) == b"+PONG\r\n"
            # as in Redis: a BLPOP waits on while its key is a string; a BLMOVE
            # whose destination is not a list gets the error
            waiter.settimeout(0.3)
            try:
                answer = waiter.recv(65536)
            except TimeoutError:
                answer = b"(still blocked)"
            assert answer == expected
        server.stop()
    assert not [line for line in server.lines if " ERROR " in line or "Traceback" in line]


def test_publish_while_a_subscriber_leaves() -> None:
    # A race: the subscriber's EOF and the PUBLISH reach the server together.
    # About a third of the rounds hit it; 100 rounds make a miss a 1e-17 chance.
    with ServeProcess(["--protocol", "resp", "--port", "0"]) as server:
        address = host_port(server.urls[0])
        replies = set()
        with socket.create_connection(address, 5) as publisher:
            for _ in range(100):
                with socket.create_connection(address, 5) as subscriber:
                    assert ask(subscriber, command(b"SUBSCRIBE", b"ch")).startswith(b"*3\r\n")
                publisher.sendall(command(b"PUBLISH", b"ch", b"m"))
                replies.add(publisher.recv(65536))
        server.stop()
    assert all(re.fullmatch(rb":[0-9]+\r\n", reply) for reply in replies), replies
    assert not [line for line in server.lines if " ERROR " in line or "Traceback" in line]
