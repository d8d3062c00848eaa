# What users register on the XMPP plugin: bots (accounts answered by code:
# a message to echo@domain goes to the `echo` handler) and IQ handlers by
# payload namespace (a custom IQ the server answers).
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from ._precis import PrepError, username

if TYPE_CHECKING:
    from ._jid import JID

__all__ = ["BotHandler", "IqHandler", "Sender", "XmppApp"]


@dataclasses.dataclass(frozen=True)
class Sender:
    """Who sent a stanza to a handler: their full JID."""

    jid: JID


# A bot gets the sender and the <message/>; it returns the reply's body text
# (or a whole <message/> element, or None for no reply).
BotHandler = Callable[[Sender, Element], Awaitable[str | Element | None]]
# An IQ handler gets the sender and the <iq/>; it returns the result's payload
# element (or None for an empty result). Raising StanzaError sends an error.
IqHandler = Callable[[Sender, Element], Awaitable[Element | None]]


class XmppApp:
    """Handlers by bot account and by IQ payload namespace:

    app = XmppApp()

    @app.bot("echo")
    async def echo(sender, message):
        return message.findtext("{jabber:client}body")
    """

    def __init__(self) -> None:
        self.bots: dict[str, BotHandler] = {}
        self.iq_handlers: dict[str, IqHandler] = {}

    def bot(self, localpart: str) -> Callable[[BotHandler], BotHandler]:
        try:
            name = username(localpart)  # as JIDs name it (RFC 8265)
        except PrepError as exc:
            raise ValueError(f"a bot's name is a JID local part: {exc}") from None

        def register(handler: BotHandler) -> BotHandler:
            _check_async(handler, f"bot {name!r}")
            if name in self.bots:
                raise ValueError(f"bot {name!r} is already registered")
            self.bots[name] = handler
            return handler

        return register

    def iq(self, namespace: str) -> Callable[[IqHandler], IqHandler]:
        def register(handler: IqHandler) -> IqHandler:
            _check_async(handler, f"IQ handler for {namespace!r}")
            if namespace in self.iq_handlers:
                raise ValueError(f"an IQ handler for {namespace!r} is already registered")
            self.iq_handlers[namespace] = handler
            return handler

        return register


def _check_async(handler: object, what: str) -> None:
    if not inspect.iscoroutinefunction(handler):
        raise TypeError(f"{what}: the handler must be an async function")
