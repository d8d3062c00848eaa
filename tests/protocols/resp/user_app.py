# A user's RESP application: the built-in commands, one added, one replaced.
from protocols.resp import Client, RespApp

app = RespApp()


@app.command("greet", arity=2, flags=["fast"])
def greet(client: Client, argv: list[bytes]) -> bytes:
    """Greet someone."""
    return b"hello, " + argv[1]


@app.command("echo", arity=2, flags=["fast"], replace=True)
def loud_echo(client: Client, argv: list[bytes]) -> bytes:
    """Echo, louder."""
    return argv[1].upper()
