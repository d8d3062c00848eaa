# The HTTP plugin's settings (each an option --http-NAME and a variable
# NETSVC_HTTP_NAME).
from __future__ import annotations

import dataclasses

from netsvc import setting

__all__ = ["HttpSettings"]

KiB, MiB = 1024, 1024 * 1024


@dataclasses.dataclass(frozen=True)
class HttpSettings:
    max_header_size: int = setting(
        16 * KiB, help="largest request line plus headers, in bytes; more gets 431"
    )
    max_body_size: int = setting(16 * MiB, help="largest request body, in bytes; more gets 413")
    access_log: bool = setting(True, help="log one line per request (logger netsvc.http.access)")
