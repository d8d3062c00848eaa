# Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH,
# PUBSUB CHANNELS/NUMSUB/NUMPAT. Confirmations are push frames, one per
# channel, as Redis sends them (RESP2: arrays, RESP3: pushes).
from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .._app import RespApp, Subcommand
from .._client import Client
from .._glob import compile_glob
from .._reply import ErrorReply, Frames, Push, Reply

commands = RespApp(builtins=False)


def _change(
    client: Client, names: list[bytes], change: Callable[[Client, bytes], None], kind: bytes
) -> Frames:
    """Apply `change` to each name, confirming each with a frame (one frame
    with a null name when there is nothing to unsubscribe from)."""
    frames = Frames()
    for name in names:
        change(client, name)
        frames.append(Push([kind, name, len(client.channels) + len(client.patterns)]))
    if not frames:
        frames.append(Push([kind, None, len(client.channels) + len(client.patterns)]))
    return frames


PUBSUB_FLAGS: Final = ["pubsub", "noscript", "loading", "stale"]


@commands.command("subscribe", arity=-2, flags=PUBSUB_FLAGS, group="pubsub")
def subscribe(client: Client, argv: list[bytes]) -> Reply:
    """Listen for messages published to the given channels."""
    return _change(client, argv[1:], client.server.pubsub.subscribe, b"subscribe")


@commands.command("psubscribe", arity=-2, flags=PUBSUB_FLAGS, group="pubsub")
def psubscribe(client: Client, argv: list[bytes]) -> Reply:
    """Listen for messages published to channels matching the given patterns."""
    return _change(client, argv[1:], client.server.pubsub.psubscribe, b"psubscribe")


@commands.command("unsubscribe", arity=-1, flags=PUBSUB_FLAGS, group="pubsub")
def unsubscribe(client: Client, argv: list[bytes]) -> Reply:
    """Stop listening for messages posted to the given channels."""
    names = argv[1:] or sorted(client.channels)
    return _change(client, names, client.server.pubsub.unsubscribe, b"unsubscribe")


@commands.command("punsubscribe", arity=-1, flags=PUBSUB_FLAGS, group="pubsub")
def punsubscribe(client: Client, argv: list[bytes]) -> Reply:
    """Stop listening for messages posted to channels matching the given patterns."""
    names = argv[1:] or sorted(client.patterns)
    return _change(client, names, client.server.pubsub.punsubscribe, b"punsubscribe")


@commands.command("publish", arity=3, flags=["pubsub", "loading", "stale", "fast"], group="pubsub")
def publish(client: Client, argv: list[bytes]) -> Reply:
    """Post a message to a channel."""
    return client.server.pubsub.publish(argv[1], argv[2])


PUBSUB_SUBCOMMANDS: Final = (
    Subcommand("channels", -2, ("pubsub", "loading", "stale")),
    Subcommand("help", 2, ("loading", "stale")),
    Subcommand("numpat", 2, ("pubsub", "loading", "stale")),
    Subcommand("numsub", -2, ("pubsub", "loading", "stale")),
    Subcommand("shardchannels", -2, ("pubsub", "loading", "stale")),
    Subcommand("shardnumsub", -2, ("pubsub", "loading", "stale")),
)


@commands.command("pubsub", arity=-2, group="pubsub", subcommands=PUBSUB_SUBCOMMANDS)
def pubsub(client: Client, argv: list[bytes]) -> Reply:
    """A container for Pub/Sub commands."""
    registry = client.server.pubsub
    sub = argv[1].lower()
    if sub == b"channels" and len(argv) <= 3:
        matches = compile_glob(argv[2]) if len(argv) == 3 else None
        return [c for c in registry.channels if matches is None or matches(c)]
    if sub == b"numsub":
        return [item for channel in argv[2:] for item in (channel, registry.numsub(channel))]
    if sub == b"numpat" and len(argv) == 2:
        return len(registry.patterns)
    if sub in (b"channels", b"numpat"):
        raise ErrorReply(f"ERR wrong number of arguments for 'pubsub|{sub.decode()}' command")
    return client.server.unknown_subcommand(argv)
