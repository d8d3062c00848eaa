# The HTTP plugin's settings (each an option --http-NAME and a variable
# NETSVC_HTTP_NAME).
from __future__ import annotations

import dataclasses

from netsvc import SettingError, setting

from ._parse import PARSERS, available

__all__ = ["HttpSettings"]

KiB, MiB = 1024, 1024 * 1024
PROXY_HEADERS = ("x-forwarded", "forwarded", "off")


@dataclasses.dataclass(frozen=True)
class HttpSettings:
    max_header_size: int = setting(
        16 * KiB, help="largest request line plus headers, in bytes; more gets 431"
    )
    max_body_size: int = setting(16 * MiB, help="largest request body, in bytes; more gets 413")
    access_log: bool = setting(True, help="log one line per request (logger netsvc.http.access)")
    ws_ping_interval: float = setting(
        20.0, help="seconds between the pings sent on an open WebSocket; 0 sends none"
    )
    ws_ping_timeout: float = setting(
        20.0,
        help="seconds a WebSocket client has to answer a ping before it is closed (1011); "
        "0 waits forever",
    )
    ws_max_message_size: int = setting(
        16 * MiB, help="largest WebSocket message received, in bytes; more closes it (1009)"
    )
    ws_per_message_deflate: bool = setting(
        True, help="compress WebSocket messages (permessage-deflate) when the client offers it"
    )
    proxy_headers: str = setting(
        "x-forwarded",
        help="which proxy headers name the client when the peer is in --forwarded-allow-ips "
        "(default 127.0.0.1,::1): x-forwarded (X-Forwarded-For and -Proto, as nginx, HAProxy "
        "and cloud load balancers write them: they must replace a client's -Proto), forwarded "
        "(RFC 7239 Forwarded), or off; the other kind is the client's own word and never read",
    )
    forwarded_host: bool = setting(
        False,
        help="also take the host the client asked for from X-Forwarded-Host (or Forwarded's "
        "host=): turn on only if every trusted proxy sets it, since one that does not passes "
        "a client's own on",
    )
    parser: str = setting(
        "auto",
        help="the HTTP/1.1 parser: h11 (pure Python, the reference), httptools (llhttp, in C: "
        "pip install 'netsvc[fast]'), or auto: httptools if it is installed, else h11",
    )
    root_path: str = setting(
        "",
        help="the path prefix the app is served under behind a proxy (/api): the ASGI "
        "root_path; taken off native routes' paths",
    )

    def __post_init__(self) -> None:
        for name in ("ws_ping_interval", "ws_ping_timeout"):
            if getattr(self, name) < 0:
                option = "--http-" + name.replace("_", "-")
                raise SettingError(
                    f"{option}: expected 0 (off) or more seconds, got {getattr(self, name)}"
                )
        if self.proxy_headers not in PROXY_HEADERS:
            raise SettingError(
                f"--http-proxy-headers: expected one of {', '.join(PROXY_HEADERS)}, "
                f"got {self.proxy_headers!r}"
            )
        if self.parser not in PARSERS:
            raise SettingError(
                f"--http-parser: expected one of {', '.join(PARSERS)}, got {self.parser!r}"
            )
        if self.parser == "httptools" and not available("httptools"):
            raise SettingError(
                "--http-parser httptools: httptools is not installed; install it with "
                "pip install 'netsvc[fast]' (or use --http-parser h11 or auto)"
            )
        if self.root_path and not self.root_path.startswith("/"):
            raise SettingError(
                f"--http-root-path: expected a path starting with /, got {self.root_path!r}"
            )
        object.__setattr__(self, "root_path", self.root_path.rstrip("/"))  # "/api/" is "/api"
        if self.ws_max_message_size < 1:
            size = self.ws_max_message_size
            raise SettingError(f"--http-ws-max-message-size: expected at least 1 byte, got {size}")
