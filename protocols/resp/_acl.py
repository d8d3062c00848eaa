# Redis's ACL users, as Redis 7.2 keeps them (acl.c), sans-IO: a user's rules
# (on/off, passwords stored as SHA-256 hex, command rules by name, subcommand,
# first argument and category applied in order, key patterns with %R~/%W~,
# channel patterns, selectors), the rule parser with Redis's error texts, the
# description ACL LIST shows and an ACL file holds, the check of one call
# against a user, the users table with its `default`, and the ACL LOG. No I/O:
# commands/acl.py reads and writes ACL files, the server keeps the table.
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from ._app import (
    CATEGORIES,
    KEY_READ,
    KEY_WRITE,
    CommandSpec,
    KeyFlags,
    Subcommand,
    key_permissions,
)
from ._glob import compile_glob

__all__ = [
    "Acl",
    "Denial",
    "LogEntry",
    "RuleError",
    "Selector",
    "UnmatchedParenthesis",
    "User",
    "check",
    "has_spaces",
    "merge_selectors",
]

# Why a call is refused, Redis's ACL_DENIED_* codes (a higher code wins when
# no selector allows the call: the key or channel, rather than the command)
DENIED_COMMAND: Final = 1
DENIED_KEY: Final = 2
DENIED_CHANNEL: Final = 4
REASONS: Final = {DENIED_COMMAND: "command", DENIED_KEY: "key", DENIED_CHANNEL: "channel"}

# ACLSetUserStringError(): what a rule that cannot be applied gets
UNKNOWN_NAME: Final = "Unknown command or category name in ACL"
SYNTAX: Final = "Syntax error"
AFTER_ALLKEYS: Final = (
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
    "have any effect. Try 'resetkeys' to start with an empty list of patterns"
)
AFTER_ALLCHANNELS: Final = (
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does "
    "not have any effect. Try 'resetchannels' to start with an empty list of channels"
)
NO_SUCH_PASSWORD: Final = "The password you are trying to remove from the user does not exist"
BAD_HASH: Final = (
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal "
    "characters"
)
FIRST_ARG_OF_SUBCOMMAND: Final = "Allowing first-arg of a subcommand is not supported"

# The commands whose arguments are channels: (first, end or None for all, and
# whether the arguments are patterns, compared literally with the user's)
CHANNEL_ARGUMENTS: Final[dict[bytes, tuple[int, int | None, bool]]] = {
    b"publish": (1, 2, False),
    b"subscribe": (1, None, False),
    b"psubscribe": (1, None, True),
}

LOG_GROUPING_MS: Final = 60_000  # a denial this close to a like one counts in its entry
LOG_SCAN: Final = 10  # entries looked through for a like one
_HEX: Final = frozenset(b"0123456789abcdef")
_SPACES: Final = frozenset(b" \t\n\v\f\r\0")


class RuleError(ValueError):
    """A rule that cannot be applied: `reason` is Redis's text for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def has_spaces(data: bytes) -> bool:
    """Redis's ACLStringHasSpaces: user names and patterns may not have these."""
    return any(byte in _SPACES for byte in data)


def hash_password(password: bytes) -> bytes:
    """A password as Redis stores it: its SHA-256, lower-case hex."""
    return hashlib.sha256(password).hexdigest().encode()


def _checked_hash(data: bytes) -> bytes:
    """A password hash given as #HASH or !HASH: 64 lower-case hex digits."""
    if len(data) != 64 or not all(byte in _HEX for byte in data):
        raise RuleError(BAD_HASH)
    return data


@dataclasses.dataclass(frozen=True, slots=True)
class _Rule:
    """One command rule as given: +get, -@write, +config|get, +select|0."""

    allow: bool
    text: bytes  # lower case, without the sign: b"get", b"@write", b"config|get"
    category: str | None = None  # @write
    command: bytes = b""  # config
    argument: bytes | None = None  # config|get: b"get" (a subcommand or a first argument)

    def matches(self, spec: CommandSpec, categories: frozenset[str], first: bytes | None) -> bool:
        if self.category is not None:
            return self.category in categories
        if self.command != spec.name_bytes:
            return False
        return self.argument is None or self.argument == first


class Selector:
    """What a user may run: command rules on top of all or no commands, key
    and channel patterns. A user has its root selector and, with (...)
    rules, more; a call is allowed if any of them allows it."""

    def __init__(self, *, allchannels: bool = False) -> None:
        self.all_commands = False  # the rules' starting point: +@all, or -@all
        self.rules: list[_Rule] = []  # applied in order: the last that matches decides
        self.allkeys = False
        self.keys: list[tuple[bytes, int]] = []  # (pattern, KEY_READ | KEY_WRITE)
        self.allchannels = allchannels
        self.channels: list[bytes] = []
        self._decided: dict[bytes, bool] = {}  # command or subcommand -> allowed
        self._compiled: list[tuple[bytes, int, Callable[[bytes], bool]]] | None = None
        self._by_first_argument: set[bytes] = set()  # commands with +cmd|arg rules

    def copy(self) -> Selector:
        other = Selector(allchannels=self.allchannels)
        other.all_commands = self.all_commands
        other.rules = list(self.rules)
        other.allkeys = self.allkeys
        other.keys = list(self.keys)
        other.channels = list(self.channels)
        other._by_first_argument = set(self._by_first_argument)
        return other

    @property
    def unrestricted(self) -> bool:
        """Every command on every key and channel (+@all ~* &*)."""
        return (
            self.all_commands
            and self.allkeys
            and self.allchannels
            and all(rule.allow for rule in self.rules)
        )

    # -- rules -----------------------------------------------------------------

    def apply(self, op: bytes, commands: Mapping[bytes, CommandSpec]) -> None:
        """Apply one rule (Redis's ACLSetSelector); raises RuleError."""
        lowered = op.lower()
        if lowered in (b"allkeys", b"~*"):
            self.allkeys = True
            self.keys.clear()
            self._compiled = None
        elif lowered == b"resetkeys":
            self.allkeys = False
            self.keys.clear()
            self._compiled = None
        elif lowered in (b"allchannels", b"&*"):
            self.allchannels = True
            self.channels.clear()
        elif lowered == b"resetchannels":
            self.allchannels = False
            self.channels.clear()
        elif lowered in (b"allcommands", b"+@all"):
            self._reset_commands(True)
        elif lowered in (b"nocommands", b"-@all"):
            self._reset_commands(False)
        elif op[:1] in (b"~", b"%"):
            self._add_key_pattern(op)
        elif op[:1] == b"&":
            if self.allchannels:
                raise RuleError(AFTER_ALLCHANNELS)
            if has_spaces(op[1:]):
                raise RuleError(SYNTAX)
            if op[1:] not in self.channels:
                self.channels.append(op[1:])
        elif op[:1] in (b"+", b"-") and op[1:2] == b"@":
            category = lowered[2:].decode("latin-1")
            if category not in _CATEGORY_NAMES:
                raise RuleError(UNKNOWN_NAME)
            self._add_rule(_Rule(op[:1] == b"+", lowered[1:], category=category))
        elif op[:1] == b"+":
            self._add_rule(self._allowing(lowered[1:], commands))
        elif op[:1] == b"-":
            spec, sub = _lookup(lowered[1:], commands)
            if spec is None:
                raise RuleError(UNKNOWN_NAME)
            argument = sub.name.encode() if sub is not None else None
            self._add_rule(_Rule(False, lowered[1:], command=spec.name_bytes, argument=argument))
        else:
            raise RuleError(SYNTAX)

    def _reset_commands(self, allowed: bool) -> None:
        self.all_commands = allowed
        self.rules.clear()
        self._by_first_argument.clear()
        self._decided.clear()

    def _add_key_pattern(self, op: bytes) -> None:
        if self.allkeys:
            raise RuleError(AFTER_ALLKEYS)
        flags, offset = KEY_READ | KEY_WRITE, 1
        if op[:1] == b"%":
            flags = 0
            while offset < len(op):
                letter = op[offset : offset + 1].upper()
                if letter == b"R" and not flags & KEY_READ:
                    flags |= KEY_READ
                elif letter == b"W" and not flags & KEY_WRITE:
                    flags |= KEY_WRITE
                elif letter == b"~":
                    offset += 1
                    break
                else:
                    raise RuleError(SYNTAX)
                offset += 1
            if not flags:
                raise RuleError(SYNTAX)
        pattern = op[offset:]
        if has_spaces(pattern):
            raise RuleError(SYNTAX)
        for index, (known, known_flags) in enumerate(self.keys):
            if known == pattern:
                self.keys[index] = (known, known_flags | flags)
                break
        else:
            self.keys.append((pattern, flags))
        self._compiled = None

    def _allowing(self, name: bytes, commands: Mapping[bytes, CommandSpec]) -> _Rule:
        """The rule of `+name`: a command, a subcommand, or a command with one
        first argument (`+select|0`: SELECT 0 only)."""
        if b"|" not in name:
            spec, _ = _lookup(name, commands)
            if spec is None:
                raise RuleError(UNKNOWN_NAME)
            return _Rule(True, name, command=spec.name_bytes)
        base, _, argument = name.rpartition(b"|")
        spec, sub = _lookup(base, commands)
        if spec is None:
            raise RuleError(UNKNOWN_NAME)
        if sub is not None:
            raise RuleError(FIRST_ARG_OF_SUBCOMMAND)
        if not argument:
            raise RuleError(SYNTAX)
        if spec.subcommands and argument not in spec.subcommands:
            raise RuleError(UNKNOWN_NAME)
        return _Rule(True, name, command=spec.name_bytes, argument=argument)

    def _add_rule(self, rule: _Rule) -> None:
        """Add a rule after dropping those it overrides (ACLUpdateCommandRules):
        the same rule, and for a command its subcommands' and first arguments'."""
        prefix = rule.text + b"|"
        self.rules = [
            kept
            for kept in self.rules
            if kept.text != rule.text and not kept.text.startswith(prefix)
        ]
        self.rules.append(rule)
        self._by_first_argument = {kept.command for kept in self.rules if kept.argument is not None}
        self._decided.clear()

    # -- checks ----------------------------------------------------------------

    def allows(self, spec: CommandSpec, sub: Subcommand | None, argv: list[bytes]) -> bool:
        """Whether the rules allow the command (its subcommand, its first argument)."""
        if not self.rules:
            return self.all_commands
        name = sub.fullname.encode() if sub is not None else spec.name_bytes
        cacheable = spec.name_bytes not in self._by_first_argument
        if cacheable and name in self._decided:
            return self._decided[name]
        categories = sub.categories if sub is not None else spec.categories
        first = argv[1].lower() if len(argv) > 1 else None
        allowed = self.all_commands
        for rule in self.rules:
            if rule.matches(spec, categories, first):
                allowed = rule.allow
        if cacheable:
            self._decided[name] = allowed
        return allowed

    def key_denied(self, keys: list[bytes], flags: tuple[int, ...]) -> int | None:
        """The index of the first key no pattern allows with the access it
        needs (`flags`: per key, the last repeating), or None."""
        if self.allkeys:
            return None
        last = len(flags) - 1
        for index, key in enumerate(keys):
            needed = flags[index if index < last else last]
            for _, pattern_flags, matches in self._key_matchers:
                if pattern_flags & needed == needed and matches(key):
                    break
            else:
                return index
        return None

    def channel_denied(self, channels: list[bytes], literal: bool) -> int | None:
        """The index of the first channel (or pattern, compared literally) no
        channel pattern allows, or None."""
        if self.allchannels:
            return None
        for index, channel in enumerate(channels):
            if literal:
                if channel not in self.channels:
                    return index
            elif not any(compile_glob(pattern)(channel) for pattern in self.channels):
                return index
        return None

    @property
    def _key_matchers(self) -> list[tuple[bytes, int, Callable[[bytes], bool]]]:
        """The key patterns with their compiled matchers (made once per change)."""
        if self._compiled is None:
            self._compiled = [
                (pattern, flags, compile_glob(pattern)) for pattern, flags in self.keys
            ]
        return self._compiled

    # -- descriptions ----------------------------------------------------------

    def describe_keys(self) -> bytes:
        """ACL GETUSER's keys: ~* or the patterns, space separated."""
        if self.allkeys:
            return b"~*"
        return b" ".join(_key_pattern(pattern, flags) for pattern, flags in self.keys)

    def describe_channels(self) -> bytes:
        if self.allchannels:
            return b"&*"
        return b" ".join(b"&" + pattern for pattern in self.channels)

    def describe_commands(self) -> bytes:
        """+@all or -@all, then the rules as given (what Redis 7.2 keeps)."""
        start = b"+@all" if self.all_commands else b"-@all"
        return b" ".join([start] + [(b"+" if r.allow else b"-") + r.text for r in self.rules])

    def describe(self) -> bytes:
        """As in ACL LIST: keys, channels, commands."""
        parts = [self.describe_keys()] if self.allkeys or self.keys else []
        if not self.allchannels:
            parts.append(b"resetchannels")
        if self.allchannels or self.channels:
            parts.append(self.describe_channels())
        parts.append(self.describe_commands())
        return b" ".join(parts)


def _key_pattern(pattern: bytes, flags: int) -> bytes:
    prefix = {KEY_READ | KEY_WRITE: b"~", KEY_READ: b"%R~", KEY_WRITE: b"%W~"}[flags]
    return prefix + pattern


_CATEGORY_NAMES: Final = frozenset(CATEGORIES)


def _lookup(
    name: bytes, commands: Mapping[bytes, CommandSpec]
) -> tuple[CommandSpec | None, Subcommand | None]:
    """A command, or a subcommand given as container|sub (ACLLookupCommand)."""
    base, bar, sub = name.partition(b"|")
    spec = commands.get(base)
    if spec is None or not bar:
        return spec, None
    if b"|" in sub or not spec.subcommands:
        return None, None
    found = spec.subcommands.get(sub)
    return (spec, found) if found is not None else (None, None)


class UnmatchedParenthesis(ValueError):
    """A selector opened, `(~a`, and never closed: `op` is where it opens."""

    def __init__(self, op: bytes) -> None:
        super().__init__(op)
        self.op = op


def merge_selectors(ops: list[bytes]) -> list[bytes]:
    """Join a selector written over several arguments, `(~a` `+get)`, into one
    (ACLMergeSelectorArguments); raises UnmatchedParenthesis."""
    merged: list[bytes] = []
    opened: bytes | None = None
    for op in ops:
        if opened is None and op.startswith(b"(") and not op.endswith(b")"):
            opened = op
            continue
        if opened is not None:
            opened += b" " + op
            if op.endswith(b")"):
                merged.append(opened)
                opened = None
            continue
        merged.append(op)
    if opened is not None:
        raise UnmatchedParenthesis(opened.split(b" ", 1)[0])
    return merged


class User:
    """One ACL user: on/off, passwords (SHA-256 hex) or nopass, and its selectors."""

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.enabled = False
        self.nopass = False
        self.sanitize_payload = True  # Redis 7.2 creates users with sanitize-payload
        self.passwords: list[bytes] = []
        self.selectors: list[Selector] = [Selector()]  # the root selector first

    @classmethod
    def default(cls) -> User:
        """Redis's default user: on nopass ~* &* +@all."""
        user = cls(b"default")
        user.enabled = user.nopass = True
        root = user.root
        root.all_commands = root.allkeys = root.allchannels = True
        return user

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    @property
    def unrestricted(self) -> bool:
        """May run anything: its clients skip every check."""
        return self.root.unrestricted

    def copy(self, name: bytes | None = None) -> User:
        other = User(self.name if name is None else name)
        other.assign(self)
        return other

    def assign(self, other: User) -> None:
        """Take `other`'s rules, keeping this user's name (ACLCopyUser)."""
        self.enabled = other.enabled
        self.nopass = other.nopass
        self.sanitize_payload = other.sanitize_payload
        self.passwords = list(other.passwords)
        self.selectors = [selector.copy() for selector in other.selectors]

    def apply(self, op: bytes, commands: Mapping[bytes, CommandSpec]) -> None:
        """Apply one rule (Redis's ACLSetUser); raises RuleError."""
        if not op:
            return
        lowered = op.lower()
        if lowered == b"on":
            self.enabled = True
        elif lowered == b"off":
            self.enabled = False
        elif lowered == b"skip-sanitize-payload":
            self.sanitize_payload = False
        elif lowered == b"sanitize-payload":
            self.sanitize_payload = True
        elif lowered == b"nopass":
            self.nopass = True
            self.passwords.clear()
        elif lowered == b"resetpass":
            self.nopass = False
            self.passwords.clear()
        elif op[:1] in (b">", b"#"):
            hashed = hash_password(op[1:]) if op[:1] == b">" else _checked_hash(op[1:])
            if hashed not in self.passwords:
                self.passwords.append(hashed)
            self.nopass = False
        elif op[:1] in (b"<", b"!"):
            hashed = hash_password(op[1:]) if op[:1] == b"<" else _checked_hash(op[1:])
            if hashed not in self.passwords:
                raise RuleError(NO_SUCH_PASSWORD)
            self.passwords.remove(hashed)
        elif op[:1] == b"(" and op[-1:] == b")":
            selector = Selector()
            for inner in op[1:-1].split():
                selector.apply(inner, commands)
            self.selectors.append(selector)
        elif lowered == b"clearselectors":
            del self.selectors[1:]
        elif lowered == b"reset":
            for step in (b"resetpass", b"resetkeys", b"resetchannels", b"off"):
                self.apply(step, commands)
            self.sanitize_payload = True
            del self.selectors[1:]
            self.root.apply(b"-@all", commands)
        else:
            self.root.apply(op, commands)

    def password_ok(self, password: bytes) -> bool:
        """Whether `password` logs in (any does with nopass), compared in constant time."""
        if self.nopass:
            return True
        hashed = hash_password(password)
        return any(hmac.compare_digest(hashed, known) for known in self.passwords)

    def flags(self) -> list[bytes]:
        """ACL GETUSER's flags, in Redis's order."""
        flags = [b"on" if self.enabled else b"off"]
        if self.nopass:
            flags.append(b"nopass")
        flags.append(b"sanitize-payload" if self.sanitize_payload else b"skip-sanitize-payload")
        return flags

    def describe(self) -> bytes:
        """The rules that make this user, as ACL LIST shows them (after "user NAME")."""
        parts = self.flags() + [b"#" + hashed for hashed in self.passwords]
        parts.append(self.root.describe())
        parts += [b"(" + selector.describe() + b")" for selector in self.selectors[1:]]
        return b" ".join(parts)


# -- checking a call -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Denial:
    """Why a user may not make a call: the reason (DENIED_*), what is denied
    (the command's full name, the key, the channel), and where (for picking
    among selectors)."""

    reason: int
    object: bytes
    position: int = 0

    @property
    def reason_name(self) -> str:
        return REASONS[self.reason]

    def message(self, user: User, *, verbose: bool = False) -> str:
        """Redis 7.2's getAclErrorMessage: the NOPERM text (without the code),
        or ACL DRYRUN's (verbose) one."""
        name = _text(user.name)
        if self.reason == DENIED_COMMAND:
            return f"User {name} has no permissions to run the '{_text(self.object)}' command"
        what = REASONS[self.reason]
        if verbose:
            return f"User {name} has no permissions to access the '{_text(self.object)}' {what}"
        return f"No permissions to access a {what}"


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def resolve(spec: CommandSpec, argv: list[bytes]) -> Subcommand | None:
    """The subcommand a call of a container runs (CONFIG GET), if it names one."""
    if spec.subcommands and len(argv) > 1:
        return spec.subcommands.get(argv[1].lower())
    return None


def call_keys(
    spec: CommandSpec, sub: Subcommand | None, argv: list[bytes]
) -> tuple[list[bytes], tuple[int, ...]]:
    """The keys of a call and what it does with them (Redis's key-spec
    flags, KEY_ACCESS...): one entry per key, the last repeating for the rest."""
    given: KeyFlags | None
    if sub is not None and sub.keys[0] > 0:
        keys, given = sub.keys_of(argv), sub.key_flags
    else:
        keys, given = spec.keys(argv) or [], spec.key_flags
    if not keys:
        return [], ()
    flags = given(argv) if callable(given) else given
    assert flags, "a command's key flags are set when it is registered"
    return keys, flags


def check(user: User, spec: CommandSpec, argv: list[bytes]) -> Denial | None:
    """Whether `user` may make this call (ACLCheckAllUserCommandPerm): None if
    a selector allows it, else the denial to report."""
    sub = resolve(spec, argv) if spec.subcommands else None
    keys: tuple[list[bytes], tuple[int, ...]] | None = None
    channel_spec = CHANNEL_ARGUMENTS.get(spec.name_bytes)
    worst: Denial | None = None
    for selector in user.selectors:
        denial: Denial | None = None
        if "no_auth" not in spec.flags and not selector.allows(spec, sub, argv):
            name = sub.fullname.encode() if sub is not None else spec.name_bytes
            denial = Denial(DENIED_COMMAND, name)
        if denial is None and not selector.allkeys:
            if keys is None:
                found, flags = call_keys(spec, sub, argv)
                keys = found, tuple(key_permissions(each) for each in flags)
            index = selector.key_denied(*keys)
            if index is not None:
                denial = Denial(DENIED_KEY, keys[0][index], index)
        if denial is None and channel_spec is not None and not selector.allchannels:
            first, end, literal = channel_spec
            channels = argv[first:end]
            index = selector.channel_denied(channels, literal)
            if index is not None:
                denial = Denial(DENIED_CHANNEL, channels[index], index)
        if denial is None:
            return None
        if worst is None or (denial.reason, denial.position) > (worst.reason, worst.position):
            worst = denial
    return worst


# -- the users table and the log ---------------------------------------------------


@dataclasses.dataclass
class LogEntry:
    """One ACL LOG entry: a denied call or a failed login, with how often."""

    entry_id: int
    reason: str  # command, key, channel, auth
    context: str  # toplevel, multi, lua
    object: bytes  # the command, key, channel; for auth the command (AUTH, HELLO)
    username: bytes
    created_ms: int
    updated_ms: int
    client_info: str
    count: int = 1


class Acl:
    """The users (Redis's Users table) and the ACL LOG, checked against the
    command table `commands`."""

    def __init__(self, commands: Mapping[bytes, CommandSpec]) -> None:
        self.commands = commands
        self.users: dict[bytes, User] = {b"default": User.default()}
        self.log: list[LogEntry] = []  # the newest first
        self.log_max_len = 128
        self._entry_ids = itertools.count()

    @property
    def default(self) -> User:
        return self.users[b"default"]

    @property
    def auth_required(self) -> bool:
        """Clients must log in: the default user has passwords, or is off."""
        default = self.default
        return not (default.nopass and default.enabled)

    def set_default_password(self, password: bytes | None) -> None:
        """CONFIG SET requirepass: the default user's only password, or nopass
        (ACLUpdateDefaultUserPassword)."""
        default = self.default
        default.apply(b"resetpass", self.commands)
        default.apply(b">" + password if password else b"nopass", self.commands)

    def authenticate(self, name: bytes, password: bytes) -> User | None:
        """The user these credentials log in as, or None (no such user, it is
        off, or the password is wrong)."""
        user = self.users.get(name)
        if user is None or not user.enabled or not user.password_ok(password):
            return None
        return user

    def staged(self, name: bytes, ops: Iterable[bytes]) -> User:
        """ACL SETUSER: a copy of the user (a new one if there is none) with
        `ops` applied, to commit() if all went well; raises RuleError naming
        the rule that failed (`.reason` then says it as ACL SETUSER does)."""
        existing = self.users.get(name)
        user = existing.copy() if existing is not None else User(name)
        for op in ops:
            try:
                user.apply(op, self.commands)
            except RuleError as exc:
                raise RuleError(
                    f"Error in ACL SETUSER modifier '{_c_string(op)}': {exc.reason}"
                ) from None
        return user

    def commit(self, staged: User) -> User:
        """Store a staged user: into the existing one (its clients see the new
        rules at once) or as a new one."""
        existing = self.users.get(staged.name)
        if existing is None:
            self.users[staged.name] = staged
            return staged
        existing.assign(staged)
        return existing

    def describe_all(self) -> list[bytes]:
        """ACL LIST, and an ACL file's lines: "user NAME RULES", by name."""
        return [b"user " + name + b" " + self.users[name].describe() for name in sorted(self.users)]

    # -- ACL files -----------------------------------------------------------------

    def parse_file(self, text: bytes, filename: str) -> dict[bytes, User] | str:
        """The users an ACL file describes (ACLLoadFromFile), or Redis's text
        for everything wrong in it; a file without a `default` user gets a
        new one (on nopass ~* &* +@all)."""
        users: dict[bytes, User] = {}
        errors = ""
        for number, raw in enumerate(text.split(b"\n"), start=1):
            line = raw.strip(b" \t\r\n")
            if not line:
                continue
            words = line.split(b" ")
            if words[0] != b"user" or len(words) < 2:
                errors += (
                    f"{filename}:{number} should start with user keyword followed by the username. "
                )
                continue
            name = words[1]
            if has_spaces(name):
                errors += (
                    f"'{filename}:{number}: username '{_c_string(name)}' contains invalid "
                    "characters. "
                )
                continue
            if name in users:
                errors += f"WARNING: Duplicate user '{_c_string(name)}' found on line {number}. "
                continue
            user = users[name] = User(name)
            try:
                ops = merge_selectors(words[2:])
            except UnmatchedParenthesis:
                errors += f"{filename}:{number}: Unmatched parenthesis in selector definition."
                continue
            for op in ops:
                try:
                    user.apply(op.strip(b"\t\r\n"), self.commands)
                except RuleError as exc:
                    errors += f"{filename}:{number}: {exc.reason}. "
        if errors:
            return (
                errors + "WARNING: ACL errors detected, no change to the previously active ACL "
                "rules was performed"
            )
        users.setdefault(b"default", User.default())
        return users

    def file_text(self) -> bytes:
        """What ACL SAVE writes."""
        return b"".join(line + b"\n" for line in self.describe_all())

    # -- ACL LOG ---------------------------------------------------------------------

    def add_log(
        self,
        *,
        reason: str,
        context: str,
        object: bytes,
        username: bytes,
        client_info: str,
        now_ms: int,
    ) -> None:
        """Log a denial or a failed login (addACLLogEntry): a like one in the
        last minute among the newest entries is counted again instead."""
        for index, entry in enumerate(self.log[:LOG_SCAN]):
            if (
                entry.reason == reason
                and entry.context == context
                and entry.object == object
                and entry.username == username
                and abs(now_ms - entry.updated_ms) <= LOG_GROUPING_MS
            ):
                entry.count += 1
                entry.updated_ms = now_ms
                entry.client_info = client_info
                self.log.insert(0, self.log.pop(index))
                return
        entry = LogEntry(
            entry_id=next(self._entry_ids),
            reason=reason,
            context=context,
            object=object,
            username=username,
            created_ms=now_ms,
            updated_ms=now_ms,
            client_info=client_info,
        )
        self.log.insert(0, entry)
        del self.log[self.log_max_len :]


def _c_string(data: bytes) -> str:
    """Bytes as Redis's %s prints them: up to a NUL."""
    return _text(data.split(b"\0", 1)[0])
