# ACL: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, GENPASS, DRYRUN,
# LOG, LOAD, SAVE and HELP, with Redis 7.2's replies and error texts. The
# users live in the server's Acl (_acl.py); reading and writing an ACL file
# (--resp-aclfile) is here, for ACL LOAD and SAVE and for the driver at start.
from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from typing import Final

from .._acl import (
    Acl,
    RuleError,
    UnmatchedParenthesis,
    User,
    check,
    has_spaces,
    merge_selectors,
    resolve,
)
from .._app import CATEGORIES, OrderedSet, RespApp, Subcommand, wrong_arity
from .._args import parse_int
from .._client import Client
from .._reply import OK, ErrorReply, Reply

__all__ = ["commands", "load_acl_file", "save_acl_file"]

log = logging.getLogger("netsvc.resp")

commands = RespApp(builtins=False)

GENPASS_MAX_BITS: Final = 4096
NO_ACL_FILE: Final = (
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify "
    "users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a "
    "Redis configuration file set) in order to store users in the Redis configuration."
)
SAVE_FAILED: Final = (
    "ERR There was an error trying to save the ACLs. Please check the server logs for more "
    "information"
)

_ADMIN: Final = ("admin", "noscript", "loading", "stale")
_ANYONE: Final = ("noscript", "loading", "stale")
ACL_SUBCOMMANDS: Final = (
    Subcommand("cat", -2, _ANYONE),
    Subcommand("deluser", -3, _ADMIN),
    Subcommand("dryrun", -4, _ADMIN),
    Subcommand("genpass", -2, _ANYONE),
    Subcommand("getuser", 3, _ADMIN),
    Subcommand("help", 2, ("loading", "stale")),
    Subcommand("list", 2, _ADMIN),
    Subcommand("load", 2, _ADMIN),
    Subcommand("log", -2, _ADMIN),
    Subcommand("save", 2, _ADMIN),
    Subcommand("setuser", -3, _ADMIN),
    Subcommand("users", 2, _ADMIN),
    Subcommand("whoami", 2, _ANYONE),
)
_ARITY: Final = {sub.name.encode(): sub.arity for sub in ACL_SUBCOMMANDS}

HELP: Final = [
    b"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CAT [<category>]",
    b"    List all commands that belong to <category>, or all command categories",
    b"    when no category is specified.",
    b"DELUSER <username> [<username> ...]",
    b"    Delete a list of users.",
    b"DRYRUN <username> <command> [<arg> ...]",
    b"    Returns whether the user can execute the given command without executing the command.",
    b"GETUSER <username>",
    b"    Get the user's details.",
    b"GENPASS [<bits>]",
    b"    Generate a secure 256-bit user password. The optional `bits` argument can",
    b"    be used to specify a different size.",
    b"LIST",
    b"    Show users details in config file format.",
    b"LOAD",
    b"    Reload users from the ACL file.",
    b"LOG [<count> | RESET]",
    b"    Show the ACL log entries.",
    b"SAVE",
    b"    Save the current config to the ACL file.",
    b"SETUSER <username> <attribute> [<attribute> ...]",
    b"    Create or modify a user with the specified attributes.",
    b"USERS",
    b"    List all the registered usernames.",
    b"WHOAMI",
    b"    Return the current connection username.",
    b"HELP",
    b"    Prints this help.",
]


@commands.command("acl", arity=-2, group="server", subcommands=ACL_SUBCOMMANDS)
def acl(client: Client, argv: list[bytes]) -> Reply:
    """A container for Access List Control commands."""
    sub = argv[1].lower()
    arity = _ARITY.get(sub)
    if arity is None:
        return client.server.unknown_subcommand(argv)
    if len(argv) != arity if arity > 0 else len(argv) < -arity:
        raise wrong_arity(f"acl|{sub.decode()}")
    return _SUBCOMMANDS[sub](client, argv)


def _text(data: bytes) -> str:
    """Bytes as Redis's %s prints them: up to a NUL."""
    return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _syntax_error(argv: list[bytes]) -> ErrorReply:
    return ErrorReply(
        f"ERR unknown subcommand or wrong number of arguments for '{_text(argv[1][:128])}'. "
        "Try ACL HELP."
    )


def _setuser(client: Client, argv: list[bytes]) -> Reply:
    server = client.server
    name = argv[2]
    if has_spaces(name):
        raise ErrorReply("ERR Usernames can't contain spaces or null characters")
    try:
        ops = merge_selectors(argv[3:])
    except UnmatchedParenthesis as unmatched:  # not `exc`: compiled, a name has one type
        raise ErrorReply(
            f"ERR Unmatched parenthesis in acl selector starting at '{_text(unmatched.op)}'."
        ) from None
    try:
        staged = server.acl.staged(name, ops)
    except RuleError as exc:
        raise ErrorReply(f"ERR {exc.reason}") from None
    server.set_user(staged, by=client)
    return OK


def _deluser(client: Client, argv: list[bytes]) -> Reply:
    if b"default" in argv[2:]:
        raise ErrorReply("ERR The 'default' user cannot be removed")
    return client.server.delete_users(argv[2:], by=client)


def _getuser(client: Client, argv: list[bytes]) -> Reply:
    user = client.server.acl.users.get(argv[2])
    if user is None:
        return None
    root = user.root
    return {
        b"flags": OrderedSet(user.flags()),
        b"passwords": list(user.passwords),
        b"commands": root.describe_commands(),
        b"keys": root.describe_keys(),
        b"channels": root.describe_channels(),
        b"selectors": [
            {
                b"commands": selector.describe_commands(),
                b"keys": selector.describe_keys(),
                b"channels": selector.describe_channels(),
            }
            for selector in user.selectors[1:]
        ],
    }


def _list(client: Client, argv: list[bytes]) -> Reply:
    return client.server.acl.describe_all()


def _users(client: Client, argv: list[bytes]) -> Reply:
    return sorted(client.server.acl.users)


def _whoami(client: Client, argv: list[bytes]) -> Reply:
    return client.user.name


def _cat(client: Client, argv: list[bytes]) -> Reply:
    if len(argv) == 2:
        return [name.encode() for name in CATEGORIES]
    if len(argv) != 3:
        raise _syntax_error(argv)
    category = argv[2].lower().decode("latin-1")
    if category not in CATEGORIES:
        raise ErrorReply(f"ERR Unknown category '{_text(argv[2][:128])}'")
    names: list[bytes] = []
    for spec in client.server.app.commands.values():
        if category in spec.categories:
            names.append(spec.name_bytes)
        names += [
            sub.fullname.encode() for sub in spec.subcommands.values() if category in sub.categories
        ]
    return names


def _genpass(client: Client, argv: list[bytes]) -> Reply:
    if len(argv) > 3:
        raise _syntax_error(argv)
    bits = parse_int(argv[2]) if len(argv) == 3 else 256
    if not 0 < bits <= GENPASS_MAX_BITS:
        raise ErrorReply(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a "
            f"positive number up to {GENPASS_MAX_BITS}"
        )
    chars = (bits + 3) // 4
    return secrets.token_hex((chars + 1) // 2)[:chars].encode()


def _log(client: Client, argv: list[bytes]) -> Reply:
    if len(argv) > 3:
        raise _syntax_error(argv)
    acl_ = client.server.acl
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            acl_.log.clear()
            return OK
        count = max(parse_int(argv[2]), 0)
    now_ms = time.time_ns() // 1_000_000
    return [
        {
            b"count": entry.count,
            b"reason": entry.reason.encode(),
            b"context": entry.context.encode(),
            b"object": entry.object,
            b"username": entry.username,
            b"age-seconds": (now_ms - entry.updated_ms) / 1000,
            b"client-info": entry.client_info.encode("utf-8", "surrogateescape"),
            b"entry-id": entry.entry_id,
            b"timestamp-created": entry.created_ms,
            b"timestamp-last-updated": entry.updated_ms,
        }
        for entry in acl_.log[:count]
    ]


def _dryrun(client: Client, argv: list[bytes]) -> Reply:
    server = client.server
    user = server.acl.users.get(argv[2])
    if user is None:
        raise ErrorReply(f"ERR User '{_text(argv[2])}' not found")
    call = argv[3:]
    spec = server.app.lookup(call[0])
    sub = resolve(spec, call) if spec is not None else None
    if spec is None or (spec.subcommands and len(call) > 1 and sub is None):
        raise ErrorReply(f"ERR Command '{_text(call[0])}' not found")
    arity = sub.arity if sub is not None else spec.arity
    if len(call) != arity if arity > 0 else len(call) < -arity:
        raise wrong_arity(sub.fullname if sub is not None else spec.name)
    denial = check(user, spec, call)
    return (
        OK
        if denial is None
        else denial.message(user, verbose=True).encode("utf-8", "surrogateescape")
    )


def _load(client: Client, argv: list[bytes]) -> Reply:
    server = client.server
    path = server.settings.aclfile
    if not path:
        raise ErrorReply(NO_ACL_FILE)
    users = load_acl_file(client.server.acl, path)
    if isinstance(users, str):
        raise ErrorReply(f"ERR {users}")
    server.replace_users(users, by=client)
    return OK


def _save(client: Client, argv: list[bytes]) -> Reply:
    server = client.server
    path = server.settings.aclfile
    if not path:
        raise ErrorReply(NO_ACL_FILE)
    try:
        save_acl_file(path, server.acl.file_text())
    except OSError as exc:
        log.warning("ACL SAVE to %s failed: %s", path, exc.strerror or exc)
        raise ErrorReply(SAVE_FAILED) from None
    return OK


def _help(client: Client, argv: list[bytes]) -> Reply:
    return HELP


_SUBCOMMANDS: Final = {
    b"setuser": _setuser,
    b"deluser": _deluser,
    b"getuser": _getuser,
    b"list": _list,
    b"users": _users,
    b"whoami": _whoami,
    b"cat": _cat,
    b"genpass": _genpass,
    b"log": _log,
    b"dryrun": _dryrun,
    b"load": _load,
    b"save": _save,
    b"help": _help,
}


# -- ACL files -----------------------------------------------------------------


def load_acl_file(acl_: Acl, path: str) -> dict[bytes, User] | str:
    """The users of an ACL file (`user NAME RULES...` lines), or Redis's
    text for what is wrong with it (ACLLoadFromFile)."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return f"Error loading ACLs, opening file '{path}': {reason}"
    return acl_.parse_file(text, path)


def save_acl_file(path: str, data: bytes) -> None:
    """Replace the ACL file at once: write a temporary file beside it, flush
    it to disk, rename it over the old one. A new file is readable by its
    owner only (it holds password hashes); an existing one keeps its mode."""
    target = Path(path)
    temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}-{time.time_ns() // 1_000_000}")
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
