# --http-root-path: an app served under a path prefix behind a proxy. Native
# routes see the path below the prefix, which is taken off when the request
# has it (a proxy that passes it on) and used as it is when it has not (a
# proxy that strips it), as Starlette does with root_path. An ASGI app gets
# root_path, and a path that starts with it in both cases (uvicorn prepends
# it to whatever arrives). Real clients: httpx, websockets, `netsvc serve`.
from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from netsvc import SettingError
from protocols.http import HttpSettings
from tests.protocols.http.apps import reporting_asgi, reporting_native
from tests.protocols.http.test_websocket import client, in_thread, ws_url
from tests.serveprocess import ServeProcess

ROOT = {"root_path": "/api"}


async def get(running: Any, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=running.url) as http:
        return await http.get(path)


@pytest.mark.parametrize(
    ("path", "seen"),
    [
        ("/api/items/7", "/items/7"),  # the proxy passed the prefix on: taken off
        ("/items/7", "/items/7"),  # the proxy stripped it: as it is
        ("/api", "/"),
        ("/api/", "/"),
        ("/apiary/x", "/apiary/x"),  # not under /api: a prefix ends at a /
        ("/api/%61pi/x", "/api/x"),  # the decoded path is what is compared
    ],
)
async def test_native_routes_see_the_path_below_the_root(
    netsvc_server: Any, path: str, seen: str
) -> None:
    running = await netsvc_server("http", app=reporting_native, settings=ROOT)
    request = (await get(running, path)).json()
    assert (request["path"], request["root_path"]) == (seen, "/api")
    assert request["raw_path"] == path  # as received


@pytest.mark.parametrize(
    ("path", "scope_path", "raw_path"),
    [
        ("/items/7", "/api/items/7", "/api/items/7"),  # stripped by the proxy: prepended
        ("/api/items/7", "/api/items/7", "/api/items/7"),  # passed on: once, not twice
        ("/api", "/api", "/api"),
        ("/it%20ems", "/api/it ems", "/api/it%20ems"),
    ],
)
async def test_the_asgi_scope_has_root_path(
    netsvc_server: Any, path: str, scope_path: str, raw_path: str
) -> None:
    running = await netsvc_server("http", app=reporting_asgi, settings=ROOT)
    scope = (await get(running, path)).json()
    assert (scope["root_path"], scope["path"], scope["raw_path"]) == ("/api", scope_path, raw_path)
    with await in_thread(client, ws_url(running, path)) as ws:
        scope = json.loads(await in_thread(ws.recv, timeout=10))
    assert (scope["type"], scope["root_path"], scope["path"]) == ("websocket", "/api", scope_path)


async def where(request: StarletteRequest) -> JSONResponse:
    return JSONResponse({"url": str(request.url_for("where", name="x")), "path": request.url.path})


starlette_app = Starlette(routes=[Route("/where/{name}", where, name="where")])


@pytest.mark.parametrize("path", ["/where/x", "/api/where/x"])
async def test_starlette_routes_and_builds_urls_under_the_root(
    netsvc_server: Any, path: str
) -> None:
    running = await netsvc_server("http", app=starlette_app, settings=ROOT)
    answer = (await get(running, path)).json()
    assert answer == {"url": f"{running.url}/api/where/x", "path": "/api/where/x"}


def test_the_setting() -> None:
    assert HttpSettings(root_path="/api/").root_path == "/api"
    assert HttpSettings(root_path="/").root_path == ""
    with pytest.raises(SettingError, match="--http-root-path: expected a path starting with /"):
        HttpSettings(root_path="api")


def test_from_the_command_line() -> None:
    args = [
        "--protocol",
        "http",
        "--port",
        "0",
        "--app",
        "tests.protocols.http.apps:reporting_asgi",
    ]
    with ServeProcess([*args, "--http-root-path", "/v1"]) as server:
        scope = httpx.get(server.urls[0] + "/users").json()
    assert (scope["root_path"], scope["path"]) == ("/v1", "/v1/users")
