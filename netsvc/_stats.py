# Counters: how many connections are open, were accepted or refused, how many
# requests, errors and failed logins there were. One set per listener plus one for the whole
# server; plugins add requests and errors, a status page reads them.
from __future__ import annotations

import dataclasses

__all__ = ["Counters"]


@dataclasses.dataclass
class Counters:
    """Live counters. `parent` (the server's totals) is updated alongside."""

    connections_open: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    requests: int = 0
    errors: int = 0
    logins_failed: int = 0
    parent: Counters | None = dataclasses.field(default=None, repr=False, compare=False)

    def opened(self) -> None:
        self.connections_open += 1
        self.connections_total += 1
        if self.parent is not None:
            self.parent.opened()

    def closed(self) -> None:
        self.connections_open -= 1
        if self.parent is not None:
            self.parent.closed()

    def refused(self) -> None:
        self.connections_refused += 1
        if self.parent is not None:
            self.parent.refused()

    def request(self, count: int = 1) -> None:
        counters: Counters | None = self
        while counters is not None:  # and its parents: one call per request, not one each
            counters.requests += count
            counters = counters.parent

    def error(self) -> None:
        self.errors += 1
        if self.parent is not None:
            self.parent.error()

    def login_failed(self) -> None:
        """A client gave a wrong password (or user): plugins count them here."""
        self.logins_failed += 1
        if self.parent is not None:
            self.parent.login_failed()

    def snapshot(self) -> dict[str, int]:
        """The counters as a plain dict (for JSON status pages and logs)."""
        return {
            "connections_open": self.connections_open,
            "connections_total": self.connections_total,
            "connections_refused": self.connections_refused,
            "requests": self.requests,
            "errors": self.errors,
            "logins_failed": self.logins_failed,
        }
