# The command table users build on: RespApp maps command names to handlers
# with Redis's arity convention and flags, and produces Redis's own errors for
# unknown commands and wrong argument counts. Each command also carries what
# ACL rules need: its ACL categories (derived from its flags and group, as
# Redis derives them, plus explicit ones), its subcommands (CONFIG GET) and
# what it does with its keys (Redis's key-spec flags). COMMAND, COMMAND DOCS
# and COMMAND GETKEYSANDFLAGS are answered from this table, COMMAND INFO's
# key specifications derived from where the keys are and their flags.
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from ._reply import ErrorReply, Reply, SetReply, Status
from ._replytypes import OrderedSet

if TYPE_CHECKING:
    from ._client import Client

__all__ = [
    "CATEGORIES",
    "FLAGS",
    "KEY_ACCESS",
    "KEY_DELETE",
    "KEY_INSERT",
    "KEY_OW",
    "KEY_READ",
    "KEY_RM",
    "KEY_RO",
    "KEY_RW",
    "KEY_UPDATE",
    "KEY_VARIABLE_FLAGS",
    "KEY_WRITE",
    "CommandSpec",
    "Handler",
    "KeyFinder",
    "KeyFlags",
    "KeysAfterKeyword",
    "KeysCounted",
    "OrderedSet",
    "RespApp",
    "Subcommand",
    "VariableKeyFlags",
    "key_flag_names",
    "key_specifications",
    "keys_after_keyword",
    "keys_counted",
    "unknown_command",
    "wrong_arity",
]

Handler: TypeAlias = Callable[["Client", list[bytes]], Reply | Awaitable[Reply]]

# Flags a command may carry; the names are Redis's (COMMAND INFO shows them).
FLAGS: Final = frozenset(
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
        "no_mandatory_keys",  # may have no key at all (EVAL, FCALL with numkeys 0)
    }
)


# ACL categories, in Redis's order: ACL CAT lists them so, COMMAND INFO shows
# a command's so.
CATEGORIES: Final = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
    "connection", "transaction", "scripting",
)  # fmt: skip

# The category a command group's commands are in (Redis's command table gives
# them so); "server" and "pubsub" commands get theirs from flags and by name.
GROUP_CATEGORIES: Final = {
    "generic": "keyspace",
    "string": "string",
    "list": "list",
    "hash": "hash",
    "set": "set",
    "sortedset": "sortedset",
    "stream": "stream",
    "bitmap": "bitmap",
    "hyperloglog": "hyperloglog",
    "geo": "geo",
    "connection": "connection",
    "transactions": "transaction",
    "scripting": "scripting",
}

# What a command does with a key: Redis's key-spec flags, as COMMAND
# GETKEYSANDFLAGS shows them. What it does: ACCESS reads the value, UPDATE,
# INSERT and DELETE write it (ACL's %R~ patterns allow the first, %W~ the
# others); its intent: RO, RW, OW (overwrites), RM (removes). KeyFlags: one
# entry per key, the last repeating for the rest (ZUNIONSTORE: (KEY_OW |
# KEY_UPDATE, KEY_RO | KEY_ACCESS) writes its destination and reads its
# sources), or a function of the arguments (SET reads its key only with GET).
# KEY_READ and KEY_WRITE are ACCESS and UPDATE; a command that gives no
# intent is RW if it writes, else RO.
KEY_ACCESS: Final = 1
KEY_UPDATE: Final = 2
KEY_INSERT: Final = 4
KEY_DELETE: Final = 8
KEY_RO: Final = 16
KEY_RW: Final = 32
KEY_OW: Final = 64
KEY_RM: Final = 128
KEY_NOT_KEY: Final = 256
KEY_INCOMPLETE: Final = 512
KEY_VARIABLE_FLAGS: Final = 1024
KEY_READ: Final = KEY_ACCESS
KEY_WRITE: Final = KEY_UPDATE
KEY_WRITES: Final = KEY_UPDATE | KEY_INSERT | KEY_DELETE
KeyFlags: TypeAlias = tuple[int, ...] | Callable[[list[bytes]], tuple[int, ...]]

# in Redis's order (addReplyFlagsForKeyArgs)
KEY_FLAG_NAMES: Final = (
    (KEY_RO, "RO"), (KEY_RW, "RW"), (KEY_OW, "OW"), (KEY_RM, "RM"),
    (KEY_ACCESS, "access"), (KEY_UPDATE, "update"), (KEY_INSERT, "insert"),
    (KEY_DELETE, "delete"), (KEY_NOT_KEY, "not_key"), (KEY_INCOMPLETE, "incomplete"),
    (KEY_VARIABLE_FLAGS, "variable_flags"),
)  # fmt: skip


def key_flag_names(flags: int) -> list[str]:
    """A key's flags as COMMAND GETKEYSANDFLAGS names them."""
    if not flags & (KEY_RO | KEY_RW | KEY_OW | KEY_RM):
        flags |= KEY_RW if flags & KEY_WRITES else KEY_RO
    return [name for bit, name in KEY_FLAG_NAMES if flags & bit]


def key_permissions(flags: int) -> int:
    """What ACL key patterns must allow for a key with these flags:
    KEY_READ (~ or %R~) to access it, KEY_WRITE (~ or %W~) to change it."""
    return (KEY_READ if flags & KEY_ACCESS else 0) | (KEY_WRITE if flags & KEY_WRITES else 0)


def implied_categories(flags: Iterable[str], group: str | None = None) -> set[str]:
    """The categories Redis gives a command for its flags (setImplicitACLCategories)
    and for its group."""
    flags = frozenset(flags)
    categories = set()
    if group in GROUP_CATEGORIES:
        categories.add(GROUP_CATEGORIES[group])
    if "write" in flags:
        categories.add("write")
    if "readonly" in flags and "scripting" not in categories:
        categories.add("read")
    if "admin" in flags:
        categories |= {"admin", "dangerous"}
    if "pubsub" in flags:
        categories.add("pubsub")
    if "blocking" in flags:
        categories.add("blocking")
    categories.add("fast" if "fast" in flags else "slow")
    return categories


def _default_key_flags(flags: frozenset[str]) -> tuple[int, ...]:
    """Without better knowledge a read-only command reads its keys; any other
    both reads and writes them (what Redis assumes of a command without key
    specifications)."""
    if "readonly" in flags and "write" not in flags:
        return (KEY_RO | KEY_ACCESS,)
    return (KEY_RW | KEY_ACCESS | KEY_UPDATE,)


def _check_categories(name: str, categories: Iterable[str]) -> frozenset[str]:
    given = frozenset(category.lower().lstrip("@") for category in categories)
    unknown = given - frozenset(CATEGORIES)
    if unknown:
        raise ValueError(
            f"{name}: unknown ACL categories {sorted(unknown)}; known: {', '.join(CATEGORIES)}"
        )
    return given


@dataclasses.dataclass(frozen=True)
class Subcommand:
    """A subcommand of a container command (CONFIG GET, CLIENT KILL), as ACL
    rules (`+config|get`, `-client|kill`, categories) and COMMAND INFO see it.
    The container's handler still runs it; this only describes it. `arity`
    counts the container's name too (CONFIG GET key: -3); `keys` are (first,
    last, step) in the whole call; `categories` add to those its flags and
    its container's group imply."""

    name: str
    arity: int
    flags: tuple[str, ...] = ()
    keys: tuple[int, int, int] = (0, 0, 0)
    key_flags: tuple[int, ...] | None = None
    categories: frozenset[str] = frozenset()
    fullname: str = ""  # "config|get", set when its container is registered

    def of(self, container: str, group: str | None) -> Subcommand:
        """This subcommand of `container`: its full name and all its categories."""
        flags = frozenset(self.flags)
        unknown = flags - FLAGS
        if unknown:
            raise ValueError(f"{container}|{self.name}: unknown flags {sorted(unknown)}")
        fullname = f"{container}|{self.name.lower()}"
        explicit = _check_categories(fullname, self.categories)
        return dataclasses.replace(
            self,
            name=self.name.lower(),
            fullname=fullname,
            categories=frozenset(implied_categories(flags, group) | explicit),
            key_flags=self.key_flags or _default_key_flags(flags),
        )

    def keys_of(self, argv: list[bytes]) -> list[bytes]:
        first, last, step = self.keys
        if first <= 0:
            return []
        end = last if last >= 0 else len(argv) + last
        return argv[first : end + 1 : step or 1]


# Finds the keys of a call whose keys its arguments locate (ZUNION numkeys
# key..., XREAD ... STREAMS key... id...): the key arguments, or None if the
# arguments cannot be valid. keys_counted() and keys_after_keyword() make
# finders that COMMAND INFO can also describe (Redis's key specifications).
KeyFinder = Callable[[list[bytes]], list[bytes] | None]


@dataclasses.dataclass(frozen=True)
class KeysCounted:
    """Keys Redis finds with a "keynum" key spec: the arguments at `fixed`
    (ZUNIONSTORE's destination), then as many keys as the argument at
    `count_at` says, right after it (at least `at_least`)."""

    count_at: int
    fixed: tuple[int, ...] = ()
    at_least: int = 1

    def __call__(self, argv: list[bytes]) -> list[bytes] | None:
        try:
            count = int(argv[self.count_at])
        except (IndexError, ValueError):
            return None
        first = self.count_at + 1
        if count < self.at_least or first + count > len(argv):
            return None
        return [argv[i] for i in self.fixed] + argv[first : first + count]


def keys_counted(count_at: int, *, fixed: tuple[int, ...] = (), at_least: int = 1) -> KeysCounted:
    """A finder for keys a count argument gives (see KeysCounted)."""
    return KeysCounted(count_at, fixed, at_least)


@dataclasses.dataclass(frozen=True)
class KeysAfterKeyword:
    """Keys Redis finds with a "keyword" key spec and half the rest: the
    first half of what follows `keyword`, searched from `start` on (XREAD's
    STREAMS key... id...); of an odd count the smaller half, as Redis rounds
    down (the command itself then refuses the unbalanced list); None if no key."""

    keyword: bytes
    start: int

    def __call__(self, argv: list[bytes]) -> list[bytes] | None:
        for index in range(self.start, len(argv)):
            if argv[index].lower() == self.keyword:
                rest = argv[index + 1 :]
                return rest[: len(rest) // 2] or None
        return None


def keys_after_keyword(keyword: str, *, start: int) -> KeysAfterKeyword:
    """A finder for the keys in the first half of what follows `keyword`."""
    return KeysAfterKeyword(keyword.lower().encode(), start)


@dataclasses.dataclass(frozen=True)
class VariableKeyFlags:
    """Key flags that depend on the arguments (SET reads its key only with
    GET): a call's are `of(argv)`; `declared` are the worst case, what
    COMMAND INFO's key specification says (with KEY_VARIABLE_FLAGS)."""

    declared: tuple[int, ...]
    of: Callable[[list[bytes]], tuple[int, ...]]

    def __call__(self, argv: list[bytes]) -> tuple[int, ...]:
        return self.of(argv)


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
    # ACL: its categories (empty: those its flags imply), its subcommands by
    # lower-case name, and what it does with its keys (None: from its flags)
    categories: frozenset[str] = frozenset()
    subcommands: Mapping[bytes, Subcommand] = dataclasses.field(default_factory=dict)
    key_flags: KeyFlags | None = None
    # COMMAND DOCS replies Redis's own docs for this name (the built-ins)
    redis_docs: bool = False

    name_bytes: bytes = dataclasses.field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        object.__setattr__(self, "name_bytes", self.name.encode())
        if not self.categories:
            object.__setattr__(self, "categories", frozenset(implied_categories(self.flags)))
        if self.key_flags is None:
            object.__setattr__(self, "key_flags", _default_key_flags(self.flags))

    @property
    def keys_at(self) -> tuple[int, int, int]:
        """(first, last, step), as COMMAND INFO gives them."""
        return self.first_key, self.last_key, self.key_step

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
        group: str | None = None,
        summary: str = "",
        categories: Iterable[str] = (),
        subcommands: Iterable[Subcommand] = (),
        key_flags: KeyFlags | None = None,
        replace: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register a handler for `name`. `keys` is (first, last, step) as in
        COMMAND INFO; `find_keys` finds keys that the arguments locate
        (keys_counted(...) for a count argument, keys_after_keyword(...) for
        XREAD's STREAMS; the command then has the "movablekeys" flag).

        ACL rules see the command in the categories its flags imply (write:
        @write, readonly: @read, admin: @admin and @dangerous, pubsub, fast or
        else slow, blocking), in its `group`'s ("string": @string; COMMAND
        DOCS shows the group, "generic" when none is given) and in
        `categories`. `subcommands` describe a container's (CONFIG GET) for
        rules such as `+config|get`; `key_flags` say what it does with its
        keys, with Redis's key-spec flags (KEY_RO | KEY_ACCESS, KEY_OW |
        KEY_UPDATE...; KEY_READ and KEY_WRITE are ACCESS and UPDATE), for
        COMMAND GETKEYSANDFLAGS and ACL's %R~ and %W~ patterns: by default a
        read-only command reads them and any other reads and updates them;
        VariableKeyFlags for flags that depend on the arguments. COMMAND
        INFO's key specifications are derived from these.

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
        explicit = _check_categories(lowered, categories)
        subs = {sub.name.lower().encode(): sub.of(lowered, group) for sub in subcommands}
        # a container's own categories are its flags' (Redis gives it no group's)
        implied = implied_categories(spec_flags, None if subs else group)

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
                group=group or "generic",
                summary=summary or (inspect.getdoc(handler) or "").partition("\n")[0],
                is_async=inspect.iscoroutinefunction(handler),
                categories=frozenset(implied | explicit),
                subcommands=subs,
                key_flags=key_flags,
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


def category_statuses(categories: frozenset[str]) -> OrderedSet:
    """A command's categories as COMMAND INFO shows them: +@read ..., in Redis's order."""
    return OrderedSet(Status(f"@{name}") for name in CATEGORIES if name in categories)


def describe(spec: CommandSpec) -> list[Any]:
    """COMMAND INFO's entry for one command, in Redis 7's shape: flags,
    categories, tips and key specifications are sets (RESP3 ~)."""
    subcommands: Any = OrderedSet()  # Redis writes "none" as an empty set, some as an array
    if spec.subcommands:
        subcommands = [_describe_subcommand(sub) for sub in spec.subcommands.values()]
    return [
        spec.name.encode(),
        spec.arity,
        OrderedSet(Status(flag) for flag in spec.flag_order),
        spec.first_key,
        spec.last_key,
        spec.key_step,
        category_statuses(spec.categories),
        OrderedSet(),  # tips: none described
        SetReply(key_specifications(spec.key_flags, spec.key_finder, spec.keys_at)),
        subcommands,
    ]


def _describe_subcommand(sub: Subcommand) -> list[Any]:
    return [
        sub.fullname.encode(),
        sub.arity,
        OrderedSet(Status(flag) for flag in sub.flags),
        *sub.keys,
        category_statuses(sub.categories),
        OrderedSet(),
        SetReply(key_specifications(sub.key_flags, None, sub.keys)),
        OrderedSet(),
    ]


def key_specifications(
    flags: KeyFlags | None, finder: KeyFinder | None, keys: tuple[int, int, int]
) -> list[dict[bytes, Any]]:
    """COMMAND INFO's key specifications (Redis 7), derived from what a
    command says of its keys: `keys` (first, last, step), or its finder
    (KeysCounted: an index and a keynum spec; KeysAfterKeyword: a keyword
    and a range spec), and its key flags, one spec per flags entry (the
    last covers the rest of the keys). A finder of another kind, or flags
    that vary without declaring their worst case, have none: COMMAND
    GETKEYS still finds their keys. Redis's free-text notes are left out."""
    if isinstance(flags, VariableKeyFlags):
        declared = tuple(each | KEY_VARIABLE_FLAGS for each in flags.declared)
    elif isinstance(flags, tuple) and flags:
        declared = flags
    else:
        return []
    first, last, step = keys
    if isinstance(finder, KeysCounted):
        singles = [
            (index, declared[min(n, len(declared) - 1)]) for n, index in enumerate(finder.fixed)
        ]
        rest = declared[min(len(finder.fixed), len(declared) - 1)]
        specs = [_key_spec(each, _at_index(index), _key_range(0, 1)) for index, each in singles]
        keynum = {b"keynumidx": 0, b"firstkey": 1, b"keystep": 1}
        return [*specs, _key_spec(rest, _at_index(finder.count_at), (b"keynum", keynum))]
    if isinstance(finder, KeysAfterKeyword):
        begin = (b"keyword", {b"keyword": finder.keyword.upper(), b"startfrom": finder.start})
        return [_key_spec(declared[0], begin, _key_range(-1, 1, limit=2))]  # limit 2: half
    if finder is not None or first <= 0:
        return []
    specs = [
        _key_spec(each, _at_index(first + n * step), _key_range(0, 1))
        for n, each in enumerate(declared[:-1])
    ]
    at = first + (len(declared) - 1) * step
    lastkey = last - at if last >= 0 else last
    return [*specs, _key_spec(declared[-1], _at_index(at), _key_range(lastkey, step))]


def _at_index(index: int) -> tuple[bytes, dict[bytes, Any]]:
    return b"index", {b"index": index}


def _key_range(lastkey: int, keystep: int, limit: int = 0) -> tuple[bytes, dict[bytes, Any]]:
    return b"range", {b"lastkey": lastkey, b"keystep": keystep, b"limit": limit}


def _key_spec(
    flags: int, begin: tuple[bytes, dict[bytes, Any]], find: tuple[bytes, dict[bytes, Any]]
) -> dict[bytes, Any]:
    return {
        b"flags": OrderedSet(Status(name) for name in key_flag_names(flags)),
        b"begin_search": {b"type": begin[0], b"spec": begin[1]},
        b"find_keys": {b"type": find[0], b"spec": find[1]},
    }
