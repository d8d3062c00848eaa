# A user's application for the probe plugin: adds a command, overrides ECHO.
from netsvc import Connection
from tests.netsvc.probe import ProbeApp, default_app

app = ProbeApp()
app.commands.update(default_app.commands)


@app.command("ECHO")
async def shout(conn: Connection, arg: str) -> bytes:
    return arg.upper().encode()


@app.command("VERSION")
async def version(conn: Connection, arg: str) -> bytes:
    return b"probe-app 1.0"


not_an_app = object()
