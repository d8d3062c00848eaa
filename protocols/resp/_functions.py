# Redis 7's function libraries (FUNCTION LOAD, FCALL ...), the parts that are
# plain data and bytes: the registry of libraries and of the functions they
# register (functions.c's functionsLibCtx), the `#!lua name=<lib>` metadata
# line, and FUNCTION DUMP's payload as Redis writes it: one RDB function
# record per library (opcode 245, the library's code as an RDB string, LZF-
# compressed as Redis compresses it), the 2-byte RDB version and a CRC-64.
# No Lua and no I/O: running a library's code and calling its functions is
# _scripting.py's, the commands are commands/scripting.py's.
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from ._glob import compile_glob
from ._parser import _split_args

__all__ = [
    "ENGINE",
    "FUNCTION_FLAGS",
    "NAME_ERROR",
    "Function",
    "Libraries",
    "Library",
    "Metadata",
    "PayloadError",
    "crc64",
    "dump_payload",
    "lzf_compress",
    "lzf_decompress",
    "parse_metadata",
    "read_payload",
    "valid_name",
]

ENGINE = b"LUA"  # the one engine, named as FUNCTION LIST and STATS show it
# The flags a function may declare, in the order Redis lists them (scripts_flags_def)
FUNCTION_FLAGS = (
    b"no-writes",
    b"allow-oom",
    b"allow-stale",
    b"no-cluster",
    b"allow-cross-slot-keys",
)
NAME_ERROR = (
    "Library names can only contain letters, numbers, or underscores(_) "
    "and must be at least one character long"
)  # Redis says "Library" for function names too


def valid_name(name: bytes) -> bool:
    """functionsVerifyName: one or more of [a-zA-Z0-9_]."""
    return name.replace(b"_", b"a").isalnum()  # bytes: ASCII letters and digits only


# -- the registry ------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Function:
    """One function a library registered."""

    name: bytes
    callback: Any  # the Lua function (_scripting.py's)
    flags: tuple[bytes, ...]  # in FUNCTION_FLAGS order
    description: bytes | None
    library: bytes = b""  # its library's name, set when the library is built


@dataclasses.dataclass(eq=False)
class Library:
    """A loaded library: its code (metadata line included) and functions."""

    name: bytes
    code: bytes
    functions: dict[bytes, Function]  # by name as registered, in registration order
    engine: bytes = ENGINE

    def __post_init__(self) -> None:
        for function in self.functions.values():
            function.library = self.name


class Libraries:
    """The libraries and, across them, the functions by name. Function names
    are case-insensitive (FCALL f finds F), library names are not, as in Redis."""

    def __init__(self) -> None:
        self.libraries: dict[bytes, Library] = {}
        self._functions: dict[bytes, Function] = {}  # lower-cased name -> function

    def function(self, name: bytes) -> Function | None:
        return self._functions.get(name.lower())

    def __len__(self) -> int:
        return len(self.libraries)

    def function_count(self) -> int:
        """FUNCTION STATS's functions_count (and INFO's number_of_functions)."""
        return sum(len(library.functions) for library in self.libraries.values())

    def matching(self, pattern: bytes | None) -> Iterator[Library]:
        """FUNCTION LIST LIBRARYNAME: the libraries whose name matches a glob, any case."""
        match = compile_glob(pattern, nocase=True) if pattern is not None else None
        for library in self.libraries.values():
            if match is None or match(library.name):
                yield library

    def add(self, library: Library, *, replace: bool) -> str | None:
        """Link a library built by a load, in place of the one of its name if
        `replace`; the error text if a name is taken (nothing changes then)."""
        old = self.libraries.get(library.name)
        if old is not None and not replace:
            return f"Library '{_text(library.name)}' already exists"
        for name in library.functions:
            owner = self._functions.get(name.lower())
            if owner is not None and owner.library != library.name:
                return f"Function {_text(name)} already exists"
        if old is not None:
            self._unlink(old)
        self._link(library)
        return None

    def delete(self, name: bytes) -> bool:
        library = self.libraries.pop(name, None)
        if library is None:
            return False
        self._unlink(library)
        return True

    def join(self, other: Libraries, *, replace: bool) -> str | None:
        """FUNCTION RESTORE APPEND/REPLACE (libraryJoin): every library of
        `other`, or none of them and the error text."""
        replaced = set()
        for name in other.libraries:
            if name in self.libraries:
                if not replace:
                    return f"Library {_text(name)} already exists"
                replaced.add(name)
        for key, function in other._functions.items():
            owner = self._functions.get(key)
            if owner is not None and owner.library not in replaced:
                return f"Function {_text(function.name)} already exists"
        for library in other.libraries.values():
            old = self.libraries.get(library.name)
            if old is not None:
                self._unlink(old)
            self._link(library)
        return None

    def _link(self, library: Library) -> None:
        self.libraries[library.name] = library  # a replaced library keeps its place
        for name, function in library.functions.items():
            # two names of one library that differ only in case: the first is found,
            # as in Redis (whose dictAdd of the second fails)
            self._functions.setdefault(name.lower(), function)

    def _unlink(self, library: Library) -> None:
        for name, function in library.functions.items():
            if self._functions.get(name.lower()) is function:
                del self._functions[name.lower()]


def _text(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


# -- the metadata line -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Metadata:
    """What a library's first line says, and the code after it."""

    engine: bytes
    name: bytes
    body: bytes  # from the line's end on (its newline kept: Lua's line numbers stay right)


def parse_metadata(code: bytes) -> Metadata | str:
    """functionExtractLibMetaData: `#!<engine> name=<library>`; the error text
    (without its ERR) if the line is not one."""
    if not code.startswith(b"#!"):
        return "Missing library metadata"
    end = code.split(b"\0", 1)[0].find(b"\n")  # strchr: a C string ends at a NUL
    if end < 0:
        return "Invalid library metadata"
    parts = _split_args(code[:end])  # sdssplitargs: quotes and escapes as redis-cli's
    if not parts:
        return "Invalid library metadata"
    name: bytes | None = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                return "Invalid metadata value, name argument was given multiple times"
            name = part[5:]
            continue
        return f"Invalid metadata value given: {_text(part)}"
    if name is None:
        return "Library name was not given"
    return Metadata(engine=parts[0][2:], name=name, body=code[end:])


# -- FUNCTION DUMP's payload -------------------------------------------------------------

OPCODE_FUNCTION = 245  # RDB_OPCODE_FUNCTION2: a library's code
OPCODE_FUNCTION_PRE_GA = 246  # Redis 7.0 release candidates' records (name, engine, ...)
# The RDB version a payload carries. The records are the same in RDB 10
# (Redis 7.0) and 11 (7.2, whose change is about sets), so netsvc writes 10,
# which redis-server 7.0 accepts too, and accepts up to 11, as 7.2 does.
RDB_VERSION_WRITTEN = 10
RDB_VERSION_READ = 11
PAYLOAD_WRONG = "DUMP payload version or checksum are wrong"


def dump_payload(codes: Iterable[bytes]) -> bytes:
    """FUNCTION DUMP of libraries with these codes, byte for byte as Redis's."""
    out = bytearray()
    for code in codes:
        out.append(OPCODE_FUNCTION)
        out += _rdb_string(code)
    out += RDB_VERSION_WRITTEN.to_bytes(2, "little")
    out += crc64(out).to_bytes(8, "little")
    return bytes(out)


class PayloadError(Exception):
    """A payload FUNCTION RESTORE cannot read: Redis's text, without its ERR."""


def read_payload(payload: bytes, max_code: int | None = None) -> Iterator[bytes]:
    """The library codes of a FUNCTION DUMP payload, one at a time, as
    FUNCTION RESTORE reads them (verifyDumpPayload first, then each record
    before the next: a bad record is found after the libraries before it are
    loaded); PayloadError where it cannot be read. A compressed code that
    says it is longer than `max_code` is not expanded (a decompression bomb:
    such a library could not load within lua-memory-limit anyway)."""
    if len(payload) < 10:
        raise PayloadError(PAYLOAD_WRONG)
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION_READ or crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise PayloadError(PAYLOAD_WRONG)
    reader = _Reader(payload, max_code)
    while len(payload) - reader.pos > 10:  # records until the version and checksum
        kind = reader.byte()
        if kind == OPCODE_FUNCTION_PRE_GA:
            raise PayloadError("Pre-GA function format not supported")
        if kind != OPCODE_FUNCTION:
            raise PayloadError("given type is not a function")
        code = reader.string()
        if code is None:
            raise PayloadError("Failed loading library payload")
        yield code


def read_all(payload: bytes, max_code: int) -> tuple[list[bytes], PayloadError | None]:
    """read_payload in one go (for a worker thread: the checksum and LZF are
    pure Python, seconds for a large payload): the codes read, and the error
    that stopped it, which FUNCTION RESTORE reports after loading them."""
    codes: list[bytes] = []
    try:
        codes.extend(read_payload(payload, max_code))
    except PayloadError as exc:
        return codes, exc
    return codes, None


def _rdb_length(length: int) -> bytes:
    """rdbSaveLen: 6, 14, 32 or 64 bits."""
    if length < 1 << 6:
        return bytes([length])
    if length < 1 << 14:
        return bytes([0x40 | (length >> 8), length & 0xFF])
    if length <= 0xFFFFFFFF:
        return b"\x80" + length.to_bytes(4, "big")
    return b"\x81" + length.to_bytes(8, "big")


def _rdb_string(data: bytes) -> bytes:
    """rdbSaveRawString with rdbcompression on: an integer's encoding for a
    short decimal integer, LZF past 20 bytes when it saves at least 4, else raw."""
    if len(data) <= 11:
        encoded = _int_encoding(data)
        if encoded is not None:
            return encoded
    if len(data) > 20:
        compressed = lzf_compress(data, len(data) - 4)
        if compressed:
            return b"\xc3" + _rdb_length(len(compressed)) + _rdb_length(len(data)) + compressed
    return _rdb_length(len(data)) + data


def _int_encoding(data: bytes) -> bytes | None:
    """rdbTryIntegerEncoding: a string that is exactly an integer's decimal form."""
    try:
        value = int(data)
    except ValueError:
        return None
    if b"%d" % value != data:
        return None
    for code, size in ((0xC0, 1), (0xC1, 2), (0xC2, 4)):
        if -(1 << (8 * size - 1)) <= value < 1 << (8 * size - 1):
            return bytes([code]) + value.to_bytes(size, "little", signed=True)
    return None


class _Reader:
    """rio over a payload: None wherever Redis's loading fails."""

    def __init__(self, data: bytes, max_expanded: int | None = None) -> None:
        self.data = data
        self.pos = 0
        self.max_expanded = max_expanded

    def take(self, size: int) -> bytes | None:
        if self.pos + size > len(self.data):
            return None
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def byte(self) -> int | None:
        chunk = self.take(1)
        return None if chunk is None else chunk[0]

    def length(self) -> tuple[int, bool] | None:
        """rdbLoadLenByRef: (length, is_encoded)."""
        first = self.byte()
        if first is None:
            return None
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            second = self.byte()
            return None if second is None else (((first & 0x3F) << 8) | second, False)
        if kind == 3:
            return first & 0x3F, True
        size = {0x80: 4, 0x81: 8}.get(first)
        chunk = None if size is None else self.take(size)
        return None if chunk is None else (int.from_bytes(chunk, "big"), False)

    def string(self) -> bytes | None:
        """rdbGenericLoadStringObject."""
        header = self.length()
        if header is None:
            return None
        value, encoded = header
        if not encoded:
            return self.take(value)
        if value in (0, 1, 2):  # RDB_ENC_INT8/16/32
            chunk = self.take(1 << value)
            return None if chunk is None else b"%d" % int.from_bytes(chunk, "little", signed=True)
        if value != 3:  # RDB_ENC_LZF is the only other
            return None
        sizes = self.length(), self.length()
        if sizes[0] is None or sizes[1] is None or sizes[0][1] or sizes[1][1]:
            return None
        if self.max_expanded is not None and sizes[1][0] > self.max_expanded:
            return None
        compressed = self.take(sizes[0][0])
        if compressed is None:
            return None
        return lzf_decompress(compressed, sizes[1][0])


# -- LZF, as Redis's lzf_c.c / lzf_d.c (liblzf 3.6: HLOG 16, VERY_FAST) ---------------

_HSIZE = 1 << 16
_MAX_LIT = 1 << 5
_MAX_OFF = 1 << 13
_MAX_REF = (1 << 8) + (1 << 3)


def _lzf_index(hval: int) -> int:
    return ((hval >> 8) - hval * 5) & (_HSIZE - 1)


def lzf_compress(data: bytes, out_len: int) -> bytes:
    """lzf_compress into at most `out_len` bytes; b"" if it does not fit. A
    line-by-line port, so that FUNCTION DUMP's bytes are Redis's. (Redis leaves
    its hash table uninitialised; a clean one finds the same matches.)"""
    in_len = len(data)
    if not in_len or not out_len:
        return b""
    table: dict[int, int] = {}  # hash slot -> input position (absent: no match)
    out = bytearray(out_len + 4)  # slack: the C code writes a run header ahead of its checks
    ip = op = 0
    lit = 0
    op += 1  # start run
    hval = (data[0] << 8) | data[1] if in_len > 1 else data[0] << 8
    while ip < in_len - 2:
        hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
        slot = _lzf_index(hval)
        ref = table.get(slot, -1)
        table[slot] = ip
        off = ip - ref - 1
        if (
            ref > 0
            and off < _MAX_OFF
            and ip + 4 < in_len
            and data[ref] == data[ip]
            and data[ref + 1] == data[ip + 1]
            and data[ref + 2] == data[ip + 2]
        ):
            length = 2
            maxlen = min(in_len - ip - length, _MAX_REF)
            out[op - lit - 1] = lit - 1 & 0xFF  # stop run
            op -= not lit  # undo run if length is zero
            if op + 3 + 1 >= out_len:
                return b""
            if maxlen > 16:  # the C code's unrolled loop: 16 steps without the maxlen test
                for _ in range(16):
                    length += 1
                    if data[ref + length] != data[ip + length]:
                        break
                else:
                    length = _extend(data, ref, ip, length, maxlen)
            else:
                length = _extend(data, ref, ip, length, maxlen)
            length -= 2  # now #octets - 1
            ip += 1
            if length < 7:
                out[op] = ((off >> 8) + (length << 5)) & 0xFF
                op += 1
            else:
                out[op] = ((off >> 8) + (7 << 5)) & 0xFF
                out[op + 1] = (length - 7) & 0xFF
                op += 2
            out[op] = off & 0xFF
            op += 1
            lit = 0
            op += 1  # start run
            ip += length + 1
            if ip >= in_len - 2:
                break
            ip -= 2  # VERY_FAST: hash the last two positions of the match
            hval = (data[ip] << 8) | data[ip + 1]
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            table[_lzf_index(hval)] = ip
            ip += 1
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            table[_lzf_index(hval)] = ip
            ip += 1
        else:
            if op >= out_len:
                return b""
            lit += 1
            out[op] = data[ip]
            op += 1
            ip += 1
            if lit == _MAX_LIT:
                out[op - lit - 1] = lit - 1  # stop run
                lit = 0
                op += 1  # start run
    if op + 3 > out_len:  # at most 3 bytes can be missing here
        return b""
    while ip < in_len:
        lit += 1
        out[op] = data[ip]
        op += 1
        ip += 1
        if lit == _MAX_LIT:
            out[op - lit - 1] = lit - 1
            lit = 0
            op += 1
    out[op - lit - 1] = lit - 1 & 0xFF  # end run
    op -= not lit  # undo run if length is zero
    return bytes(out[:op])


def _extend(data: bytes, ref: int, ip: int, length: int, maxlen: int) -> int:
    """The C code's `do len++; while (len < maxlen && ref[len] == ip[len]);`"""
    length += 1
    while length < maxlen and data[ref + length] == data[ip + length]:
        length += 1
    return length


def lzf_decompress(data: bytes, out_len: int) -> bytes | None:
    """lzf_decompress with CHECK_INPUT; None where it fails, or if the result
    is not exactly `out_len` bytes (rdbLoadLzfStringObject's test)."""
    out = bytearray()
    ip, in_len = 0, len(data)
    while ip < in_len:
        ctrl = data[ip]
        ip += 1
        if ctrl < 1 << 5:  # a literal run
            ctrl += 1
            if len(out) + ctrl > out_len or ip + ctrl > in_len:
                return None
            out += data[ip : ip + ctrl]
            ip += ctrl
            continue
        length = ctrl >> 5  # a back reference
        if ip >= in_len:
            return None
        if length == 7:
            length += data[ip]
            ip += 1
            if ip >= in_len:
                return None
        ref = len(out) - ((ctrl & 0x1F) << 8) - 1 - data[ip]
        ip += 1
        if len(out) + length + 2 > out_len or ref < 0:
            return None
        for index in range(ref, ref + length + 2):  # byte by byte: it may overlap
            out.append(out[index])
    return bytes(out) if len(out) == out_len else None


# -- CRC-64 (Redis's crc64.c: Jones polynomial, reflected, as DUMP uses) --------------


def _crc64_table() -> list[int]:
    poly = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9, reflected
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_TABLE = _crc64_table()


def crc64(data: bytes | bytearray, crc: int = 0) -> int:
    table = _CRC64_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc
