# The kvline application: a registry of commands (users add their own with
# @app.command) and the built-in commands over an in-memory dict.
from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ._wire import encode_reply

__all__ = ["CommandError", "KVApp", "Store", "default_app"]

Store = dict[str, str]
Handler = Callable[[Store, list[str]], bytes]


class CommandError(Exception):
    """Raised by a handler: the client gets `ERR <message>`."""


@dataclasses.dataclass(frozen=True)
class Registered:
    handler: Handler
    min_args: int
    max_args: int  # the last argument takes the rest of the line


class KVApp:
    """Commands by name. Register one with:

    @app.command("GET", args=1)
    def get(store, args): ...
    """

    def __init__(self) -> None:
        self.commands: dict[str, Registered] = {}

    def command(
        self, name: str, *, args: int | tuple[int, int] = 0
    ) -> Callable[[Handler], Handler]:
        """Register `handler` for `name`, taking `args` arguments (or a (min, max) range)."""
        if not name or " " in name:
            raise ValueError(f"a command name is one word, got {name!r}")
        low, high = (args, args) if isinstance(args, int) else args

        def register(handler: Handler) -> Handler:
            self.commands[name.upper()] = Registered(handler, low, high)
            return handler

        return register

    def include(self, other: KVApp) -> None:
        """Add all of `other`'s commands (to extend the built-in set)."""
        self.commands.update(other.commands)

    def call(self, store: Store, name: str, rest: str) -> bytes:
        """Run command `name` with the rest of its line; return the reply bytes."""
        registered = self.commands.get(name)
        if registered is None:
            return encode_reply("ERR", f"unknown command {name!r}")
        args = rest.split(" ", registered.max_args - 1) if rest else []
        if not registered.min_args <= len(args) <= registered.max_args:
            return encode_reply("ERR", f"wrong number of arguments for {name!r}")
        try:
            return registered.handler(store, args)
        except CommandError as exc:
            return encode_reply("ERR", str(exc))


default_app = KVApp()


@default_app.command("PING")
def ping(store: Store, args: list[str]) -> bytes:
    return encode_reply("PONG")


@default_app.command("SET", args=2)
def set_(store: Store, args: list[str]) -> bytes:
    store[args[0]] = args[1]
    return encode_reply("OK")


@default_app.command("GET", args=1)
def get(store: Store, args: list[str]) -> bytes:
    value = store.get(args[0])
    return encode_reply("NIL") if value is None else encode_reply("VALUE", value)


@default_app.command("DEL", args=1)
def delete(store: Store, args: list[str]) -> bytes:
    return encode_reply("INT", "1" if store.pop(args[0], None) is not None else "0")


@default_app.command("INCR", args=1)
def incr(store: Store, args: list[str]) -> bytes:
    try:
        value = int(store.get(args[0], "0")) + 1
    except ValueError:
        raise CommandError("value is not an integer") from None
    store[args[0]] = str(value)
    return encode_reply("INT", str(value))


@default_app.command("KEYS")
def keys(store: Store, args: list[str]) -> bytes:
    return encode_reply("KEYS", " ".join(sorted(store)))
