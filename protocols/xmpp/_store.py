# The XMPP service's storage in sqlite3: accounts (the credential strings
# _accounts writes: SCRAM keys, or a legacy scrypt hash until the user's
# next PLAIN login), rosters (one row per contact: name, groups, the
# subscription, a request of the user's pending out, a pre-approval), the
# subscription requests pending in (the stanza, re-sent at each login until
# answered), offline messages (XEP-0160: whole stanzas, in arrival order,
# capped per user in messages and in bytes), and the account-file entries
# imported (an account removed since is not imported again). One file per
# service (or memory, without one), in WAL mode with synchronous=NORMAL: a
# commit costs no fsync, and a crash of the machine may lose the last
# commits but never corrupts the file. A version table and numbered
# migrations take an older file to this schema (migration 3 prepares user
# names as RFC 8265 says, and refuses a file where two become one).
#
# Synchronous and small: each call is a statement or two, or one transaction
# when several rows change together, so the event loop may call it. The
# server waits for a lock another program holds (adduser) only briefly
# (`busy_timeout`): past it the call raises sqlite3.OperationalError and the
# client is told to try again, rather than every connection freezing.
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ._accounts import (
    AccountError,
    Accounts,
    check_name,
    check_stored,
    dummy_entry,
    hash_password,
    lookup_name,
)
from ._accounts import scram_credentials as parse_credentials
from ._jid import JID
from ._roster import Item
from ._scram import HASHES, ScramCredentials

__all__ = ["SCHEMA_VERSION", "ImportReport", "Store"]

log = logging.getLogger("netsvc.xmpp")

# Migration N takes a file from version N-1 to N; a new file runs them all.
MIGRATIONS: dict[int, str] = {
    1: """
        CREATE TABLE accounts (
            name TEXT PRIMARY KEY,
            credentials TEXT NOT NULL
        );
        CREATE TABLE roster (
            owner TEXT NOT NULL,
            contact TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            groups TEXT NOT NULL DEFAULT '[]',
            subscription TEXT NOT NULL DEFAULT 'none'
                CHECK (subscription IN ('none', 'to', 'from', 'both')),
            ask INTEGER NOT NULL DEFAULT 0,
            approved INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (owner, contact)
        );
        CREATE TABLE pending_in (
            owner TEXT NOT NULL,
            contact TEXT NOT NULL,
            stanza TEXT NOT NULL,
            PRIMARY KEY (owner, contact)
        );
        CREATE TABLE offline (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            stanza TEXT NOT NULL,
            stored REAL NOT NULL
        );
        CREATE INDEX offline_by_owner ON offline (owner, id);
    """,
    # the account-file entries imported, so that an account removed since
    # (XEP-0077) is not imported again at the next start, unless the file
    # gives it new credentials (adduser again)
    2: """
        CREATE TABLE imported (
            name TEXT PRIMARY KEY,
            credentials TEXT NOT NULL
        );
        INSERT INTO imported SELECT name, credentials FROM accounts;
        ALTER TABLE offline ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
        UPDATE offline SET size = LENGTH(CAST(stanza AS BLOB));
        DROP INDEX offline_by_owner;
        CREATE INDEX offline_by_owner ON offline (owner, id, size);
    """,
    # user names as RFC 8265 prepares them: in Python (_prepare_names)
    3: "",
}
SCHEMA_VERSION = max(MIGRATIONS)
# where a user's name is kept (migration 3 renames it in each)
NAME_COLUMNS = (
    ("accounts", "name"),
    ("roster", "owner"),
    ("pending_in", "owner"),
    ("offline", "owner"),
    ("imported", "name"),
)


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What an import from an account file did."""

    users: list[str]  # imported
    kept: list[str]  # already in the database: left as they were
    contacts: int  # roster items added
    removed: list[str] = dataclasses.field(default_factory=list)  # imported once, removed since


class Store:
    """Accounts, rosters, pending requests and offline messages in one sqlite
    file (`path`), or in memory (None: lost at exit). `any_password` accepts
    every login and every name as a user (development only); `busy_timeout`
    is how long a statement waits for a lock another connection holds."""

    def __init__(
        self, path: str | None = None, *, any_password: bool = False, busy_timeout: float = 5.0
    ) -> None:
        self.path = path
        self.any_password = any_password
        try:
            if path is not None and not Path(path).exists():  # it holds credentials: owner only
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self.db = sqlite3.connect(
                path or ":memory:", isolation_level=None, check_same_thread=False
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise AccountError(f"database {path}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            # sqlite may have rolled back by itself (SQLITE_FULL): a second
            # ROLLBACK would fail and hide the error that matters
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            raise

    @property
    def version(self) -> int:
        exists = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not exists:
            return 0
        row = self.db.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        version = self.version
        if version > SCHEMA_VERSION:
            raise AccountError(
                f"database {self.path} has schema version {version}; this netsvc knows "
                f"versions up to {SCHEMA_VERSION} (a newer netsvc wrote it)"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with self._transaction() as db:
                if number == 1:
                    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                    db.execute("INSERT INTO schema_version VALUES (0)")
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                if number == 3:
                    self._prepare_names()
                db.execute("UPDATE schema_version SET version = ?", (number,))
            if version and self.path:
                log.info("database %s migrated to schema version %d", self.path, number)

    def _prepare_names(self) -> None:
        """Migration 3: user names, and the JIDs of contacts, as RFC 8265's
        UsernameCaseMapped profile prepares them (an older netsvc only
        lowercased them). A name that changes is renamed everywhere, with a
        warning naming it; one that cannot be prepared, or that becomes
        another user's, stops the server with an error naming it (the
        operator decides which account stays)."""
        names = [row[0] for row in self.db.execute("SELECT name FROM accounts ORDER BY name")]
        renamed = {}
        for name in names:
            try:
                prepared = check_name(name)
            except AccountError as exc:
                raise AccountError(
                    f"database {self.path}: user {name!r}: {exc}; rename or remove it "
                    "(sqlite3) before this version of netsvc opens the file"
                ) from None
            if prepared != name:
                renamed[name] = prepared
        kept = set(names) - set(renamed)
        for old, new in renamed.items():
            if new in kept:
                raise AccountError(
                    f"database {self.path}: users {old!r} and {new!r} are one user once "
                    "prepared as RFC 8265 says: remove one of them (sqlite3) first"
                )
            kept.add(new)
        for old, new in renamed.items():
            log.warning(
                "database %s: user %r is now %r (user names are prepared as RFC 8265 says)",
                self.path,
                old,
                new,
            )
            for table, column in NAME_COLUMNS:
                self.db.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (new, old))
        for table in ("roster", "pending_in"):
            rows = self.db.execute(f"SELECT owner, contact FROM {table}").fetchall()
            for owner, contact in rows:
                jid = JID.parse_or_none(contact)  # None: kept as it is (it can be removed)
                if jid is None or str(jid) == contact:
                    continue
                if self.db.execute(
                    f"SELECT 1 FROM {table} WHERE owner = ? AND contact = ?", (owner, str(jid))
                ).fetchone():  # two rows of one contact: the prepared one stays
                    log.warning(
                        "database %s: %s's %s rows for %r and %r are one contact once "
                        "prepared as RFC 8265 says: the one for %r is kept",
                        self.path,
                        owner,
                        table,
                        contact,
                        str(jid),
                        str(jid),
                    )
                    self.db.execute(
                        f"DELETE FROM {table} WHERE owner = ? AND contact = ?", (owner, contact)
                    )
                else:
                    self.db.execute(
                        f"UPDATE {table} SET contact = ? WHERE owner = ? AND contact = ?",
                        (str(jid), owner, contact),
                    )

    # -- accounts (the AccountStore interface) ---------------------------------

    @property
    def scram_possible(self) -> bool:
        return not self.any_password

    def _credentials(self, name: str) -> str | None:
        found = lookup_name(name)
        if found is None:
            return None
        row = self.db.execute(
            "SELECT credentials FROM accounts WHERE name = ?", (found,)
        ).fetchone()
        return None if row is None else str(row[0])

    def check(self, name: str, password: str) -> bool:
        """A PLAIN login, checked against the SCRAM keys (a legacy scrypt
        entry is checked against its hash, and replaced by SCRAM keys)."""
        if self.any_password:
            return bool(name)
        stored = self._credentials(name)
        if stored is None:
            check_stored(dummy_entry(), password)  # as long as for a user who exists
            return False
        matches, upgraded = check_stored(stored, password)
        if upgraded is not None:
            name = lookup_name(name) or name
            try:
                self.db.execute(
                    "UPDATE accounts SET credentials = ? WHERE name = ?", (upgraded, name)
                )
            except sqlite3.Error as exc:  # the login is right: upgraded at the next one
                log.warning("cannot save %s's SCRAM keys in %s: %s", name, self.path, exc)
            else:
                log.info("%s's password is now kept as SCRAM keys in %s", name, self.path)
        return matches

    def scram(self, name: str, mechanism: str) -> ScramCredentials | None:
        stored = None if self.any_password else self._credentials(name)
        return None if stored is None else parse_credentials(stored, HASHES[mechanism])

    def exists(self, name: str) -> bool:
        return bool(name) if self.any_password else self._credentials(name) is not None

    def users(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT name FROM accounts ORDER BY name")]

    def add_user(self, name: str, password: str) -> str:
        """Add user `name`, or give them a new password; the name as kept."""
        name = check_name(name)
        self.db.execute(
            "INSERT INTO accounts VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET credentials = excluded.credentials",
            (name, hash_password(password)),
        )
        return name

    def create_user(self, name: str, password: str) -> bool:
        """Add user `name` (as check_name() gives it) if there is none of that
        name: False if there is (in-band registration never replaces one)."""
        cursor = self.db.execute(
            "INSERT INTO accounts VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (name, hash_password(password)),
        )
        return cursor.rowcount == 1

    def set_password(self, name: str, password: str) -> bool:
        """Give existing user `name` a new password; False if there is no such user."""
        cursor = self.db.execute(
            "UPDATE accounts SET credentials = ? WHERE name = ?",
            (hash_password(password), lookup_name(name)),
        )
        return cursor.rowcount == 1

    def remove_user(self, name: str, jid: str) -> None:
        """Remove user `name` (bare JID `jid`) and all that is theirs: the
        account, the roster, the requests waiting for their answer, their
        offline messages, and their own requests waiting at others."""
        with self._transaction() as db:
            db.execute("DELETE FROM accounts WHERE name = ?", (name,))
            db.execute("DELETE FROM roster WHERE owner = ?", (name,))
            db.execute("DELETE FROM pending_in WHERE owner = ? OR contact = ?", (name, jid))
            db.execute("DELETE FROM offline WHERE owner = ?", (name,))

    def add_contacts(self, name: str, contacts: list[str], domain: str) -> int:
        """Make each of `contacts` (user names at `domain`) and `name` contacts
        of each other with a `both` subscription, as an account file's contact
        list means; the number of roster items that changed."""
        with self._transaction():
            return self._add_contacts(name, contacts, domain)

    def _add_contacts(self, name: str, contacts: list[str], domain: str) -> int:
        changed = 0
        for contact in contacts:
            for owner, other in ((name, contact), (contact, name)):
                jid = f"{other}@{domain}"
                cursor = self.db.execute(
                    "INSERT INTO roster (owner, contact, subscription) VALUES (?, ?, 'both') "
                    "ON CONFLICT (owner, contact) DO UPDATE SET subscription = 'both', ask = 0, "
                    "approved = 0 WHERE subscription != 'both'",
                    (owner, jid),
                )
                changed += cursor.rowcount
                self.db.execute(
                    "DELETE FROM pending_in WHERE owner = ? AND contact = ?", (owner, jid)
                )
        return changed

    def import_accounts(self, accounts: Accounts, domain: str) -> ImportReport:
        """The users of an account file that are not in the database yet, with
        their contacts (as `both` subscriptions both ways), in one transaction;
        those already there are left as they are, and so are those imported
        before and removed since (unless the file's entry changed: adduser
        made the account again)."""
        imported, kept, removed, contacts = [], [], [], 0
        with self._transaction() as db:
            for name, credentials in sorted(accounts.passwords.items()):
                if self._credentials(name) is not None:
                    kept.append(name)
                    continue
                row = db.execute("SELECT credentials FROM imported WHERE name = ?", (name,))
                if row.fetchone() == (credentials,):
                    removed.append(name)
                    continue
                db.execute("INSERT INTO accounts VALUES (?, ?)", (name, credentials))
                db.execute("INSERT OR REPLACE INTO imported VALUES (?, ?)", (name, credentials))
                imported.append(name)
                contacts += self._add_contacts(name, accounts.roster(name), domain)
        return ImportReport(imported, kept, contacts, removed)

    # -- rosters -----------------------------------------------------------------

    def roster(self, owner: str) -> list[Item]:
        rows = self.db.execute(
            "SELECT contact, name, groups, subscription, ask, approved FROM roster "
            "WHERE owner = ? ORDER BY contact",
            (owner,),
        )
        return [_item(row) for row in rows]

    def roster_count(self, owner: str) -> int:
        """How many items `owner`'s roster holds."""
        row = self.db.execute("SELECT COUNT(*) FROM roster WHERE owner = ?", (owner,))
        return int(row.fetchone()[0])

    def contacts(self, owner: str, subscriptions: tuple[str, ...]) -> list[str]:
        """The JIDs in `owner`'s roster whose subscription is one of these."""
        marks = ", ".join("?" * len(subscriptions))
        rows = self.db.execute(
            f"SELECT contact FROM roster WHERE owner = ? AND subscription IN ({marks})",
            (owner, *subscriptions),
        )
        return [row[0] for row in rows]

    def item(self, owner: str, contact: str) -> Item | None:
        row = self.db.execute(
            "SELECT contact, name, groups, subscription, ask, approved FROM roster "
            "WHERE owner = ? AND contact = ?",
            (owner, contact),
        ).fetchone()
        return None if row is None else _item(row)

    def relation(self, owner: str, contact: str) -> tuple[Item | None, bool]:
        """`contact`'s item in `owner`'s roster, and whether a request of
        theirs is pending in."""
        pending = self.db.execute(
            "SELECT 1 FROM pending_in WHERE owner = ? AND contact = ?", (owner, contact)
        ).fetchone()
        return self.item(owner, contact), pending is not None

    def save(
        self, owner: str, contact: str, item: Item | None, pending_in: bool, request: str = ""
    ) -> None:
        """Set `owner`'s state with `contact`: the roster item (None removes
        it) and the request pending in (`request`, the stanza to re-send, when
        it is new; one already pending is kept)."""
        with self._transaction() as db:
            if item is None:
                db.execute("DELETE FROM roster WHERE owner = ? AND contact = ?", (owner, contact))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO roster VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        owner,
                        contact,
                        item.name,
                        json.dumps(list(item.groups)),
                        item.subscription,
                        int(item.ask),
                        int(item.approved),
                    ),
                )
            if pending_in:
                db.execute(
                    "INSERT OR IGNORE INTO pending_in VALUES (?, ?, ?)", (owner, contact, request)
                )
            else:
                db.execute(
                    "DELETE FROM pending_in WHERE owner = ? AND contact = ?", (owner, contact)
                )

    def requesters(self, owner: str) -> list[str]:
        """The JIDs whose subscription requests wait for `owner`'s answer."""
        rows = self.db.execute(
            "SELECT contact FROM pending_in WHERE owner = ? ORDER BY rowid", (owner,)
        )
        return [row[0] for row in rows]

    def pending_count(self, owner: str) -> int:
        """How many subscription requests wait for `owner`'s answer."""
        row = self.db.execute("SELECT COUNT(*) FROM pending_in WHERE owner = ?", (owner,))
        return int(row.fetchone()[0])

    def pending_in(self, owner: str) -> list[str]:
        """The subscription requests waiting for `owner`'s answer (stanzas)."""
        rows = self.db.execute(
            "SELECT stanza FROM pending_in WHERE owner = ? ORDER BY rowid", (owner,)
        )
        return [row[0] for row in rows]

    # -- offline messages ----------------------------------------------------------

    def offline_count(self, owner: str) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM offline WHERE owner = ?", (owner,)).fetchone()
        return int(row[0])

    def store_offline(
        self, owner: str, stanzas: list[str], stamp: float, limit: int, max_bytes: int = 0
    ) -> int:
        """Keep `stanzas` for `owner` while they hold fewer than `limit`
        messages and (`max_bytes` > 0) at most `max_bytes` bytes in all; how
        many were kept (the first ones)."""
        with self._transaction() as db:
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM offline WHERE owner = ?", (owner,)
            ).fetchone()
            kept = []
            for stanza in stanzas[: max(0, limit - count)]:
                length = len(stanza.encode())
                if max_bytes > 0 and size + length > max_bytes:
                    break
                size += length
                kept.append((owner, stanza, stamp, length))
            db.executemany(
                "INSERT INTO offline (owner, stanza, stored, size) VALUES (?, ?, ?, ?)", kept
            )
        return len(kept)

    def take_offline(self, owner: str) -> list[str]:
        """`owner`'s offline messages in the order they came, removed."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT stanza FROM offline WHERE owner = ? ORDER BY id", (owner,)
            ).fetchall()
            db.execute("DELETE FROM offline WHERE owner = ?", (owner,))
        return [row[0] for row in rows]


def _item(row: tuple[str, str, str, str, int, int]) -> Item:
    contact, name, groups, subscription, ask, approved = row
    return Item(contact, name, tuple(json.loads(groups)), subscription, bool(ask), bool(approved))
