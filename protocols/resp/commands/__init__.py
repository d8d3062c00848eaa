# netsvc's built-in Redis commands, one module per group; BUILTINS is every
# command of every group, which RespApp() starts with.
from __future__ import annotations

from .._app import CommandSpec
from . import (
    connection,
    hashes,
    keys,
    lists,
    pubsub,
    scripting,
    server,
    sets,
    streams,
    strings,
    transactions,
    zsets,
)

__all__ = ["BUILTINS"]

GROUPS = (
    connection,
    server,
    strings,
    keys,
    lists,
    hashes,
    sets,
    zsets,
    streams,
    transactions,
    pubsub,
    scripting,
)

BUILTINS: list[CommandSpec] = [
    spec for module in GROUPS for spec in module.commands.commands.values()
]
