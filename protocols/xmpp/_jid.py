# JIDs (RFC 7622, simplified): localpart@domainpart/resourcepart; the
# localpart prepared as user names are (RFC 8265 UsernameCaseMapped: a fullwidth
# or capital ALICE is alice), the domain compared in lower case.
from __future__ import annotations

import dataclasses
import re

from ._precis import PrepError, username

__all__ = ["JID", "JIDError"]

SPACE = re.compile(r"\s")  # what str.isspace() calls a space, found without a loop


class JIDError(ValueError):
    """Not a usable JID."""


@dataclasses.dataclass(frozen=True)
class JID:
    local: str
    domain: str
    resource: str = ""

    @classmethod
    def parse(cls, text: str) -> JID:
        if not text or len(text) > 3071:
            raise JIDError(f"bad JID {text!r}")
        bare, slash, resource = text.partition("/")
        local, at, domain = bare.rpartition("@")
        if not at:
            local, domain = "", bare
        if not domain or (at and not local) or (slash and not resource):
            raise JIDError(f"bad JID {text!r}")
        if SPACE.search(domain):
            raise JIDError(f"bad JID {text!r}")
        try:
            prepared = username(local) if local else ""
        except PrepError:
            raise JIDError(f"bad JID {text!r}") from None
        return cls(prepared, domain.lower().rstrip("."), resource)

    @classmethod
    def parse_or_none(cls, text: str) -> JID | None:
        try:
            return cls.parse(text)
        except JIDError:
            return None

    @property
    def bare(self) -> JID:
        return JID(self.local, self.domain)

    def __str__(self) -> str:
        text = f"{self.local}@{self.domain}" if self.local else self.domain
        return f"{text}/{self.resource}" if self.resource else text
