# What the core promises each connection, as values a plugin holds: the
# limits a listener enforces (ConnectionLimits) and the exceptions that say
# one was reached or the client is gone. Kept out of _connection.py, which
# the compiled build compiles: these stay plain Python classes (a dataclass
# that copies, pickles and gives its type hints; exceptions with class-level
# defaults) whichever build runs.
from __future__ import annotations

import dataclasses

__all__ = ["ConnectionLimits", "ConnectionLost", "ReceiveTimeout", "SendTimeout"]

KiB = 1024
SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """What the core enforces on every connection of a listener.

    A plugin gives its defaults (`Protocol.limits`); the CLI can override each.
    `None` (or 0, as on the command line) means no limit for the timeouts.
    """

    max_connections: int = 1024
    """Open connections per listener; more are refused with the plugin's message."""
    idle_timeout: float | None = 300 * SECONDS
    """How long a connection may sit between requests."""
    request_timeout: float | None = 30 * SECONDS
    """How long a request may take to arrive once its first byte has."""
    send_timeout: float | None = 30 * SECONDS
    """How long one send may wait for a client that does not read."""
    handshake_timeout: float = 10 * SECONDS
    """How long a TLS handshake may take."""
    receive_size: int = 64 * KiB
    """The most bytes one receive() returns."""

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")
        if self.receive_size < 1:
            raise ValueError(f"receive_size must be at least 1, got {self.receive_size}")
        for name in ("idle_timeout", "request_timeout", "send_timeout"):
            value = getattr(self, name)
            if value == 0:
                object.__setattr__(self, name, None)  # 0 means no limit
            elif value is not None and value < 0:
                raise ValueError(f"{name} must be positive, 0 or None (no limit), got {value}")


class ReceiveTimeout(Exception):
    """receive() waited past a deadline: `phase` is "idle" or "request"."""

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(
            f"no complete {'request' if phase == 'request' else 'data'} in {seconds:g}s"
        )
        self.phase = phase
        self.seconds = seconds


class SendTimeout(Exception):
    """send() could not hand its data to a client that stopped reading.
    `sent`: how many bytes of that send's data went out before it failed
    (the rest never will); None when that is not known (TLS)."""

    sent: int | None = None


class ConnectionLost(Exception):
    """The client went away while we were sending. `sent`, for the send that
    found it gone: how many of its bytes went out first (0 for a send after
    the connection broke; None: not known, TLS, or not raised by a send)."""

    sent: int | None = None
