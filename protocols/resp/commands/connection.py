# Connection commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT, CLIENT
# (PAUSE and UNPAUSE hold other commands through _pause.py; UNBLOCK ends a
# blocking command's wait through _blocking.py).
from __future__ import annotations

from typing import Final

from .._app import RespApp, Subcommand
from .._args import parse_int, parse_milliseconds
from .._client import REPLIES_OFF, REPLIES_ON, REPLIES_SKIP_NEXT, Client
from .._pause import ALL, WRITE
from .._reply import OK, PONG, ErrorReply, Reply

commands = RespApp(builtins=False)

SERVER_NAME: Final = b"redis"
SERVER_VERSION: Final = b"7.2.0"  # the Redis release whose behaviour this subset follows
SUBSCRIBED_COMMANDS: Final = {b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe"}


@commands.command("ping", arity=-1, flags=["fast"], group="connection")
def ping(client: Client, argv: list[bytes]) -> Reply:
    """Ping the server."""
    if len(argv) > 2:
        raise ErrorReply("ERR wrong number of arguments for 'ping' command")
    if client.subscribed and client.protocol == 2:  # RESP2 subscribed state: a pubsub frame
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return argv[1] if len(argv) == 2 else PONG


@commands.command("echo", arity=2, flags=["fast"], group="connection")
def echo(client: Client, argv: list[bytes]) -> Reply:
    """Echo the given string."""
    return argv[1]


@commands.command(
    "quit",
    arity=-1,
    flags=["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
    group="connection",
)
def quit_(client: Client, argv: list[bytes]) -> Reply:
    """Close the connection."""
    client.close_after_reply = True
    return OK


@commands.command(
    "reset",
    arity=1,
    flags=["noscript", "loading", "stale", "fast", "no_auth", "allow_busy", "no_multi"],
    group="connection",
)
def reset(client: Client, argv: list[bytes]) -> Reply:
    """Reset the connection: leave MULTI, unwatch, unsubscribe, select 0, RESP2."""
    client.server.reset_client(client)
    return client.server.reset_reply


WRONGPASS: Final = "WRONGPASS invalid username-password pair or user is disabled."


def _log_in(client: Client, username: bytes, password: bytes, command: bytes) -> None:
    """Log in as any enabled ACL user whose password this is (any, with nopass)."""
    if not client.server.login(client, username, password, command):
        raise ErrorReply(WRONGPASS)


@commands.command(
    "auth",
    arity=-2,
    flags=["noscript", "loading", "stale", "fast", "no_auth", "allow_busy", "no_multi"],
    group="connection",
)
def auth(client: Client, argv: list[bytes]) -> Reply:
    """Authenticate to the server."""
    if len(argv) > 3:
        raise ErrorReply("ERR syntax error")
    if len(argv) == 2 and client.server.acl.default.nopass:
        raise ErrorReply(
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?"
        )
    username, password = (b"default", argv[1]) if len(argv) == 2 else (argv[1], argv[2])
    _log_in(client, username, password, argv[0])
    return OK


@commands.command(
    "hello",
    arity=-1,
    flags=["noscript", "loading", "stale", "fast", "no_auth", "allow_busy", "no_multi"],
    group="connection",
)
def hello(client: Client, argv: list[bytes]) -> Reply:
    """Handshake: choose the protocol version, optionally AUTH and SETNAME."""
    protocol = client.protocol
    if len(argv) >= 2:
        try:
            protocol = parse_int(argv[1])
        except ErrorReply:
            raise ErrorReply("ERR Protocol version is not an integer or out of range") from None
        if protocol not in (2, 3):
            raise ErrorReply("NOPROTO unsupported protocol version")
    name: bytes | None = None
    index = 2
    while index < len(argv):
        option = argv[index].lower()
        remaining = len(argv) - index - 1
        if option == b"auth" and remaining >= 2:
            _log_in(client, argv[index + 1], argv[index + 2], argv[0])
            index += 3
        elif option == b"setname" and remaining >= 1:
            name = _valid_name(argv[index + 1])
            index += 2
        else:
            raise ErrorReply(
                f"ERR Syntax error in HELLO option '{argv[index].decode(errors='replace')}'"
            )
    if not client.authenticated:
        raise ErrorReply(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time"
        )
    if name is not None:
        client.name = name
    client.protocol = protocol
    return {
        b"server": SERVER_NAME,
        b"version": SERVER_VERSION,
        b"proto": protocol,
        b"id": client.id,
        b"mode": b"standalone",
        b"role": b"master",
        b"modules": [],
    }


@commands.command("select", arity=2, flags=["fast"], group="connection")
def select(client: Client, argv: list[bytes]) -> Reply:
    """Change the selected database."""
    index = parse_int(argv[1])
    if not 0 <= index < len(client.server.keyspace.databases):
        raise ErrorReply("ERR DB index is out of range")
    client.select(index)
    return OK


def _valid_name(name: bytes) -> bytes:
    if any(byte <= 32 or byte >= 127 for byte in name):
        raise ErrorReply("ERR Client names cannot contain spaces, newlines or special characters.")
    return name


CLIENT_HELP: Final = [
    b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"GETNAME",
    b"    Return the name of the current connection.",
    b"ID",
    b"    Return the ID of the current connection.",
    b"INFO",
    b"    Return information about the current client connection.",
    b"KILL <ip:port> | KILL ID <client-id> | KILL ADDR <ip:port>",
    b"    Kill connections.",
    b"LIST [TYPE normal|pubsub] [ID id ...]",
    b"    Return information about client connections.",
    b"UNPAUSE",
    b"    Stop the current client pause, resuming traffic.",
    b"PAUSE <timeout> [WRITE|ALL]",
    b"    Suspend all, or just write, clients for <timeout> milliseconds.",
    b"REPLY (ON|OFF|SKIP)",
    b"    Control the replies sent to the current connection.",
    b"SETINFO <LIB-NAME|LIB-VER> <value>",
    b"    Set client library name or version.",
    b"SETNAME <name>",
    b"    Assign the name <name> to the current connection.",
    b"UNBLOCK <clientid> [TIMEOUT|ERROR]",
    b"    Unblock the specified blocked client.",
    b"NO-EVICT (ON|OFF)",
    b"    Protect current client connection from eviction.",
    b"NO-TOUCH (ON|OFF)",
    b"    Will not touch LRU/LFU stats when this mode is on.",
    b"HELP",
    b"    Print this help.",
]


def _client_subcommand(name: str, arity: int, *, admin: bool = False) -> Subcommand:
    flags = ("admin", "noscript", "loading", "stale") if admin else ("noscript", "loading", "stale")
    return Subcommand(name, arity, flags)


# Redis's CLIENT subcommands, for ACL rules (-client|kill) and COMMAND INFO
CLIENT_SUBCOMMANDS: Final = (
    _client_subcommand("caching", 3),
    _client_subcommand("getname", 2),
    _client_subcommand("getredir", 2),
    Subcommand("help", 2, ("loading", "stale")),
    _client_subcommand("id", 2),
    _client_subcommand("info", 2),
    _client_subcommand("kill", -3, admin=True),
    _client_subcommand("list", -2, admin=True),
    _client_subcommand("no-evict", 3, admin=True),
    _client_subcommand("no-touch", 3),
    _client_subcommand("pause", -3, admin=True),
    _client_subcommand("reply", 3),
    _client_subcommand("setinfo", 4),
    _client_subcommand("setname", 3),
    _client_subcommand("tracking", -3),
    _client_subcommand("trackinginfo", 2),
    _client_subcommand("unblock", -3, admin=True),
    _client_subcommand("unpause", 2, admin=True),
)


@commands.command("client", arity=-2, group="connection", subcommands=CLIENT_SUBCOMMANDS)
def client_(client: Client, argv: list[bytes]) -> Reply:
    """A container for client connection commands."""
    sub = argv[1].lower()
    server = client.server
    if sub == b"id" and len(argv) == 2:
        return client.id
    if sub == b"getname" and len(argv) == 2:
        return client.name or None
    if sub == b"setname" and len(argv) == 3:
        client.name = _valid_name(argv[2])
        return OK
    if sub == b"setinfo" and len(argv) == 4:
        attribute = argv[2].lower()
        value = _valid_name(argv[3]) if argv[3] else b""
        if attribute == b"lib-name":
            client.lib_name = value
        elif attribute == b"lib-ver":
            client.lib_version = value
        else:
            raise ErrorReply(f"ERR Unrecognized option '{argv[2].decode(errors='replace')}'")
        return OK
    if sub == b"info" and len(argv) == 2:
        return client.describe() + "\n"
    if sub == b"list":
        return _client_list(client, argv)
    if sub == b"kill" and len(argv) >= 3:
        return _client_kill(client, argv)
    if sub == b"reply" and len(argv) == 3:
        return _client_reply(client, argv[2].lower())
    if sub == b"help" and len(argv) == 2:
        return CLIENT_HELP
    if sub in (b"no-evict", b"no-touch") and len(argv) == 3:
        setattr(client, "no_evict" if sub == b"no-evict" else "no_touch", _on_off(argv[2]))
        return OK
    if sub == b"pause" and len(argv) in (3, 4):
        return _client_pause(client, argv)
    if sub == b"unpause" and len(argv) == 2:
        server.pause.unpause()
        return OK
    if sub == b"unblock" and len(argv) in (3, 4):
        return _client_unblock(client, argv)
    if sub in (b"pause", b"unblock") and len(argv) > 4:  # Redis's words when its own checks fail
        sub_as_sent = argv[1].decode(errors="replace")
        raise ErrorReply(
            f"ERR unknown subcommand or wrong number of arguments for '{sub_as_sent}'. "
            "Try CLIENT HELP."
        )
    if sub in FIXED_ARITY:
        raise ErrorReply(f"ERR wrong number of arguments for 'client|{sub.decode()}' command")
    return server.unknown_subcommand(argv)


# subcommands whose argument count the command table fixes (or bounds below)
FIXED_ARITY: Final = frozenset(
    {
        b"id", b"getname", b"setname", b"setinfo", b"info", b"help", b"kill", b"reply",
        b"no-evict", b"no-touch", b"pause", b"unpause", b"unblock",
    }
)  # fmt: skip


def _on_off(arg: bytes) -> bool:
    mode = arg.lower()
    if mode not in (b"on", b"off"):
        raise ErrorReply("ERR syntax error")
    return mode == b"on"


def _client_pause(client: Client, argv: list[bytes]) -> Reply:
    """CLIENT PAUSE milliseconds [WRITE|ALL]: hold everyone's commands (the
    caller's too), or those that may write, for that long (_pause.py)."""
    mode = ALL
    if len(argv) == 4:
        mode = {b"write": WRITE, b"all": ALL}.get(argv[3].lower(), "")
        if not mode:
            raise ErrorReply("ERR CLIENT PAUSE mode must be WRITE or ALL")
    milliseconds = parse_milliseconds(argv[2])
    client.server.pause.pause(milliseconds / 1000, mode)
    return OK


def _client_unblock(client: Client, argv: list[bytes]) -> Reply:
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: end the wait of a client blocked in
    BLPOP, XREAD, WAIT... (1), as its timeout would or with the UNBLOCKED
    error; 0 if that client is not blocked so (one held by CLIENT PAUSE is not)."""
    error = False
    if len(argv) == 4:
        reason = argv[3].lower()
        if reason not in (b"timeout", b"error"):
            raise ErrorReply("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        error = reason == b"error"
    target = client.server.clients.get(parse_int(argv[2]))
    if target is None:
        return 0
    return int(client.server.blocking.unblock(target, error=error))


def _client_reply(client: Client, mode: bytes) -> Reply:
    """CLIENT REPLY: OFF silences every reply (its own too) until ON; SKIP
    silences the next command's. Pub/sub messages still arrive, as in Redis."""
    if mode == b"on":
        client.replies = REPLIES_ON
        return OK
    if mode == b"off":
        client.replies = REPLIES_OFF
    elif mode == b"skip":
        if client.replies != REPLIES_OFF:
            client.replies = REPLIES_SKIP_NEXT
    else:
        raise ErrorReply("ERR syntax error")
    return None  # not sent: the mode is already in force


def _client_list(client: Client, argv: list[bytes]) -> Reply:
    clients = list(client.server.clients.values())
    if len(argv) >= 4 and argv[2].lower() == b"id":
        wanted = {parse_int(arg) for arg in argv[3:]}
        clients = [c for c in clients if c.id in wanted]
    elif len(argv) == 4 and argv[2].lower() == b"type":
        kind = argv[3].lower()
        if kind not in (b"normal", b"pubsub", b"master", b"replica", b"slave"):
            raise ErrorReply(f"ERR Unknown client type '{argv[3].decode(errors='replace')}'")
        clients = [c for c in clients if (c.subscribed if kind == b"pubsub" else kind == b"normal")]
    elif len(argv) != 2:
        raise ErrorReply("ERR syntax error")
    return "".join(c.describe() + "\n" for c in clients)


def _client_kill(client: Client, argv: list[bytes]) -> Reply:
    clients = list(client.server.clients.values())
    if len(argv) == 3:  # the old form: CLIENT KILL addr
        victims = [c for c in clients if c.link is not None and c.link.peer.encode() == argv[2]]
        if not victims:
            raise ErrorReply("ERR No such client")
        for victim in victims:
            victim.kill(by=client)
        return OK
    if len(argv) % 2:
        raise ErrorReply("ERR syntax error")
    skip_me = True  # the filter form spares the caller unless SKIPME no
    for option, value in zip(argv[2::2], argv[3::2], strict=True):
        option = option.lower()
        if option == b"id":
            wanted = parse_int(value)
            clients = [c for c in clients if c.id == wanted]
        elif option == b"addr":
            clients = [c for c in clients if c.link is not None and c.link.peer.encode() == value]
        elif option == b"skipme" and value.lower() in (b"yes", b"no"):
            skip_me = value.lower() == b"yes"
        else:
            raise ErrorReply("ERR syntax error")
    if skip_me:
        clients = [c for c in clients if c is not client]
    for victim in clients:
        victim.kill(by=client)
    return len(clients)
