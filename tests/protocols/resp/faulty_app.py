# A user's RESP application with a bug: a command whose reply cannot be
# encoded as RESP, so the connection's serve loop (not the command) fails.
from protocols.resp import Client, RespApp

app = RespApp()


@app.command("unencodable", arity=1, flags=["fast"])
def unencodable(client: Client, argv: list[bytes]) -> object:
    return object()
