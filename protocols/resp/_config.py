# CONFIG GET/SET: the parameters this server has, with Redis's names and
# replies. Only parameters that exist are listed; unknown ones are errors on
# SET and absent from GET, as in Redis. A parameter may act when set (the
# server hooks requirepass to the ACL default user's password).
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final

from ._args import parse_int
from ._glob import compile_glob
from ._reply import ErrorReply

__all__ = ["Config"]


@dataclasses.dataclass
class Parameter:
    value: bytes
    settable: bool = True
    check: Callable[[bytes], bytes] | None = None
    # called with the new value once CONFIG SET has set it (requirepass: the
    # default user's password)
    on_set: Callable[[bytes], None] | None = None


def _yes_no(value: bytes) -> bytes:
    if value.lower() not in (b"yes", b"no"):
        raise ValueError("argument must be 'yes' or 'no'")
    return value.lower()


# maxmemory-policy's values, in the order Redis's error lists them. netsvc
# evicts nothing; the policy decides what OBJECT reports (LFU: FREQ, else
# IDLETIME) and whether values share integers (OBJECT REFCOUNT).
MAXMEMORY_POLICIES: Final = (
    b"volatile-lru", b"volatile-lfu", b"volatile-random", b"volatile-ttl",
    b"allkeys-lru", b"allkeys-lfu", b"allkeys-random", b"noeviction",
)  # fmt: skip


def _policy(value: bytes) -> bytes:
    if value.lower() not in MAXMEMORY_POLICIES:
        raise ValueError(
            "argument(s) must be one of the following: "
            + ", ".join(policy.decode() for policy in MAXMEMORY_POLICIES)
        )
    return value.lower()


def _int_at_least_0(value: bytes) -> bytes:
    """A C int config (lfu-log-factor): 0 to INT_MAX."""
    try:
        number = parse_int(value)
    except ErrorReply:
        raise ValueError("argument couldn't be parsed into an integer") from None
    if not 0 <= number <= 2**31 - 1:
        raise ValueError("argument must be between 0 and 2147483647 inclusive")
    return str(number).encode()


def _non_negative(value: bytes) -> bytes:
    try:
        number = parse_int(value)
    except ErrorReply:
        raise ValueError("argument couldn't be parsed into an integer") from None
    if number < 0:
        raise ValueError("argument must be between 0 and 9223372036854775807 inclusive")
    return str(number).encode()


class Config:
    """The server's CONFIG parameters: the values CONFIG GET shows are the
    ones the server uses (requirepass included)."""

    def __init__(self, initial: dict[bytes, Parameter]) -> None:
        self.parameters = initial

    @classmethod
    def defaults(
        cls,
        *,
        port: int,
        databases: int,
        requirepass: str | None,
        max_bulk: int,
        protected_mode: bool = True,
        lua_memory_limit: int = 64 * 1024 * 1024,
    ) -> Config:
        # scripts: busy-reply-threshold is also lua-time-limit (one value, two names)
        busy_reply_threshold = Parameter(b"5000", check=_non_negative)
        return cls(
            {
                b"port": Parameter(str(port).encode(), settable=False),
                b"bind": Parameter(b"", settable=False),
                b"databases": Parameter(str(databases).encode(), settable=False),
                b"requirepass": Parameter((requirepass or "").encode()),
                b"protected-mode": Parameter(b"yes" if protected_mode else b"no", check=_yes_no),
                b"proto-max-bulk-len": Parameter(str(max_bulk).encode(), settable=False),
                b"timeout": Parameter(b"0", check=_non_negative),
                b"maxclients": Parameter(b"10000", settable=False),
                b"maxmemory": Parameter(b"0", check=_non_negative),
                b"maxmemory-policy": Parameter(b"noeviction", check=_policy),
                b"lfu-log-factor": Parameter(b"10", check=_int_at_least_0),
                b"lfu-decay-time": Parameter(b"1", check=_int_at_least_0),
                # persistence does not exist here; redis-benchmark asks about it
                b"save": Parameter(b"", check=lambda v: v if not v.strip() else _no_save(v)),
                b"appendonly": Parameter(b"no", check=lambda v: _refuse_yes(_yes_no(v))),
                b"busy-reply-threshold": busy_reply_threshold,
                b"lua-time-limit": busy_reply_threshold,
                b"acllog-max-len": Parameter(b"128", check=_non_negative),
                # netsvc's own: the most memory a script's interpreter may use (0: no cap)
                b"lua-memory-limit": Parameter(str(lua_memory_limit).encode(), check=_non_negative),
            }
        )

    def get(self, patterns: list[bytes]) -> dict[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        for pattern in patterns:
            matches = compile_glob(pattern.lower())
            for name, parameter in self.parameters.items():
                if matches(name):
                    found[name] = parameter.value
        return found

    def set(self, changes: dict[bytes, bytes]) -> None:
        """Apply all changes or none, with Redis's error texts."""
        checked: dict[bytes, bytes] = {}
        for raw_name, value in changes.items():
            name = raw_name.lower()
            parameter = self.parameters.get(name)
            shown = raw_name.decode(errors="replace")
            if parameter is None:
                raise ErrorReply(
                    f"ERR Unknown option or number of arguments for CONFIG SET - '{shown}'"
                )
            if not parameter.settable:
                raise ErrorReply(
                    f"ERR CONFIG SET failed (possibly related to argument '{shown}') - "
                    "can't set immutable config"
                )
            try:
                checked[name] = parameter.check(value) if parameter.check else value
            except ValueError as exc:
                raise ErrorReply(
                    f"ERR CONFIG SET failed (possibly related to argument '{shown}') - {exc}"
                ) from None
        for name, value in checked.items():
            parameter = self.parameters[name]
            parameter.value = value
            if parameter.on_set is not None:
                parameter.on_set(value)


def _no_save(value: bytes) -> bytes:
    raise ValueError('this server keeps no snapshots; only save "" is accepted')


def _refuse_yes(value: bytes) -> bytes:
    if value == b"yes":
        raise ValueError("this server has no append-only file")
    return value
