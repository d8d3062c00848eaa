# The account store: users with passwords hashed by scrypt (stdlib hashlib),
# and their rosters, kept in a text file, one user per line:
#
#   alice:scrypt$16384$8$1$<salt b64>$<hash b64>:bob,carol
#
# `python -m protocols.xmpp adduser FILE NAME` adds or changes a user.
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["AccountError", "Accounts", "hash_password", "verify_password"]

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class AccountError(ValueError):
    """The account file is malformed or a name is not usable."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encode = base64.b64encode
    return (
        f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _check_name(name: str) -> str:
    name = name.strip().lower()
    if not name or any(ch in "\"&'/:<>@ ,\t\r\n" for ch in name):
        raise AccountError(f"{name!r} is not a usable user name")
    return name


class Accounts:
    """Users, their password hashes and contacts. `any_password` accepts every
    login and makes up the user (development only)."""

    def __init__(self, path: str | None = None, *, any_password: bool = False) -> None:
        self.path = Path(path) if path else None
        self.any_password = any_password
        self.passwords: dict[str, str] = {}
        self.contacts: dict[str, list[str]] = {}
        if self.path is not None:
            self.load()

    def load(self) -> None:
        assert self.path is not None
        if not self.path.exists():
            raise AccountError(f"account file {self.path} does not exist (add a user to create it)")
        for number, raw in enumerate(self.path.read_text().splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(":")
            if len(parts) not in (2, 3):
                raise AccountError(f"{self.path}:{number}: expected name:hash[:contacts]")
            name = _check_name(parts[0])
            self.passwords[name] = parts[1]
            self.contacts[name] = [c for c in (parts[2] if len(parts) == 3 else "").split(",") if c]

    def save(self) -> None:
        assert self.path is not None
        lines = [
            f"{name}:{stored}:{','.join(self.contacts.get(name, []))}"
            for name, stored in sorted(self.passwords.items())
        ]
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text("\n".join(lines) + "\n")
        os.chmod(temporary, 0o600)
        temporary.replace(self.path)

    def add(self, name: str, password: str, contacts: list[str] | None = None) -> None:
        name = _check_name(name)
        self.passwords[name] = hash_password(password)
        if contacts is not None:
            self.contacts[name] = [_check_name(c) for c in contacts]
        else:
            self.contacts.setdefault(name, [])

    def check(self, name: str, password: str) -> bool:
        if self.any_password:
            return bool(name)
        stored = self.passwords.get(name.lower())
        return stored is not None and verify_password(password, stored)

    def exists(self, name: str) -> bool:
        """Whether `name` has an account (every name does with any_password)."""
        return bool(name) if self.any_password else name.lower() in self.passwords

    def roster(self, name: str) -> list[str]:
        """The local parts of `name`'s contacts."""
        return list(self.contacts.get(name, []))
