# Fuzzing inputs for RESP, HTTP and XMPP, shared by the suite's fuzz tests
# (tests/protocols/*/test_fuzz.py) and the long run (tools/fuzz.py): near-valid
# requests built from a random.Random, then mutated (byte and bit flips,
# truncations, inserted CR/LF, huge or negative lengths, protocol tokens); the
# raw trio client that throws them at a real `netsvc serve` over many
# connections at once (closing gracefully, half-closing or resetting); a
# well-formed request that proves the server still answers; and the errors in
# the server's log, deduplicated.
from __future__ import annotations

import atexit
import base64
import contextlib
import dataclasses
import os
import random
import re
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import trio
import trio.lowlevel
from hypothesis import HealthCheck, settings

from netsvc.testing import ServerError, scan_log_lines
from protocols.http import HttpApp, Request, Response

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

__all__ = [
    "GENERATORS",
    "PROTOCOLS",
    "SERVE_ARGS",
    "FuzzInput",
    "Outcome",
    "asgi_app",
    "distinct_errors",
    "error_key",
    "error_peer",
    "fuzz_server",
    "fuzz_settings",
    "healthy",
    "http_app",
    "http_phases",
    "inputs",
    "line_time",
    "log_problems",
    "make_input",
    "mutate",
    "resp_phases",
    "run_inputs",
    "serve_args",
    "suspects",
    "throw",
    "xmpp_accounts",
    "xmpp_phases",
]

PROTOCOLS = ("resp", "http", "xmpp")
MAX_INPUT = 256 * 1024  # mutations never grow an input past this
# `netsvc serve` arguments for a fuzzed server: a short grace period, so that a
# client left blocked (BLPOP 0) cannot hold the shutdown for long. XMPP has the
# echo bot, reads at full speed, lets clients register accounts (no limit per
# address) and subscribe without limit; serve_args() adds a fresh database
# whose accounts are the fuzzed users' (so stanzas after SASL are reached).
_COMMON_ARGS = ["--port", "0", "--graceful-timeout", "2", "--max-connections", "2000"]
SERVE_ARGS: dict[str, list[str]] = {
    "resp": ["--protocol", "resp", *_COMMON_ARGS],
    "http": ["--protocol", "http", *_COMMON_ARGS],
    "xmpp": [
        *("--protocol", "xmpp", *_COMMON_ARGS, "--app", "examples.echobot:app"),
        *("--xmpp-max-bytes-per-second", "0", "--xmpp-allow-registration", "true"),
        *("--xmpp-registrations-per-hour", "0", "--xmpp-subscriptions-per-minute", "0"),
    ],
}
XMPP_PASSWORD = "secret"  # every fuzzed user's, and the health check's


def serve_args(protocol: str, app: str | None = None) -> list[str]:
    """SERVE_ARGS[protocol], with `app` (MODULE:ATTRIBUTE) as the --app if
    given; for XMPP, with accounts (xmpp_accounts())."""
    args = list(SERVE_ARGS[protocol])
    if app is not None:
        if "--app" in args:
            del args[args.index("--app") : args.index("--app") + 2]
        args += ["--app", app]
    if protocol == "xmpp":
        args += xmpp_accounts()
    return args


def xmpp_accounts() -> list[str]:
    """`--xmpp-database` and `--xmpp-users-file` options: a new database (its
    folder removed at exit) into which the server imports an account for
    each usable name the XMPP inputs log in as, and for the health check, all
    with XMPP_PASSWORD; hashed with few SCRAM iterations, so that thousands
    of logins do not keep the server busy hashing."""
    from protocols.xmpp import Accounts
    from protocols.xmpp._accounts import AccountError, check_name, hash_password

    folder = tempfile.mkdtemp(prefix="netsvc-fuzz-xmpp-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    accounts = Accounts()
    for name in sorted({*_X_USERS, "healthcheck"}):
        with contextlib.suppress(AccountError):
            accounts.passwords[check_name(name)] = hash_password(XMPP_PASSWORD, iterations=16)
    accounts.path = Path(folder, "users")
    accounts.save()
    return [
        "--xmpp-database",
        str(Path(folder, "xmpp.db")),
        "--xmpp-users-file",
        str(accounts.path),
    ]


# -- mutations ------------------------------------------------------------------------------

_GENERIC_TOKENS = [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\x00", b"\xff", b" ", b"\t", b"\x7f"]
_NUMBER = re.compile(rb"-?[0-9]+")


def mutate(
    rng: random.Random,
    data: bytes,
    tokens: Sequence[bytes] = (),
    numbers: Sequence[bytes] = (),
    *,
    keep: float = 0.25,
) -> bytes:
    """`data` with a few random mutations; left whole with probability `keep`.
    `tokens` are protocol bytes worth inserting, `numbers` replace a number."""
    if not data or rng.random() < keep:
        return data
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5))):
        n = len(out)
        i = rng.randrange(n + 1)
        j = min(n, i + rng.randrange(1, 17))
        op = rng.randrange(11)
        if op == 0 and n:  # a byte changed
            out[min(i, n - 1)] = rng.randrange(256)
        elif op == 1 and n:  # a bit flipped
            out[min(i, n - 1)] ^= 1 << rng.randrange(8)
        elif op == 2 and rng.random() < 0.5:  # truncated
            del out[i:]
        elif op == 3:  # a slice deleted
            del out[i:j]
        elif op == 4:  # a slice copied elsewhere
            k = rng.randrange(n + 1)
            out[k:k] = out[i:j]
        elif op in (5, 6):  # a protocol token (or a control byte) inserted
            pool = tokens if tokens and op == 5 else _GENERIC_TOKENS
            out[i:i] = rng.choice(pool)
        elif op == 7 and numbers:  # a number (a length, a count) made huge, negative, odd
            found = list(_NUMBER.finditer(out))
            if found:
                m = rng.choice(found)
                out[m.start() : m.end()] = rng.choice(numbers)
        elif op == 8:  # CR, LF or CRLF inserted
            out[i:i] = rng.choice((b"\r", b"\n", b"\r\n"))
        elif op == 9 and i < j:  # a slice repeated, up to a big input
            out[i:j] = bytes(out[i:j]) * rng.choice((2, 3, 10, 100, 1000))
        elif op == 10 and i < j:  # a slice replaced by random bytes
            out[i:j] = rng.randbytes(j - i)
        if len(out) > MAX_INPUT:
            del out[MAX_INPUT:]
    return bytes(out)


def _either(rng: random.Random, common: Sequence[str], odd: Sequence[str], p: float) -> str:
    return rng.choice(odd) if rng.random() < p else rng.choice(common)


def _pick(rng: random.Random, pool: Sequence[bytes], rare: float = 0.0) -> bytes:
    if rare and rng.random() < rare:
        return rng.randbytes(rng.randrange(1, 12))
    return rng.choice(pool)


# -- RESP -----------------------------------------------------------------------------------

_R_KEYS = [b"k", b"key", b"list", b"hash", b"set", b"str", b"n", b"{t}x", b"", b"\x00\xff"]
_R_KEYS += [b"a" * 300, "ключ".encode(), b"k:1", b"k:2"]
_R_INTS = [b"0", b"1", b"-1", b"2", b"10", b"100", b"-100", b"1000000", b"2147483647"]
_R_INTS += [b"2147483648", b"-2147483649", b"4294967296", b"9223372036854775807"]
_R_INTS += [b"-9223372036854775808", b"9223372036854775808", b"-9223372036854775809"]
_R_INTS += [b"99999999999999999999999", b"01", b"+1", b"-0", b" 1", b"1 ", b"1e3", b"0x10"]
_R_INTS += [b"3.5", b"", b"abc", b"\x00", b"inf", b"nan"]
_R_FLOATS = [b"0", b"1", b"1.5", b"-1.5", b"inf", b"-inf", b"+inf", b"nan", b"-nan", b"1e308"]
_R_FLOATS += [b"1e309", b"-1e309", b"1.7976931348623157e308", b"0x1p3", b"1_000", b"1e-320"]
_R_FLOATS += [b".5", b"5.", b" 1", b"", b"Infinity", b"1e", b"--1", b"1.5 ", b"5e-324"]
_R_PATTERNS = [b"*", b"k*", b"[a-z]*", b"[", b"[^", b"\\", b"[a-", b"?", b"**", b"[]]"]
_R_PATTERNS += [b"[z-a]", b"\\[", b"h[^e]llo", b"*\\", b"[\\", b"[a-\\]", b"*" * 40, b""]
_R_VALUES = [b"v", b"", b"value", b"\r\n", b"\x00", b"\xff\xfe", "é".encode(), b"x" * 1000]
_R_VALUES += [b" ", b'"', b"'", b"a b", b"*1\r\n$1\r\na\r\n", b"-ERR", b"+OK", b"1", b"-1"]
_R_OPTIONS = [b"NX", b"XX", b"GT", b"LT", b"GET", b"EX", b"PX", b"EXAT", b"PXAT", b"KEEPTTL"]
_R_OPTIONS += [b"LEFT", b"RIGHT", b"BEFORE", b"AFTER", b"ASYNC", b"SYNC", b"ON", b"OFF"]
_R_OPTIONS += [b"SKIP", b"TYPE", b"MATCH", b"COUNT", b"RANK", b"MAXLEN", b"DB", b"REPLACE"]
_R_OPTIONS += [b"WITHSCORES", b"ID", b"ADDR", b"USER", b"SKIPME", b"yes", b"no", b"PERSIST"]
_R_OPTIONS += [b"normal", b"pubsub", b"master", b"x"]
# never requirepass: it would lock every later client out
_R_CONFIG = [b"timeout", b"maxmemory", b"save", b"appendonly", b"port", b"databases", b"*"]
_R_CONFIG += [b"maxclients", b"bind", b"proto-max-bulk-len", b"nosuch", b"TIMEOUT"]
_R_TIMEOUTS = [b"0.01", b"0.05", b"0.1", b"0", b"-1", b"nan", b"inf", b"1e20", b"abc"]
_R_TIMEOUTS += [b"0.0001", b"-0", b"1e-9", b"", b"9223372036854775807", b"0x1"]
_R_DBS = [b"0", b"1", b"15", b"16", b"-1", b"99999999999", b"x"]
_R_SUBCOMMANDS = [b"HELP", b"help", b"x", b"", b"GET", b"LIST", b"INFO", b"COUNT"]

# each argument: a literal, or a kind: k key, v value, i integer, f float,
# p glob pattern, o option, c config parameter, t blocking timeout, d database,
# s subcommand
_R_COMMANDS: list[tuple[str, ...]] = [
    ("PING",),
    ("PING", "v"),
    ("ECHO", "v"),
    ("SET", "k", "v"),
    ("SET", "k", "v", "EX", "i"),
    ("SET", "k", "v", "PX", "i"),
    ("SET", "k", "v", "EXAT", "i"),
    ("SET", "k", "v", "PXAT", "i"),
    ("SET", "k", "v", "o"),
    ("SET", "k", "v", "o", "o"),
    ("SET", "k", "v", "o", "i", "o"),
    ("GET", "k"),
    ("GETEX", "k", "o"),
    ("GETEX", "k", "o", "i"),
    ("GETDEL", "k"),
    ("GETSET", "k", "v"),
    ("APPEND", "k", "v"),
    ("STRLEN", "k"),
    ("GETRANGE", "k", "i", "i"),
    ("SETRANGE", "k", "i", "v"),
    ("INCR", "k"),
    ("DECR", "k"),
    ("INCRBY", "k", "i"),
    ("DECRBY", "k", "i"),
    ("INCRBYFLOAT", "k", "f"),
    ("MGET", "k", "k"),
    ("MSET", "k", "v", "k", "v"),
    ("MSETNX", "k", "v"),
    ("SETNX", "k", "v"),
    ("SETEX", "k", "i", "v"),
    ("PSETEX", "k", "i", "v"),
    ("DEL", "k", "k"),
    ("UNLINK", "k"),
    ("EXISTS", "k", "k"),
    ("TOUCH", "k"),
    ("TYPE", "k"),
    ("KEYS", "p"),
    ("SCAN", "i"),
    ("SCAN", "i", "MATCH", "p", "COUNT", "i"),
    ("SCAN", "i", "TYPE", "o"),
    ("SCAN", "i", "o", "i"),
    ("RENAME", "k", "k"),
    ("RENAMENX", "k", "k"),
    ("RANDOMKEY",),
    ("COPY", "k", "k"),
    ("COPY", "k", "k", "DB", "d", "REPLACE"),
    ("OBJECT", "ENCODING", "k"),
    ("OBJECT", "s", "k"),
    ("EXPIRE", "k", "i"),
    ("EXPIRE", "k", "i", "o"),
    ("PEXPIRE", "k", "i", "o"),
    ("EXPIREAT", "k", "i"),
    ("PEXPIREAT", "k", "i"),
    ("TTL", "k"),
    ("PTTL", "k"),
    ("EXPIRETIME", "k"),
    ("PEXPIRETIME", "k"),
    ("PERSIST", "k"),
    ("LPUSH", "k", "v", "v"),
    ("RPUSH", "k", "v"),
    ("LPUSHX", "k", "v"),
    ("RPUSHX", "k", "v"),
    ("LPOP", "k"),
    ("LPOP", "k", "i"),
    ("RPOP", "k", "i"),
    ("LLEN", "k"),
    ("LRANGE", "k", "i", "i"),
    ("LINDEX", "k", "i"),
    ("LSET", "k", "i", "v"),
    ("LREM", "k", "i", "v"),
    ("LTRIM", "k", "i", "i"),
    ("LINSERT", "k", "o", "v", "v"),
    ("LPOS", "k", "v"),
    ("LPOS", "k", "v", "RANK", "i", "COUNT", "i", "MAXLEN", "i"),
    ("LPOS", "k", "v", "o", "i"),
    ("LMOVE", "k", "k", "o", "o"),
    ("RPOPLPUSH", "k", "k"),
    ("BLPOP", "k", "t"),
    ("BRPOP", "k", "k", "t"),
    ("BLMOVE", "k", "k", "o", "o", "t"),
    ("HSET", "k", "v", "v"),
    ("HSET", "k", "v", "v", "v", "v"),
    ("HSETNX", "k", "v", "v"),
    ("HMSET", "k", "v", "v"),
    ("HGET", "k", "v"),
    ("HMGET", "k", "v", "v"),
    ("HDEL", "k", "v"),
    ("HEXISTS", "k", "v"),
    ("HGETALL", "k"),
    ("HKEYS", "k"),
    ("HVALS", "k"),
    ("HLEN", "k"),
    ("HSTRLEN", "k", "v"),
    ("HINCRBY", "k", "v", "i"),
    ("HINCRBYFLOAT", "k", "v", "f"),
    ("HSCAN", "k", "i"),
    ("HSCAN", "k", "i", "MATCH", "p", "COUNT", "i"),
    ("SADD", "k", "v", "v"),
    ("SREM", "k", "v"),
    ("SMEMBERS", "k"),
    ("SISMEMBER", "k", "v"),
    ("SMISMEMBER", "k", "v", "v"),
    ("SCARD", "k"),
    ("SPOP", "k"),
    ("SPOP", "k", "i"),
    ("SRANDMEMBER", "k"),
    ("SRANDMEMBER", "k", "i"),
    ("SINTER", "k", "k"),
    ("SUNION", "k", "k"),
    ("SDIFF", "k", "k"),
    ("SINTERSTORE", "k", "k", "k"),
    ("SUNIONSTORE", "k", "k"),
    ("SDIFFSTORE", "k", "k", "k"),
    ("SMOVE", "k", "k", "v"),
    ("SSCAN", "k", "i", "MATCH", "p"),
    ("MULTI",),
    ("EXEC",),
    ("DISCARD",),
    ("WATCH", "k"),
    ("UNWATCH",),
    ("SUBSCRIBE", "v"),
    ("PSUBSCRIBE", "p"),
    ("UNSUBSCRIBE",),
    ("UNSUBSCRIBE", "v"),
    ("PUNSUBSCRIBE", "p"),
    ("PUBLISH", "v", "v"),
    ("PUBSUB", "CHANNELS", "p"),
    ("PUBSUB", "NUMSUB", "v"),
    ("PUBSUB", "NUMPAT"),
    ("PUBSUB", "s"),
    ("DBSIZE",),
    ("FLUSHDB",),
    ("FLUSHDB", "o"),
    ("FLUSHALL", "o"),
    ("SWAPDB", "d", "d"),
    ("TIME",),
    ("CONFIG", "GET", "p"),
    ("CONFIG", "GET", "c"),
    ("CONFIG", "SET", "c", "v"),
    ("CONFIG", "SET", "c", "i"),
    ("CONFIG", "RESETSTAT"),
    ("CONFIG", "s"),
    ("INFO",),
    ("INFO", "v"),
    ("INFO", "o", "v"),
    ("COMMAND",),
    ("COMMAND", "COUNT"),
    ("COMMAND", "LIST"),
    ("COMMAND", "INFO", "v"),
    ("COMMAND", "DOCS", "v"),
    ("COMMAND", "GETKEYS", "v", "v", "v"),
    ("COMMAND", "GETKEYS", "SET", "k", "v"),
    ("COMMAND", "GETKEYS", "MSET", "k", "v", "k"),
    ("COMMAND", "s"),
    ("AUTH", "v"),
    ("AUTH", "v", "v"),
    ("HELLO",),
    ("HELLO", "i"),
    ("HELLO", "3", "SETNAME", "v"),
    ("HELLO", "2", "AUTH", "v", "v"),
    ("HELLO", "3", "o", "v"),
    ("SELECT", "d"),
    ("CLIENT", "ID"),
    ("CLIENT", "GETNAME"),
    ("CLIENT", "SETNAME", "v"),
    ("CLIENT", "SETINFO", "LIB-NAME", "v"),
    ("CLIENT", "SETINFO", "LIB-VER", "v"),
    ("CLIENT", "SETINFO", "v", "v"),
    ("CLIENT", "INFO"),
    ("CLIENT", "LIST"),
    ("CLIENT", "LIST", "TYPE", "o"),
    ("CLIENT", "LIST", "ID", "i", "i"),
    ("CLIENT", "KILL", "ID", "i"),
    ("CLIENT", "KILL", "o", "v"),
    ("CLIENT", "KILL", "v"),
    ("CLIENT", "REPLY", "o"),
    ("CLIENT", "HELP"),
    ("CLIENT", "s"),
    ("QUIT",),
    ("RESET",),
    ("NOSUCHCOMMAND", "v"),
]
_R_KINDS: dict[str, Callable[[random.Random], bytes]] = {
    "k": lambda rng: _pick(rng, _R_KEYS, 0.05),
    "v": lambda rng: _pick(rng, _R_VALUES + _R_INTS[:8], 0.2),
    "i": lambda rng: _pick(rng, _R_INTS, 0.02) if rng.random() < 0.7 else b"%d" % rng.randrange(20),
    "f": lambda rng: _pick(rng, _R_FLOATS, 0.02),
    "p": lambda rng: _pick(rng, _R_PATTERNS, 0.1),
    "o": lambda rng: (
        _pick(rng, _R_OPTIONS).swapcase() if rng.random() < 0.2 else rng.choice(_R_OPTIONS)
    ),
    "c": lambda rng: rng.choice(_R_CONFIG),
    "t": lambda rng: rng.choice(_R_TIMEOUTS[:3]) if rng.random() < 0.6 else rng.choice(_R_TIMEOUTS),
    "d": lambda rng: rng.choice(_R_DBS),
    "s": lambda rng: _pick(rng, _R_SUBCOMMANDS, 0.1),
}
RESP_TOKENS = [b"*", b"$", b"+", b"-", b":", b"~", b"%", b"|", b">", b"=", b"(", b"#", b",", b"_"]
RESP_TOKENS += [b"!", b"*-1\r\n", b"$-1\r\n", b"*0\r\n", b"*2147483647\r\n", b"$536870913\r\n"]
RESP_TOKENS += [b"*1\r\n", b"$0\r\n\r\n", b'"', b"'", b"\\x", b'"\\x4', b"PING\r\n", b">1\r\n"]
RESP_TOKENS += [b"*1000\r\n", b"%1\r\n$1\r\na\r\n"]
RESP_NUMBERS = [b"-1", b"-2", b"0", b"00", b"01", b"2147483647", b"2147483648", b"4294967296"]
RESP_NUMBERS += [b"9223372036854775807", b"9223372036854775808", b"99999999999999999999999"]
RESP_NUMBERS += [b"536870912", b"536870913", b"1e3", b"", b"+3", b" 3", b"-9223372036854775808"]
RESP_NUMBERS += [b"100000", b"1", b"2", b"3"]


def resp_command(rng: random.Random) -> list[bytes]:
    """A command a Redis client could send: right name, right shape, edgy arguments."""
    name, *kinds = rng.choice(_R_COMMANDS)
    argv = [name.encode()]
    if rng.random() < 0.2:
        argv[0] = bytes(c ^ 32 if rng.random() < 0.5 and chr(c).isalpha() else c for c in argv[0])
    for kind in kinds:
        argv.append(_R_KINDS[kind](rng) if kind in _R_KINDS else kind.encode())
    if rng.random() < 0.1 and len(argv) > 1:  # the wrong number of arguments
        del argv[-1]
    elif rng.random() < 0.1:
        argv.append(_R_KINDS[rng.choice("kvi")](rng))
    return argv


def _resp_multibulk(argv: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in argv)


_INLINE_SAFE = re.compile(rb"[!#-&(-\[\]-~\x80-\xff]+")


def _resp_inline(rng: random.Random, argv: list[bytes]) -> bytes:
    words = []
    for arg in argv:
        if _INLINE_SAFE.fullmatch(arg) and rng.random() < 0.9:
            words.append(arg)
        elif rng.random() < 0.8:
            quoted = "".join(
                chr(c) if 32 <= c < 127 and c not in b'"\\' else f"\\x{c:02x}" for c in arg
            )
            words.append(b'"' + quoted.encode() + b'"')
        else:
            words.append(b"'" + arg.replace(b"'", b"\\'") + b"'")
    sep = rng.choice((b" ", b" ", b"  ", b"\t"))
    return sep.join(words) + rng.choice((b"\r\n", b"\r\n", b"\n"))


def resp_phases(rng: random.Random) -> list[bytes]:
    """A client's bytes, in phases (a pause between them): pipelined commands,
    multibulk or inline, some after HELLO 3, MULTI, CLIENT REPLY OFF or SUBSCRIBE,
    then mutated."""
    commands = [resp_command(rng) for _ in range(rng.choice((1, 1, 1, 2, 3, 5, 8)))]
    prefix = rng.random()
    if prefix < 0.15:
        commands.insert(0, [b"HELLO", b"3"])
    elif prefix < 0.25:
        commands.insert(0, [b"MULTI"])
    elif prefix < 0.28:
        commands.insert(0, [b"CLIENT", b"REPLY", rng.choice((b"OFF", b"SKIP"))])
    elif prefix < 0.33:
        commands.insert(0, [b"SUBSCRIBE", b"ch"])
    inline = rng.random() < 0.2
    encoded = [
        _resp_inline(rng, c) if inline or rng.random() < 0.05 else _resp_multibulk(c)
        for c in commands
    ]
    if len(encoded) > 1 and rng.random() < 0.15:  # the client waits in the middle
        cut = rng.randrange(1, len(encoded))
        phases = [b"".join(encoded[:cut]), b"".join(encoded[cut:])]
    else:
        phases = [b"".join(encoded)]
    return [mutate(rng, phase, RESP_TOKENS, RESP_NUMBERS) for phase in phases]


# -- HTTP -----------------------------------------------------------------------------------

# each pool: what clients commonly send, then the odd (mostly invalid) ones
_H_METHODS = ["GET", "GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]
_H_METHODS_ODD = ["CONNECT", "TRACE", "get", "PRI", "X" * 300, "G\x00T", "", "GET\t", "M-SEARCH"]
_H_TARGETS = ["/", "/", "/healthz", "/healthz", "/healthz", "/?a=b", "/nope", "/healthz/"]
_H_TARGETS += ["/%00", "/%zz", "//", "/HEALTHZ", "/;x", "/healthz?" + "a=1&" * 200, "/é"]
# the routes of http_app below (404 from the default app)
_H_TARGETS += ["/echo", "/echo", "/count", "/ignore", "/stream", "/sync-stream", "/headers"]
_H_TARGETS += ["/query?a=1&b=%zz&c&=&a=%C3%A9", "/path/a%2fb/../c", "/json", "/empty", "/query?"]
_H_TARGETS_ODD = ["*", "", "http://localhost/", "http://[::1]:80/healthz", "/a b", "/\x7f"]
_H_TARGETS_ODD += ["/" + "x" * 2000, "/healthz#f", "/../../etc/passwd", "localhost:443", "/%"]
_H_TARGETS_ODD += ["/\\", "/?\xff", "/" + "y" * 20000]
_H_VERSIONS = ["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]
_H_VERSIONS_ODD = ["HTTP/0.9", "HTTP/2.0", "HTTP/1.2", "http/1.1", "HTTP/1.10", "HTTP/1", ""]
_H_VERSIONS_ODD += ["HTTP/1.1 x", "HTTP/3", "HTTP/01.1"]
_H_HOSTS = ["localhost", "localhost", "127.0.0.1:8080", "[::1]", "example.com"]
_H_HOSTS_ODD = ["", "a b", "x" * 300, "é", "h\x00"]
_H_LENGTHS = ["-1", "+5", "1e3", "0x10", "99999999999999999999", "5, 5", "5 5", " 5", "5 "]
_H_LENGTHS += [
    "",
    "abc",
    "17000000",
    "18446744073709551616",
    "00005",
    "\u0665",
]  # an Arabic-Indic five
_H_CODINGS = ["chunked"] * 4 + ["gzip, chunked", "chunked, gzip", "identity", "CHUNKED"]
_H_CODINGS += [" chunked", "chunked ", "chunked\x00", "chunked, chunked", "x", ""]
_H_EXTRA = [
    ("User-Agent", "fuzz/1.0"),
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate"),
    ("Cookie", "a=b; c=d"),
    ("Content-Type", "application/json"),
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Connection", "close"),
    ("Connection", "keep-alive"),
    ("Connection", "Upgrade"),
    ("Connection", "keep-alive, close"),
    ("Upgrade", "h2c"),
    ("Upgrade", "websocket"),
    ("Expect", "100-continue"),
    ("X-Empty", ""),
    ("X-Utf8", "é"),
    ("X-Latin1", "\xe9"),
    ("Trailer", "X-T"),
    ("TE", "trailers"),
    ("Range", "bytes=0-1"),
    ("If-None-Match", "*"),
]
_H_EXTRA_ODD = [
    ("Expect", "200-ok"),
    ("X-Long", "x" * 5000),
    ("X-Huge", "x" * 20000),
    ("X-Fold", "a\r\n b"),
    ("X-Tab", "a\tb"),
    ("X Space", "x"),
    ("", "empty name"),
    (":colon", "x"),
    ("X-Ctl", "a\x01b"),
]
HTTP_TOKENS = [b"\r\n", b"\n", b" ", b":", b"\t", b"HTTP/1.1", b"GET / HTTP/1.1\r\n", b"\r\n\r\n"]
HTTP_TOKENS += [b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"]
HTTP_TOKENS += [b"Host: x\r\n", b"\r\n ", b"ffffffffffffffff\r\n", b";ext=1", b"%", b"?"]
HTTP_TOKENS += [b"Connection: close\r\n", b"Expect: 100-continue\r\n", b"\x80", b"/"]
HTTP_NUMBERS = [b"-1", b"0", b"00", b"1", b"5", b"65536", b"16777217", b"99999999999999999999"]
HTTP_NUMBERS += [b"ffffffffffffffffff", b"", b"+1", b"1e3", b"18446744073709551616", b"0x1"]


def _chunked(rng: random.Random, body: bytes) -> bytes:
    out = []
    pos = 0
    while pos < len(body):
        size = rng.randrange(1, 9)
        piece = body[pos : pos + size]
        ext = rng.choice((b"", b"", b";a=b", b";x", b" ;y"))
        out.append(b"%x%b\r\n%b\r\n" % (len(piece), ext, piece))
        pos += size
    out.append(b"0\r\n")
    if rng.random() < 0.2:
        out.append(rng.choice((b"X-T: 1\r\n", b"Content-Length: 3\r\n", b"bad trailer\r\n")))
    out.append(b"\r\n")
    return b"".join(out)


def http_request(rng: random.Random) -> bytes:
    """One request, near-valid: odd request lines, headers, bodies and framings."""
    method = _either(rng, _H_METHODS, _H_METHODS_ODD, 0.05)
    target = _either(rng, _H_TARGETS, _H_TARGETS_ODD, 0.08)
    version = _either(rng, _H_VERSIONS, _H_VERSIONS_ODD, 0.05)
    headers: list[tuple[str, str]] = []
    if rng.random() < 0.95:
        headers.append(("Host", _either(rng, _H_HOSTS, _H_HOSTS_ODD, 0.05)))
    headers += rng.sample(_H_EXTRA, rng.choice((0, 0, 1, 2, 3)))
    if rng.random() < 0.05:
        headers.append(rng.choice(_H_EXTRA_ODD))
    body = b""
    framing = rng.random()
    if method in ("POST", "PUT", "PATCH") or framing < 0.2:
        body = rng.choice((b"hello", b"", b"{}", b'{"a": 1}', b"x" * 300, rng.randbytes(40)))
        if rng.random() < 0.03:  # past the drain limit (64 KiB) or not
            body = b"y" * rng.choice((65535, 65537, 200_000))
        framing = rng.random()
        if framing < 0.45:
            length = str(len(body)) if rng.random() < 0.9 else rng.choice(_H_LENGTHS)
            headers.append(("Content-Length", length))
            if rng.random() < 0.1:  # a second one, equal or not
                headers.append(("Content-Length", rng.choice((length, "0", "7"))))
            if rng.random() < 0.1:
                body = body[: rng.randrange(len(body) + 1)]  # shorter than announced
        elif framing < 0.85:
            coding = "chunked" if rng.random() < 0.85 else rng.choice(_H_CODINGS)
            headers.append(("Transfer-Encoding", coding))
            if rng.random() < 0.1:  # both framings
                headers.append(("Content-Length", str(len(body))))
            body = _chunked(rng, body) if rng.random() < 0.85 else body
    rng.shuffle(headers)
    eol = b"\r\n" if rng.random() < 0.95 else b"\n"
    line = f"{method} {target} {version}".encode("utf-8", "surrogateescape")
    if rng.random() < 0.05:
        line = f"{method}  {target}".encode()  # two spaces, no version
    head = [line]
    for name, value in headers:
        head.append(f"{name}:{' ' if rng.random() < 0.95 else ''}{value}".encode())
    return eol.join(head) + eol + eol + body


def http_phases(rng: random.Random) -> list[bytes]:
    """Requests a client sends, pipelined or with a pause, then mutated."""
    requests = [http_request(rng) for _ in range(rng.choice((1, 1, 1, 1, 2, 3)))]
    data = b"".join(requests)
    data = mutate(rng, data, HTTP_TOKENS, HTTP_NUMBERS, keep=0.4)
    if rng.random() < 0.15 and b"\r\n\r\n" in data:  # the head, a pause, the body
        cut = data.index(b"\r\n\r\n") + 4
        return [data[:cut], data[cut:]]
    return [data]


# -- XMPP -----------------------------------------------------------------------------------

_X_STREAM = "http://etherx.jabber.org/streams"
_X_USERS = ["alice", "bob", "carol", "Alice", "echo", "", "a@b", "a/b", "a b", "ü", "x" * 300]
_X_USERS += ["localhost", "a'b", "a&b", "\u00a0", "ALICE"]
_X_JIDS = ["echo@localhost", "alice@localhost", "bob@localhost/r", "bob@localhost", "localhost"]
_X_JIDS += ["alice@localhost/fuzz", "", "@localhost", "a@", "a@b@c", "x/", "/r", "a@localhost/"]
_X_JIDS += ["ünï@localhost", "a@other.example", "a b@localhost", "A@LOCALHOST/R", "a@localhost."]
_X_JIDS += ["a" * 4000 + "@localhost", "echo@localhost/x", "carol@localhost/" + "r" * 50, "."]
_X_JIDS += ["echo@LOCALHOST", "bob@localhost/r/s", "a@@localhost", "\t@localhost"]
_X_TYPES = ["chat", "normal", "groupchat", "headline", "error", "", "x", "CHAT"]
_X_TEXT = ["hello", "", "a &amp; b", "&lt;tag&gt;", "&#10;", "&#x1F600;", "é", "x" * 3000]
_X_TEXT += ["&#65;", "line\nbreak", "  ", "\t", "<![CDATA[<x>]]>", "&quot;&apos;"]
_X_NS = ["jabber:iq:roster", "urn:xmpp:ping", "http://jabber.org/protocol/disco#info"]
_X_NS += ["http://jabber.org/protocol/disco#items", "urn:ietf:params:xml:ns:xmpp-bind"]
_X_NS += ["urn:ietf:params:xml:ns:xmpp-session", "jabber:iq:version", "", "x", "jabber:client"]
_X_NS += ["urn:ietf:params:xml:ns:xmpp-sasl", "vcard-temp", "urn:xmpp:time"]
XMPP_TOKENS = [b"<", b">", b"/>", b"</", b"'", b'"', b"&", b"&amp;", b"&#0;", b"&#x10FFFF;"]
XMPP_TOKENS += [b"&lt;", b"&unknown;", b"<!--x-->", b"<?pi x?>", b"<![CDATA[x]]>", b"\xed\xa0\x80"]
XMPP_TOKENS += [b"<!DOCTYPE x>", b"\xc3", b"\xef\xbf\xbe", b"xmlns=''", b"xmlns:x='y'", b" a='1'"]
XMPP_TOKENS += [b"</stream:stream>", b"<stream:stream>", b"<a>", b"</a>", b"x:", b"=", b"\xe9"]
XMPP_TOKENS += [b"<message>", b"</message>", b"<?xml version='1.0'?>", b" xml:lang='en'", b"]]>"]
XMPP_NUMBERS = [b"-1", b"0", b"128", b"-129", b"99999999999999999999", b"1e3", b"", b"+1"]


def _attr(name: str, value: str, rng: random.Random) -> str:
    quote = "'" if rng.random() < 0.8 else '"'
    return (
        f" {name}={quote}{value.replace(quote, '&apos;' if quote == chr(39) else '&quot;')}{quote}"
    )


def xmpp_header(rng: random.Random) -> bytes:
    """The client's <stream:stream>, mostly as real clients write it."""
    to = "localhost" if rng.random() < 0.9 else rng.choice(("LOCALHOST", "other", "", "localhost."))
    attrs = [("to", to)]
    attrs += [("xmlns", "jabber:client"), ("xmlns:stream", _X_STREAM), ("version", "1.0")]
    if rng.random() < 0.3:
        attrs.append(("xml:lang", rng.choice(("en", "", "x" * 100))))
    if rng.random() < 0.2:
        attrs.append(("from", rng.choice(_X_JIDS)))
    if rng.random() < 0.04:  # a wrong namespace or version
        i = rng.randrange(len(attrs))
        attrs[i] = (attrs[i][0], rng.choice(("jabber:server", "", "x", "2.0")))
    if rng.random() < 0.04:
        del attrs[rng.randrange(len(attrs))]
    rng.shuffle(attrs)
    name = "stream:stream" if rng.random() < 0.98 else rng.choice(("stream", "s:stream", "x"))
    decl = rng.choice(("", "", "<?xml version='1.0'?>", "<?xml version='1.0' encoding='UTF-8'?>"))
    if rng.random() < 0.03:
        decl = rng.choice(("<?xml version='1.0' encoding='latin-1'?>", "<?xml version='2.0'?>"))
    text = decl + f"<{name}" + "".join(_attr(n, v, rng) for n, v in attrs) + ">"
    return text.encode() + rng.choice((b"", b"\n", b" "))


def xmpp_auth(rng: random.Random, user: str | None = None) -> tuple[bytes, str]:
    """SASL PLAIN <auth/> (mostly well-formed) and the user it logs in: `user`,
    or one of the fuzzed users."""
    if user is None:
        user = rng.choice(_X_USERS[:3]) if rng.random() < 0.7 else rng.choice(_X_USERS)
    raw = f"\0{user}\0{XMPP_PASSWORD}".encode()
    roll = rng.random()
    if roll < 0.05:
        raw = f"{user}\0secret".encode()  # one NUL
    elif roll < 0.08:
        raw = f"authz\0{user}\0pw\0more".encode()
    elif roll < 0.1:
        raw = b"\0\xff\xfe\0pw"  # not UTF-8
    token = base64.b64encode(raw).decode()
    if rng.random() < 0.05:
        token = rng.choice(("=", "!!!", "", "AGFsaWNl AHNlY3JldA==", token[:-1], "=" * 10))
    mechanism = "PLAIN" if rng.random() < 0.97 else rng.choice(("SCRAM-SHA-1", "", "plain"))
    ns = "urn:ietf:params:xml:ns:xmpp-sasl" if rng.random() < 0.99 else "jabber:client"
    return f"<auth xmlns='{ns}' mechanism='{mechanism}'>{token}</auth>".encode(), user


def _element(rng: random.Random, depth: int = 0) -> str:
    """Some payload: nested elements in assorted namespaces, attributes, text."""
    name = rng.choice(("x", "query", "item", "body", "data", "a:b", "ping", "bind", "c"))
    attrs = ""
    if rng.random() < 0.4:
        attrs += _attr("xmlns", rng.choice(_X_NS), rng)
    for _ in range(rng.choice((0, 0, 1, 2, 70 if rng.random() < 0.02 else 3))):
        attrs += _attr(rng.choice(("id", "jid", "name", "node", "var", "k")), "v", rng)
    if name.startswith("a:") and rng.random() < 0.8:
        attrs += _attr("xmlns:a", "urn:a", rng)
    inner = ""
    if depth < rng.choice((1, 2, 3, 40 if rng.random() < 0.02 else 2)):
        inner = "".join(_element(rng, depth + 1) for _ in range(rng.choice((0, 1, 2))))
    if rng.random() < 0.4:
        inner = rng.choice(_X_TEXT) + inner
    return f"<{name}{attrs}/>" if not inner else f"<{name}{attrs}>{inner}</{name}>"


_X_NAMES = ["Bob", "", "a &amp; b", "é", "x" * 300, "&lt;b&gt;", " ", "&#10;"]
_X_GROUPS = ["friends", "", "Friends", "x" * 300, "é", "a &amp; b", "  ", "&#x1F600;"]
_X_SUBSCRIPTIONS = ["remove", "remove", "both", "none", "to", "from", "x", ""]
_X_PRESENCE_TYPES = ["", "", "", "unavailable", "subscribe", "subscribed", "unsubscribe"]
_X_PRESENCE_TYPES += ["unsubscribed", "probe", "error", "x"]


def xmpp_roster_set(rng: random.Random) -> str:
    """A roster set's payload (RFC 6121 2.3-2.5): items to add, rename, group
    or remove, mostly one, with JIDs good and bad, names and groups."""
    items = []
    for _ in range(rng.choice((1, 1, 1, 1, 1, 2, 0))):
        attrs = _attr("jid", rng.choice(_X_JIDS), rng) if rng.random() < 0.95 else ""
        if rng.random() < 0.4:
            attrs += _attr("name", rng.choice(_X_NAMES), rng)
        if rng.random() < 0.5:
            attrs += _attr("subscription", rng.choice(_X_SUBSCRIPTIONS), rng)
        if rng.random() < 0.05:
            attrs += _attr("ask", rng.choice(("subscribe", "x")), rng)
        count = rng.choice((0, 0, 1, 1, 2, 3, 40 if rng.random() < 0.02 else 1))
        groups = "".join(f"<group>{rng.choice(_X_GROUPS)}</group>" for _ in range(count))
        if rng.random() < 0.05:
            groups += "<group>friends</group><group>friends</group>"  # the same group twice
        items.append(f"<item{attrs}>{groups}</item>" if groups else f"<item{attrs}/>")
    return f"<query xmlns='jabber:iq:roster'>{''.join(items)}</query>"


def xmpp_register(rng: random.Random, user: str | None) -> bytes:
    """An in-band registration IQ (XEP-0077): before login (`user` None) the
    form, a new account (a name good, taken or bad) or a removal; after it,
    the form, a password change or the account's removal. Only a user whose
    account a fuzzed session registered itself (fz...) changes its password
    for real or removes it, so that the shared users keep theirs."""
    kind = rng.choice(("set", "set", "set", "get", "result", "error", ""))
    attrs = _attr("type", kind, rng) if kind else ""
    attrs += _attr("id", "reg", rng)
    if rng.random() < 0.2:
        attrs += _attr("to", rng.choice(("localhost", "alice@localhost", "other")), rng)
    mine = user is not None and user.startswith("fz")
    roll = rng.random()
    if roll < 0.15 or kind == "get":
        fields = ""
    elif roll < 0.25 and (user is None or mine):
        fields = "<remove/>"
    else:
        if user is None:  # a new account: fresh, taken or unusable
            name = f"fz{rng.randrange(10**9)}" if rng.random() < 0.5 else rng.choice(_X_USERS)
            password = XMPP_PASSWORD
        elif mine:
            name, password = user, rng.choice((XMPP_PASSWORD, "another", ""))
        else:  # someone else's name, or no new password: refused
            name, password = rng.choice(((rng.choice(_X_USERS), XMPP_PASSWORD), (user, "")))
        fields = ""
        if rng.random() < 0.95:
            fields += f"<username>{name}</username>"
        if rng.random() < 0.95:
            fields += f"<password>{password}</password>"
        if rng.random() < 0.1:  # a data form beside the fields: ignored
            fields += "<x xmlns='jabber:x:data' type='submit'><field var='username'/></x>"
    return f"<iq{attrs}><query xmlns='jabber:iq:register'>{fields}</query></iq>".encode()


def xmpp_stanza(rng: random.Random, user: str) -> bytes:
    """One stanza after login: messages, presence (subscriptions and probes
    too), IQs (roster get and set, ping, disco, in-band registration, binding
    again, to other users), odd top-level elements, keepalives."""
    roll = rng.random()
    sid = _attr("id", rng.choice(("1", "", "x" * 200, "a'b")), rng) if rng.random() < 0.8 else ""
    sender = _attr("from", rng.choice((f"{user}@localhost", *_X_JIDS)), rng)
    sender = sender if rng.random() < 0.1 else ""
    if roll < 0.35:
        to = _attr("to", rng.choice(_X_JIDS), rng) if rng.random() < 0.95 else ""
        kind = _attr("type", rng.choice(_X_TYPES), rng) if rng.random() < 0.8 else ""
        parts = []
        if rng.random() < 0.9:
            parts.append(f"<body>{rng.choice(_X_TEXT)}</body>")
        if rng.random() < 0.2:
            parts.append(rng.choice(("<subject>s</subject>", "<thread>t</thread>")))
        if rng.random() < 0.2:
            parts.append(_element(rng))
        if rng.random() < 0.05:
            parts.append("<body>second</body><body xml:lang='fr'>b</body>")
        text = f"<message{to}{kind}{sid}{sender}>{''.join(parts)}</message>"
    elif roll < 0.55:
        kind = rng.choice(_X_PRESENCE_TYPES)
        attrs = _attr("type", kind, rng) if kind else ""
        if rng.random() < (0.85 if kind in _X_PRESENCE_TYPES[4:9] else 0.15):
            attrs += _attr("to", rng.choice(_X_JIDS), rng)
        parts = []
        if rng.random() < 0.4:
            number = rng.choice(("0", "1", "-1", "127", "-128", "99999999999999999999", "x", ""))
            number = rng.choice((number, " 5 ", "1.5", "٣", "+1", "0x10", "1_0"))
            parts.append(f"<priority>{number}</priority>")
        if rng.random() < 0.3:
            parts.append(f"<show>{rng.choice(('away', 'chat', 'dnd', 'xa', 'x'))}</show>")
        if rng.random() < 0.3:
            parts.append(f"<status>{rng.choice(_X_TEXT)}</status>")
        inner = "".join(parts)
        opening = f"<presence{attrs}{sid}{sender}"
        text = f"{opening}>{inner}</presence>" if inner else f"{opening}/>"
    elif roll < 0.85:
        payload = rng.random()
        if payload < 0.1:
            return xmpp_register(rng, user)
        kind = rng.choice(("get", "get", "set", "result", "error", "", "x"))
        if 0.15 <= payload < 0.3 and rng.random() < 0.9:
            kind = "set"  # a roster change
        attrs = _attr("type", kind, rng) if kind else ""
        if rng.random() < 0.25:
            attrs += _attr("to", rng.choice(_X_JIDS), rng)
        if payload < 0.15:
            inner = "<query xmlns='jabber:iq:roster'/>"
        elif payload < 0.3:
            inner = xmpp_roster_set(rng)
        elif payload < 0.36:
            inner = "<ping xmlns='urn:xmpp:ping'/>"
        elif payload < 0.4:
            inner = f"<query xmlns='{rng.choice(_X_NS[2:4])}'/>"
        elif payload < 0.5:
            inner = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind>"
        elif payload < 0.55:
            inner = "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>"
        elif payload < 0.6:
            inner = ""
        elif payload < 0.65:
            inner = "<ping xmlns='urn:xmpp:ping'/><query xmlns='jabber:iq:roster'/>"
        else:
            inner = _element(rng)
        text = f"<iq{attrs}{sid}{sender}>{inner}</iq>" if inner else f"<iq{attrs}{sid}/>"
    elif roll < 0.93:
        text = rng.choice(
            (
                "<foo xmlns='bar'/>",
                "<stream:features/>",
                "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                "<enable xmlns='urn:xmpp:sm:3'/>",
                "<r xmlns='urn:xmpp:sm:3'/>",
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>",
                "<message xmlns='jabber:server' to='echo@localhost'><body>s</body></message>",
                "<x:message xmlns:x='jabber:client' to='echo@localhost'><x:body>p</x:body>"
                "</x:message>",
                "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                "</stream:error>",
                "<message/>",
                "<iq/>",
            )
        )
    else:
        text = rng.choice((" ", "\n", "\r\n", "\t \n"))
    return text.encode()


def xmpp_phases(rng: random.Random) -> list[bytes]:
    """A client session in phases: the header and <auth/>; after a pause (the
    server restarts the stream after SASL success), the second header,
    binding and stanzas; maybe </stream:stream>. One part is mutated, most
    often a stanza after login."""
    header = xmpp_header(rng)
    if rng.random() < 0.05:  # no login: stanzas straight away
        body = b"".join(xmpp_stanza(rng, "x") for _ in range(rng.choice((1, 2, 3))))
        return [mutate(rng, header + body, XMPP_TOKENS, XMPP_NUMBERS, keep=0.3)]
    registering = b""
    fresh = None
    if rng.random() < 0.25:  # in-band registration first (XEP-0077)
        registering = b"".join(xmpp_register(rng, None) for _ in range(rng.choice((1, 1, 2))))
        if rng.random() < 0.6:  # an account of its own, to log in as
            fresh = f"fz{rng.randrange(10**9)}"
            fields = f"<username>{fresh}</username><password>{XMPP_PASSWORD}</password>"
            query = f"<query xmlns='jabber:iq:register'>{fields}</query>"
            registering += f"<iq type='set' id='new'>{query}</iq>".encode()
    auth, user = xmpp_auth(rng, fresh)
    first = [header + registering, auth]
    second = [xmpp_header(rng) if rng.random() < 0.98 else b""]
    if rng.random() < 0.95:
        resource = rng.choice(("fuzz", "", "r", "fuzz", "x" * 500, "a/b", "é", " "))
        bind = f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource>"
        second.append(f"<iq type='set' id='b'>{bind}</bind></iq>".encode())
    if rng.random() < 0.3:
        session = "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>"
        second.append(f"<iq type='set' id='s'>{session}</iq>".encode())
    if rng.random() < 0.5:  # as clients do: the roster (then roster pushes come), presence
        second.append(b"<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>")
    if rng.random() < 0.7:
        second.append(b"<presence/>")
    second += [xmpp_stanza(rng, user) for _ in range(rng.choice((1, 2, 3, 5)))]
    if fresh is not None and rng.random() < 0.6:  # its own account: a new password, removal
        change = rng.choice(("<remove/>", f"<username>{fresh}</username><password>new</password>"))
        query = f"<query xmlns='jabber:iq:register'>{change}</query>"
        second.insert(
            rng.randrange(2, len(second) + 1), f"<iq type='set' id='a'>{query}</iq>".encode()
        )
    if rng.random() < 0.2:
        second.append(b"</stream:stream>")
    target = rng.random()
    if target < 0.1:  # the header or <auth/>
        part = first
    elif target < 0.2:  # the second header or binding
        part = second[:2]
    else:  # a stanza
        part = second[2:] or second
    if target < 0.9 and part:
        i = rng.randrange(len(part))
        part[i] = mutate(rng, part[i], XMPP_TOKENS, XMPP_NUMBERS, keep=0)
    elif rng.random() < 0.7:  # the whole second phase
        second = [mutate(rng, b"".join(second), XMPP_TOKENS, XMPP_NUMBERS, keep=0)]
    return [b"".join(first), b"".join(second)]


GENERATORS: dict[str, Callable[[random.Random], list[bytes]]] = {
    "resp": resp_phases,
    "http": http_phases,
    "xmpp": xmpp_phases,
}


# -- applications to fuzz the HTTP plugin with -----------------------------------------------

http_app = HttpApp()
"""`--app tests.fuzzing:http_app`: native routes that read, stream and echo."""


@http_app.route("/healthz")
async def _healthz(request: Request) -> str:
    return "ok\n"


@http_app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def _echo(request: Request) -> Response:
    content_type = request.headers.get("content-type") or "application/octet-stream"
    return Response(await request.body(), content_type=content_type)


@http_app.route("/count", methods=["POST", "PUT"])
async def _count(request: Request) -> dict[str, int]:
    total = chunks = 0
    async for chunk in request.stream():
        total += len(chunk)
        chunks += 1
    return {"bytes": total, "chunks": chunks}


@http_app.route("/ignore", methods=["POST", "PUT"])
async def _ignore(request: Request) -> str:
    return "ignored\n"


@http_app.route("/stream", methods=["GET", "POST"])
async def _stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield b"%d\n" % i
            await trio.lowlevel.checkpoint()

    return Response(chunks(), content_type="text/plain")


@http_app.route("/sync-stream")
async def _sync_stream(request: Request) -> Response:
    return Response(iter([b"a", b"", b"b"]), content_type="text/plain")


@http_app.route("/headers")
async def _headers(request: Request) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers.raw}


@http_app.route("/query")
async def _query(request: Request) -> dict[str, list[str]]:
    return request.query


@http_app.route("/path/{rest:path}")
async def _path(request: Request) -> dict[str, str]:
    return {**request.path_params, "path": request.path}


@http_app.route("/json", methods=["POST", "PUT"])
async def _json(request: Request) -> Response:
    try:
        return Response.json({"got": await request.json()})
    except ValueError:  # not JSON, or not UTF-8
        return Response.text("not JSON\n", status=400)


@http_app.route("/empty", methods=["GET", "POST"])
async def _empty(request: Request) -> None:
    return None


async def asgi_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """`--app tests.fuzzing:asgi_app`: a plain ASGI app that answers every
    request, whatever its method or path, with its body; it does lifespan,
    and stops at a client's disconnect, as ASGI allows."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- inputs ---------------------------------------------------------------------------------

PHASE_PAUSE = 0.03  # between phases: long enough for the server to act on the first
CLOSES = ("graceful", "graceful", "graceful", "half", "reset", "reset-early")


@dataclasses.dataclass(frozen=True)
class FuzzInput:
    """One connection's worth: `steps` are (pause before, bytes) sent in
    order; `close` how the client ends it: "graceful" (read until EOF or the
    timeout, then close), "half" (shut down writing first), "reset" (read,
    then close with SO_LINGER 0: a TCP reset) or "reset-early" (reset as soon
    as everything is sent)."""

    protocol: str
    seed: int
    index: int
    steps: tuple[tuple[float, bytes], ...]
    close: str

    @property
    def data(self) -> bytes:
        return b"".join(data for _, data in self.steps)


def make_input(protocol: str, seed: int, index: int) -> FuzzInput:
    """Input number `index` of the run with `seed`: the same on every machine."""
    rng = random.Random(f"{protocol}:{seed}:{index}")
    phases = GENERATORS[protocol](rng)
    steps: list[tuple[float, bytes]] = []
    for number, phase in enumerate(phases):
        pause = PHASE_PAUSE if number else 0.0
        if len(phase) > 1 and rng.random() < 0.3:  # split at random points, as TCP may
            cuts = sorted(rng.sample(range(1, len(phase)), min(len(phase) - 1, rng.randint(1, 4))))
            pieces = [phase[a:b] for a, b in zip([0, *cuts], [*cuts, len(phase)], strict=True)]
            steps += [
                (pause if i == 0 else rng.choice((0.0, 0.002)), p) for i, p in enumerate(pieces)
            ]
        elif phase:
            steps.append((pause, phase))
    return FuzzInput(protocol, seed, index, tuple(steps), rng.choice(CLOSES))


def inputs(protocol: str, seed: int, count: int, start: int = 0) -> Iterator[FuzzInput]:
    return (make_input(protocol, seed, i) for i in range(start, start + count))


# -- the client -----------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """How one input's connection went, and when (for matching server log lines)."""

    index: int
    local_port: int
    started: float  # time.time()
    finished: float
    received: int = 0
    data: bytes = b""  # what the server sent, with throw(keep=True)
    end: str = "open"  # "eof", "reset", "open" (the read timeout passed), "refused"


_LINGER_0 = struct.pack("ii", 1, 0)


async def throw(
    host: str,
    port: int,
    item: FuzzInput,
    *,
    read_timeout: float = 0.2,
    limit: float = 5.0,
    keep: bool = False,
) -> Outcome:
    """Connect, send the input's steps while reading what the server sends,
    read for up to `read_timeout` more (until EOF), and close as the input says."""
    outcome = Outcome(item.index, 0, time.time(), 0.0)
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError:
        outcome.end, outcome.finished = "refused", time.time()
        return outcome
    outcome.local_port = stream.socket.getsockname()[1]
    ended = trio.Event()

    async def read() -> None:
        try:
            while data := await stream.receive_some(65536):
                outcome.received += len(data)
                if keep:
                    outcome.data += data
            outcome.end = "eof"
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            outcome.end = "reset"
        ended.set()

    try:
        with trio.move_on_after(limit):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                try:
                    for pause, data in item.steps:
                        if pause:
                            await trio.sleep(pause)
                        await stream.send_all(data)
                    if item.close == "half":
                        await stream.send_eof()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the server closed first: the reader says how
                if item.close != "reset-early":
                    with trio.move_on_after(read_timeout):
                        await ended.wait()
                nursery.cancel_scope.cancel()
    finally:
        if item.close in ("reset", "reset-early"):
            with contextlib.suppress(OSError):
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
        with trio.CancelScope(shield=True):
            await stream.aclose()
        outcome.finished = time.time()
    return outcome


async def run_inputs(
    host: str,
    port: int,
    items: Iterable[FuzzInput],
    *,
    concurrency: int = 32,
    read_timeout: float = 0.2,
    done: Callable[[Outcome], None] = lambda outcome: None,
) -> list[Outcome]:
    """Throw every input at the server, `concurrency` connections at a time."""
    outcomes: list[Outcome] = []
    queue = iter(items)

    async def worker() -> None:
        for item in queue:  # one shared iterator: each worker takes the next input
            outcome = await throw(host, port, item, read_timeout=read_timeout)
            outcomes.append(outcome)
            done(outcome)

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return outcomes


# -- is the server still well? --------------------------------------------------------------

_XMPP_CHECK = (
    f"<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='{_X_STREAM}' version='1.0'>"
)


async def _converse(stream: trio.SocketStream, send: bytes, until: bytes) -> bytes:
    await stream.send_all(send)
    received = b""
    while until not in received:
        data = await stream.receive_some(65536)
        if not data:
            break
        received += data
    return received


async def healthy(protocol: str, host: str, port: int, timeout: float = 5.0) -> str | None:
    """None if the server answers a well-formed request on a fresh connection
    as it should; otherwise what went wrong."""
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(host, port)
            async with stream:
                if protocol == "resp":
                    got = await _converse(stream, b"*1\r\n$4\r\nPING\r\n", b"\r\n")
                    return None if got == b"+PONG\r\n" else f"PING answered {got!r}"
                if protocol == "http":
                    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    got = await _converse(stream, request, b"\r\n\r\n")
                    ok = got.startswith(b"HTTP/1.1 200 ")
                    return None if ok else f"GET /healthz answered {got[:200]!r}"
                if protocol == "xmpp":
                    return await _xmpp_check(stream)
                raise ValueError(f"no check for {protocol!r}")
    except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
        return f"{type(exc).__name__}: {exc}"


async def _xmpp_check(stream: trio.SocketStream) -> str | None:
    """Log in, bind, and have the echo bot answer."""
    header = _XMPP_CHECK.encode()
    got = await _converse(stream, header, b"</stream:features>")
    if b"<mechanism>PLAIN</mechanism>" not in got:
        return f"the stream header got {got[:300]!r}"
    token = base64.b64encode(f"\0healthcheck\0{XMPP_PASSWORD}".encode())
    auth = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%b</auth>" % token
    got = await _converse(stream, auth, b"\n")
    if not got.startswith(b"<success"):
        return f"<auth/> got {got[:300]!r}"
    got = await _converse(stream, header, b"</stream:features>")
    bind = b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
    got = await _converse(stream, bind, b"</iq>")
    if b"<jid>healthcheck@localhost/" not in got:
        return f"binding got {got[:300]!r}"
    message = b"<message to='echo@localhost' type='chat'><body>still there?</body></message>"
    got = await _converse(stream, message, b"</message>")
    if b"<body>still there?</body>" not in got:
        return f"the echo bot answered {got[:300]!r}"
    return None


# -- the server's log -----------------------------------------------------------------------

_PROBLEM_LINE = re.compile(r"^\S+ \S+ (ERROR|CRITICAL) |Traceback")
_CONTEXT = re.compile(r" \[peer=[^\]]*\]$")
_REQUEST = re.compile(r"(handler for) \S+ .*? (failed|left its response unfinished)$")
# an IPv4 or IPv6 address with a port, or "(peer ...)" whatever it says (":0" once gone)
_ADDRESS = re.compile(
    r"\b\d{1,3}(?:\.\d{1,3}){3}:\d+\b|\[[0-9a-fA-F:.]+\]:\d+|(?<=\(peer )[^)]+(?=\))"
)
_FRAME = re.compile(r'^\s*(?:\|\s*)*File "([^"]+)", line (\d+), in (\S+)')


def log_problems(lines: Iterable[str]) -> list[str]:
    """The log lines at ERROR or CRITICAL, and those that start a traceback."""
    return [line for line in lines if _PROBLEM_LINE.search(line)]


def error_key(error: ServerError) -> tuple[str, str]:
    """(first line, innermost frame): errors differing only in peer, connection
    or anything else are the same bug."""
    first = _ADDRESS.sub("ADDRESS", _CONTEXT.sub("", error.message))
    first = _REQUEST.sub(r"\1 METHOD TARGET \2", first)
    frames = [m for line in error.exc_text.splitlines() if (m := _FRAME.match(line))]
    frame = ""
    if frames:
        path, line, function = frames[-1].groups()
        frame = f"{path.rsplit('/', 2)[-2:][0]}/{path.rsplit('/', 1)[-1]}:{line} in {function}"
    return first, frame


def distinct_errors(lines: Iterable[str], source: str) -> dict[tuple[str, str], list[ServerError]]:
    """The errors in a server's log, grouped by error_key()."""
    groups: dict[tuple[str, str], list[ServerError]] = {}
    for error in scan_log_lines(lines, source):
        groups.setdefault(error_key(error), []).append(error)
    return groups


_PEER_PORT = re.compile(r"\[peer=\S*:(\d+)\b")
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


def error_peer(error: ServerError) -> int | None:
    """The client port an error was logged for, if the log line names it."""
    m = _PEER_PORT.search(error.message)
    return int(m.group(1)) if m else None


def suspects(error: ServerError, outcomes: Sequence[Outcome], when: float | None) -> list[int]:
    """Indices of the inputs whose connection the error may belong to: same
    client port, and (if known) open around the time it was logged."""
    port = error_peer(error)
    if port is None:
        return []
    found = [o for o in outcomes if o.local_port == port]
    if when is not None:
        near = [o for o in found if o.started - 1.0 <= when <= o.finished + 3.0]
        found = near or found
    return [o.index for o in sorted(found, key=lambda o: o.started)]


def line_time(line: str) -> float | None:
    """A text log line's time, as time.time() (local time, millisecond precision)."""
    m = _LOG_TIME.match(line)
    if not m:
        return None
    return time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000


# -- the suite's property tests -------------------------------------------------------------

# Examples per Hypothesis property test over the sans-IO parsers: a few hundred
# in the suite; NETSVC_FUZZ_EXAMPLES=5000 runs them longer.
FUZZ_EXAMPLES = int(os.environ.get("NETSVC_FUZZ_EXAMPLES", "250"))


def fuzz_settings() -> settings:
    return settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- the suite's socket-level run -----------------------------------------------------------

SUITE_SEED = 20261127  # fixed: the suite throws the same inputs every time
SUITE_INPUTS = 300


async def fuzz_server(
    protocol: str,
    *,
    seed: int = SUITE_SEED,
    count: int = SUITE_INPUTS,
    known: Sequence[str] = (),
) -> None:
    """Start `netsvc serve` for `protocol`, throw `count` mutated inputs at it
    over concurrent connections, and assert that it still answers a
    well-formed request on a fresh connection, exits cleanly on SIGTERM and
    logged no ERROR line and no traceback, except errors matching a `known`
    pattern (searched in the message and traceback): bugs with an xfail
    regression test, which a concurrent run may hit or not."""
    from tests.serveprocess import ServeProcess, host_port  # imports pytest: only here

    print(f"fuzz seed {seed}: {count} mutated {protocol} inputs (tools.fuzz replays any of them)")
    with ServeProcess(serve_args(protocol)) as server:
        host, port = host_port(server.urls[0])
        outcomes = await run_inputs(host, port, inputs(protocol, seed, count), concurrency=32)
        sick = await healthy(protocol, host, port)
        code = server.stop()
    where = f"(seed {seed}, {len(outcomes)} {protocol} inputs)"
    assert sick is None, f"the server no longer answers a well-formed request {where}: {sick}"
    assert code == 0, f"the server exited with status {code} on SIGTERM {where}"
    patterns = [re.compile(pattern) for pattern in known]
    unknown = [
        error
        for error in scan_log_lines(server.lines, f"netsvc serve --protocol {protocol}")
        if not any(p.search(error.text) for p in patterns)
    ]
    assert not unknown, f"the server logged errors {where}:\n" + "\n".join(
        error.describe() for error in unknown
    )
    if not known:  # the plain check too: no ERROR line, no "Traceback" anywhere
        assert not log_problems(server.lines), "\n".join(server.lines)
