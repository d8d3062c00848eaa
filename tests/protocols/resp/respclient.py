# A minimal blocking RESP client over a plain socket, decoding replies with
# hiredis: for tests that compare raw replies byte for byte with real Redis.
from __future__ import annotations

import socket
from typing import Any

import hiredis


def encode_command(*args: bytes | str | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class RespClient:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = hiredis.Reader(notEnoughData=_NEED, replyError=_Error)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> Any:
        while (reply := self.reader.gets()) is _NEED:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.reader.feed(data)
        return reply

    def call(self, *args: bytes | str | int) -> Any:
        self.send_raw(encode_command(*args))
        return self.reply()

    def raw_call(self, *args: bytes | str | int) -> bytes:
        """One command's reply as the server wrote it, byte for byte."""
        self.send_raw(encode_command(*args))
        reader, raw = hiredis.Reader(notEnoughData=_NEED), b""
        while reader.gets() is _NEED:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            raw += data
            reader.feed(data)
        return raw

    def closed(self) -> bool:
        """True if the server has closed the connection (reads EOF)."""
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RespClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_NEED = object()


class _Error:
    """An error reply, comparable by its text."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Error) and other.message == self.message

    def __hash__(self) -> int:
        return hash(self.message)

    def __repr__(self) -> str:
        return f"Error({self.message!r})"


def error(message: str) -> _Error:
    return _Error(message)
