# The caches of response heads: the parser seam's of validated h11 events
# (the same head is validated once, a different one (date, length,
# connection: close) never reuses it, a bad one is refused every time, the
# cache stays bounded), and the httptools adapter's of written heads (a bad
# head is refused every time and leaves the connection as it was; bounded).
from __future__ import annotations

import h11
import pytest

from protocols.http import _httptools, _parse
from protocols.http._httptools import HttptoolsConnection
from protocols.http._parse import RequestHead, response_event

DATE = (b"date", b"Wed, 25 Nov 2026 10:00:00 GMT")


def test_same_head_reused_different_heads_not() -> None:
    head = [(b"content-type", b"text/plain"), (b"content-length", b"5"), DATE]
    first = response_event(200, list(head))
    assert response_event(200, list(head)) is first
    closing = response_event(200, [*head, (b"connection", b"close")])
    assert closing is not first and (b"connection", b"close") in closing.headers.raw_items()
    assert response_event(404, list(head)).status_code == 404
    later = [*head[:2], (b"date", b"Wed, 25 Nov 2026 10:00:01 GMT")]
    assert response_event(200, later) is not first


def test_bad_head_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(h11.LocalProtocolError):
            response_event(200, [(b"bad header", b"x"), DATE])


def test_cache_is_bounded() -> None:
    for n in range(_parse._EVENTS_KEPT * 3):
        response_event(200, [(b"content-length", b"%d" % n), DATE])
    assert len(_parse._events) <= _parse._EVENTS_KEPT


def request_received() -> HttptoolsConnection:
    conn = HttptoolsConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert type(conn.next_event()) is RequestHead
    return conn


def test_written_head_refused_every_time_and_state_unchanged() -> None:
    for _ in range(2):
        conn = request_received()
        with pytest.raises(h11.LocalProtocolError):
            conn.send_head(200, [(b"bad header", b"x"), DATE])
        assert conn.our_state is h11.SEND_RESPONSE  # a 500 can still be sent
        assert conn.send_whole(500, [(b"content-length", b"0"), DATE], b"").startswith(
            b"HTTP/1.1 500 "
        )


def test_written_heads_are_bounded() -> None:
    for n in range(_httptools._WRITTEN_KEPT * 3):
        request_received().send_head(200, [(b"content-length", b"%d" % n), DATE])
    assert 0 < len(_httptools._written) <= _httptools._WRITTEN_KEPT
