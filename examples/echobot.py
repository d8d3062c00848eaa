# An XMPP bot written as a handler: messages to echo@DOMAIN come back.
#
#   netsvc serve --protocol xmpp --xmpp-users-file users --app examples.echobot:app
from __future__ import annotations

from xml.etree.ElementTree import Element

from protocols.xmpp import Sender, XmppApp

app = XmppApp()


@app.bot("echo")
async def echo(sender: Sender, message: Element) -> str | None:
    """Answer every message with its own body."""
    body = message.findtext("{jabber:client}body")
    return None if body is None else body
