# Sorted sets against a real redis-server, byte for byte, in RESP2 and RESP3:
# scripts of commands (good calls, wrong types, bad numbers and ranges, syntax
# and arity errors) each run on both servers from empty databases; random
# ZADD/ZREM/ZINCRBY sequences (Hypothesis) whose ranges and ranks must agree;
# properties of the random commands (ZRANDMEMBER, ZSCAN); what Redis 7.2 adds
# over the 7.0 server here (ZRANK WITHSCORE); and redis-py driving netsvc.
from __future__ import annotations

import shlex
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.protocols.resp.respclient import RespClient

Command = Sequence[bytes | str]


def encode_command(args: Command) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else arg.encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class RawClient:
    """Sends commands, returns each reply as the exact bytes the server wrote."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data

    def _end_of_frame(self, pos: int) -> int:
        while (eol := self.buffer.find(b"\r\n", pos)) < 0:
            self._fill()
        kind, head, pos = self.buffer[pos : pos + 1], self.buffer[pos + 1 : eol], eol + 2
        if kind in (b"$", b"=", b"!") and head != b"-1":
            while len(self.buffer) < pos + int(head) + 2:
                self._fill()
            return pos + int(head) + 2
        items = {b"*": 1, b"~": 1, b">": 1, b"%": 2, b"|": 2}.get(kind)
        if items is not None and head != b"-1":
            for _ in range(items * int(head)):
                pos = self._end_of_frame(pos)
        return pos

    def reply(self) -> bytes:
        end = self._end_of_frame(0)
        frame, self.buffer = self.buffer[:end], self.buffer[end:]
        return frame

    def pipeline(self, commands: Sequence[Command]) -> list[bytes]:
        self.sock.sendall(b"".join(encode_command(command) for command in commands))
        return [self.reply() for _ in commands]

    def call(self, *args: bytes | str) -> bytes:
        return self.pipeline([args])[0]


def split(line: str | Command) -> Command:
    """A script line: words as redis-cli takes them, or a tuple kept as it is."""
    if isinstance(line, str):
        return [word.encode() for word in shlex.split(line)]
    return line


BIG = " ".join(f"{i} m{i}" for i in range(129))  # more than a listpack holds
FULL = " ".join(f"{i} m{i}" for i in range(128))  # just a listpack

SCRIPTS: dict[str, list[str | Command]] = {
    "zadd and scores": [
        "zadd z 1 a 2 b 3 c",
        "zadd z 0.1 d -0 e 1e17 f inf g -inf h 2.5e-310 i 0x10 j 1E2 k .5 l 5. m +5 n",
        "zadd z 123456789012345678 o 4611686018427387904 p 1e-5 q 0x1p-3 r -INF s infinity t",
        "zrange z 0 -1 withscores",
        "zscore z d",
        "zscore z e",
        "zscore z f",
        "zscore nokey a",
        "zscore z nomember",
        "zmscore z a nomember d",
        "zmscore nokey a b",
        "zcard z",
        "zcard nokey",
        "zadd z nx 5 a 6 new",
        "zadd z xx 5 a 6 new2",
        "zadd z xx ch 7 a",
        "zadd z gt ch 1 a 100 b",
        "zadd z lt ch 1 a 100 c",
        "zadd z ch 1 a 1 a 2 a",
        "zadd z NX XX 1 a",
        "zadd z gt lt 1 a",
        "zadd z nx gt 1 a",
        "zadd z nx lt 1 a",
        "zadd z incr 5 a",
        "zadd z incr 5 a 6 b",
        "zadd z incr nx 5 a",
        "zadd z incr xx 5 nope",
        "zadd z incr gt -100 a",
        "zadd z incr lt -100 a",
        "zadd z xx 1 nope",
        "exists nope",
        "zadd newkey xx 1 a",
        "exists newkey",
        "zadd newkey incr xx 1 a",
        "zadd z 1",
        "zadd z 1 a 2",
        "zadd z nx",
        "zadd z abc a",
        "zadd z nan a",
        "zadd z -nan a",
        "zadd z 1e999 a",
        "zadd z -1e999 a",
        "zadd z 1e-400 a",
        "zadd z '1 ' a",
        "zadd z ' 1' a",
        "zadd z '' a",
        "zadd z 1e a",
        "zadd z 0x a",
        "zadd z 1_0 a",
        "zadd z infin a",
        ("zadd", "z", b"1\x00", "a"),
        "zadd z 1 a abc b",
        "zadd z -1e-320 a",
        "zscore z a",
        "zincrby z 1 a",
        "zincrby z -1.5 a",
        "zincrby z abc a",
        "zincrby z nx a",
        "zincrby z inf x",
        "zincrby z -inf x",
        "zincrby z 0.1 y",
        "zincrby z 0.2 y",
        "zincrby nokey -0 m",
        "zscore nokey m",
        "zincrby z 1",
        "zrem z a nomember",
        "zrem z nomember",
        "zrem nokey a",
        "zadd two 1 a 2 b",
        "zrem two a b a b",
        "exists two",
        "set str x",
        "zadd str 1 a",
        "zadd str abc a",
        "zincrby str 1 a",
        "zscore str a",
        "zmscore str a",
        "zcard str",
        "zrem str a",
        "type z",
        "object encoding z",
    ],
    "ranks and rank ranges": [
        "zadd z 1 a 2 b 3 c 4 d 5 e 5 f 5 E",
        "zrank z a",
        "zrank z f",
        "zrevrank z a",
        "zrevrank z E",
        "zrank z nomember",
        "zrank nokey a",
        "zrange z 0 2",
        "zrange z -2 -1 withscores",
        "zrange z 5 2",
        "zrange z -100 100",
        "zrange z 7 10",
        "zrange z 0 -1 rev withscores",
        "zrange z 1 3 REV",
        "zrange z 0 -1 limit 0 1",
        "zrange z 0 -1 limit 0 -1",
        "zrange z 0 -1 limit 0",
        "zrange z 0 -1 foo",
        "zrange z x 1",
        "zrange z 0 1.5",
        "zrange z 0 9223372036854775808",
        "zrange z 0 1 withscores withscores",
        "zrange z 0 1 rev rev",
        "zrange z 0 1 byscore bylex",
        "zrange nokey 0 -1",
        "zrevrange z 0 1 withscores",
        "zrevrange z -3 -1",
        "zrevrange z 0 1 limit 0 1",
        "zrevrange z 0 1 rev",
        "zremrangebyrank z 0 0",
        "zremrangebyrank z -1 -1",
        "zremrangebyrank z 5 1",
        "zremrangebyrank z 100 200",
        "zremrangebyrank z x 1",
        "zremrangebyrank nokey 0 -1",
        "zrange z 0 -1",
        "zremrangebyrank z 0 -1",
        "exists z",
        "set str x",
        "zrank str a",
        "zrange str 0 -1",
        "zremrangebyrank str 0 1",
        "zrange str x 1",
    ],
    "score ranges": [
        "zadd z 1 a 2 b 3 c 4 d 5 e -inf ninf inf pinf 2.5 half",
        "zrange z (1 5 byscore",
        "zrange z (1 5 byscore withscores limit 1 2",
        "zrange z 5 (1 byscore rev",
        "zrange z 5 (1 byscore rev limit 1 10",
        "zrangebyscore z -inf +inf",
        "zrangebyscore z -inf +inf withscores limit 2 3",
        "zrangebyscore z -inf +inf limit -1 3",
        "zrangebyscore z -inf +inf limit 100 3",
        "zrangebyscore z -inf +inf limit 0 -5",
        "zrangebyscore z -inf +inf limit 0 0",
        "zrangebyscore z (-inf (inf",
        "zrangebyscore z (inf +inf",
        "zrangebyscore z -inf (-inf",
        "zrangebyscore z '' ''",
        "zrangebyscore z ' 2' '(3'",
        "zrangebyscore z '(' +inf",
        "zrangebyscore z 1e999 -1e999",
        "zrangebyscore z -1e999 1e999",
        "zrangebyscore z 0x1 0x3",
        "zrangebyscore z 3 1",
        "zrangebyscore z (2 (2",
        "zrangebyscore z 2 2",
        ("zrangebyscore", "z", b"2\x00junk", b"3"),
        "zrangebyscore z nan 1",
        "zrangebyscore z 1 abc",
        "zrangebyscore z ((1 2",
        "zrangebyscore z '1 ' 2",
        "zrangebyscore z ' ' 2",
        "zrangebyscore z 0 1 byscore",
        "zrangebyscore z 0 1 rev",
        "zrangebyscore z 0 1 limit 0 x",
        "zrangebyscore z 0 1 limit x 0",
        "zrangebyscore z 0 1 limit 0 1 limit 1 1",
        "zrangebyscore nokey 0 1",
        "zrevrangebyscore z +inf -inf withscores",
        "zrevrangebyscore z 3 1 limit 1 1",
        "zrevrangebyscore z (3 (1",
        "zrevrangebyscore z 1 3",
        "zcount z -inf +inf",
        "zcount z (1 3",
        "zcount z 3 1",
        "zcount z x 1",
        "zcount z (inf inf",
        "zcount nokey 0 1",
        "zremrangebyscore z (1 2",
        "zremrangebyscore z x 3",
        "zremrangebyscore nokey 0 1",
        "zrange z 0 -1 withscores",
        "zremrangebyscore z -inf +inf",
        "exists z",
        "set str x",
        "zcount str 0 1",
        "zcount str x 1",
        "zrangebyscore str 0 1",
        "zremrangebyscore str 0 1",
    ],
    "lex ranges": [
        "zadd l 0 a 0 b 0 c 0 d 0 e 0 f 0 g 0 B 0 aa",
        "zrangebylex l - +",
        "zrangebylex l [b (e",
        "zrangebylex l (b [e limit 1 2",
        "zrangebylex l - + limit 2 -1",
        "zrangebylex l - + limit 20 1",
        "zrevrangebylex l + -",
        "zrevrangebylex l (e [b",
        "zrevrangebylex l + - limit 1 2",
        "zrange l [a [c bylex",
        "zrange l [c [a bylex rev limit 0 2",
        "zrangebylex l + -",
        "zrangebylex l - -",
        "zrangebylex l + +",
        "zrangebylex l [e [b",
        "zrangebylex l [b [b",
        "zrangebylex l (b (b",
        "zrangebylex l [ +",
        "zrangebylex l ( +",
        "zrangebylex l a b",
        "zrangebylex l '' +",
        "zrangebylex l +x +",
        "zrangebylex l - -y",
        ("zrangebylex", "l", b"[a\x00", b"+"),
        ("zrangebylex", "l", b"-\x00x", b"+"),
        "zrangebylex l - + withscores",
        "zrange l - + bylex withscores",
        "zrangebylex l - + byscore",
        "zrangebylex l - + limit 0",
        "zrangebylex nokey - +",
        "zlexcount l - +",
        "zlexcount l [c +",
        "zlexcount l (c (c",
        "zlexcount l x +",
        "zlexcount nokey - +",
        "zadd m 1 a 2 b 0 c 3 d 0 zz",
        "zrangebylex m - +",
        "zrangebylex m [b +",
        "zrevrangebylex m + [b",
        "zrevrangebylex m (d -",
        "zlexcount m [b +",
        "zremrangebylex m [b +",
        "zrange m 0 -1",
        "zremrangebylex l [b (d",
        "zrange l 0 -1",
        "zremrangebylex l x y",
        "zremrangebylex nokey - +",
        "zremrangebylex l - +",
        "exists l",
        "set str x",
        "zlexcount str - +",
        "zrangebylex str - +",
        "zremrangebylex str - +",
    ],
    "zrangestore": [
        "zadd src 1 a 2 b 3 c 4 d",
        "zrangestore dst src 0 -1",
        "zrange dst 0 -1 withscores",
        "zrangestore dst src (1 +inf byscore limit 0 2",
        "zrange dst 0 -1 withscores",
        "zrangestore dst src + - bylex rev",
        "zrange dst 0 -1 withscores",
        "zrangestore dst src 2 1 byscore rev",
        "zrange dst 0 -1 withscores",
        "zrangestore dst src 5 10",
        "exists dst",
        "set dst x",
        "expire dst 100",
        "zrangestore dst src 0 0",
        "ttl dst",
        "type dst",
        "zrangestore dst nokey 0 -1",
        "exists dst",
        "zrangestore dst src 0 -1 withscores",
        "zrangestore dst src 0 -1 limit 0 1",
        "zrangestore dst src x 1",
        "set str x",
        "zrangestore dst str 0 -1",
        "zrangestore str src 0 -1",
        "type str",
    ],
    "pops": [
        "zadd p 1 a 2 b 3 c 4 d 5 e",
        "zpopmin p",
        "zpopmax p",
        "zpopmin p 2",
        "zpopmax p 0",
        "zpopmin p -1",
        "zpopmin p x",
        "zpopmin p 1 2",
        "zpopmin p 10",
        "exists p",
        "zpopmin p",
        "zpopmax p 3",
        "zpopmin nokey 0",
        "zadd p1 1 a 2 b",
        "zadd p2 3 c",
        "zmpop 2 nokey p1 min",
        "zmpop 2 p1 p2 max count 10",
        "zmpop 2 p1 p2 max count 10",
        "zmpop 1 p2 MIN COUNT 1",
        "zmpop 1 nokey min",
        "zmpop 0 p min",
        "zmpop x p min",
        "zmpop -1 p min",
        "zmpop 1 p foo",
        "zmpop 1 p min count 0",
        "zmpop 1 p min count -1",
        "zmpop 1 p min count x",
        "zmpop 1 p min count 1 count 2",
        "zmpop 1 p min count",
        "zmpop 3 p min",
        "set str x",
        "zmpop 2 nokey str min",
        "zadd p3 1 a",
        "zmpop 2 str p3 min",
        "zmpop 2 p3 str min",
        "zpopmin str",
        "zpopmax str 0",
    ],
    "union, intersection, difference": [
        "zadd u1 1 a 2 b 3 c",
        "zadd u2 10 b 20 c 30 d",
        "sadd uset a d e",
        "zunion 2 u1 u2",
        "zunion 2 u1 u2 withscores",
        "zunion 2 u1 u2 WEIGHTS 2 0.5 withscores",
        "zunion 2 u1 u2 aggregate min withscores",
        "zunion 2 u1 u2 aggregate MAX withscores",
        "zunion 2 u1 u2 weights 1 1 aggregate sum weights 2 2 withscores",
        "zunion 3 u1 u2 uset withscores",
        "zunion 2 nokey u1 withscores",
        "zinter 2 u1 u2 withscores",
        "zinter 3 u1 u2 uset withscores",
        "zinter 2 u1 uset withscores",
        "zinter 2 u1 u2 weights 1 -1 aggregate sum withscores",
        "zinter 2 u1 nokey",
        "zdiff 2 u1 u2 withscores",
        "zdiff 2 u2 u1",
        "zdiff 2 uset u1 withscores",
        "zdiff 2 u1 u1",
        "zdiff 1 nokey",
        "zunion 0 u1",
        "zunion -1 u1",
        "zunion x u1",
        "zunion 3 u1 u2",
        "zunion 2 u1 u2 weights 1",
        "zunion 2 u1 u2 weights 1 x",
        "zunion 2 u1 u2 weights 1 nan",
        "zunion 2 u1 u2 aggregate avg",
        "zunion 2 u1 u2 aggregate",
        "zunion 2 u1 u2 withscores foo",
        "set str x",
        "zunion 2 u1 str",
        "zunion 2 u1 str weights x y",
        "zinter 2 str nokey",
        "zdiff 2 u1 u2 weights 1 1",
        "zdiff 2 u1 u2 aggregate sum",
        "zunionstore dst 2 u1 u2 weights 1 2",
        "zrange dst 0 -1 withscores",
        "zunionstore dst 2 u1 u2 withscores",
        "zinterstore dst 2 u1 u2 aggregate max",
        "zrange dst 0 -1 withscores",
        "zinterstore dst 2 u1 uset weights 3 4",
        "zrange dst 0 -1 withscores",
        "zdiffstore dst 2 u1 u2",
        "zrange dst 0 -1 withscores",
        "zdiffstore dst 2 u1 u1",
        "exists dst",
        "zunionstore dst 0 u1",
        "zinterstore dst 1",
        "zunionstore str 1 u1",
        "type str",
        "zunionstore uset 2 uset uset",
        "zrange uset 0 -1 withscores",
        "zintercard 2 u1 u2",
        "zintercard 2 u1 u2 limit 1",
        "zintercard 2 u1 u2 limit 0",
        "zintercard 2 u1 u2 limit -1",
        "zintercard 2 u1 u2 limit x",
        "zintercard 2 u1 u2 withscores",
        "zintercard 2 u1 u2 weights 1 1",
        "zintercard 0 u1",
        "zintercard 2 u1 nokey",
        "zintercard 3 u1 u2",
        "zadd inf 1 a inf b -inf c 0 d",
        "zunion 2 inf inf withscores",
        "zunion 2 inf inf weights 0 1 withscores",
        "zunion 2 inf inf weights -1 1 withscores",
        "zinter 2 inf inf weights 0 1 aggregate min withscores",
        "zinter 2 inf inf weights 1 -1 withscores",
        "zunion 1 inf weights 0 withscores",
        "zunion 1 inf weights -0 withscores",
        "zunionstore neg 1 inf weights -0",
        "zrange neg 0 -1 withscores",
        "zadd fp 0.1 a",
        "zadd fp2 0.2 a",
        "zadd fp3 0.3 a 1 b",
        "zunion 3 fp3 fp fp2 withscores",
        "zinter 3 fp3 fp fp2 withscores",
    ],
    "encodings, conversions and generic commands": [
        f"zadd big {BIG}",
        "object encoding big",
        "zadd big -0 negz",
        "zscore big negz",
        "zrange big 0 3 withscores",
        "zadd long 1 " + "x" * 65,
        "object encoding long",
        "zadd small 1 " + "x" * 64,
        "object encoding small",
        f"zadd grow {FULL}",
        "object encoding grow",
        "zadd grow 1 m1",
        "object encoding grow",
        "zadd grow 1 new",
        "object encoding grow",
        "zremrangebyrank grow 0 100",
        "object encoding grow",
        "zunionstore u 1 grow",
        "object encoding u",
        "zunionstore u 1 big",
        "object encoding u",
        "zrangestore rs big 0 127",
        "object encoding rs",
        "zrangestore rs big 0 128",
        "object encoding rs",
        "zrangestore rs big -inf +inf byscore",
        "object encoding rs",
        "zrangestore rs big -inf +inf byscore limit 0 10",
        "object encoding rs",
        "zadd neg -0 a",
        "zscore neg a",
        "zunionstore negs 1 big weights -1",
        "zscore negs m0",
        "zunion 1 big weights -1 withscores",
        "copy big bigcopy",
        "zadd bigcopy 5 zzz",
        "zcard big",
        "zcard bigcopy",
        "object encoding bigcopy",
        "type big",
        "expire big 100",
        "ttl big",
        "zunionstore big 1 neg",
        "ttl big",
        "rename neg neg2",
        "type neg2",
        "zrank bigcopy m5",
        "zrevrank bigcopy m5",
        "zcount bigcopy 10 20",
        "zcount bigcopy (10 (20",
        "zlexcount bigcopy - +",
        "zrangebyscore bigcopy 100 +inf limit 5 3 withscores",
        "zrevrangebyscore bigcopy 100 -inf limit 5 3 withscores",
        "zremrangebyscore bigcopy 0 10",
        "zrange bigcopy 0 5",
        "zpopmax bigcopy 3",
        "zdiff 2 bigcopy grow",
        "zinter 2 bigcopy grow withscores",
        "zadd lp 1e17 a 0.1 b 5 c inf d -inf e 4611686018427387904 f 4503599627370497 g -0 h",
        "zscan lp 0",
        "zscan lp 0 match [a-d]",
        "zscan lp 0 count 1",
        "zscan nokey 0",
        "zscan nokey 0 count 0",
        "zscan lp 0 count 0",
        "zscan lp 0 foo",
        "zscan lp 0 match",
        "zscan lp x",
        "set str x",
        "zscan str 0",
        "zscan str x",
        "del lp bigcopy",
        "exists lp bigcopy",
        "get neg2",
        "lpush neg2 x",
        "sadd neg2 x",
        "hset neg2 a b",
        "sinter neg2",
    ],
    "zrandmember errors and determined replies": [
        "zadd r 1 a 2 b 3 c",
        "zrandmember nokey",
        "zrandmember nokey 5",
        "zrandmember nokey 0 withscores",
        "zrandmember r 0",
        "zrandmember r x",
        "zrandmember r 1 withscore",
        "zrandmember r 1 withscores x",
        "zrandmember r -9223372036854775808",
        "zrandmember r 9223372036854775808",
        "zrandmember r -4611686018427387904 withscores",
        "zrandmember r 4611686018427387904 withscores",
        "zrandmember r 10",
        "zrandmember r 3 withscores",
        "zadd one 0.5 only",
        "zrandmember one",
        "zrandmember one -3 withscores",
        "set str x",
        "zrandmember str",
        "zrandmember str 1",
        "zrandmember str x",
    ],
    "arity": [
        "zadd z",
        "zadd z 1",
        "zincrby z 1",
        "zincrby z 1 a b",
        "zscore z",
        "zmscore z",
        "zcard",
        "zcard z z",
        "zcount z 1",
        "zlexcount z -",
        "zrange z 1",
        "zrangestore d z 1",
        "zrangebyscore z 1",
        "zrevrangebyscore z 1",
        "zrangebylex z -",
        "zrevrangebylex z -",
        "zrevrange z 1",
        "zrank z",
        "zrevrank z",
        "zrem z",
        "zremrangebyrank z 1",
        "zremrangebyscore z 1",
        "zremrangebylex z -",
        "zpopmin",
        "zpopmax",
        "zmpop 1 z",
        "zunion 1",
        "zinter 1",
        "zdiff 1",
        "zunionstore d 1",
        "zinterstore d 1",
        "zdiffstore d 1",
        "zintercard 1",
        "zrandmember",
        "zscan z",
    ],
}


def run(port: int, protocol: int, script: list[str | Command]) -> list[bytes]:
    client = RawClient(port)
    try:
        client.call("flushall")
        if protocol == 3:
            client.call("hello", "3")
        return client.pipeline([split(line) for line in script])
    finally:
        client.close()


@pytest.fixture(scope="module")
def ports(netsvc_port: int, redis_port: int) -> Iterator[tuple[int, int]]:
    yield netsvc_port, redis_port


def test_scripts_are_meaningful() -> None:
    assert sum(len(script) for script in SCRIPTS.values()) > 500


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_same_bytes_as_redis(name: str, protocol: int, ports: tuple[int, int]) -> None:
    netsvc_port, redis_port = ports
    script = SCRIPTS[name]
    ours, theirs = run(netsvc_port, protocol, script), run(redis_port, protocol, script)
    differences = [
        f"{line}:\n  redis  {want!r}\n  netsvc {got!r}"
        for line, want, got in zip(script, theirs, ours, strict=True)
        if want != got
    ]
    assert not differences, "\n".join(differences)


# -- random operations: both servers keep the same sorted sets --------------------

MEMBERS = st.sampled_from([b"a", b"b", b"c", b"aa", b"ab", b"B", b"", b"\xff", b"a\x00", b"zz"])
SCORES = st.sampled_from(
    ["0", "-0", "1", "-1", "2.5", "0.1", "1e300", "-1e300", "inf", "-inf", "3", "1e-310"]
)
OPERATIONS = st.one_of(
    st.tuples(st.just(b"zadd"), SCORES, MEMBERS),
    st.tuples(st.just(b"zrem"), MEMBERS),
    st.tuples(st.just(b"zincrby"), SCORES, MEMBERS),
    st.tuples(st.just(b"zadd"), st.sampled_from([b"gt", b"lt", b"nx", b"xx"]), SCORES, MEMBERS),
)
BOUNDS = st.sampled_from(["-inf", "+inf", "0", "(0", "1", "(1", "-1", "2.5", "(inf", "1e300"])
LEX_BOUNDS = st.sampled_from(["-", "+", "[a", "(a", "[aa", "(ab", "[", "[B", "(zz", "[\xff"])


@pytest.fixture(scope="module")
def clients(ports: tuple[int, int]) -> Iterator[tuple[RawClient, RawClient]]:
    ours, theirs = RawClient(ports[0]), RawClient(ports[1])
    yield ours, theirs
    ours.close()
    theirs.close()


def _same(clients: tuple[RawClient, RawClient], protocol: int, commands: list[Command]) -> None:
    """Run `commands` on both servers in RESP2 or RESP3: the same replies."""
    for client in clients:
        client.call("hello", str(protocol))  # not compared: the servers name themselves
    ours, theirs = (client.pipeline(commands) for client in clients)
    for command, want, got in zip(commands, theirs, ours, strict=True):
        assert got == want, f"{command}: redis {want!r}, netsvc {got!r}"


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    operations=st.lists(OPERATIONS, max_size=40),
    low=BOUNDS,
    high=BOUNDS,
    offset=st.integers(-1, 5),
    count=st.integers(-1, 5),
    start=st.integers(-12, 12),
    stop=st.integers(-12, 12),
    probe=MEMBERS,
)
def test_random_operations_agree(
    clients: tuple[RawClient, RawClient],
    operations: list[Command],
    low: str,
    high: str,
    offset: int,
    count: int,
    start: int,
    stop: int,
    probe: bytes,
) -> None:
    key = b"prop"
    commands: list[Command] = [(b"del", key), *[(op[0], key, *op[1:]) for op in operations]]
    commands += [
        (b"zrange", key, b"0", b"-1", b"withscores"),
        (b"zrange", key, str(start), str(stop)),
        (b"zrevrange", key, str(start), str(stop), b"withscores"),
        (b"zrangebyscore", key, low, high, b"withscores"),
        (b"zrangebyscore", key, low, high, b"limit", str(offset), str(count)),
        (b"zrevrangebyscore", key, high, low, b"withscores", b"limit", str(offset), str(count)),
        (b"zcount", key, low, high),
        (b"zrank", key, probe),
        (b"zrevrank", key, probe),
        (b"zscore", key, probe),
        (b"zcard", key),
        (b"object", b"encoding", key),
    ]
    for protocol in (2, 3):
        _same(clients, protocol, commands)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(
    members=st.lists(MEMBERS, max_size=12),
    low=LEX_BOUNDS,
    high=LEX_BOUNDS,
    offset=st.integers(-1, 4),
    count=st.integers(-1, 4),
    removed=MEMBERS,
)
def test_random_lex_ranges_agree(
    clients: tuple[RawClient, RawClient],
    members: list[bytes],
    low: str,
    high: str,
    offset: int,
    count: int,
    removed: bytes,
) -> None:
    key = b"lex"
    commands: list[Command] = [(b"del", key)]
    commands += [(b"zadd", key, b"0", member) for member in members]
    commands += [
        (b"zrem", key, removed),
        (b"zrangebylex", key, low, high),
        (b"zrangebylex", key, low, high, b"limit", str(offset), str(count)),
        (b"zrevrangebylex", key, high, low, b"limit", str(offset), str(count)),
        (b"zlexcount", key, low, high),
        (b"zrange", key, low, high, b"bylex"),
        (b"zrank", key, removed),
        (b"zremrangebylex", key, low, high),
        (b"zrange", key, b"0", b"-1"),
    ]
    _same(clients, 2, commands)


# -- random replies: properties -----------------------------------------------------------


def _flat_pairs(reply: list[bytes]) -> list[tuple[bytes, bytes]]:
    return list(zip(reply[::2], reply[1::2], strict=True))


@pytest.mark.parametrize("size", [5, 200], ids=["listpack", "skiplist"])
def test_zrandmember_properties(netsvc_port: int, size: int) -> None:
    scores = {b"m%d" % i: i / 4 for i in range(size)}
    with RespClient(netsvc_port) as client:
        client.call("del", "rand")
        client.call("zadd", "rand", *[b for m, sc in scores.items() for b in (repr(sc), m)])
        assert client.call("zrandmember", "rand") in scores
        for count in (1, 3, size - 1, size, size + 10):
            picked = client.call("zrandmember", "rand", count)
            assert len(picked) == min(count, size)
            assert len(set(picked)) == len(picked)  # a positive count: distinct members
            assert set(picked) <= scores.keys()
        repeated = client.call("zrandmember", "rand", -3 * size)
        assert len(repeated) == 3 * size  # a negative count: repeats allowed
        assert set(repeated) <= scores.keys()
        with_scores = client.call("zrandmember", "rand", -7, "withscores")
        assert len(with_scores) == 14
        for member, score in _flat_pairs(with_scores):
            assert float(score) == scores[member]
        distinct = client.call("zrandmember", "rand", 3, "withscores")
        assert len({member for member, _ in _flat_pairs(distinct)}) == 3


@pytest.mark.parametrize("size", [5, 300], ids=["listpack", "skiplist"])
def test_zscan_returns_everything_once(netsvc_port: int, size: int) -> None:
    scores = {b"m%d" % i: i + 0.5 for i in range(size)}
    with RespClient(netsvc_port) as client:
        client.call("del", "scan")
        client.call("zadd", "scan", *[b for m, sc in scores.items() for b in (repr(sc), m)])
        seen: list[bytes] = []
        cursor, pages = b"0", 0
        while True:
            cursor, page = client.call("zscan", "scan", cursor, "count", 20)
            for member, score in _flat_pairs(page):
                assert float(score) == scores[member]
                seen.append(member)
            pages += 1
            if cursor == b"0":
                break
        assert sorted(seen) == sorted(scores)
        assert pages == (1 if size <= 128 else -(-size // 20))
        _, page = client.call("zscan", "scan", 0, "match", "m1?", "count", 1000)
        wanted = {member for member in scores if len(member) == 3 and member.startswith(b"m1")}
        assert {member for member, _ in _flat_pairs(page)} == wanted


# -- Redis 7.2 (newer than the redis-server these tests run) ----------------------------


@pytest.mark.parametrize(
    ("protocol", "command", "expected"),
    [
        (2, "zrank z b withscore", b"*2\r\n:1\r\n$19\r\n0.20000000000000001\r\n"),
        (3, "zrank z b WITHSCORE", b"*2\r\n:1\r\n,0.20000000000000001\r\n"),
        (2, "zrevrank z b withscore", b"*2\r\n:1\r\n$19\r\n0.20000000000000001\r\n"),
        (2, "zrank z nomember withscore", b"*-1\r\n"),
        (3, "zrank z nomember withscore", b"_\r\n"),
        (2, "zrank nokey a withscore", b"*-1\r\n"),
        (3, "zrank nokey a withscore", b"_\r\n"),
        (2, "zrank z a withscores", b"-ERR syntax error\r\n"),
        (2, "zrank z a withscore x", b"-ERR wrong number of arguments for 'zrank' command\r\n"),
        (2, "zrevrank z a foo", b"-ERR syntax error\r\n"),
    ],
)
def test_zrank_withscore(netsvc_port: int, protocol: int, command: str, expected: bytes) -> None:
    script: list[str | Command] = ["zadd z 0.1 a 0.2 b 0.3 c", command]
    assert run(netsvc_port, protocol, script)[-1] == expected


# -- WATCH, and an app through redis-py -----------------------------------------------


WATCHED_WRITES = ["zadd w 1 a", "zincrby w 1 a", "zrem w a", "zpopmin w", "zunionstore w 1 w"]


def test_writes_touch_watched_keys(ports: tuple[int, int]) -> None:
    for port in ports:  # the same on both servers
        watcher, writer = RawClient(port), RawClient(port)
        try:
            watcher.call("flushall")
            for write in WATCHED_WRITES:
                writer.call("zadd", "w", "5", "x")
                watcher.pipeline([["watch", "w"], ["multi"], ["zcard", "w"]])
                writer.call(*split(write))
                assert watcher.call("exec") == b"*-1\r\n", (port, write)
            writer.call("zadd", "w", "5", "x")
            watcher.call("watch", "w")
            for no_change in ("zadd w xx 5 nomember", "zrem w nomember", "zadd w nx 1 x"):
                writer.call(*split(no_change))
            assert watcher.pipeline([["multi"], ["zcard", "w"], ["exec"]])[-1] == b"*1\r\n:1\r\n"
        finally:
            watcher.close()
            writer.close()


def pairs(reply: Any) -> list[tuple[Any, ...]]:
    """redis-py gives (member, score) tuples in RESP2, lists in RESP3."""
    return [tuple(pair) for pair in reply]


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_redis_py_leaderboard(netsvc_port: int, protocol: int) -> None:
    r = redis.Redis(port=netsvc_port, protocol=protocol, socket_timeout=10)
    r.flushdb()
    assert r.zadd("board", {"alice": 10, "bob": 7.5, "carol": 12}) == 3
    assert r.zadd("board", {"bob": 9}, xx=True, ch=True) == 1
    assert r.zincrby("board", 0.5, "alice") == 10.5
    assert r.zscore("board", "bob") == 9.0
    assert r.zrank("board", "carol") == 2
    assert pairs(r.zrevrange("board", 0, 1, withscores=True)) == [
        (b"carol", 12.0),
        (b"alice", 10.5),
    ]
    assert pairs(r.zrangebyscore("board", 9, "+inf", withscores=True)) == [
        (b"bob", 9.0),
        (b"alice", 10.5),
        (b"carol", 12.0),
    ]
    assert r.zrangebyscore("board", "(9", 12, start=0, num=1) == [b"alice"]
    assert r.zcount("board", "-inf", "+inf") == 3
    assert r.zmscore("board", ["alice", "nobody"]) == [10.5, None]
    # a job queue: due times as scores, popped oldest first
    r.zadd("jobs", {"job1": 1700000000, "job2": 1700000005, "job3": 1700000001})
    assert pairs(r.zpopmin("jobs", 1)) == [(b"job1", 1700000000.0)]
    assert pairs(r.zpopmin("jobs", 5)) == [(b"job3", 1700000001.0), (b"job2", 1700000005.0)]
    assert r.exists("jobs") == 0
    assert r.zunionstore("merged", {"board": 2}) == 3
    assert pairs(r.zrange("merged", 0, -1, withscores=True)) == [
        (b"bob", 18.0),
        (b"alice", 21.0),
        (b"carol", 24.0),
    ]
    assert r.type("merged") in (b"zset", "zset")
    assert set(r.scan_iter(_type="zset")) == {b"board", b"merged"}
    assert r.zrem("board", "bob", "nobody") == 1
    assert r.zcard("board") == 2
    r.close()
