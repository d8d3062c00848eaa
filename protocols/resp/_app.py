# The command table users build on: RespApp maps command names to handlers
# with Redis's arity convention and flags, and produces Redis's own errors for
# unknown commands and wrong argument counts. COMMAND and COMMAND DOCS are
# answered from this table.
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

from ._reply import ErrorReply, Reply, Status

if TYPE_CHECKING:
    from ._client import Client

__all__ = [
    "FLAGS",
    "CommandSpec",
    "Handler",
    "KeyFinder",
    "RespApp",
    "keys_counted",
    "unknown_command",
    "wrong_arity",
]

Handler: TypeAlias = Callable[["Client", list[bytes]], Reply | Awaitable[Reply]]

# Flags a command may carry; the names are Redis's (COMMAND INFO shows them).
FLAGS = frozenset(
    {
        "write",  # changes data: refused in a read-only context
        "readonly",
        "denyoom",
        "admin",
        "pubsub",  # allowed in RESP2's subscribed state
        "noscript",
        "blocking",
        "loading",
        "stale",
        "skip_monitor",
        "fast",
        "no_auth",  # allowed before AUTH when a password is set
        "no_multi",  # executed at once, not queued, inside MULTI
        "allow_busy",
        "movablekeys",  # set by find_keys=: where the keys are depends on the arguments
    }
)


# Finds the keys of a call whose keys a count argument gives (ZUNION numkeys
# key...): the key arguments, or None if the arguments cannot be valid.
KeyFinder = Callable[[list[bytes]], list[bytes] | None]


def keys_counted(count_at: int, *, fixed: tuple[int, ...] = ()) -> KeyFinder:
    """Keys Redis finds with a "keynum" key spec: the arguments at `fixed`
    (ZUNIONSTORE's destination), then as many keys as the argument at
    `count_at` says, right after it (at least one)."""

    def find(argv: list[bytes]) -> list[bytes] | None:
        try:
            count = int(argv[count_at])
        except (IndexError, ValueError):
            return None
        first = count_at + 1
        if count < 1 or first + count > len(argv):
            return None
        return [argv[i] for i in fixed] + argv[first : first + count]

    return find


@dataclasses.dataclass(frozen=True)
class CommandSpec:
    """One registered command."""

    name: str  # lower case
    handler: Handler
    arity: int  # Redis's convention: counts the name; -N means at least N
    flags: frozenset[str]
    flag_order: tuple[str, ...] = ()  # as registered, for COMMAND INFO
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    key_finder: KeyFinder | None = None  # keys a count argument gives ("movablekeys")
    group: str = "generic"
    summary: str = ""
    is_async: bool = False

    name_bytes: bytes = dataclasses.field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        object.__setattr__(self, "name_bytes", self.name.encode())

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity > 0 else argc >= -self.arity

    def keys(self, argv: list[bytes]) -> list[bytes] | None:
        """The key arguments of a call (COMMAND GETKEYS), from the key finder
        or first/last/step; None if the arguments cannot be valid."""
        if self.key_finder is not None:
            return self.key_finder(argv)
        if self.first_key <= 0:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return argv[self.first_key : last + 1 : self.key_step or 1]


def unknown_command(argv: list[bytes]) -> ErrorReply:
    """Redis's text: ERR unknown command 'foo', with args beginning with: 'a' 'b'. As
    processCommand writes it: '%.128s' of the name, each argument quoted with '%.*s' until 128
    bytes are quoted; C strings, so a NUL ends each; the bytes as they are (CR and LF become
    spaces when the error is encoded)."""
    args = b""
    for arg in argv[1:]:
        if len(args) >= 128:
            break
        args += b"'%b' " % _c_string(arg, 128 - len(args))
    text = b"ERR unknown command '%b', with args beginning with: %b" % (
        _c_string(argv[0], 128),
        args,
    )
    return ErrorReply(text.decode("utf-8", "surrogateescape"))


def _c_string(data: bytes, size: int) -> bytes:
    return data.split(b"\0", 1)[0][:size]


def wrong_arity(name: str) -> ErrorReply:
    return ErrorReply(f"ERR wrong number of arguments for '{name}' command")


class RespApp:
    """A table of commands. `RespApp()` starts with netsvc's Redis subset;
    `RespApp(builtins=False)` starts empty.

        app = RespApp()

        @app.command("hello.world", arity=-1, flags=["readonly", "fast"])
        def hello(client, argv):
            return b"hello " + (argv[1] if len(argv) > 1 else b"world")

    Handlers take the Client and the whole argument vector (argv[0] is the
    command name as sent) and return a reply value (see `_reply.py`) or raise
    ErrorReply. `async def` handlers may wait (blocking commands).
    """

    def __init__(self, *, builtins: bool = True) -> None:
        self.commands: dict[bytes, CommandSpec] = {}
        self._as_sent: dict[bytes, CommandSpec] = {}  # lookup() cache: names as clients write them
        # lookup() of a name seen before, with no Python frame: a bound dict.get
        self.lookup_cached: Callable[[bytes], CommandSpec | None] = self._as_sent.get
        if builtins:
            from .commands import BUILTINS

            self.include(BUILTINS)

    def command(
        self,
        name: str,
        *,
        arity: int,
        flags: Iterable[str] = (),
        keys: tuple[int, int, int] = (0, 0, 0),
        find_keys: KeyFinder | None = None,
        group: str = "generic",
        summary: str = "",
        replace: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register a handler for `name`. `keys` is (first, last, step) as in
        COMMAND INFO; `find_keys` finds keys that a count argument gives
        (keys_counted(...): the command then has the "movablekeys" flag).
        Replacing an existing command (a built-in, say) needs `replace=True`,
        so it never happens by accident."""
        flag_order = tuple(dict.fromkeys(flags))
        spec_flags = frozenset(flag_order)
        lowered = name.lower()
        if not lowered or any(ch.isspace() for ch in lowered):
            raise ValueError(f"a command name is one non-empty word, got {name!r}")
        if arity == 0:
            raise ValueError(f"{name}: arity counts the command name, so it is never 0")
        unknown = spec_flags - FLAGS
        if unknown:
            raise ValueError(f"{name}: unknown flags {sorted(unknown)}; known: {sorted(FLAGS)}")
        if lowered.encode() in self.commands and not replace:
            raise ValueError(f"command {name!r} is already registered; pass replace=True")

        if find_keys is not None and "movablekeys" not in flag_order:
            flag_order = (*flag_order, "movablekeys")
            spec_flags = frozenset(flag_order)

        def register(handler: Handler) -> Handler:
            self._as_sent.clear()
            self.commands[lowered.encode()] = CommandSpec(
                name=lowered,
                handler=handler,
                arity=arity,
                flags=spec_flags,
                flag_order=flag_order,
                first_key=keys[0],
                last_key=keys[1],
                key_step=keys[2],
                key_finder=find_keys,
                group=group,
                summary=summary or (inspect.getdoc(handler) or "").partition("\n")[0],
                is_async=inspect.iscoroutinefunction(handler),
            )
            return handler

        return register

    def include(self, other: RespApp | Iterable[CommandSpec], *, replace: bool = False) -> None:
        """Add every command of `other` (an app or specs)."""
        specs = other.commands.values() if isinstance(other, RespApp) else other
        for spec in specs:
            key = spec.name.encode()
            if key in self.commands and not replace:
                raise ValueError(f"command {spec.name!r} is already registered; pass replace=True")
            self.commands[key] = spec
        self._as_sent.clear()

    def lookup(self, name: bytes) -> CommandSpec | None:
        spec = self._as_sent.get(name)
        if spec is None:
            spec = self.commands.get(name.lower())
            if spec is not None and len(self._as_sent) < 4096:
                self._as_sent[name] = spec  # "GET", "get", "Get": each found once
        return spec

    def __len__(self) -> int:
        return len(self.commands)


def describe(spec: CommandSpec) -> list[Any]:
    """COMMAND INFO's entry for one command, in Redis 7's shape."""
    categories = [f"@{spec.group}"]
    if "write" in spec.flags:
        categories.insert(0, "@write")
    elif "readonly" in spec.flags:
        categories.insert(0, "@read")
    categories.append("@fast" if "fast" in spec.flags else "@slow")
    if "blocking" in spec.flags:
        categories.append("@blocking")
    return [
        spec.name.encode(),
        spec.arity,
        [Status(flag) for flag in spec.flag_order],
        spec.first_key,
        spec.last_key,
        spec.key_step,
        [Status(category) for category in categories],
        [],  # tips
        [],  # key specifications
        [],  # subcommands
    ]
