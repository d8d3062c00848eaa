# The core's promises, kept by the XMPP plugin under faults, from outside with
# raw sockets against `netsvc serve`: a stream error survives the client's
# unread input (no reset), a stanza dribbled in is cut at --request-timeout,
# stanzas that get no reply (presence) are never a slow request, and SIGTERM
# while clients chat ends every stream with </stream:stream> and a clean EOF.
from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import trio

from tests.protocols.xmpp.rawclient import HEADER, Client
from tests.rawclient import exchange, open_raw, sigterm_under_load
from tests.serveprocess import ServeProcess, host_port

REQUEST_TIMEOUT = 1.0
TICK = 0.05
JUNK = b"x" * 200_000
SERVE = ["--protocol", "xmpp", "--port", "0", "--xmpp-insecure-any-password", "true"]
SERVE += ["--app", "examples.echobot:app", "--xmpp-max-bytes-per-second", "0"]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    args = [*SERVE, "--request-timeout", str(REQUEST_TIMEOUT), "--max-connections", "200"]
    with ServeProcess(args) as process:
        yield host_port(process.urls[0])


async def test_stream_error_survives_unread_input(server: tuple[str, int]) -> None:
    async def one() -> None:
        payload = HEADER + b"<message><<</message>" + JUNK
        ending = await exchange(*server, payload, read_delay=0.2)
        assert ending.end == "eof"
        assert b"<not-well-formed" in ending.data
        assert ending.data.endswith(b"</stream:stream>\n")

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(one)


async def test_refusal_at_the_limit_survives_unread_input() -> None:
    with ServeProcess([*SERVE, "--max-connections", "1"]) as process:
        host, port = host_port(process.urls[0])
        holder = await open_raw(host, port)
        async with holder:
            await holder.send_all(HEADER)
            await holder.receive_some()
            ending = await exchange(host, port, HEADER + JUNK, read_delay=0.2)
        assert ending.end == "eof"
        assert ending.data.startswith(b"<?xml") or ending.data.startswith(b"<stream:stream")
        assert b"<resource-constraint" in ending.data
        assert ending.data.endswith(b"</stream:stream>\n")


async def test_a_dribbled_stanza_is_cut_at_the_request_timeout(server: tuple[str, int]) -> None:
    stream = await open_raw(*server)
    async with stream:
        client = Client(stream)
        await client.login("dribbler")
        stanza = b"<message to='echo@localhost'><body>slow</body></message>"
        start = trio.current_time()
        rest = b""

        async def dribble() -> None:
            for byte in stanza:
                await trio.sleep(0.2)
                await stream.send_all(bytes([byte]))

        with trio.fail_after(REQUEST_TIMEOUT + 3):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(dribble)
                while data := await stream.receive_some():
                    rest += data
                nursery.cancel_scope.cancel()
    elapsed = trio.current_time() - start
    assert b"<connection-timeout" in rest
    assert rest.endswith(b"</stream:stream>\n")
    assert REQUEST_TIMEOUT < elapsed < 0.2 + REQUEST_TIMEOUT + 1.0  # not 11s


async def test_stanzas_without_replies_are_never_a_slow_request(
    server: tuple[str, int],
) -> None:
    stream = await open_raw(*server)
    async with stream:
        client = Client(stream)
        await client.login("quiet")
        for _ in range(12):  # 2.4s: more than twice the request timeout
            await trio.sleep(0.2)
            await client.say(b"<presence/>")  # nobody to tell: no reply
        await client.say(b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
        with trio.fail_after(2):
            assert b"id='p'" in await client.line()


async def test_sigterm_while_chatting_ends_every_stream_cleanly() -> None:
    process = ServeProcess(SERVE)
    host, port = host_port(process.urls[0])
    endings: list[str] = []
    replies = 0
    started = trio.Event()

    users = itertools.count()

    async def chatter() -> None:
        nonlocal replies
        stream = await open_raw(host, port)
        client = Client(stream)
        message = b"<message to='echo@localhost' type='chat'><body>hi</body></message>"
        async with stream:
            await client.login(f"user{next(users)}")
            try:
                while True:
                    for _ in range(5):
                        await client.say(message)
                    for _ in range(5):
                        line = await client.line()
                        if line == b"</stream:stream>":
                            raise StopAsyncIteration
                        assert b"<body>hi</body>" in line, line
                        replies += 1
                        if replies >= 50 * 5:
                            started.set()
            except StopAsyncIteration:  # the goodbye: then only a clean EOF may follow
                try:
                    rest = client.buffer + await stream.receive_some()
                    endings.append("eof" if rest == b"" else f"data after goodbye: {rest!r}")
                except trio.BrokenResourceError as exc:
                    endings.append(f"broken after goodbye: {exc.__cause__!r}")
            except EOFError as exc:
                endings.append(f"EOF without goodbye, after {exc.args[0]!r}")
            except trio.BrokenResourceError as exc:
                endings.append(f"broken: {exc.__cause__!r}")

    await sigterm_under_load(process, chatter, started)
    assert endings == ["eof"] * 50


async def test_a_keepalive_ending_in_cr_is_idle_not_a_slow_request(
    server: tuple[str, int],
) -> None:
    # expat holds a trailing "\r" to see whether "\n" follows: that is
    # whitespace between stanzas, not the start of one
    stream = await open_raw(*server)
    async with stream:
        client = Client(stream)
        await client.login("cr")
        await client.say(b" \r")
        await trio.sleep(REQUEST_TIMEOUT + 0.5)
        await client.ping()  # not cut by the request deadline


async def test_bytes_after_auth_in_the_same_read_start_no_request(
    server: tuple[str, int],
) -> None:
    # What follows <auth/> in its read belonged to the old stream and is
    # dropped (RFC 6120 6.4.6): it must not leave a request deadline running.
    stream = await open_raw(*server)
    async with stream:
        client = Client(stream)
        await client.say(HEADER)
        await client.line()
        await client.line()
        auth = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAcHc=</auth>"
        await client.say(auth + b"<stream:stream to='local")
        assert (await client.line()).startswith(b"<success")
        await trio.sleep(REQUEST_TIMEOUT + 0.5)
        await client.say(HEADER)
        with trio.fail_after(2):
            assert b"<stream:stream " in await client.line()
