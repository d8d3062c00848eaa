# The XMPP plugin: a line-friendly subset of XMPP (RFC 6120/6121) that a
# person with netcat and real XMPP clients can both use.
from ._accounts import Accounts, AccountStore
from ._app import Sender, XmppApp
from ._jid import JID
from ._plugin import XmppProtocol, protocol
from ._settings import XmppSettings
from ._store import Store

__all__ = [
    "JID",
    "AccountStore",
    "Accounts",
    "Sender",
    "Store",
    "XmppApp",
    "XmppProtocol",
    "XmppSettings",
    "protocol",
]
