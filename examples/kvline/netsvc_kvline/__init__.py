# kvline: an example netsvc protocol plugin, a key-value store spoken in lines.
# Read docs/writing-a-plugin.md in the netsvc repository for the walk-through.
from ._app import CommandError, KVApp, Store, default_app
from ._plugin import KVLineProtocol, KVService, KVSettings, protocol
from ._wire import Command, LineTooLong, Parser, encode_reply

__all__ = [
    "Command",
    "CommandError",
    "KVApp",
    "KVLineProtocol",
    "KVService",
    "KVSettings",
    "LineTooLong",
    "Parser",
    "Store",
    "default_app",
    "encode_reply",
    "protocol",
]
