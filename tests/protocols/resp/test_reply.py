# Reply encoding in RESP2 and RESP3, value by value.
from __future__ import annotations

import pytest

from protocols.resp._reply import (
    NULL_ARRAY,
    OK,
    ErrorReply,
    Frames,
    Push,
    Status,
    encode,
)

CASES = [
    # value, RESP2, RESP3
    (b"bulk", b"$4\r\nbulk\r\n", b"$4\r\nbulk\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    ("text", b"$4\r\ntext\r\n", b"$4\r\ntext\r\n"),
    (OK, b"+OK\r\n", b"+OK\r\n"),
    (Status("QUEUED"), b"+QUEUED\r\n", b"+QUEUED\r\n"),
    (42, b":42\r\n", b":42\r\n"),
    (-1, b":-1\r\n", b":-1\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (False, b":0\r\n", b"#f\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (3.0, b"$1\r\n3\r\n", b",3\r\n"),
    (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
    (ErrorReply("ERR bad\r\nthing"), b"-ERR bad  thing\r\n", b"-ERR bad  thing\r\n"),
    ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ({b"k": 1}, b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
    ({b"m"}, b"*1\r\n$1\r\nm\r\n", b"~1\r\n$1\r\nm\r\n"),
    (
        Push([b"message", b"c", b"x"]),
        b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n",
        b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n",
    ),
    (Frames([OK, 1]), b"+OK\r\n:1\r\n", b"+OK\r\n:1\r\n"),
    ([[b"nested"]], b"*1\r\n*1\r\n$6\r\nnested\r\n", b"*1\r\n*1\r\n$6\r\nnested\r\n"),
]


@pytest.mark.parametrize(("value", "resp2", "resp3"), CASES)
def test_encode(value: object, resp2: bytes, resp3: bytes) -> None:
    assert encode(value, 2) == resp2
    assert encode(value, 3) == resp3


def test_unencodable_value_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="cannot encode object"):
        encode(object(), 2)
