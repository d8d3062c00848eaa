# netsvc: a trio runtime that exports services by binding ports. The public
# API is re-exported here; everything else lives in private modules.
from ._address import (
    AddressError,
    ListenAddress,
    SocketAddress,
    listens_locally,
    parse_listen_url,
)
from ._connection import (
    Connection,
    ConnectionLimits,
    ConnectionLost,
    ReceiveTimeout,
    SendTimeout,
)
from ._plugin import Access, AppError, ListenerInfo, Protocol, Runtime, Service
from ._proxy import TrustedProxies
from ._registry import (
    BrokenPlugin,
    InstalledPlugins,
    LoadError,
    installed_protocols,
    load_protocol,
    protocol_for_scheme,
    scan_protocols,
)
from ._server import Listen, Server
from ._settings import SettingError, setting
from ._stats import Counters
from ._tls import PeerCertificate, TlsConfig, TlsError

__version__ = "0.1.0"

__all__ = [
    "Access",
    "AddressError",
    "AppError",
    "BrokenPlugin",
    "Connection",
    "ConnectionLimits",
    "ConnectionLost",
    "Counters",
    "InstalledPlugins",
    "Listen",
    "ListenAddress",
    "ListenerInfo",
    "LoadError",
    "PeerCertificate",
    "Protocol",
    "ReceiveTimeout",
    "Runtime",
    "SendTimeout",
    "Server",
    "Service",
    "SettingError",
    "SocketAddress",
    "TlsConfig",
    "TlsError",
    "TrustedProxies",
    "installed_protocols",
    "listens_locally",
    "load_protocol",
    "parse_listen_url",
    "protocol_for_scheme",
    "scan_protocols",
    "setting",
]
