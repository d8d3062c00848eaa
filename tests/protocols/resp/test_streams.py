# Streams against a real redis-server, byte for byte, in RESP2 and RESP3:
# scripts of commands (ids and their syntax, ranges, trimming exact and with
# `~`, consumer groups from creation to destruction, claiming, errors of every
# kind) run on both servers from empty databases; where replies hold times
# (idle, delivery and seen times) both replies are parsed, the times blanked,
# and the trees compared, types and all. Random XADD/XDEL/XTRIM sequences
# (Hypothesis) must leave both servers with the same streams. Blocking XREAD
# and XREADGROUP scenarios are compared byte for byte; what Redis 7.2 does
# differently from the 7.0 server here is checked against its known replies;
# `*` ids are checked for their properties; redis-py drives a worker flow.
from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.protocols.resp.test_zset_blocking import Raw, Transcript, both
from tests.protocols.resp.test_zsets import Command, RawClient, run, split

# -- scripts compared byte for byte ----------------------------------------------------


SCRIPTS: dict[str, list[str | Command]] = {
    "xadd ids": [
        "xadd s 1-1 a 1",
        "xadd s 1-1 a 1",
        "xadd s 1-0 a 1",
        "xadd s 0-5 a 1",
        "xadd s 1-2 a 1 b 2",
        "xadd s 1-* c 3",
        "xadd s 1-* c 3",
        "xadd s 2-* d 4",
        "xadd s 2 e 5",
        "xadd s 2 e 5",
        "xadd s 5-18446744073709551615 f 6",
        "xadd s 6-18446744073709551615 f 6",
        "xadd s 0-0 a b",
        "xadd s 0-* a b",
        "xadd n 0-* a b",
        "xadd n2 0 a b",
        "exists n2",
        "xadd n3 0-0 a b",
        "exists n3",
        "xadd s 7-1 a",
        "xadd s 7-1 a b c",
        "xadd s 7-1",
        "xadd s",
        "xadd s abc a b",
        "xadd s 7-x a b",
        "xadd s -1 a b",
        "xadd s 7- a b",
        "xadd s -7 a b",
        "xadd s 18446744073709551616 a b",
        "xadd s 18446744073709551615-18446744073709551616 a b",
        "xadd s 007-01 a b",
        "xadd s ' 8-+2' a b",
        "xadd s 9-- a b",
        "xadd s 10--1 a b",
        "xadd s 10--01 a b",
        "xadd s 11-*-1 a b",
        "xadd s 11-** a b",
        "xadd s *-1 a b",
        "xadd s + a b",
        "xadd s - a b",
        ("xadd", "s", b"12-1\x00junk", "a", "b"),
        ("xadd", "s", "1" * 128, "a", "b"),
        "xadd s 18446744073709551615-18446744073709551614 a b",
        "xadd s 18446744073709551615-18446744073709551615 a b",
        "xadd s 18446744073709551615-* a b",
        "xadd s * a b",
        "xlen s",
        "xrange s - +",
        "xadd s2 18446744073709551615-* a b",
        "xadd s2 18446744073709551615-* a b",
        "xadd empty nomkstream 1-1 a b",
        "exists empty",
        "xadd s2 NOMKSTREAM 1-1 a b",
        "xadd s3 nomkstream nomkstream 1-1 a b",
        "set str x",
        "xadd str 1-1 a b",
        "xadd str 1-1 a",
        "xadd str nomkstream 1-1 a b",
        "xlen str",
        "xlen nokey",
        "type s",
        "object encoding s",
        "xadd s3 5 field value field value",
        "xrange s3 - +",
        ("xadd", "bin", "1-1", b"\x00\xff", b"", b"", b"v\r\n"),
        "xrange bin - +",
    ],
    "xrange and xrevrange": [
        "xadd s 1-1 a 1",
        "xadd s 1-2 b 2",
        "xadd s 2-0 c 3",
        "xadd s 3-5 d 4",
        "xadd s 18446744073709551615-0 e 5",
        "xrange s - +",
        "xrange s 1 2",
        "xrange s 1-2 3-5",
        "xrange s (1-1 (3-5",
        "xrange s (1-1 +",
        "xrange s - (2",
        "xrange s (1 +",
        "xrange s 3 1",
        "xrange s 2-0 2-0",
        "xrange s (2-0 (2-0",
        "xrange s - + count 2",
        "xrange s - + COUNT 0",
        "xrange s - + count -5",
        "xrange s - + count 1 count 3",
        "xrange s - + count",
        "xrange s - + limit 2",
        "xrange s - + count x",
        "xrange s (18446744073709551615-18446744073709551615 +",
        "xrange s - (0-0",
        "xrange s (- +",
        "xrange s - (+",
        "xrange s ( +",
        "xrange s - (",
        "xrange s (0 (18446744073709551615",
        "xrange s ((1 +",
        "xrange s x +",
        "xrange s - x",
        "xrange s 1-1-1 +",
        "xrevrange s + -",
        "xrevrange s + - count 2",
        "xrevrange s 3 1",
        "xrevrange s (3-5 (1-1",
        "xrevrange s 1 3",
        "xrevrange s + - count 0",
        "xrevrange s (0-0 -",
        "xrange nokey - +",
        "xrange nokey - + count 0",
        "xrevrange nokey + -",
        "xrange nokey x +",
        "set str x",
        "xrange str - +",
        "xrevrange str + -",
        "xrange str x +",
        "xrange s",
        "xrevrange s +",
    ],
    "xdel and xlen": [
        "xadd s 1-1 a 1",
        "xadd s 2-1 b 2",
        "xadd s 3-1 c 3",
        "xdel s 2-1",
        "xdel s 2-1",
        "xdel s 1-1 9-9 3-1",
        "xlen s",
        "exists s",
        "xinfo stream s",
        "xadd s 3-1 c 3",
        "xadd s 4-1 d 4",
        "xdel s 4 x",
        "xdel s x",
        "xdel s -",
        "xdel s +",
        "xdel s (4-1",
        "xdel nokey x",
        "xdel nokey 1-1",
        "set str x",
        "xdel str 1-1",
        "xdel str x",
        "xlen s",
        "xdel s",
        "xlen",
        "xlen s s",
    ],
    "trimming exactly": [
        "xadd s 1-1 a 1",
        "xadd s 2-1 a 2",
        "xadd s 3-1 a 3",
        "xadd s 4-1 a 4",
        "xadd s 5-1 a 5",
        "xtrim s maxlen 3",
        "xrange s - +",
        "xtrim s maxlen = 2",
        "xtrim s MAXLEN 10",
        "xinfo stream s",
        "xadd s maxlen 2 6-1 a 6",
        "xrange s - +",
        "xadd s minid 6 7-1 a 7",
        "xrange s - +",
        "xadd s MINID = 7-1 8-1 a 8",
        "xtrim s minid 100",
        "xinfo stream s",
        "xadd s maxlen 0 9-1 a 9",
        "xinfo stream s",
        "xadd s 10-1 a 10",
        "xadd s 11-1 a 11",
        "xadd s 12-1 a 12",
        "xdel s 11-1",
        "xtrim s minid 11-1",
        "xrange s - +",
        "xtrim s minid 0",
        "xtrim s minid -",
        "xtrim s minid +",
        "xtrim s maxlen -1",
        "xtrim s maxlen x",
        "xtrim s maxlen 1 minid 1",
        "xtrim s minid 1 maxlen 1",
        "xtrim s maxlen 1 maxlen 1",
        "xtrim s maxlen 1 limit 10",
        "xtrim s maxlen = 1 limit 10",
        "xtrim s limit 10",
        "xtrim s limit 0",
        "xtrim s limit -1",
        "xtrim s limit x maxlen 1",
        "xtrim s maxlen",
        "xtrim s maxlen ~",
        "xtrim s maxlen 1 extra",
        "xtrim s nomkstream maxlen 1",
        "xtrim s foo",
        "xtrim nokey maxlen 1",
        "xtrim nokey maxlen x",
        "xtrim nokey foo",
        "set str x",
        "xtrim str maxlen 1",
        "xadd s maxlen -1 13-1 a b",
        "xadd s maxlen x 13-1 a b",
        "xadd s maxlen 1 minid 1 13-1 a b",
        "xadd s limit 5 13-1 a b",
        "xadd s limit 0 13-1 a b",
        "xadd s maxlen 1 limit 5 13-1 a b",
        "xadd s maxlen ~ 1 limit -1 13-1 a b",
        "xadd s maxlen ~ 1 limit x 13-1 a b",
        "xadd s minid x 13-1 a b",
        "xadd s minid - 13-1 a b",
        "xadd s maxlen 13-1 a b",
        "xadd s maxlen 1 13-1",
        "xadd s maxlen",
        "xadd s maxlen 1 limit",
        "xadd s minid 1 nomkstream 13-1 a b",
        "xadd s nomkstream minid 1 maxlen 1 13-1 a b",
        "xrange s - +",
        "xtrim s",
        "xtrim s maxlen",
    ],
    "trimming with ~ in small streams": [
        *[f"xadd s {i}-1 a {i}" for i in range(1, 31)],
        "xtrim s maxlen ~ 10",
        "xlen s",
        "xtrim s maxlen ~ 0 limit 10",
        "xlen s",
        "xtrim s maxlen ~ 0 limit 0",
        "xlen s",
        "xtrim s minid ~ 20",
        "xlen s",
        "xtrim s minid ~ 30-1",
        "xtrim s minid ~ 30-2",
        "xinfo stream s",
        *[f"xadd t {i}-1 a {i}" for i in range(1, 31)],
        "xadd t maxlen ~ 5 31-1 a 31",
        "xadd t minid ~ 30 32-1 a 32",
        "xlen t",
        "xdel t 32-1",
        "xtrim t minid ~ 32",
        "xtrim t minid ~ 33",
        "xinfo stream t",
        *[f"xadd u {i}-1 a {i}" for i in range(1, 31)],
        "xtrim u maxlen ~ 0",
        "xinfo stream u",
        "xadd u 40-1 a 40",
        "xinfo stream u",
    ],
    "xsetid": [
        "xsetid nokey 1-1",
        "xadd s 5-1 a 1",
        "xsetid s 4-1",
        "xsetid s 5-1",
        "xsetid s 10",
        "xadd s 10-0 a 2",
        "xadd s 10-* a 2",
        "xinfo stream s",
        "xsetid s 20-0 entriesadded 1",
        "xsetid s 20-0 entriesadded 50 maxdeletedid 20-1",
        "xsetid s 20-0 entriesadded 50 maxdeletedid 19-1",
        "xinfo stream s",
        "xsetid s 19-2",
        "xsetid s 21-0 entriesadded -1",
        "xsetid s 21-0 entriesadded x",
        "xsetid s 21-0 maxdeletedid x",
        "xsetid s 21-0 maxdeletedid -",
        "xsetid s 21-0 foo",
        "xsetid s 21-0 entriesadded",
        "xsetid s +",
        "xsetid s x",
        "xsetid s 21-0 ENTRIESADDED 60 MAXDELETEDID 21-0",
        "xinfo stream s",
        "xdel s 5-1 10-1",
        "xsetid s 1-1",
        "xinfo stream s",
        "xadd s 22-0 a b",
        "set str x",
        "xsetid str 1-1",
        "xsetid str x",
        "xsetid s",
        "xsetid nokey x",
    ],
    "xread": [
        "xadd s 1-1 a 1",
        "xadd s 2-1 b 2",
        "xadd t 3-1 c 3",
        "xread streams s 0",
        "xread streams s t 0 0",
        "xread count 1 streams s t 0 0",
        "xread COUNT 0 streams s 0-0",
        "xread count -2 streams s 0",
        "xread streams s 1-1",
        "xread streams s 2-1",
        "xread streams s $",
        "xread streams nokey 0",
        "xread streams nokey $",
        "xread streams s nokey t 0 0 0",
        "xread streams s s 0 1-1",
        "xread block 10 streams s 0",
        "xread block 10 streams s $",
        "xread block 10 streams s 2-1",
        "xread block 10 count 1 streams s t 1-1 0",
        "xread streams s",
        "xread streams",
        "xread count 1",
        "xread count 1 s 0",
        "xread block -1 streams s 0",
        "xread block x streams s 0",
        "xread block 1.5 streams s 0",
        "xread block 9223372036854775807 streams s 0",
        "xread count x streams s 0",
        "xread streams s x",
        "xread streams s -",
        "xread streams s +",
        "xread streams s >",
        "xread streams s (1",
        "xread group g c streams s 0",
        "xread noack streams s 0",
        "xread foo streams s 0",
        "xread streams s 18446744073709551615-18446744073709551615",
        "set str x",
        "xread streams str 0",
        "xread streams s str 0 0",
        "xread streams str x",
        "xread block 10 streams str 0",
        "multi",
        "xread block 0 streams s 2-1",
        "xread block 0 streams s 0",
        "exec",
        "xread",
    ],
    "consumer groups": [
        "xgroup create s g $",
        "xgroup create s g $ mkstream",
        "xgroup create s g $ mkstream",
        "xgroup create s g2 0 MKSTREAM",
        "xinfo groups s",
        "xadd s 1-1 a 1",
        "xadd s 2-1 b 2",
        "xadd s 3-1 c 3",
        "xinfo groups s",
        "xreadgroup group g alice streams s >",
        "xreadgroup group g2 alice count 2 streams s >",
        "xreadgroup group g2 bob streams s >",
        "xreadgroup group g2 bob streams s >",
        "xreadgroup group g2 bob block 10 streams s >",
        "xinfo groups s",
        "xpending s g2",
        "xpending s g",
        "xpending s nogroup",
        "xpending nokey g",
        "xreadgroup group g2 alice streams s 0",
        "xreadgroup group g2 alice count 1 streams s 0",
        "xreadgroup group g2 alice streams s 1-1",
        "xreadgroup group g2 alice streams s 2-1",
        "xreadgroup group g2 carol streams s 0",
        "xpending s g2",
        "xack s g2 1-1 5-5",
        "xack s g2 1-1",
        "xack s g2 x",
        "xack s g2 1-1 x",
        "xack s nogroup 1-1",
        "xack s nogroup x",
        "xack nokey g 1-1",
        "xpending s g2",
        "xdel s 2-1",
        "xreadgroup group g2 alice streams s 0",
        "xinfo groups s",
        "xadd s 4-1 d 4",
        "xreadgroup group g2 alice noack streams s >",
        "xpending s g2",
        "xinfo groups s",
        "xgroup setid s g2 0",
        "xreadgroup group g2 dave streams s >",
        "xpending s g2",
        "xgroup setid s g2 $",
        "xgroup setid s g2 2-1 entriesread 1",
        "xinfo groups s",
        "xgroup setid s g2 - ",
        "xinfo groups s",
        "xgroup setid s g2 + entriesread 7",
        "xinfo groups s",
        "xgroup setid s g2 x",
        "xgroup setid s g2 0 entriesread -2",
        "xgroup setid s g2 0 entriesread x",
        "xgroup setid s g2 0 entriesread",
        "xgroup setid s g2 0 foo",
        "xgroup setid s g2 0 mkstream",
        "xgroup setid s nogroup 0",
        "xgroup setid nokey g 0",
        "xgroup createconsumer s g2 erin",
        "xgroup createconsumer s g2 erin",
        "xgroup createconsumer s nogroup erin",
        "xgroup createconsumer nokey g erin",
        "xgroup delconsumer s g2 bob",
        "xgroup delconsumer s g2 bob",
        "xgroup delconsumer s g2 dave",
        "xgroup delconsumer s nogroup bob",
        "xpending s g2",
        "xgroup destroy s g2",
        "xgroup destroy s g2",
        "xgroup destroy nokey g2",
        "xinfo groups s",
        "xgroup create s g3 2-1 entriesread 1",
        "xgroup create s g4 0 entriesread -1",
        "xgroup create s g5 0 entriesread -2",
        "xgroup create s g5 0 entriesread x",
        "xgroup create s g5 x",
        "xgroup create s g5 -",
        "xgroup create s g5 +",
        "xgroup create s g5 0 foo",
        "xgroup create s g5 0 mkstream entriesread 3 mkstream",
        "xgroup create s g6 0 mkstream entriesread",
        "xgroup create nokey g 0",
        "xgroup create nokey g x mkstream",
        "exists nokey",
        "xinfo groups s",
        "xreadgroup group g3 a streams s >",
        "xinfo groups s",
        "set str x",
        "xgroup create str g 0",
        "xgroup create str g 0 mkstream",
        "xgroup destroy str g",
        "xgroup createconsumer str g c",
        "xreadgroup group g c streams str >",
        "xpending str g",
        "xack str g 1-1",
        "xgroup",
        "xgroup create s",
        "xgroup create s g",
        "xgroup destroy s",
        "xgroup destroy s g extra",
        "xgroup createconsumer s g",
        "xgroup delconsumer s g c extra",
        "xgroup setid s g",
        "xgroup foo s g",
        "xgroup HELP",
        "xgroup help extra",
        "xgroup create s g 0 a b c d",
        "type s",
    ],
    "xreadgroup errors": [
        "xadd s 1-1 a 1",
        "xgroup create s g 0",
        "xreadgroup group g c streams s $",
        "xreadgroup group g c streams s x",
        "xreadgroup group g c streams s -",
        "xreadgroup group g c streams s +",
        "xreadgroup group nog c streams s >",
        "xreadgroup group g c streams nokey >",
        "xreadgroup group g c streams s nokey > >",
        "xreadgroup streams s >",
        "xreadgroup group g streams s >",
        "xreadgroup group g c streams s",
        "xreadgroup group g c count x streams s >",
        "xreadgroup group g c block x streams s >",
        "xreadgroup group g c block -5 streams s >",
        "xreadgroup group g c foo streams s >",
        "xreadgroup group g c",
        "xreadgroup group g c streams s s > >",
        "xpending s g",
        "xreadgroup group g c block 0 streams s 0",
        "xreadgroup group g c block 10 streams s >",
        "xdel s 1-1",
        "xreadgroup group g c streams s 0",
        "xreadgroup group g c streams s 0",
        "xreadgroup group g c streams s 1-1",
        "xinfo groups s",
        "multi",
        "xreadgroup group g c block 0 streams s >",
        "exec",
        "xreadgroup GROUP g c NOACK COUNT 5 STREAMS s >",
        "xreadgroup group g c noack count 5 streams s 0",
    ],
    "claiming": [
        "xadd s 1-1 a 1",
        "xadd s 2-1 b 2",
        "xadd s 3-1 c 3",
        "xadd s 4-1 d 4",
        "xgroup create s g 0",
        "xreadgroup group g alice streams s >",
        "xclaim s g bob 0 1-1",
        "xclaim s g bob 0 1-1 2-1 justid",
        "xclaim s g bob 0 9-9",
        "xclaim s g bob 360000 3-1",
        "xclaim s g bob 0 3-1 retrycount 7 justid",
        "xpending s g - + 10 bob",
        "xclaim s g bob 0 3-1 idle 0 time 0 retrycount 2 force lastid 9-9 justid",
        "xinfo groups s",
        "xdel s 4-1",
        "xclaim s g bob 0 4-1",
        "xpending s g",
        "xclaim s g carol 0 1-1 foo",
        "xclaim s g carol 0 1-1 idle x",
        "xclaim s g carol 0 1-1 time x",
        "xclaim s g carol 0 1-1 retrycount x",
        "xclaim s g carol 0 1-1 lastid x",
        "xclaim s g carol 0 1-1 idle",
        "xclaim s g carol x 1-1",
        "xclaim s g carol -5 1-1 justid",
        "xclaim s g carol 0 x",
        "xclaim s g carol 0 1-1 x 2-1",
        "xclaim s nog carol 0 1-1",
        "xclaim nokey g carol 0 1-1",
        "xclaim nokey g carol x 1-1",
        "xack s g 2-1",
        "xclaim s g dave 0 2-1 justid",
        "xclaim s g dave 0 2-1 force justid",
        "xclaim s g dave 0 9-9 force",
        "xpending s g",
        "xadd s 5-1 e 5",
        "xclaim s g dave 0 5-1 force",
        "xpending s g",
        "set str x",
        "xclaim str g c 0 1-1",
        "xclaim s g c 0",
        "xautoclaim s g erin 0 0",
        "xautoclaim s g erin 0 0 count 1",
        "xautoclaim s g erin 0 2-1 count 1 justid",
        "xautoclaim s g erin 0 (2-1 count 10",
        "xautoclaim s g erin 0 - justid",
        "xautoclaim s g erin 3600000 0",
        "xreadgroup group g alice streams s 0",
        "xdel s 1-1 3-1",
        "xautoclaim s g frank 0 0 count 1",
        "xautoclaim s g frank 0 0 count 1",
        "xautoclaim s g frank 0 0",
        "xpending s g",
        "xautoclaim s g frank 0 0 count 0",
        "xautoclaim s g frank 0 0 count -1",
        "xautoclaim s g frank 0 0 count x",
        "xautoclaim s g frank 0 0 count 576460752303423487",
        "xautoclaim s g frank 0 0 count 576460752303423488",
        "xautoclaim s g frank 0 0 count",
        "xautoclaim s g frank 0 0 foo",
        "xautoclaim s g frank x 0",
        "xautoclaim s g frank 0 x",
        "xautoclaim s g frank 0 (18446744073709551615-18446744073709551615",
        "xautoclaim s g frank -1 +",
        "xautoclaim s nog frank 0 0",
        "xautoclaim nokey g frank 0 0",
        "xautoclaim nokey g frank x 0",
        "xautoclaim str g frank 0 0",
        "xautoclaim s g frank 0",
    ],
    "xpending": [
        "xgroup create s g $ mkstream",
        "xpending s g",
        "xpending s g - + 10",
        "xpending s g - + 10 nobody",
        *[f"xadd s {i}-1 a {i}" for i in range(1, 8)],
        "xreadgroup group g alice count 3 streams s >",
        "xreadgroup group g bob count 3 streams s >",
        "xpending s g",
        "xpending s g - + 0",
        "xpending s g - + -1",
        "xpending s g - + x",
        "xpending s g x + 10",
        "xpending s g - x 10",
        "xpending s g (18446744073709551615-18446744073709551615 + 10",
        "xpending s g - (0-0 10",
        "xpending s g (1-1 (6-1 10 nobody",
        "xpending s g - + 10 extra more",
        "xpending s g - +",
        "xpending s g -",
        "xpending s g idle 10 - +",
        "xpending s g idle x - + 10",
        "xpending s g idle 10 - + x",
        "xpending s g idle 360000 - + 10",
        "xpending s g idle 360000 - + 10 alice",
        "xpending s nog - + 10",
        "xpending nokey g - + 10",
        "xpending nokey g x + 10",
        "set str x",
        "xpending str g",
        "xpending str g - + 10",
        "xpending s",
    ],
    "xinfo": [
        "xinfo stream nokey",
        "xinfo groups nokey",
        "xinfo consumers nokey g",
        "xgroup create s g $ mkstream",
        "xinfo stream s",
        "xinfo stream s full",
        "xinfo groups s",
        "xinfo consumers s g",
        "xinfo consumers s nog",
        "xadd s 1-1 a 1",
        "xadd s 2-1 b 2 c 3",
        "xinfo stream s",
        "xinfo stream s full count 1",
        "xinfo stream s FULL COUNT 0",
        "xinfo stream s full count -3",
        "xinfo stream s full count x",
        "xinfo stream s full foo 1",
        "xinfo stream s full count",
        "xinfo stream s full count 1 x",
        "xinfo stream s foo",
        "xinfo stream nokey foo",
        "xinfo groups s extra",
        "xinfo consumers s",
        "xinfo",
        "xinfo foo s",
        "xinfo HELP",
        "xinfo help x",
        "set str x",
        "xinfo stream str",
        "xinfo groups str",
        "xinfo consumers str g",
        "xinfo stream",
    ],
    "keys": [
        "xadd s 1-1 a 1",
        "xgroup create s g 0",
        "xreadgroup group g c streams s >",
        "copy s s2",
        "xrange s2 - +",
        "xinfo groups s2",
        "xpending s2 g",
        "xack s2 g 1-1",
        "xpending s g",
        "xadd s2 2-1 b 2",
        "xlen s",
        "rename s2 s3",
        "xrange s3 - +",
        "type s3",
        "object encoding s3",
        "scan 0 type stream match s3",
        "del s3",
        "exists s3",
        "xadd e maxlen 0 1-1 a b",
        "exists e",
        "type e",
        "xdel s 1-1",
        "exists s",
        "xlen s",
        "expire s 100",
        "ttl s",
        "lpush s x",
    ],
}


def test_scripts_are_meaningful() -> None:
    assert sum(len(script) for script in SCRIPTS.values()) > 500


@pytest.fixture(scope="module")
def ports(netsvc_port: int, redis_port: int) -> Iterator[tuple[int, int]]:
    yield netsvc_port, redis_port


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_same_bytes_as_redis(name: str, protocol: int, ports: tuple[int, int]) -> None:
    netsvc_port, redis_port = ports
    script = SCRIPTS[name]
    ours, theirs = run(netsvc_port, protocol, script), run(redis_port, protocol, script)
    differences = [
        f"{line}:\n  redis  {want!r}\n  netsvc {got!r}"
        for line, want, got in zip(script, theirs, ours, strict=True)
        if want != got and not _only_times_differ(want, got)
    ]
    assert not differences, "\n".join(differences)


# -- replies with times: parsed, times blanked, compared --------------------------------

# fields whose values are times (XINFO), and Redis 7.2's additions to XINFO
# (the redis-server these tests run is 7.0)
TIME_FIELDS = {b"idle", b"seen-time", b"active-time", b"inactive"}
ADDED_IN_72 = {b"active-time", b"inactive"}


def parse(frame: bytes) -> Any:
    """A reply as a tree that keeps RESP types: (kind, value)."""
    tree, end = _parse(frame, 0)
    assert end == len(frame)
    return tree


def _parse(data: bytes, pos: int) -> tuple[Any, int]:
    eol = data.index(b"\r\n", pos)
    kind, head, pos = data[pos : pos + 1], data[pos + 1 : eol], eol + 2
    if kind in (b"$", b"=", b"!"):
        if head == b"-1":
            return ("null", None), pos
        size = int(head)
        return (kind.decode(), data[pos : pos + size]), pos + size + 2
    if kind in (b"*", b"~", b">", b"%"):
        if head == b"-1":
            return ("nullarray", None), pos
        items = []
        for _ in range(int(head) * (2 if kind == b"%" else 1)):
            item, pos = _parse(data, pos)
            items.append(item)
        return (kind.decode(), items), pos
    return (kind.decode(), head), pos


def blank_times(tree: Any, *, drop_72: bool) -> Any:
    """Times blanked: values of TIME_FIELDS; absolute times (ms since 1970);
    the idle time in XPENDING's extended entries. With `drop_72`, the fields
    Redis 7.2 added are left out."""
    kind, value = tree
    if kind == ":" and value.lstrip(b"-").isdigit() and int(value) > 10**12:
        return (":", b"T")
    if not isinstance(value, list):
        return tree
    items = list(value)
    if (
        len(items) == 4
        and [item[0] for item in items] == ["$", "$", ":", ":"]
        and b"-" in items[0][1]
    ):
        items[2] = (":", b"T")  # XPENDING: id, consumer, idle, deliveries
    out: list[Any] = []
    index = 0
    while index < len(items):
        item = items[index]
        if item[0] == "$" and item[1] in TIME_FIELDS and index + 1 < len(items):
            if not (drop_72 and item[1] in ADDED_IN_72):
                out += [item, (":", b"T")]
            index += 2
            continue
        out.append(blank_times(item, drop_72=drop_72))
        index += 1
    return (kind, out)


def _only_times_differ(want: bytes, got: bytes) -> bool:
    try:
        return blank_times(parse(want), drop_72=False) == blank_times(parse(got), drop_72=True)
    except (ValueError, AssertionError):
        return False


def test_time_blanking_does_not_hide_differences() -> None:
    a = b"*2\r\n$4\r\nidle\r\n:5\r\n"
    assert _only_times_differ(a, b"*2\r\n$4\r\nidle\r\n:9\r\n")
    assert not _only_times_differ(a, b"*2\r\n$4\r\nname\r\n:5\r\n")
    assert not _only_times_differ(a, b"%1\r\n$4\r\nidle\r\n:5\r\n")
    assert not _only_times_differ(b"$1\r\nx\r\n", b"$1\r\ny\r\n")


# -- trimming with ~ in streams of many nodes ----------------------------------------------


def _fill(key: str, count: int, value: str = "v", first: int = 1) -> list[Command]:
    return [("xadd", key, f"{i}-1", "f", f"{value}{i}") for i in range(first, first + count)]


def _trim_script(value: str) -> list[Command]:
    """Streams of a few hundred entries, trimmed with `~` (whole nodes: 100
    entries, or fewer when 4096 bytes fill first), with LIMIT, after XDELs."""
    script: list[Command] = [*_fill("s", 450, value)]
    for line in [
        "xtrim s maxlen ~ 420",
        "xtrim s maxlen ~ 300",
        "xlen s",
        "xtrim s maxlen ~ 100 limit 99",
        "xtrim s maxlen ~ 100 limit 150",
        "xlen s",
        "xinfo stream s",
        "xtrim s minid ~ 401",
        "xtrim s minid ~ 420 limit 1000",
        "xlen s",
        "xdel s 401-1 402-1 450-1",
        "xtrim s maxlen ~ 1",
        "xinfo stream s",
        "xtrim s maxlen = 10",
        "xinfo stream s",
    ]:
        script.append(split(line))
    script += _fill("t", 250, value)
    script += [split(f"xdel t {i}-1") for i in range(1, 101)]  # the first node goes
    script += _fill("t", 60, value, first=300)
    script += [split(line) for line in ["xtrim t maxlen ~ 150", "xlen t", "xinfo stream t"]]
    script += [split(f"xadd t maxlen ~ 50 {i}-1 f x") for i in range(400, 420)]
    script += [split("xinfo stream t")]
    return script


@pytest.mark.parametrize("value", ["v", "x" * 40, "y" * 300], ids=["small", "40b", "300b"])
def test_approximate_trimming_matches_redis(value: str, ports: tuple[int, int]) -> None:
    script = _trim_script(value)
    ours, theirs = run(ports[0], 2, script), run(ports[1], 2, script)
    differences = [
        f"{line}:\n  redis  {want!r}\n  netsvc {got!r}"
        for line, want, got in zip(script, theirs, ours, strict=True)
        if want != got and b"radix-tree-nodes" not in want
    ]
    assert not differences, "\n".join(differences)


# -- random operations: both servers keep the same streams ---------------------------------

IDS = st.builds(lambda ms, seq: f"{ms}-{seq}", st.integers(1, 12), st.integers(0, 3))
OPERATIONS = st.one_of(
    st.tuples(st.just("xadd"), IDS),
    st.tuples(st.just("xadd"), st.builds(lambda ms: f"{ms}-*", st.integers(1, 12))),
    st.tuples(st.just("xdel"), IDS),
    st.tuples(st.just("xtrim"), st.just("maxlen"), st.sampled_from(["=", "~"]), st.integers(0, 6)),
    st.tuples(st.just("xtrim"), st.just("minid"), st.sampled_from(["=", "~"]), IDS),
    st.tuples(st.just("xadd"), st.just("maxlen"), st.integers(0, 4), IDS),
    st.tuples(st.just("xgroupread"), st.integers(0, 3)),
    st.tuples(st.just("xsetid"), IDS),
)
BOUNDS = st.sampled_from(["-", "+", "0", "3", "(3", "5-1", "(5-1", "12-3", "(12", "(0-0"])


def _command(key: bytes, operation: tuple[Any, ...]) -> list[Command]:
    name, *args = operation
    if name == "xadd" and args[0] == "maxlen":
        return [(b"xadd", key, b"maxlen", str(args[1]), args[2], b"f", b"v")]
    if name == "xadd":
        return [(b"xadd", key, args[0], b"f", args[0])]
    if name == "xdel":
        return [(b"xdel", key, args[0])]
    if name == "xtrim":
        return [(b"xtrim", key, *(str(arg) for arg in args))]
    if name == "xsetid":
        return [(b"xsetid", key, args[0])]
    return [(b"xreadgroup", b"group", b"g", b"c", b"count", str(args[0]), b"streams", key, b">")]


@pytest.fixture(scope="module")
def clients(ports: tuple[int, int]) -> Iterator[tuple[RawClient, RawClient]]:
    ours, theirs = RawClient(ports[0]), RawClient(ports[1])
    yield ours, theirs
    ours.close()
    theirs.close()


@settings(max_examples=120, derandomize=True, deadline=None)
@given(
    operations=st.lists(OPERATIONS, max_size=30),
    low=BOUNDS,
    high=BOUNDS,
    count=st.integers(0, 4),
    protocol=st.sampled_from([2, 3]),
)
def test_random_operations_agree(
    clients: tuple[RawClient, RawClient],
    operations: list[tuple[Any, ...]],
    low: str,
    high: str,
    count: int,
    protocol: int,
) -> None:
    key = b"prop"
    commands: list[Command] = [
        (b"hello", str(protocol)),
        (b"del", key),
        (b"xgroup", b"create", key, b"g", b"0", b"mkstream"),
    ]
    for operation in operations:
        commands += _command(key, operation)
    commands += [
        (b"xrange", key, b"-", b"+"),
        (b"xrange", key, low, high),
        (b"xrange", key, low, high, b"count", str(count)),
        (b"xrevrange", key, high, low, b"count", str(count)),
        (b"xlen", key),
        (b"xinfo", b"stream", key),
        (b"xinfo", b"groups", key),
        (b"xread", b"count", str(count), b"streams", key, low),
        (b"xpending", key, b"g"),
        (b"xreadgroup", b"group", b"g", b"c", b"streams", key, b"0"),
        (b"xautoclaim", key, b"g", b"d", b"0", low, b"count", str(count + 1), b"justid"),
        (b"xinfo", b"stream", key),
    ]
    ours, theirs = (client.pipeline(commands) for client in clients)
    for command, want, got in zip(commands[1:], theirs[1:], ours[1:], strict=True):
        assert got == want, f"{command}: redis {want!r}, netsvc {got!r}"


# -- * ids: properties ---------------------------------------------------------------------


def test_generated_ids(netsvc_port: int) -> None:
    client = RawClient(netsvc_port)
    try:
        client.call("del", "auto")
        before = int(time.time() * 1000)
        replies = client.pipeline([("xadd", "auto", "*", "f", str(i)) for i in range(300)])
        after = int(time.time() * 1000)
        ids = [tuple(map(int, parse(reply)[1].split(b"-"))) for reply in replies]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)  # strictly increasing
        assert all(before <= ms <= after for ms, _ in ids)
        for previous, current in itertools.pairwise(ids):  # seq restarts each ms
            assert current[1] == (previous[1] + 1 if current[0] == previous[0] else 0)
        # a clock behind the last id: the last id's ms, the next sequence
        future = after + 10**9
        client.call("xadd", "auto", f"{future}-5", "f", "v")
        assert client.call("xadd", "auto", "*", "f", "v") == b"$%d\r\n%d-6\r\n" % (
            len(f"{future}-6"),
            future,
        )
        client.call("xadd", "auto", "18446744073709551615-18446744073709551614", "f", "v")
        assert client.call("xadd", "auto", "*", "f", "v") == (
            b"$41\r\n18446744073709551615-18446744073709551615\r\n"
        )
        assert client.call("xadd", "auto", "*", "f", "v") == (
            b"-ERR The stream has exhausted the last possible ID, unable to add more items\r\n"
        )
    finally:
        client.close()


# -- blocking reads, compared byte for byte --------------------------------------------------


def xread_woken(port: int, protocol: int) -> Transcript:
    first, second, writer = Raw(port, protocol), Raw(port, protocol), Raw(port, protocol)
    out = [writer.call("DEL", "s1", "s2")]
    out.append(writer.call("XADD", "s1", "1-1", "old", "x"))
    first.send("XREAD", "BLOCK", "5000", "STREAMS", "s1", "s2", "$", "$")
    out.append(writer.call("PING"))  # the reader blocks before this is answered
    second.send("XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s2", "0")
    out.append(writer.call("PING"))
    out.append(writer.call("XADD", "s2", "5-1", "a", "1"))
    out.append(first.reply())  # both readers get the new entry
    out.append(second.reply())
    first.send("XREAD", "BLOCK", "5000", "STREAMS", "s1", "s2", "$", "$")
    out.append(writer.call("PING"))
    out.append(writer.call("MULTI"))
    out.append(writer.call("XADD", "s1", "2-1", "b", "2"))
    out.append(writer.call("XADD", "s1", "3-1", "c", "3"))
    out.append(writer.call("EXEC"))
    out.append(first.reply())  # after EXEC: both entries
    out.append(first.call("XREAD", "BLOCK", "30", "STREAMS", "s1", "$"))  # times out
    out.append(first.call("XREAD", "BLOCK", "30", "STREAMS", "nokey", "0"))
    out.append(first.call("XREAD", "BLOCK", "0", "STREAMS", "s1", "2-1"))  # at once
    for client in (first, second, writer):
        client.close()
    return out


def xread_key_gone_and_back(port: int, protocol: int) -> Transcript:
    reader, writer = Raw(port, protocol), Raw(port, protocol)
    out = [writer.call("DEL", "k")]
    out.append(writer.call("XADD", "k", "666", "f", "v"))
    reader.send("XREAD", "BLOCK", "0", "STREAMS", "k", "$")
    out.append(writer.call("PING"))
    out.append(writer.call("DEL", "k"))
    out.append(writer.call("SET", "k", "a string"))  # XREAD waits on
    out.append(writer.call("DEL", "k"))
    out.append(writer.call("XADD", "k", "600", "f", "early"))  # not after 666: waits on
    out.append(writer.call("XADD", "k", "667", "f", "v"))
    out.append(reader.reply())
    reader.close()
    writer.close()
    return out


def xread_same_stream_twice_woken(port: int, protocol: int) -> Transcript:
    # blocked on a key named twice, woken: the stream comes once (at once: twice)
    reader, writer = Raw(port, protocol), Raw(port, protocol)
    out = [writer.call("DEL", "k")]
    out.append(writer.call("XADD", "k", "1-1", "f", "v"))
    out.append(reader.call("XREAD", "STREAMS", "k", "k", "0", "0"))
    reader.send("XREAD", "BLOCK", "0", "STREAMS", "k", "k", "$", "$")
    out.append(writer.call("PING"))
    out.append(writer.call("XADD", "k", "2-1", "f", "w"))
    out.append(reader.reply())
    reader.close()
    writer.close()
    return out


def xreadgroup_woken(port: int, protocol: int) -> Transcript:
    first, second, writer = Raw(port, protocol), Raw(port, protocol), Raw(port, protocol)
    out = [writer.call("DEL", "q")]
    out.append(writer.call("XGROUP", "CREATE", "q", "workers", "$", "MKSTREAM"))
    first.send("XREADGROUP", "GROUP", "workers", "alice", "BLOCK", "5000", "STREAMS", "q", ">")
    out.append(writer.call("PING"))
    second.send(
        "XREADGROUP", "GROUP", "workers", "bob", "COUNT", "1", "BLOCK", "5000", "STREAMS", "q", ">"
    )
    out.append(writer.call("PING"))
    out.append(writer.call("XADD", "q", "1-1", "job", "1"))
    out.append(first.reply())  # the first to block takes it; bob waits on
    out.append(writer.call("XADD", "q", "2-1", "job", "2"))
    out.append(second.reply())
    out.append(writer.call("XPENDING", "q", "workers"))
    first.send(
        "XREADGROUP", "GROUP", "workers", "alice", "NOACK", "BLOCK", "0", "STREAMS", "q", ">"
    )
    out.append(writer.call("PING"))
    out.append(writer.call("XADD", "q", "3-1", "job", "3"))
    out.append(first.reply())
    out.append(writer.call("XPENDING", "q", "workers"))
    out.append(
        first.call("XREADGROUP", "GROUP", "workers", "alice", "BLOCK", "30", "STREAMS", "q", ">")
    )
    out.append(
        first.call("XREADGROUP", "GROUP", "workers", "alice", "BLOCK", "0", "STREAMS", "q", "0")
    )
    out.append(first.call("XINFO", "GROUPS", "q"))
    for client in (first, second, writer):
        client.close()
    return out


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize(
    "scenario",
    [xread_woken, xread_key_gone_and_back, xread_same_stream_twice_woken, xreadgroup_woken],
)
def test_blocking_reads_match_redis(
    redis_port: int, netsvc_port: int, scenario: Any, protocol: int
) -> None:
    both(redis_port, netsvc_port, scenario, protocol)


WATCHED = [
    "xadd w 9-1 f v",
    "xdel w 1-1",
    "xdel w 8-8",
    "xtrim w maxlen 1",
    "xtrim w maxlen 10",
    "xsetid w 50-0",
    "xgroup create w g2 0",
    "xgroup createconsumer w g c2",
    "xgroup setid w g 0",
    "xgroup delconsumer w g c",
    "xgroup destroy w g",
    "xreadgroup group g c streams w >",
    "xreadgroup group g c streams w 0",
    "xack w g 1-1",
    "xclaim w g d 0 1-1",
    "xautoclaim w g d 0 0",
    "xread streams w 0",
]


def watch_each_write(port: int, protocol: int) -> Transcript:
    watcher, writer = Raw(port, protocol), Raw(port, protocol)
    out: Transcript = []
    for write in WATCHED:
        writer.call("DEL", "w")
        writer.call("XADD", "w", "1-1", "f", "v")
        writer.call("XADD", "w", "2-1", "f", "v")
        writer.call("XGROUP", "CREATE", "w", "g", "0")
        writer.call("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "w", ">")
        watcher.call("WATCH", "w")
        watcher.call("MULTI")
        watcher.call("PING")
        out.append(writer.call(*split(write)))  # type: ignore[arg-type]
        out.append(watcher.call("EXEC"))  # null if the write counted as a change
    watcher.close()
    writer.close()
    return out


@pytest.mark.parametrize("protocol", [2])
def test_watch_sees_the_same_changes(redis_port: int, netsvc_port: int, protocol: int) -> None:
    both(redis_port, netsvc_port, watch_each_write, protocol)


# -- Redis 7.2 (newer than the redis-server these tests run) ----------------------------------


def _blocked_reader_sees(port: int, protocol: int, *change: str) -> bytes:
    reader, writer = Raw(port, protocol), Raw(port, protocol)
    try:
        writer.call("DEL", "k", "k2")
        writer.call("XGROUP", "CREATE", "k", "g", "$", "MKSTREAM")
        reader.send("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "k", ">")
        writer.call("PING")
        for command in change:
            writer.call(*split(command))  # type: ignore[arg-type]
        return reader.reply()
    finally:
        reader.close()
        writer.close()


NOGROUP_K = b"-NOGROUP No such key 'k' or consumer group 'g' in XREADGROUP with GROUP option\r\n"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # Redis 7.0 answers -UNBLOCKED the stream key no longer exists
        (["del k"], NOGROUP_K),
        (["flushdb", "xadd k 1-1 f v"], NOGROUP_K),  # netsvc: woken by the XADD
        # 7.0: -NOGROUP the consumer group this client was blocked on no longer exists
        (["xgroup destroy k g"], NOGROUP_K),
        # 7.0: -UNBLOCKED the stream key no longer exists
        (["set k x"], b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        (
            ["multi", "del k", "sadd k e", "exec"],
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
        (
            ["xgroup create k2 g $ mkstream", "xadd k2 5-1 f v", "rename k2 k"],
            b"*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$3\r\n5-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
        ),
        (["xadd k2 5-1 f v", "rename k2 k"], NOGROUP_K),
    ],
)
def test_blocked_xreadgroup_when_the_key_or_group_goes(
    netsvc_port: int, change: list[str], expected: bytes
) -> None:
    assert _blocked_reader_sees(netsvc_port, 2, *change) == expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # 7.0 says "Unbalanced XREAD list of streams: ... or '$' ..." for both commands
        (
            "xread streams s t 0",
            b"-ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must "
            b"be specified.\r\n",
        ),
        (
            "xreadgroup group g c streams s s >",
            b"-ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' "
            b"must be specified.\r\n",
        ),
        # 7.0 says "ERR Elements are too large to be stored" (errno left unset)
        (
            "xadd s 5-* f v",
            b"-ERR The ID specified in XADD is equal or smaller than the target stream top "
            b"item\r\n",
        ),
    ],
)
def test_errors_of_72(netsvc_port: int, command: str, expected: bytes) -> None:
    script: list[str | Command] = ["xadd s 5-18446744073709551615 f v", command]
    assert run(netsvc_port, 2, script)[-1] == expected


def test_xinfo_shows_active_times_of_72(netsvc_port: int) -> None:
    script: list[str | Command] = [
        "xgroup create s g $ mkstream",
        "xgroup createconsumer s g idle",
        "xadd s 1-1 f v",
        "xreadgroup group g reader streams s >",
        "xinfo consumers s g",
        "xinfo stream s full",
    ]
    consumers, full = (parse(reply) for reply in run(netsvc_port, 3, script)[-2:])
    idle, reader = (dict(zip(c[1][::2], c[1][1::2], strict=True)) for c in consumers[1])
    assert [key for _, key in idle] == [b"name", b"pending", b"idle", b"inactive"]
    assert idle[("$", b"inactive")] == (":", b"-1")  # never read anything
    assert int(reader[("$", b"inactive")][1]) >= 0
    group = dict(zip(full[1][::2], full[1][1::2], strict=True))[("$", b"groups")][1][0]
    members = dict(zip(group[1][::2], group[1][1::2], strict=True))[("$", b"consumers")][1]
    fields = [key for _, key in members[0][1][::2]]
    assert fields == [b"name", b"seen-time", b"active-time", b"pel-count", b"pending"]


# -- an app through redis-py: a worker pool on a stream ---------------------------------------


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_redis_py_workers(netsvc_port: int, protocol: int) -> None:
    r = redis.Redis(port=netsvc_port, protocol=protocol, socket_timeout=10)
    r.delete("jobs")
    r.xgroup_create("jobs", "workers", id="0", mkstream=True)
    ids = [r.xadd("jobs", {"n": str(n)}, maxlen=1000, approximate=True) for n in range(5)]
    assert r.xlen("jobs") == 5
    got = r.xreadgroup("workers", "w1", {"jobs": ">"}, count=3, block=100)
    entries = got[b"jobs"][0] if isinstance(got, dict) else got[0][1]
    assert [entry_id for entry_id, _ in entries] == ids[:3]
    assert entries[0][1] == {b"n": b"0"}
    assert r.xack("jobs", "workers", ids[0]) == 1
    pending = r.xpending("jobs", "workers")
    assert pending["pending"] == 2 and pending["min"] == ids[1]
    assert pending["consumers"] == [{"name": b"w1", "pending": 2}]
    # w1 dies: w2 takes over what it left pending
    r.xdel("jobs", ids[2])
    cursor, claimed, deleted = r.xautoclaim("jobs", "workers", "w2", min_idle_time=0, start_id="0")
    assert [entry_id for entry_id, _ in claimed] == [ids[1]]
    assert deleted == [ids[2]] and cursor == b"0-0"
    rest = r.xreadgroup("workers", "w2", {"jobs": ">"})
    rest_entries = rest[b"jobs"][0] if isinstance(rest, dict) else rest[0][1]
    assert [entry_id for entry_id, _ in rest_entries] == ids[3:]
    assert r.xack("jobs", "workers", ids[1], *ids[3:]) == 3
    assert r.xpending("jobs", "workers")["pending"] == 0
    assert r.xreadgroup("workers", "w2", {"jobs": ">"}, block=50) in ([], {}, None)
    info = r.xinfo_stream("jobs")
    assert info["length"] == 4 and info["last-generated-id"] == ids[-1]
    assert [group["name"] for group in r.xinfo_groups("jobs")] == [b"workers"]
    assert {c["name"] for c in r.xinfo_consumers("jobs", "workers")} == {b"w1", b"w2"}
    assert [entry_id for entry_id, _ in r.xrevrange("jobs", count=1)] == [ids[-1]]
    assert r.xtrim("jobs", maxlen=2, approximate=False) == 2 and r.xlen("jobs") == 2
    assert r.type("jobs") in (b"stream", "stream")
    r.close()
