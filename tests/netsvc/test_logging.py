# Log formats: text with connection context, JSON lines with every extra field.
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from netsvc import SocketAddress
from netsvc._logging import JSONFormatter, TextFormatter, configure_logging


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(
        "netsvc.connection", logging.INFO, __file__, 1, "hello %s", ("you",), None
    )
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_text_adds_peer_and_connection() -> None:
    line = TextFormatter().format(record(peer="127.0.0.1:5000", conn=7))
    assert line.endswith("INFO netsvc.connection: hello you [peer=127.0.0.1:5000 conn=7]")


def test_text_without_context() -> None:
    assert TextFormatter().format(record()).endswith("netsvc.connection: hello you")


def test_json_line_has_message_level_and_extras() -> None:
    entry = json.loads(JSONFormatter().format(record(url="redis://127.0.0.1:1", conn=3)))
    assert entry["message"] == "hello you"
    assert entry["level"] == "info"
    assert entry["logger"] == "netsvc.connection"
    assert entry["url"] == "redis://127.0.0.1:1" and entry["conn"] == 3
    assert entry["time"].endswith("+00:00")


def test_json_includes_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JSONFormatter().format(rec))
    assert "ValueError: boom" in entry["exc"]
    assert "\n" not in JSONFormatter().format(rec)


def test_text_puts_the_context_on_the_first_line_of_a_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    rec.peer, rec.conn = "127.0.0.1:5000", 7
    first, *rest = TextFormatter().format(rec).split("\n")
    assert first.endswith("ERROR x: failed [peer=127.0.0.1:5000 conn=7]")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: boom"


def test_json_writes_any_extra_value_as_text() -> None:
    # a plugin's extra= may hold an address or a path: logged, not a logging error
    line = JSONFormatter().format(
        record(peer=SocketAddress("tcp", "::1", 5), file=Path("/run/x.sock"))
    )
    entry = json.loads(line)
    assert entry["peer"] == "[::1]:5" and entry["file"] == "/run/x.sock"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format must be one of text, json"):
        configure_logging("info", "xml")
