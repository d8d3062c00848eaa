# `python -m protocols.xmpp adduser FILE NAME [--contacts a,b]`: add or
# change a user in an account file (the password is asked for, or read from
# the NETSVC_XMPP_NEW_PASSWORD variable for scripts).
from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import click

from ._accounts import AccountError, Accounts


@click.group()
def main() -> None:
    """XMPP plugin tools."""


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("name")
@click.option("--contacts", default=None, help="Comma-separated user names for the roster.")
def adduser(file: str, name: str, contacts: str | None) -> None:
    """Add user NAME to account FILE (created if missing), or set a new password."""
    accounts = Accounts()
    accounts.path = Path(file)
    try:
        if accounts.path.exists():
            accounts.load()
        password = os.environ.get("NETSVC_XMPP_NEW_PASSWORD") or getpass.getpass(
            f"password for {name}: "
        )
        if not password:
            raise click.ClickException("the password is empty")
        accounts.add(name, password, contacts.split(",") if contacts is not None else None)
        accounts.save()
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name} saved in {file}", err=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
