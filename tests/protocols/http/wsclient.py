# Test helpers for the WebSocket tests (native, ASGI, proxy headers): the real
# `websockets` client run in a thread, and a raw client for what a polite
# client never does (frames by hand, masked, permessage-deflate compressed;
# sending until TCP pushes back), over trio streams in process or plain
# sockets to a `netsvc serve` subprocess; and a record of what the handlers
# saw, which a test waits on.
from __future__ import annotations

import base64
import functools
import hashlib
import os
import random
import socket
import struct
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import trio
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from netsvc.testing import RunningServer

T = TypeVar("T")


class Recorder:
    """What the handlers saw, for the test to check, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._changed = trio.Event()

    def add(self, event: Any) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int, timeout: float = 10) -> list[Any]:
        """The events seen, once there are `count` of them."""
        with trio.fail_after(timeout):
            while len(self.events) < count:
                await self._changed.wait()
        return self.events


# -- the websockets client ----------------------------------------------------


def ws_url(running: RunningServer | str, path: str) -> str:
    url = running if isinstance(running, str) else running.url
    return url.replace("http", "ws", 1) + path  # http://... is ws://..., https://... wss://...


async def in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking client call, run in a thread so the server (in this trio loop) runs."""
    return await trio.to_thread.run_sync(functools.partial(call, *args, **kwargs))


def client(url: str, **kwargs: Any) -> ClientConnection:
    """The websockets client, without its own keepalive unless asked."""
    kwargs.setdefault("ping_interval", None)
    return connect(url, open_timeout=10, close_timeout=10, **kwargs)


def closed_by_server(ws: ClientConnection) -> tuple[int, str]:
    """Wait for the server to close; the code and reason it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None, "no close frame from the server"
    return closed.value.rcvd.code, closed.value.rcvd.reason


def closed_after_sending(url: str, message: str) -> tuple[int, str]:
    """Connect, send `message`, and wait for the server's close: (code, reason)."""
    with client(url) as ws:
        ws.send(message)
        return closed_by_server(ws)


def refusal(url: str) -> tuple[int, dict[str, str], bytes]:
    """The HTTP response a refused handshake gets."""
    with pytest.raises(InvalidStatus) as refused:
        client(url)
    response = refused.value.response
    return response.status_code, dict(response.headers.raw_items()), response.body or b""


# -- raw frames -----------------------------------------------------------------

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example
ACCEPT = base64.b64encode(hashlib.sha1(KEY + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
DEFLATE = b"Sec-WebSocket-Extensions: permessage-deflate"  # offered by handshake(path, DEFLATE)

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def handshake(path: str = "/echo", *extra: bytes) -> bytes:
    return b"\r\n".join(
        [
            b"GET %b HTTP/1.1" % path.encode(),
            b"Host: 127.0.0.1",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Key: " + KEY,
            b"Sec-WebSocket-Version: 13",
            *extra,
            b"",
            b"",
        ]
    )


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A client frame (masked, as RFC 6455 requires of clients); `rsv1`
    marks a permessage-deflate compressed message."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        size = bytes([0x80 | length])
    elif length < 65536:
        size = bytes([0x80 | 126]) + length.to_bytes(2, "big")
    else:
        size = bytes([0x80 | 127]) + length.to_bytes(8, "big")
    key = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    return bytes([first]) + size + mask + masked


def deflated(message: bytes) -> bytes:
    """`message` compressed as permessage-deflate sends it (RFC 7692): raw
    deflate, flushed, without the final empty block's 00 00 ff ff. Each
    message is compressed afresh, which a server with context takeover
    inflates all the same; send it in frame(..., rsv1=True)."""
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each whole frame the server sent (unmasked)."""
    frames = []
    i = 0
    while i + 2 <= len(data):
        opcode, length = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if length in (126, 127):
            width = 2 if length == 126 else 8
            length = int.from_bytes(data[i : i + width], "big")
            i += width
        if i + length > len(data):
            break
        frames.append((opcode, data[i : i + length]))
        i += length
    return frames


def close_payload(payload: bytes) -> tuple[int, str]:
    return int.from_bytes(payload[:2], "big"), payload[2:].decode()


# -- a raw client over a trio stream (a server in this process) ---------------------


async def read_response_head(stream: trio.abc.Stream) -> tuple[bytes, bytes]:
    """The HTTP response head the server sent, and the bytes after it."""
    data = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            assert chunk, f"the server closed after {data!r}"
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


async def read_to_end(stream: trio.abc.Stream, data: bytes = b"") -> bytes:
    with trio.fail_after(10):
        while chunk := await stream.receive_some():
            data += chunk
    return data


async def open_websocket(
    running: RunningServer, path: str = "/echo", *extra: bytes
) -> tuple[trio.SocketStream, bytes]:
    """A raw client past the handshake: its stream, and bytes after the 101."""
    stream = await running.connect()
    assert isinstance(stream, trio.SocketStream), "a raw client is for a plain listener"
    await stream.send_all(handshake(path, *extra))
    head, rest = await read_response_head(stream)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return stream, rest


async def send_until_blocked(stream: trio.SocketStream, data: bytes, quiet: float = 1.0) -> int:
    """Send `data` (a frame) again and again until a send makes no progress
    for `quiet` seconds: the server has stopped reading, and TCP pushes back.
    The number of whole sends. The client's send buffer is made small first,
    so that little waits in it."""
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    sent = 0
    while True:
        with trio.move_on_after(quiet):
            await stream.send_all(data)
            sent += 1
            continue
        return sent


def reset(stream: trio.SocketStream) -> None:
    """Make closing `stream` reset the connection (SO_LINGER 0): what the
    kernel does for a client that dies with unread data."""
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# -- a raw client over a plain socket (a `netsvc serve` subprocess) -------------------


def open_raw_websocket(url: str, path: str, *extra: bytes) -> socket.socket:
    """A blocking socket past the handshake to the server at `url`
    (http://host:port), with a small send buffer."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    sock = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    sock.sendall(handshake(path, *extra))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed after {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def send_until_blocked_sync(sock: socket.socket, data: bytes, quiet: float = 1.0) -> int:
    """send_until_blocked() for a blocking socket."""
    sock.settimeout(quiet)
    sent = 0
    try:
        while True:
            sock.sendall(data)
            sent += 1
    except TimeoutError:
        return sent
    finally:
        sock.settimeout(10)


# -- a flood the handler reads, lagging behind ---------------------------------------


class Tally:
    """A digest of messages in order (kind, length, bytes of each): the
    server side of flood_and_tally() adds what it receives, and answers the
    text message "end" with reply(); the client adds what it sends."""

    def __init__(self) -> None:
        self.count = 0
        self._digest = hashlib.sha256()

    def add(self, message: str | bytes) -> None:
        data = message.encode() if isinstance(message, str) else message
        self._digest.update(b"%d %d:" % (isinstance(message, str), len(data)) + data)
        self.count += 1

    def reply(self) -> str:
        return f"{self.count} {self._digest.hexdigest()}"


def flood_messages(max_size: int, count: int = 400) -> list[str | bytes | list[str]]:
    """Messages up to `max_size` bytes, for a server with that
    ws-max-message-size: small texts between large incompressible and
    compressible binaries, messages of exactly the largest size, and a text
    in fragments; together many times what the handler's inbox may hold."""
    rng = random.Random(6455)
    messages: list[str | bytes | list[str]] = []
    for i in range(count):
        kind = i % 10
        if kind == 3:
            messages.append(rng.randbytes(rng.randrange(max_size // 4, max_size)))
        elif kind == 6:
            messages.append(bytes([i % 256]) * max_size)  # the largest, compressed to little
        elif kind == 9:
            messages.append(["é" * (max_size // 16)] * 7)  # 7/8 of the largest, in 7 frames
        else:
            messages.append(f"message {i}")
    return messages


def flood_and_tally(url: str, messages: list[str | bytes | list[str]]) -> tuple[str, str]:
    """Send `messages` as fast as the server takes them (permessage-deflate,
    as the websockets client offers), then "end"; the server's tally of what
    it read, and ours of what was sent."""
    sent = Tally()
    with client(url, max_size=None) as ws:
        for message in messages:
            ws.send(message)
            sent.add("".join(message) if isinstance(message, list) else message)
        ws.send("end")
        return str(ws.recv(timeout=60)), sent.reply()
