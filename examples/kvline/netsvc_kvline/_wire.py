# The kvline wire format, sans-IO: bytes in, commands out; replies out as
# bytes. No sockets and no trio here, so it is tested by feeding bytes.
#
# A request is one line: a command name, then its arguments separated by
# single spaces; the last argument may contain spaces (`SET greeting hello
# world`). Lines end in "\n" ("\r\n" is accepted, so telnet works too). A reply
# is one line: "OK", "VALUE <text>", "INT <n>", "NIL", "KEYS <k1> <k2>..." or
# "ERR <message>".
from __future__ import annotations

import dataclasses

__all__ = ["Command", "LineTooLong", "Parser", "encode_reply"]


@dataclasses.dataclass(frozen=True)
class Command:
    name: str  # upper-cased
    rest: str  # everything after the first space, as sent


class LineTooLong(Exception):
    """A line grew past the limit; the connection should be closed."""


class Parser:
    """Split a byte stream into commands.

    feed() the bytes you receive, then call next_command() until it returns
    None (it needs more bytes). Empty lines are skipped, like a shell does.
    """

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer known to hold no newline

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def has_partial(self) -> bool:
        """Bytes of an unfinished line are buffered."""
        return bool(self._buffer)

    def next_command(self) -> Command | None:
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end < 0:
                self._scanned = len(self._buffer)
                if self._scanned > self.max_line:
                    raise LineTooLong(f"line longer than {self.max_line} bytes")
                return None
            if end > self.max_line:
                raise LineTooLong(f"line longer than {self.max_line} bytes")
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            self._scanned = 0
            if line.strip():
                text = line.decode("utf-8", errors="replace")
                name, _, rest = text.partition(" ")
                return Command(name.upper(), rest)


def encode_reply(kind: str, text: str = "") -> bytes:
    """One reply line: encode_reply("VALUE", "hi") == b"VALUE hi\\n"."""
    if "\n" in text or "\r" in text:
        raise ValueError("a reply cannot contain a line break")
    return f"{kind} {text}\n".encode() if text else f"{kind}\n".encode()
