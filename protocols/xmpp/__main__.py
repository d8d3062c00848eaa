# `python -m protocols.xmpp adduser FILE NAME [--contacts a,b]`, or
# `adduser --database DB NAME [--contacts a,b]`: add or change a user in an
# account file or in the service's database (the password is asked for, or
# read from the NETSVC_XMPP_NEW_PASSWORD variable for scripts).
from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import click

from ._accounts import AccountError, Accounts, check_name
from ._store import Store


@click.group()
def main() -> None:
    """XMPP plugin tools."""


@main.command()
@click.argument("arguments", nargs=-1, metavar="[FILE] NAME")
@click.option(
    "--database",
    type=click.Path(dir_okay=False),
    default=None,
    help="The service's sqlite database (--xmpp-database), instead of an account FILE.",
)
@click.option("--domain", default="localhost", show_default=True, help="The service's domain.")
@click.option(
    "--contacts",
    default=None,
    help="Comma-separated user names: contacts of NAME's, and NAME of theirs (subscription both).",
)
def adduser(
    arguments: tuple[str, ...], database: str | None, domain: str, contacts: str | None
) -> None:
    """Add user NAME to account FILE or to the --database (either is created
    if missing), or give them a new password."""
    if len(arguments) != (1 if database else 2):
        usage = "--database DB NAME" if database else "FILE NAME (or --database DB NAME)"
        raise click.UsageError(f"expected {usage}")
    name = arguments[-1]
    names = contacts.split(",") if contacts else []
    try:
        check_name(name)
        for contact in names:
            check_name(contact)
        password = os.environ.get("NETSVC_XMPP_NEW_PASSWORD") or getpass.getpass(
            f"password for {name}: "
        )
        if not password:
            raise click.ClickException("the password is empty")
        if database:
            store = Store(database)
            try:
                name = store.add_user(name, password)
                store.add_contacts(name, [check_name(c) for c in names], domain.lower())
            finally:
                store.close()
            where = database
        else:
            accounts = Accounts()
            accounts.path = Path(arguments[0])
            if accounts.path.exists():
                accounts.load()
            accounts.add(name, password, names if contacts is not None else None)
            accounts.save()
            where = arguments[0]
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{check_name(name)} saved in {where}", err=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
