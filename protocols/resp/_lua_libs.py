# The Lua libraries Redis builds into its interpreter and lupa's Lua 5.1 lacks:
# cjson (lua_cjson.c 2.1), cmsgpack (lua_cmsgpack.c 0.4), bit (LuaBitOp 1.0)
# and struct (lua_struct.c 0.2), written in Python with the C versions'
# results and error texts. Each Python function returns (True, value),
# (True, table, n) for several results, or (False, message); a Lua wrapper
# raises the message at the script's line, as luaL_error does.
from __future__ import annotations

import math
import re
import struct as _struct
from collections.abc import Callable
from typing import Any

import lupa.lua51 as lupa

__all__ = ["ScriptRaise", "install"]

Result = tuple[Any, ...]

_NUMBER = re.compile(
    rb"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\s*\Z", re.IGNORECASE
)
_HEX = re.compile(rb"\s*0[xX]([0-9a-fA-F]+)\s*\Z")


def lua_typename(value: Any, present: bool = True) -> str:
    if not present:
        return "no value"
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, bytes):
        return "string"
    kind = lupa.lua_type(value)
    return kind if kind else "userdata"


def to_number(value: Any) -> float | int | None:
    """lua_tonumber: numbers, and strings that read as one; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, bytes):
        if _NUMBER.match(value):
            return float(value)
        match = _HEX.match(value)
        if match:
            return int(match.group(1), 16)
    return None


class ArgError(Exception):
    pass


def _arg_error(index: int, name: str, message: str) -> ArgError:
    return ArgError(f"bad argument #{index} to '{name}' ({message})")


def check_number(args: tuple[Any, ...], index: int, name: str) -> float | int:
    present = index <= len(args)
    value = args[index - 1] if present else None
    number = to_number(value)
    if number is None:
        got = lua_typename(value, present)
        raise _arg_error(index, name, f"number expected, got {got}")
    return number


def check_string(args: tuple[Any, ...], index: int, name: str) -> bytes:
    present = index <= len(args)
    value = args[index - 1] if present else None
    if isinstance(value, bytes):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return lua_number_text(value)
    raise _arg_error(index, name, f"string expected, got {lua_typename(value, present)}")


def lua_number_text(value: float) -> bytes:
    if isinstance(value, int):
        value = float(value)
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if math.isnan(value):
        return b"nan" if math.copysign(1, value) > 0 else b"-nan"
    return b"%.14g" % value


class ScriptRaise(Exception):
    """Raised by a Python function called from a script: the Lua error it
    raises there (a {err=...} table, or a message). The error handler and
    pcall unwrap it (lupa hands Lua the exception object)."""

    def __init__(self, value: Any) -> None:
        super().__init__("Lua error")
        self.value = value


def fits(size: int, room: int) -> bool:
    """Whether `size` bytes handed to Lua fit in the `room` its memory cap
    leaves, with a margin: lupa pushes a Python value into Lua holding the
    GIL, and a Lua out-of-memory error there deadlocks the process, so a value
    that might not fit is refused as a script error instead."""
    return 2 * size + 64 * 1024 <= room


def _guard(
    function: Callable[..., Result], where: Callable[[], bytes], room: Callable[[], int]
) -> Callable[..., Any]:
    """A library function as Lua calls it: its results, or a Lua error
    prefixed with the script's position (as luaL_error writes it)."""

    def guarded(*args: Any) -> Any:
        try:
            result = function(*args)
        except ArgError as exc:
            result = (False, str(exc).encode())
        except (_struct.error, OverflowError, ValueError) as exc:
            result = (False, str(exc).encode())
        if result[0] and isinstance(result[1], bytes) and not fits(len(result[1]), room()):
            result = (False, b"not enough memory")
        if not result[0]:
            raise ScriptRaise(where() + result[1])
        if len(result) == 3:
            table, count = result[1], result[2]
            return tuple(table[index] for index in range(1, count + 1))
        return result[1]

    return guarded


# --- bit (LuaBitOp) -------------------------------------------------------------


def _tobit(number: float | int) -> int:
    if isinstance(number, float):
        if not math.isfinite(number):
            return 0
        number = round(number)  # the 2^52+2^51 trick: round half to even
    value = number & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _bit_lib() -> dict[bytes, Any]:
    def unary(name: str, op: Callable[[int], int]) -> Callable[..., Result]:
        def f(*args: Any) -> Result:
            return True, _tobit(op(_tobit(check_number(args, 1, name)) & 0xFFFFFFFF))

        return f

    def nary(name: str, op: Callable[[int, int], int]) -> Callable[..., Result]:
        def f(*args: Any) -> Result:
            value = _tobit(check_number(args, 1, name)) & 0xFFFFFFFF
            for index in range(2, len(args) + 1):
                value = op(value, _tobit(check_number(args, index, name)) & 0xFFFFFFFF)
            return True, _tobit(value)

        return f

    def shift(name: str, op: Callable[[int, int], int]) -> Callable[..., Result]:
        def f(*args: Any) -> Result:
            value = _tobit(check_number(args, 1, name)) & 0xFFFFFFFF
            count = _tobit(check_number(args, 2, name)) & 31
            return True, _tobit(op(value, count) & 0xFFFFFFFF)

        return f

    def tohex(*args: Any) -> Result:
        value = _tobit(check_number(args, 1, "tohex")) & 0xFFFFFFFF
        digits = 8
        if len(args) >= 2 and args[1] is not None:
            digits = _tobit(check_number(args, 2, "tohex"))
        upper = digits < 0
        digits = min(abs(digits), 8)
        text = f"{value & ((1 << (4 * digits)) - 1):0{digits}x}" if digits else ""
        return True, (text.upper() if upper else text).encode()

    def arshift(value: int, count: int) -> int:
        signed = value - (1 << 32) if value & 0x80000000 else value
        return signed >> count

    def bswap(value: int) -> int:
        return int.from_bytes(value.to_bytes(4, "little"), "big")

    return {
        b"tobit": unary("tobit", lambda v: v),
        b"bnot": unary("bnot", lambda v: ~v),
        b"bswap": unary("bswap", bswap),
        b"band": nary("band", lambda a, b: a & b),
        b"bor": nary("bor", lambda a, b: a | b),
        b"bxor": nary("bxor", lambda a, b: a ^ b),
        b"lshift": shift("lshift", lambda v, n: v << n),
        b"rshift": shift("rshift", lambda v, n: v >> n),
        b"arshift": shift("arshift", arshift),
        b"rol": shift("rol", lambda v, n: (v << n) | (v >> (32 - n)) if n else v),
        b"ror": shift("ror", lambda v, n: (v >> n) | (v << (32 - n)) if n else v),
        b"tohex": tohex,
    }


# --- cjson ------------------------------------------------------------------------

_ESCAPES = {i: b"\\u%04x" % i for i in range(32)}
_ESCAPES.update(
    {
        ord('"'): b'\\"',
        ord("\\"): b"\\\\",
        ord("/"): b"\\/",
        8: b"\\b",
        12: b"\\f",
        10: b"\\n",
        13: b"\\r",
        9: b"\\t",
        127: b"\\u007f",
    }
)
_ESCAPE_TABLE = [_ESCAPES.get(i, bytes([i])) for i in range(256)]
_NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f"\\/\x7f]')


def _json_string(data: bytes) -> bytes:
    if _NEEDS_ESCAPE.search(data) is None:
        return b'"' + data + b'"'
    return b'"' + b"".join(_ESCAPE_TABLE[byte] for byte in data) + b'"'


class _JsonError(Exception):
    pass


class _Cjson:
    def __init__(self, lua: Any) -> None:
        self.lua = lua
        self.next = lua.eval("next")
        self.rawequal = lua.eval("rawequal")
        self.null: Any = None  # set once the library table exists
        self.encode_max_depth = 1000
        self.decode_max_depth = 1000
        self.precision = 14
        self.sparse_convert = False
        self.sparse_ratio = 2
        self.sparse_safe = 10
        self.encode_invalid = False
        self.decode_invalid = True
        self.keep_buffer = True

    # encode

    def encode(self, *args: Any) -> Result:
        if len(args) != 1:
            raise _arg_error(1, "encode", "expected 1 argument")
        out: list[bytes] = []
        try:
            self._encode(args[0], 0, out)
        except _JsonError as exc:
            return False, str(exc).encode()
        except RecursionError:  # Python's stack is shorter than Lua's: nesting all the same
            return False, b"Cannot serialise, excessive nesting (1001)"
        return True, b"".join(out)

    def _number(self, value: float | int) -> bytes:
        if isinstance(value, float) and not math.isfinite(value):
            if not self.encode_invalid:
                raise _JsonError("Cannot serialise number: must not be NaN or Inf")
            if math.isnan(value):
                return b"nan"
            return b"inf" if value > 0 else b"-inf"
        return b"%.*g" % (self.precision, float(value))

    def _encode(self, value: Any, depth: int, out: list[bytes]) -> None:
        if isinstance(value, bytes):
            out.append(_json_string(value))
        elif value is None:
            out.append(b"null")
        elif isinstance(value, bool):
            out.append(b"true" if value else b"false")
        elif isinstance(value, (int, float)):
            out.append(self._number(value))
        elif lupa.lua_type(value) == "table":
            depth += 1
            if depth > self.encode_max_depth:
                raise _JsonError(f"Cannot serialise, excessive nesting ({depth})")
            length = self._array_length(value)
            if length > 0:
                out.append(b"[")
                for index in range(1, length + 1):
                    if index > 1:
                        out.append(b",")
                    self._encode(value[index], depth, out)
                out.append(b"]")
            else:
                out.append(b"{")
                first = True
                for key, item in self._pairs(value):
                    if not first:
                        out.append(b",")
                    first = False
                    if isinstance(key, bytes):
                        out.append(_json_string(key))
                    elif isinstance(key, (int, float)) and not isinstance(key, bool):
                        out.append(b'"' + self._number(key) + b'"')
                    else:
                        raise _JsonError(
                            f"Cannot serialise {lua_typename(key)}: "
                            "table key must be a number or string"
                        )
                    out.append(b":")
                    self._encode(item, depth, out)
                out.append(b"}")
        elif self.null is not None and self.rawequal(value, self.null):
            out.append(b"null")
        else:
            raise _JsonError(f"Cannot serialise {lua_typename(value)}: type not supported")

    def _pairs(self, table: Any) -> list[tuple[Any, Any]]:
        items = []
        step = self.next(table, None)
        while step is not None:
            items.append(step)
            step = self.next(table, step[0])
        return items

    def _array_length(self, table: Any) -> int:
        """lua_array_length: the largest index if every key is a positive
        integer, -1 otherwise; sparse arrays per encode_sparse_array."""
        largest = items = 0
        for key, _ in self._pairs(table):
            number = isinstance(key, (int, float)) and not isinstance(key, bool)
            if number and key >= 1 and float(key) == math.floor(key):
                largest = max(largest, int(key))
                items += 1
                continue
            return -1
        if (
            self.sparse_ratio > 0
            and largest > items * self.sparse_ratio
            and largest > self.sparse_safe
        ):
            if not self.sparse_convert:
                raise _JsonError("Cannot serialise table: excessively sparse array")
            return -1
        return largest

    # decode

    def decode(self, *args: Any) -> Result:
        if len(args) != 1:
            raise _arg_error(1, "decode", "expected 1 argument")
        text = check_string(args, 1, "decode")
        parser = _JsonParser(text, self)
        try:
            value = parser.value_top()
        except _JsonError as exc:
            return False, str(exc).encode()
        return True, value

    def config(self, name: str) -> Callable[..., Result]:
        def configure(*args: Any) -> Result:
            if name == "encode_sparse_array":
                if len(args) >= 1 and args[0] is not None:
                    self.sparse_convert = bool(args[0])
                if len(args) >= 2 and args[1] is not None:
                    self.sparse_ratio = int(check_number(args, 2, name))
                if len(args) >= 3 and args[2] is not None:
                    self.sparse_safe = int(check_number(args, 3, name))
                table = self.lua.table(self.sparse_convert, self.sparse_ratio, self.sparse_safe)
                return True, table, 3
            attribute = {
                "encode_max_depth": "encode_max_depth",
                "decode_max_depth": "decode_max_depth",
                "encode_number_precision": "precision",
                "encode_keep_buffer": "keep_buffer",
                "encode_invalid_numbers": "encode_invalid",
                "decode_invalid_numbers": "decode_invalid",
            }[name]
            if args and args[0] is not None:
                current = getattr(self, attribute)
                if isinstance(current, bool):
                    setattr(self, attribute, bool(args[0]))
                else:
                    number = int(check_number(args, 1, name))
                    if attribute == "precision" and not 1 <= number <= 14:
                        raise _arg_error(1, name, "expected integer between 1 and 14")
                    setattr(self, attribute, number)
            return True, getattr(self, attribute)

        return configure


class _JsonParser:
    WHITESPACE = b" \t\n\r"

    def __init__(self, text: bytes, cjson: _Cjson) -> None:
        self.text = text
        self.pos = 0
        self.cjson = cjson
        self.lua = cjson.lua
        self.depth = 0

    # tokens: (kind, value, index)
    def token(self) -> tuple[str, Any, int]:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in self.WHITESPACE:
            pos += 1
        self.pos = pos
        if pos >= len(text):
            return "T_END", None, pos
        ch = text[pos : pos + 1]
        simple = {
            b"{": "T_OBJ_BEGIN",
            b"}": "T_OBJ_END",
            b"[": "T_ARR_BEGIN",
            b"]": "T_ARR_END",
            b":": "T_COLON",
            b",": "T_COMMA",
        }
        if ch in simple:
            self.pos = pos + 1
            return simple[ch], None, pos
        if ch == b'"':
            return self.string_token(pos)
        for word, kind, value in (
            (b"true", "T_BOOLEAN", True),
            (b"false", "T_BOOLEAN", False),
            (b"null", "T_NULL", None),
        ):
            if text.startswith(word, pos):
                self.pos = pos + len(word)
                return kind, value, pos
        if ch in b"-0123456789" or (
            self.cjson.decode_invalid and text[pos : pos + 3].lower() in (b"inf", b"nan")
        ):
            return self.number_token(pos)
        return "T_ERROR", "invalid token", pos

    _NUM = re.compile(
        rb"-?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.I
    )

    def number_token(self, pos: int) -> tuple[str, Any, int]:
        text = self.text
        body = text[pos + 1 :] if text[pos : pos + 1] == b"-" else text[pos:]
        if body[:1] == b"0" and body[1:2] and body[1:2] in b"xX":
            return "T_ERROR", "invalid number", pos
        match = self._NUM.match(text, pos)
        if match is None:
            return "T_ERROR", "invalid number", pos
        word = match.group(0)
        if not self.cjson.decode_invalid and re.search(
            rb"[a-zA-Z]", word.replace(b"e", b"").replace(b"E", b"")
        ):
            return "T_ERROR", "invalid number", pos
        self.pos = match.end()
        return "T_NUMBER", float(word), pos

    def string_token(self, pos: int) -> tuple[str, Any, int]:
        text = self.text
        out = bytearray()
        i = pos + 1
        while True:
            if i >= len(text):
                return "T_ERROR", "unexpected end of string", pos
            ch = text[i]
            if ch == 0x22:
                break
            if ch == 0x5C:
                if i + 1 >= len(text):
                    return "T_ERROR", "unexpected end of string", pos
                esc = text[i + 1 : i + 2]
                mapping = {b'"': b'"', b"\\": b"\\", b"/": b"/", b"b": b"\b", b"f": b"\f",
                           b"n": b"\n", b"r": b"\r", b"t": b"\t"}  # fmt: skip
                if esc in mapping:
                    out += mapping[esc]
                    i += 2
                    continue
                if esc == b"u":
                    decoded = self.unicode_escape(i)
                    if decoded is None:
                        return "T_ERROR", "invalid unicode escape code", pos
                    data, i = decoded
                    out += data
                    continue
                return "T_ERROR", "invalid escape code", pos
            out.append(ch)
            i += 1
        self.pos = i + 1
        return "T_STRING", bytes(out), pos

    def unicode_escape(self, i: int) -> tuple[bytes, int] | None:
        text = self.text
        hexa = text[i + 2 : i + 6]
        if len(hexa) != 4 or not all(c in b"0123456789abcdefABCDEF" for c in hexa):
            return None
        code = int(hexa, 16)
        i += 6
        if 0xD800 <= code <= 0xDBFF:
            if text[i : i + 2] != b"\\u":
                return None
            low_hex = text[i + 2 : i + 6]
            if len(low_hex) != 4 or not all(c in b"0123456789abcdefABCDEF" for c in low_hex):
                return None
            low = int(low_hex, 16)
            if not 0xDC00 <= low <= 0xDFFF:
                return None
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            i += 6
        elif 0xDC00 <= code <= 0xDFFF:
            return None
        return chr(code).encode("utf-8", "surrogatepass"), i

    def fail(self, expected: str, token: tuple[str, Any, int]) -> _JsonError:
        kind, value, index = token
        found = value if kind == "T_ERROR" else kind
        return _JsonError(f"Expected {expected} but found {found} at character {index + 1}")

    def value_top(self) -> Any:
        value = self.value(self.token())
        end = self.token()
        if end[0] != "T_END":
            raise self.fail("the end", end)
        return value

    def value(self, token: tuple[str, Any, int]) -> Any:
        kind, value, index = token
        if kind == "T_NUMBER":
            if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
                return int(value)
            return value
        if kind in ("T_STRING", "T_BOOLEAN"):
            return value
        if kind == "T_NULL":
            return self.cjson.null
        if kind == "T_OBJ_BEGIN":
            return self.object(index)
        if kind == "T_ARR_BEGIN":
            return self.array(index)
        raise self.fail("value", token)

    def nest(self, index: int) -> None:
        self.depth += 1
        if self.depth > self.cjson.decode_max_depth:
            raise _JsonError(
                f"Found too many nested data structures ({self.depth}) at character {index + 1}"
            )

    def object(self, index: int) -> Any:
        self.nest(index)
        table = self.lua.table()
        token = self.token()
        if token[0] == "T_OBJ_END":
            self.depth -= 1
            return table
        while True:
            if token[0] != "T_STRING":
                raise self.fail("object key string", token)
            key = token[1]
            colon = self.token()
            if colon[0] != "T_COLON":
                raise self.fail("colon", colon)
            table[key] = self.value(self.token())
            token = self.token()
            if token[0] == "T_OBJ_END":
                self.depth -= 1
                return table
            if token[0] != "T_COMMA":
                raise self.fail("comma or object end", token)
            token = self.token()

    def array(self, index: int) -> Any:
        self.nest(index)
        table = self.lua.table()
        token = self.token()
        if token[0] == "T_ARR_END":
            self.depth -= 1
            return table
        position = 1
        while True:
            table[position] = self.value(token)
            position += 1
            token = self.token()
            if token[0] == "T_ARR_END":
                self.depth -= 1
                return table
            if token[0] != "T_COMMA":
                raise self.fail("comma or array end", token)
            token = self.token()


# --- cmsgpack ---------------------------------------------------------------------

_MAX_NESTING = 16


class _Cmsgpack:
    def __init__(self, lua: Any) -> None:
        self.lua = lua
        self.next = lua.eval("next")
        self.objlen = lua.eval("function(t) return #t end")

    def pack(self, *args: Any) -> Result:
        if not args:
            raise _arg_error(0, "pack", "MessagePack pack needs input.")
        out = bytearray()
        for value in args:
            self._encode(value, 0, out)
        return True, bytes(out)

    def _encode(self, value: Any, level: int, out: bytearray) -> None:
        if isinstance(value, bytes):
            size = len(value)
            if size < 32:
                out.append(0xA0 | size)
            elif size <= 0xFF:
                out += b"\xd9" + bytes([size])
            elif size <= 0xFFFF:
                out += b"\xda" + size.to_bytes(2, "big")
            else:
                out += b"\xdb" + size.to_bytes(4, "big")
            out += value
        elif isinstance(value, bool):
            out.append(0xC3 if value else 0xC2)
        elif isinstance(value, (int, float)):
            number = float(value)
            if (
                not math.isinf(number)
                and not math.isnan(number)
                and number == int(number)
                and (-(2**63) <= number < 2**63)
            ):
                self._integer(int(number), out)
            else:
                as_float = (
                    _struct.unpack(">f", _struct.pack(">f", number))[0]
                    if (math.isnan(number) or math.isinf(number) or abs(number) < 3.5e38)
                    else None
                )
                if as_float is not None and (as_float == number or math.isnan(number)):
                    out += b"\xca" + _struct.pack(">f", number)
                else:
                    out += b"\xcb" + _struct.pack(">d", number)
        elif lupa.lua_type(value) == "table" and level < _MAX_NESTING:
            self._table(value, level, out)
        else:
            out.append(0xC0)

    @staticmethod
    def _integer(n: int, out: bytearray) -> None:
        if n >= 0:
            if n <= 127:
                out.append(n)
            elif n <= 0xFF:
                out += b"\xcc" + bytes([n])
            elif n <= 0xFFFF:
                out += b"\xcd" + n.to_bytes(2, "big")
            elif n <= 0xFFFFFFFF:
                out += b"\xce" + n.to_bytes(4, "big")
            else:
                out += b"\xcf" + n.to_bytes(8, "big")
        elif n >= -32:
            out.append(n & 0xFF)
        elif n >= -128:
            out += b"\xd0" + n.to_bytes(1, "big", signed=True)
        elif n >= -32768:
            out += b"\xd1" + n.to_bytes(2, "big", signed=True)
        elif n >= -(2**31):
            out += b"\xd2" + n.to_bytes(4, "big", signed=True)
        else:
            out += b"\xd3" + n.to_bytes(8, "big", signed=True)

    def _pairs(self, table: Any) -> list[tuple[Any, Any]]:
        items = []
        step = self.next(table, None)
        while step is not None:
            items.append(step)
            step = self.next(table, step[0])
        return items

    def _table(self, table: Any, level: int, out: bytearray) -> None:
        pairs = self._pairs(table)
        count = largest = 0
        is_array = True
        for key, _ in pairs:
            if (
                isinstance(key, (int, float))
                and not isinstance(key, bool)
                and key > 0
                and float(key) == math.floor(key)
            ):
                count += 1
                largest = max(largest, int(key))
            else:
                is_array = False
                break
        if is_array and largest == count:
            length = self.objlen(table)
            if length < 16:
                out.append(0x90 | length)
            elif length <= 0xFFFF:
                out += b"\xdc" + length.to_bytes(2, "big")
            else:
                out += b"\xdd" + length.to_bytes(4, "big")
            for index in range(1, length + 1):
                self._encode(table[index], level + 1, out)
            return
        size = len(pairs)
        if size < 16:
            out.append(0x80 | size)
        elif size <= 0xFFFF:
            out += b"\xde" + size.to_bytes(2, "big")
        else:
            out += b"\xdf" + size.to_bytes(4, "big")
        for key, value in pairs:
            self._encode(key, level + 1, out)
            self._encode(value, level + 1, out)

    # unpack

    def unpack(self, *args: Any) -> Result:
        data = check_string(args, 1, "unpack")
        return self._unpack(data, 0, 0)

    def unpack_one(self, *args: Any) -> Result:
        data = check_string(args, 1, "unpack_one")
        offset = (
            int(check_number(args, 2, "unpack_one"))
            if len(args) >= 2 and args[1] is not None
            else 0
        )
        return self._unpack(data, 1, offset)

    def unpack_limit(self, *args: Any) -> Result:
        data = check_string(args, 1, "unpack_limit")
        limit = int(check_number(args, 2, "unpack_limit")) if len(args) >= 2 else 0
        offset = (
            int(check_number(args, 3, "unpack_limit"))
            if len(args) >= 3 and args[2] is not None
            else 0
        )
        return self._unpack(data, limit, offset)

    def _unpack(self, data: bytes, limit: int, offset: int) -> Result:
        if offset < 0 or limit < 0:
            return (
                False,
                f"Invalid request to unpack with offset of {offset} and limit of {limit}.".encode(),
            )
        if offset > len(data):
            return False, f"Start offset {offset} greater than input length {len(data)}.".encode()
        decode_all = not limit and not offset
        values: list[Any] = []
        pos = offset
        try:
            while pos < len(data) and (decode_all or len(values) < limit or not limit):
                value, pos = self._decode(data, pos)
                values.append(value)
                if not decode_all and limit and len(values) >= limit:
                    break
        except IndexError:
            return False, b"Missing bytes in input."
        except ValueError:
            return False, b"Bad data format in input."
        if not decode_all:
            values.insert(0, -1 if pos >= len(data) else pos)
        table = self.lua.table()
        for index, value in enumerate(values, 1):
            table[index] = value
        return True, table, len(values)

    def _need(self, data: bytes, pos: int, size: int) -> bytes:
        if pos + size > len(data):
            raise IndexError
        return data[pos : pos + size]

    def _decode(self, data: bytes, pos: int) -> tuple[Any, int]:
        tag = self._need(data, pos, 1)[0]
        pos += 1
        if tag <= 0x7F:
            return tag, pos
        if 0x80 <= tag <= 0x8F:
            return self._map(data, pos, tag & 0x0F)
        if 0x90 <= tag <= 0x9F:
            return self._array(data, pos, tag & 0x0F)
        if 0xA0 <= tag <= 0xBF:
            size = tag & 0x1F
            return self._need(data, pos, size), pos + size
        if tag >= 0xE0:
            return tag - 256, pos
        if tag == 0xC0:
            return None, pos
        if tag == 0xC2:
            return False, pos
        if tag == 0xC3:
            return True, pos
        sized = {0xCC: (1, False), 0xCD: (2, False), 0xCE: (4, False), 0xCF: (8, False),
                 0xD0: (1, True), 0xD1: (2, True), 0xD2: (4, True), 0xD3: (8, True)}  # fmt: skip
        if tag in sized:
            size, signed = sized[tag]
            number = int.from_bytes(self._need(data, pos, size), "big", signed=signed)
            return number if abs(number) < 2**53 else float(number), pos + size
        if tag == 0xCA:
            return _struct.unpack(">f", self._need(data, pos, 4))[0], pos + 4
        if tag == 0xCB:
            return _struct.unpack(">d", self._need(data, pos, 8))[0], pos + 8
        lengths = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}
        if tag in lengths:
            width = lengths[tag]
            size = int.from_bytes(self._need(data, pos, width), "big")
            pos += width
            return self._need(data, pos, size), pos + size
        if tag in (0xDC, 0xDD):
            width = 2 if tag == 0xDC else 4
            size = int.from_bytes(self._need(data, pos, width), "big")
            return self._array(data, pos + width, size)
        if tag in (0xDE, 0xDF):
            width = 2 if tag == 0xDE else 4
            size = int.from_bytes(self._need(data, pos, width), "big")
            return self._map(data, pos + width, size)
        raise ValueError(tag)

    def _array(self, data: bytes, pos: int, size: int) -> tuple[Any, int]:
        table = self.lua.table()
        for index in range(1, size + 1):
            value, pos = self._decode(data, pos)
            if value is not None:
                table[index] = value
        return table, pos

    def _map(self, data: bytes, pos: int, size: int) -> tuple[Any, int]:
        table = self.lua.table()
        for _ in range(size):
            key, pos = self._decode(data, pos)
            value, pos = self._decode(data, pos)
            if key is not None:
                table[key] = value
        return table, pos


# --- struct -----------------------------------------------------------------------

_MAXINTSIZE = 32
_MAXALIGN = 8


class _Struct:
    def __init__(self, lua: Any) -> None:
        self.lua = lua

    @staticmethod
    def _getnum(fmt: bytes, i: int, default: int) -> tuple[int, int]:
        if i >= len(fmt) or not chr(fmt[i]).isdigit():
            return default, i
        value = 0
        while i < len(fmt) and chr(fmt[i]).isdigit():
            digit = fmt[i] - 48
            if value > (2**31 - 1) // 10 or value * 10 > (2**31 - 1) - digit:
                raise ArgError("integral size overflow")
            value = value * 10 + digit
            i += 1
        return value, i

    def _optsize(self, opt: str, fmt: bytes, i: int) -> tuple[int, int]:
        if opt in "Bbx":
            return 1, i
        if opt in "Hh":
            return 2, i
        if opt in "LlT":
            return 8, i
        if opt == "f":
            return 4, i
        if opt == "d":
            return 8, i
        if opt == "c":
            return self._getnum(fmt, i, 1)
        if opt in "iI":
            size, i = self._getnum(fmt, i, 4)
            if size > _MAXINTSIZE:
                raise ArgError(f"integral size {size} is larger than limit of {_MAXINTSIZE}")
            return size, i
        return 0, i

    @staticmethod
    def _toalign(length: int, align: int, opt: str, size: int) -> int:
        if size == 0 or opt == "c":
            return 0
        size = min(size, align)
        return (size - (length & (size - 1))) & (size - 1)

    def _options(self, fmt: bytes, name: str) -> Any:
        """Yield (opt, size, little, align) and handle control options."""
        little, align = True, 1
        i = 0
        while i < len(fmt):
            opt = chr(fmt[i])
            i += 1
            size, i = self._optsize(opt, fmt, i)
            if opt in " ":
                continue
            if opt == ">":
                little = False
                continue
            if opt in "<=":
                little = True
                continue
            if opt == "!":
                align, i = self._getnum(fmt, i, _MAXALIGN)
                if align & (align - 1):
                    raise ArgError(f"alignment {align} is not a power of 2")
                continue
            if opt not in "bBhHlLTiIfdcsx":
                raise _arg_error(1, name, f"invalid format option '{opt}'")
            yield opt, size, little, align

    def pack(self, *args: Any) -> Result:
        fmt = check_string(args, 1, "pack")
        out = bytearray()
        arg = 2
        for opt, size, little, align in self._options(fmt, "pack"):
            pad = self._toalign(len(out), align, opt, size)
            out += b"\0" * pad
            if opt == "x":
                out.append(0)
            elif opt in "bBhHlLTiI":
                number = check_number(args, arg, "pack")
                arg += 1
                if isinstance(number, float):
                    if not math.isfinite(number) or abs(number) >= 2**64:
                        value = 1 << 63
                    else:
                        value = int(number)
                else:
                    value = number
                value &= (1 << 64) - 1
                if size > 8:
                    data = value.to_bytes(8, "little") + b"\0" * (size - 8)
                else:
                    data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
                out += data if little else data[::-1]
            elif opt in "fd":
                number = float(check_number(args, arg, "pack"))
                arg += 1
                code = "f" if opt == "f" else "d"
                out += _struct.pack(("<" if little else ">") + code, number)
            elif opt in "cs":
                data = check_string(args, arg, "pack")
                arg += 1
                length = size if (opt == "c" and size) else len(data)
                if len(data) < length:
                    raise _arg_error(arg - 1, "pack", "string too short")
                out += data[:length]
                if opt == "s":
                    out.append(0)
        return True, bytes(out)

    def unpack(self, *args: Any) -> Result:
        fmt = check_string(args, 1, "unpack")
        data = check_string(args, 2, "unpack")
        pos = 0
        if len(args) >= 3 and args[2] is not None:
            pos = int(check_number(args, 3, "unpack")) - 1
        if not 0 <= pos <= len(data):
            raise _arg_error(3, "unpack", "offset must be 1 or greater")
        values: list[Any] = []
        for opt, size, little, align in self._options(fmt, "unpack"):
            pos += self._toalign(pos, align, opt, size)
            if (opt not in "sc" or size) and pos + size > len(data):
                raise _arg_error(2, "unpack", "data string too short")
            if opt == "x":
                pos += 1
            elif opt in "bBhHlLTiI":
                raw = data[pos : pos + size]
                raw = raw if not little else raw[::-1]  # big-endian order now
                value = 0
                for byte in raw:
                    value = ((value << 8) | byte) & ((1 << 64) - 1)
                if opt.islower() and opt != "x":
                    bits = min(size * 8, 64)
                    if value & (1 << (bits - 1)):
                        value -= 1 << bits
                values.append(value if abs(value) < 2**53 else float(value))
                pos += size
            elif opt in "fd":
                code = "f" if opt == "f" else "d"
                values.append(
                    _struct.unpack(("<" if little else ">") + code, data[pos : pos + size])[0]
                )
                pos += size
            elif opt == "c":
                if size == 0:
                    if not values or not isinstance(values[-1], (int, float)):
                        raise ArgError("format 'c0' needs a previous size")
                    size = int(values.pop())
                    if not (size <= len(data) and pos <= len(data) - size):
                        raise _arg_error(2, "unpack", "data string too short")
                values.append(data[pos : pos + size])
                pos += size
            elif opt == "s":
                end = data.find(b"\0", pos)
                if end < 0:
                    raise ArgError("unfinished string in data")
                values.append(data[pos:end])
                pos = end + 1
        values.append(pos + 1)
        table = self.lua.table()
        for index, value in enumerate(values, 1):
            table[index] = value
        return True, table, len(values)

    def size(self, *args: Any) -> Result:
        fmt = check_string(args, 1, "size")
        total = 0
        for opt, size, _little, align in self._options(fmt, "size"):
            if opt == "s" or (opt == "c" and size == 0):
                shown = "c0" if opt == "c" else opt
                raise _arg_error(1, "size", f"option '{shown}' has no fixed size")
            total += self._toalign(total, align, opt, size) + size
        return True, total


def install(lua: Any, where: Callable[[], bytes], null: Any) -> dict[bytes, Any]:
    """The four libraries as Lua tables of Python functions (C functions to
    Lua: a tail call keeps the script's frame, for error positions)."""
    cjson = _Cjson(lua)
    msgpack = _Cmsgpack(lua)
    struct = _Struct(lua)

    def room() -> int:
        cap: int = lua.get_max_memory() or 0
        return cap - int(lua.get_memory_used()) if cap else 1 << 62

    def guard(function: Callable[..., Result]) -> Callable[..., Any]:
        return _guard(function, where, room)

    bit = {name: guard(function) for name, function in _bit_lib().items()}
    libs: dict[bytes, dict[bytes, Any]] = {
        b"bit": bit,
        b"cjson": {
            b"encode": guard(cjson.encode),
            b"decode": guard(cjson.decode),
            **{
                name.encode(): guard(cjson.config(name))
                for name in (
                    "encode_sparse_array",
                    "encode_max_depth",
                    "decode_max_depth",
                    "encode_number_precision",
                    "encode_keep_buffer",
                    "encode_invalid_numbers",
                    "decode_invalid_numbers",
                )
            },
            b"_NAME": b"cjson",
            b"_VERSION": b"2.1.0",
        },
        b"cmsgpack": {
            b"pack": guard(msgpack.pack),
            b"unpack": guard(msgpack.unpack),
            b"unpack_one": guard(msgpack.unpack_one),
            b"unpack_limit": guard(msgpack.unpack_limit),
            b"_NAME": b"cmsgpack",
            b"_VERSION": b"lua-cmsgpack 0.4.0",
            b"_COPYRIGHT": b"Copyright (C) 2012, Salvatore Sanfilippo",
            b"_DESCRIPTION": b"MessagePack C implementation for Lua",
        },
        b"struct": {
            b"pack": guard(struct.pack),
            b"unpack": guard(struct.unpack),
            b"size": guard(struct.size),
        },
    }
    tables = {name: lua.table_from(lib) for name, lib in libs.items()}
    # cjson.null: a lightuserdata NULL in Redis; here a userdata of its own
    tables[b"cjson"][b"null"] = null
    cjson.null = null
    return tables
