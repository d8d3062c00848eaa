# The account store: users and their rosters, kept in a text file, one user
# per line, with no password: SCRAM's keys (RFC 5802) for SHA-1 and SHA-256,
# from one salt and iteration count, which both SCRAM and PLAIN logins are
# checked against, as Prosody does:
#
#   alice:scram$4096$<salt>$<SHA-1 StoredKey>$<SHA-1 ServerKey>$<SHA-256 StoredKey>$<SHA-256
#   ServerKey>:bob,carol   (on one line)
#
# (base64 each). Files of earlier versions hold scrypt hashes
# (`scrypt$N$r$p$<salt>$<hash>`), from which no SCRAM keys can be made: such
# a user logs in with PLAIN once, and the line is rewritten in the new form.
# `python -m protocols.xmpp adduser FILE NAME` adds or changes a user.
# Names are kept as RFC 8265's UsernameCaseMapped prepares them, and keys
# are those of the SASLprepped password (RFC 4013), as clients send it
# (_precis); a line of an older version whose name is not prepared yet is
# read under its prepared name, with a warning.
# AccountStore is what a session asks of any account store: this file, or
# the database (_store.Store), which keeps the same credential strings.
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import Protocol

from ._precis import PrepError, saslprep, username
from ._scram import HASHES, ITERATIONS, ScramCredentials, check_password, derive

__all__ = [
    "AccountError",
    "AccountStore",
    "Accounts",
    "check_name",
    "check_stored",
    "dummy_entry",
    "hash_password",
    "lookup_name",
    "scram_credentials",
]

log = logging.getLogger("netsvc.xmpp")


class AccountError(ValueError):
    """The account file is malformed or a name is not usable."""


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    """The stored form of a password: the SCRAM keys of its SASLprepped
    form (AccountError if SASLprep refuses it), not the password."""
    try:
        password = saslprep(password, stored=True)
    except PrepError as exc:
        raise AccountError(str(exc)) from None
    if not password:
        raise AccountError("the password is empty")
    salt = secrets.token_bytes(16)
    fields = [f"scram${iterations}", _b64(salt)]
    for hash_name in ("sha1", "sha256"):
        keys = derive(password, hash_name, salt, iterations)
        fields += [_b64(keys.stored_key), _b64(keys.server_key)]
    return "$".join(fields)


@functools.cache
def dummy_entry() -> str:
    """The SCRAM keys of a random password nobody knows (made once): a PLAIN
    login as a user who does not exist is checked against them, so that it
    takes as long as a wrong password, and no timing tells who has an
    account (SCRAM's fake salts do the same for SCRAM)."""
    return hash_password(secrets.token_urlsafe(16))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class AccountStore(Protocol):
    """What logins are checked against: the account file (Accounts) or the
    database (Store). `any_password` accepts every login (development)."""

    any_password: bool

    @property
    def scram_possible(self) -> bool:
        """Whether SCRAM can be offered (not with any_password: no keys)."""
        ...

    def check(self, name: str, password: str) -> bool:
        """A PLAIN login."""
        ...

    def scram(self, name: str, mechanism: str) -> ScramCredentials | None:
        """The keys a SCRAM login as `name` is checked against, or None."""
        ...

    def exists(self, name: str) -> bool:
        """Whether `name` has an account."""
        ...


def scram_credentials(stored: str, hash_name: str) -> ScramCredentials | None:
    """The keys of one hash in a stored entry; None for a legacy scrypt one."""
    fields = stored.split("$")
    if fields[0] != "scram":
        return None
    if len(fields) != 7:
        raise AccountError("a scram entry has 7 $-separated fields")
    offset = {"sha1": 3, "sha256": 5}[hash_name]
    try:
        return ScramCredentials(
            base64.b64decode(fields[2], validate=True),
            int(fields[1]),
            base64.b64decode(fields[offset], validate=True),
            base64.b64decode(fields[offset + 1], validate=True),
        )
    except ValueError:
        raise AccountError("a scram entry is not base64 where it should be") from None


def _verify_scrypt(password: str, stored: str) -> bool:
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


def check_stored(stored: str, password: str) -> tuple[bool, str | None]:
    """A PLAIN password against a stored entry: whether it matches, and, for
    an entry that matches only as an older version kept it (a legacy scrypt
    hash, or the keys of a password that was not SASLprepped), the SCRAM
    entry to store instead."""
    try:
        prepared: str | None = saslprep(password)
    except PrepError:  # SASLprep refuses it: only an older entry may hold it
        prepared = None
    credentials = scram_credentials(stored, "sha256")
    if credentials is not None:
        if prepared is not None and check_password(prepared, "sha256", credentials):
            return True, None
        if prepared == password or not check_password(password, "sha256", credentials):
            return False, None
    elif not _verify_scrypt(password, stored):
        return False, None
    try:
        return True, hash_password(password)
    except AccountError:  # not storable as SASLprep wants it: kept as it is
        return True, None


def lookup_name(name: str) -> str | None:
    """The name an account of `name` is kept under, or None if no account
    can have it (what logins and look-ups use: no error for a bad name)."""
    try:
        return username(name)
    except PrepError:
        return None


def check_name(name: str) -> str:
    """A user name as accounts keep it: stripped of surrounding spaces and
    prepared by RFC 8265's UsernameCaseMapped profile (so fullwidth or
    capital ALICE is alice), a usable JID local part (RFC 7622) without a comma (the account
    file's separator); AccountError saying what is wrong otherwise."""
    try:
        prepared = username(name.strip())
    except PrepError as exc:
        raise AccountError(f"{name[:100]!r} is not a usable user name: {exc}") from None
    if "," in prepared:
        raise AccountError(f"{name[:100]!r} is not a usable user name: it has a comma")
    return prepared


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
            try:
                name = check_name(parts[0])
            except AccountError as exc:
                raise AccountError(
                    f"{self.path}:{number}: {exc} (rename or remove the line)"
                ) from None
            if name in self.passwords:
                raise AccountError(
                    f"{self.path}:{number}: {parts[0]!r} and an earlier line are the same "
                    f"user, {name!r}, once prepared (RFC 8265): keep one of them"
                )
            if name != parts[0]:
                log.warning(
                    "%s:%d: user %r is read as %r (user names are prepared as RFC 8265 "
                    "says); the file keeps the new form when it is next written",
                    self.path,
                    number,
                    parts[0],
                    name,
                )
            if not parts[1].startswith(("scram$", "scrypt$")):
                raise AccountError(f"{self.path}:{number}: unknown password scheme")
            try:
                scram_credentials(parts[1], "sha256")
            except AccountError as exc:
                raise AccountError(f"{self.path}:{number}: {exc}") from None
            self.passwords[name] = parts[1]
            contacts = [c for c in (parts[2] if len(parts) == 3 else "").split(",") if c]
            self.contacts[name] = [lookup_name(c) or c for c in contacts]

    def save(self) -> None:
        assert self.path is not None
        lines = [
            f"{name}:{stored}:{','.join(self.contacts.get(name, []))}"
            for name, stored in sorted(self.passwords.items())
        ]
        temporary = self.path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        # created readable by the owner alone: never a moment with wider rights
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write("\n".join(lines) + "\n")
        temporary.replace(self.path)

    def add(self, name: str, password: str, contacts: list[str] | None = None) -> None:
        name = check_name(name)
        self.passwords[name] = hash_password(password)
        if contacts is not None:
            self.contacts[name] = [check_name(c) for c in contacts]
        else:
            self.contacts.setdefault(name, [])

    def check(self, name: str, password: str) -> bool:
        """A PLAIN login, checked against the SCRAM keys (a legacy scrypt
        entry is checked against its hash, and rewritten as SCRAM keys)."""
        if self.any_password:
            return bool(name)
        found = lookup_name(name)
        stored = None if found is None else self.passwords.get(found)
        if found is None or stored is None:
            check_stored(dummy_entry(), password)  # as long as for a user who exists
            return False
        name = found
        matches, upgraded = check_stored(stored, password)
        if upgraded is None:
            return matches
        self.passwords[name] = upgraded
        if self.path is not None:
            try:
                self._upgrade_in_file(name, stored, upgraded)
            except (OSError, AccountError) as exc:
                log.warning("cannot save %s's SCRAM keys in %s: %s", name, self.path, exc)
            else:
                log.info("%s's password is now kept as SCRAM keys in %s", name, self.path)
        return True

    def _upgrade_in_file(self, name: str, old: str, stored: str) -> None:
        """Give `name` its new entry in the file as it is now (adduser may have
        changed it since it was read): the other lines stay as they are."""
        assert self.path is not None
        current = Accounts(str(self.path))
        if current.passwords.get(name) == old:  # still the old entry
            current.passwords[name] = stored
            current.save()

    def scram(self, name: str, mechanism: str) -> ScramCredentials | None:
        """The keys a SCRAM login as `name` is checked against; None if there
        is no such user, or only a legacy scrypt hash (until a PLAIN login)."""
        found = None if self.any_password else lookup_name(name)
        stored = None if found is None else self.passwords.get(found)
        return None if stored is None else scram_credentials(stored, HASHES[mechanism])

    @property
    def scram_possible(self) -> bool:
        """False with any_password: no keys exist to check a SCRAM proof."""
        return not self.any_password

    def exists(self, name: str) -> bool:
        """Whether `name` has an account (every name does with any_password)."""
        return bool(name) if self.any_password else lookup_name(name) in self.passwords

    def roster(self, name: str) -> list[str]:
        """The local parts of `name`'s contacts."""
        return list(self.contacts.get(name, []))
