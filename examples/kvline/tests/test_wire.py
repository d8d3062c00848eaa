# The sans-IO parser and reply encoder, fed whole and one byte at a time.
from __future__ import annotations

import pytest
from netsvc_kvline import Command, LineTooLong, Parser, encode_reply

CASES = [
    (b"GET a\n", [Command("GET", "a")]),
    (b"get a\r\n", [Command("GET", "a")]),
    (b"SET k hello world\n", [Command("SET", "k hello world")]),
    (b"PING\nPING\n", [Command("PING", ""), Command("PING", "")]),
    (b"\n\r\n  \nKEYS\n", [Command("KEYS", "")]),
    (b"GET caf\xc3\xa9\n", [Command("GET", "caf\u00e9")]),
    (b"GET \xff\n", [Command("GET", "\ufffd")]),
    (b"GET a", []),
]


def drain(parser: Parser) -> list[Command]:
    commands = []
    while (command := parser.next_command()) is not None:
        commands.append(command)
    return commands


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_whole(data: bytes, expected: list[Command]) -> None:
    parser = Parser(max_line=100)
    parser.feed(data)
    assert drain(parser) == expected


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_one_byte_at_a_time(data: bytes, expected: list[Command]) -> None:
    parser = Parser(max_line=100)
    commands = []
    for byte in data:
        parser.feed(bytes([byte]))
        commands += drain(parser)
    assert commands == expected


def test_partial_line_is_reported() -> None:
    parser = Parser(max_line=100)
    parser.feed(b"GET a\nGE")
    assert drain(parser) == [Command("GET", "a")]
    assert parser.has_partial
    parser.feed(b"T b\n")
    assert drain(parser) == [Command("GET", "b")]
    assert not parser.has_partial


@pytest.mark.parametrize("data", [b"x" * 11, b"x" * 11 + b"\n", b"ok\n" + b"y" * 20])
def test_line_too_long(data: bytes) -> None:
    parser = Parser(max_line=10)
    parser.feed(data)
    with pytest.raises(LineTooLong):
        drain(parser)


def test_long_line_fed_slowly_is_caught_before_its_end() -> None:
    parser = Parser(max_line=10)
    with pytest.raises(LineTooLong):
        for _ in range(20):
            parser.feed(b"z")
            drain(parser)


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [("OK", "", b"OK\n"), ("VALUE", "a b", b"VALUE a b\n"), ("INT", "3", b"INT 3\n")],
)
def test_encode_reply(kind: str, text: str, expected: bytes) -> None:
    assert encode_reply(kind, text) == expected


def test_reply_cannot_break_lines() -> None:
    with pytest.raises(ValueError):
        encode_reply("VALUE", "two\nlines")
