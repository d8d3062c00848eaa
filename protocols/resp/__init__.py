# The RESP plugin: a Redis-protocol server that redis-cli, redis-py and
# redis-benchmark use as a Redis, with a command table users extend.
#
#   from protocols.resp import RespApp, ErrorReply
#   app = RespApp()
#
#   @app.command("hello", arity=2, flags=["fast"])
#   def hello(client, argv):
#       return b"hello " + argv[1]
from ._app import (
    KEY_ACCESS,
    KEY_DELETE,
    KEY_INSERT,
    KEY_OW,
    KEY_READ,
    KEY_RM,
    KEY_RO,
    KEY_RW,
    KEY_UPDATE,
    KEY_WRITE,
    CommandSpec,
    RespApp,
    Subcommand,
    VariableKeyFlags,
    keys_after_keyword,
    keys_counted,
)
from ._client import Client
from ._plugin import RespProtocol, RespSettings, protocol
from ._reply import NULL_ARRAY, OK, ErrorReply, Frames, Push, Status

__all__ = [
    "KEY_ACCESS",
    "KEY_DELETE",
    "KEY_INSERT",
    "KEY_OW",
    "KEY_READ",
    "KEY_RM",
    "KEY_RO",
    "KEY_RW",
    "KEY_UPDATE",
    "KEY_WRITE",
    "NULL_ARRAY",
    "OK",
    "Client",
    "CommandSpec",
    "ErrorReply",
    "Frames",
    "Push",
    "RespApp",
    "RespProtocol",
    "RespSettings",
    "Status",
    "Subcommand",
    "VariableKeyFlags",
    "keys_after_keyword",
    "keys_counted",
    "protocol",
]
