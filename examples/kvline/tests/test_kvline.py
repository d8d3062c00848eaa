# kvline end to end: the plugin served by netsvc's test helpers, talked to
# over a real socket, plus a user's own application.
from __future__ import annotations

from typing import Any

import trio
from netsvc_kvline import KVApp, Store, default_app, encode_reply

from netsvc import ConnectionLimits
from netsvc.testing import RunningServer, serve


class Client:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""

    async def ask(self, line: str) -> str:
        await self.stream.send_all(line.encode() + b"\n")
        return await self.reply()

    async def reply(self) -> str:
        with trio.fail_after(5):
            while b"\n" not in self.buffer:
                data = await self.stream.receive_some()
                if not data:
                    return ""
                self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


async def client_for(running: RunningServer) -> Client:
    return Client(await running.connect())


async def test_commands(netsvc_server: Any) -> None:
    running = await netsvc_server("kvline")
    assert running.url.startswith("kvline://127.0.0.1:")
    client = await client_for(running)
    assert await client.ask("PING") == "PONG"
    assert await client.ask("GET greeting") == "NIL"
    assert await client.ask("SET greeting hello world") == "OK"
    assert await client.ask("GET greeting") == "VALUE hello world"
    assert await client.ask("INCR n") == "INT 1"
    assert await client.ask("INCR greeting") == "ERR value is not an integer"
    assert await client.ask("KEYS") == "KEYS greeting n"
    assert await client.ask("DEL n") == "INT 1"
    assert await client.ask("GET") == "ERR wrong number of arguments for 'GET'"
    assert await client.ask("PING me") == "ERR wrong number of arguments for 'PING'"
    assert await client.ask("FLY") == "ERR unknown command 'FLY'"
    assert await client.ask("QUIT") == "BYE"
    await client.stream.aclose()


async def test_store_is_shared_between_connections(netsvc_server: Any) -> None:
    running = await netsvc_server("kvline")
    writer, reader = await client_for(running), await client_for(running)
    assert await writer.ask("SET shared yes") == "OK"
    assert await reader.ask("GET shared") == "VALUE yes"


async def test_pipelined_commands_answered_in_order(netsvc_server: Any) -> None:
    running = await netsvc_server("kvline")
    client = await client_for(running)
    await client.stream.send_all(b"".join(b"INCR c\n" for _ in range(100)))
    assert [await client.reply() for _ in range(100)] == [f"INT {i}" for i in range(1, 101)]


async def test_settings_limit_lines_and_keys(netsvc_server: Any) -> None:
    running = await netsvc_server("kvline", settings={"max_line": 20, "max_keys": 1})
    client = await client_for(running)
    assert await client.ask("SET a 1") == "OK"
    assert await client.ask("SET a 2") == "OK"
    assert await client.ask("SET b 1") == "ERR store full (1 keys)"
    assert await client.ask("SET a " + "x" * 30) == "ERR line longer than 20 bytes"
    assert await client.reply() == ""  # and the connection is closed


async def test_over_limit_connection_is_refused_in_kvline_words() -> None:
    async with serve("kvline", limits=ConnectionLimits(max_connections=1)) as running:
        first = await client_for(running)
        assert await first.ask("PING") == "PONG"
        second = await client_for(running)
        assert await second.reply() == "ERR too many connections, try again later"


async def test_shutdown_says_bye_to_idle_clients() -> None:
    async with serve("kvline") as running:
        client = await client_for(running)
        assert await client.ask("PING") == "PONG"
        running.server.shutdown()
        assert await client.reply() == "BYE server shutting down"


my_app = KVApp()
my_app.include(default_app)


@my_app.command("UPPER", args=1)
def upper(store: Store, args: list[str]) -> bytes:
    return encode_reply("VALUE", store.get(args[0], "").upper())


async def test_users_own_commands(netsvc_server: Any) -> None:
    running = await netsvc_server("kvline", app=my_app)
    client = await client_for(running)
    assert await client.ask("SET word quiet") == "OK"
    assert await client.ask("UPPER word") == "VALUE QUIET"
