# The parser seam's cache of validated response heads: the same head is validated
# once, a different one (date, length, connection: close) never reuses it, a
# bad one is refused every time, and the cache stays bounded.
from __future__ import annotations

import h11
import pytest

from protocols.http import _parse
from protocols.http._parse import response_event as _response_head

DATE = (b"date", b"Wed, 25 Nov 2026 10:00:00 GMT")


def test_same_head_reused_different_heads_not() -> None:
    head = [(b"content-type", b"text/plain"), (b"content-length", b"5"), DATE]
    first = _response_head(200, list(head))
    assert _response_head(200, list(head)) is first
    closing = _response_head(200, [*head, (b"connection", b"close")])
    assert closing is not first and (b"connection", b"close") in closing.headers.raw_items()
    assert _response_head(404, list(head)).status_code == 404
    later = [*head[:2], (b"date", b"Wed, 25 Nov 2026 10:00:01 GMT")]
    assert _response_head(200, later) is not first


def test_bad_head_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(h11.LocalProtocolError):
            _response_head(200, [(b"bad header", b"x"), DATE])


def test_cache_is_bounded() -> None:
    for n in range(_parse._EVENTS_KEPT * 3):
        _response_head(200, [(b"content-length", b"%d" % n), DATE])
    assert len(_parse._events) <= _parse._EVENTS_KEPT
