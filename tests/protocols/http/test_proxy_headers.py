# Behind a proxy: X-Forwarded-For/-Proto (or, with --http-proxy-headers
# forwarded, RFC 7239 Forwarded; never both kinds), from a peer in
# --forwarded-allow-ips (the core's list: default 127.0.0.1 and ::1, Unix
# sockets always), give the app the client's address and scheme: the ASGI
# scope's client and scheme (WebSocket scopes too, as ws/wss) and the native
# Request's peer and scheme; with --http-forwarded-host, the host and server
# too. From any other peer, or with --http-proxy-headers off, they are left
# alone; malformed ones are ignored, never an error. Real clients: httpx, the
# websockets package, and `netsvc serve` as a user starts it.
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest
import trio

from netsvc import ListenAddress, TrustedProxies
from netsvc.testing import RunningServer, serve
from tests.protocols.http.apps import reporting_asgi, reporting_native
from tests.protocols.http.test_websocket import client, in_thread, ws_url
from tests.serveprocess import ServeProcess, run_netsvc


async def scope_for(running: RunningServer, headers: list[tuple[str, str]]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=running.url) as http:
        response = await http.get("/seen", headers=headers)
    assert response.status_code == 200
    return dict(response.json())


WITH_HOST = {"forwarded_host": True}


async def test_the_client_scheme_and_host_a_trusted_proxy_reports(netsvc_server: Any) -> None:
    headers = [
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "shop.example"),
    ]
    asgi = await scope_for(
        await netsvc_server("http", app=reporting_asgi, settings=WITH_HOST), headers
    )
    assert asgi["client"] == ["203.0.113.7", 0]
    assert asgi["scheme"] == "https"
    assert asgi["server"] == ["shop.example", 443]
    assert ["host", asgi["server"][0]] not in asgi["headers"]  # headers are left as they came
    assert ["x-forwarded-for", "203.0.113.7"] in asgi["headers"]
    native = await scope_for(
        await netsvc_server("http", app=reporting_native, settings=WITH_HOST), headers
    )
    assert native["peer"] == ["203.0.113.7", 0]
    assert native["scheme"] == "https"
    assert native["host"] == "shop.example"
    assert native["server"] == ["shop.example", 443]


async def test_without_proxy_headers_the_connection_speaks_for_itself(
    netsvc_server: Any,
) -> None:
    running = await netsvc_server("http", app=reporting_native)
    seen = await scope_for(running, [])
    assert seen["peer"][0] == "127.0.0.1" and seen["scheme"] == "http"
    assert seen["host"] == f"127.0.0.1:{running.port}"
    assert seen["server"] == ["127.0.0.1", running.port]


async def test_the_host_is_not_believed_unless_asked_for(netsvc_server: Any) -> None:
    # a proxy that does not set X-Forwarded-Host passes the client's on: by
    # default it is not read, so a client cannot poison the app's host
    headers = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Host", "evil.example")]
    running = await netsvc_server("http", app=reporting_asgi)
    asgi = await scope_for(running, headers)
    assert asgi["client"] == ["203.0.113.7", 0]
    assert asgi["server"] == ["127.0.0.1", running.port]
    native_running = await netsvc_server("http", app=reporting_native)
    native = await scope_for(native_running, headers)
    assert native["host"] == f"127.0.0.1:{native_running.port}"
    assert native["server"] == ["127.0.0.1", native_running.port]
    forwarded = await netsvc_server(
        "http", app=reporting_asgi, settings={"proxy_headers": "forwarded"}
    )
    seen = await scope_for(forwarded, [("Forwarded", "for=192.0.2.60;host=evil.example")])
    assert seen["client"] == ["192.0.2.60", 0]
    assert seen["server"] == ["127.0.0.1", forwarded.port]


async def test_only_the_kind_of_header_configured_is_read(netsvc_server: Any) -> None:
    # a proxy passes on the kind it does not write itself: that one is the
    # client's own word, whichever kind it is
    both = [
        ("Forwarded", "for=192.0.2.60;proto=https"),
        ("X-Forwarded-For", "198.51.100.1"),
    ]
    legacy = await scope_for(await netsvc_server("http", app=reporting_asgi), both)
    assert (legacy["client"], legacy["scheme"]) == (["198.51.100.1", 0], "http")
    forged = [("X-Forwarded-For", "198.51.100.66"), ("X-Forwarded-Proto", "https")]
    modern = await netsvc_server(
        "http", app=reporting_asgi, settings={"proxy_headers": "forwarded"}
    )
    seen = await scope_for(modern, [("Forwarded", "for=192.0.2.60"), *forged])
    assert (seen["client"], seen["scheme"]) == (["192.0.2.60", 0], "http")
    alone = await scope_for(modern, forged)  # a client's own, with no Forwarded at all
    assert alone["client"][0] == "127.0.0.1" and alone["scheme"] == "http"
    only_forwarded = await scope_for(
        await netsvc_server("http", app=reporting_asgi), [("Forwarded", "for=192.0.2.60")]
    )
    assert only_forwarded["client"][0] == "127.0.0.1"


# (headers, client, scheme, server): None where the connection's own value
# stays. Run with --http-forwarded-host on, and the kind of header its name
# says (forwarded-*: Forwarded; the rest: X-Forwarded-*).
WALKS: list[tuple[str, list[tuple[str, str]], Any, str | None, Any]] = [
    ("one-hop", [("X-Forwarded-For", "198.51.100.1")], ["198.51.100.1", 0], None, None),
    (
        "right-most-untrusted",  # what the client wrote itself (left) is not believed
        [("X-Forwarded-For", "192.0.2.66, 198.51.100.1")],
        ["198.51.100.1", 0],
        None,
        None,
    ),
    (
        "past-trusted-proxies",
        [("X-Forwarded-For", "198.51.100.1, 127.0.0.1, ::1")],
        ["198.51.100.1", 0],
        None,
        None,
    ),
    ("all-trusted", [("X-Forwarded-For", "127.0.0.1, ::1")], ["127.0.0.1", 0], None, None),
    (
        "two-header-lines",
        [("X-Forwarded-For", "192.0.2.66"), ("X-Forwarded-For", "198.51.100.1")],
        ["198.51.100.1", 0],
        None,
        None,
    ),
    ("ipv4-port", [("X-Forwarded-For", "198.51.100.1:4711")], ["198.51.100.1", 4711], None, None),
    ("ipv6", [("X-Forwarded-For", "2001:db8::1")], ["2001:db8::1", 0], None, None),
    (
        "ipv6-port",
        [("X-Forwarded-For", "[2001:DB8::1]:4711")],
        ["2001:db8::1", 4711],
        None,
        None,
    ),
    ("garbage", [("X-Forwarded-For", "198.51.100.1, not-an-address")], None, None, None),
    ("unknown", [("X-Forwarded-For", "unknown")], None, None, None),
    ("empty", [("X-Forwarded-For", "")], None, None, None),
    ("port-too-big", [("X-Forwarded-For", "198.51.100.1:70000")], None, None, None),
    ("proto-wss-on-http", [("X-Forwarded-Proto", "wss")], None, "https", None),
    ("proto-upper-case", [("X-Forwarded-Proto", "HTTPS")], None, "https", None),
    ("proto-unknown", [("X-Forwarded-Proto", "ftp")], None, None, None),
    (
        "proto-list-by-hops",  # each proxy appended one: the client's hop's is taken
        [("X-Forwarded-For", "198.51.100.1, 127.0.0.1"), ("X-Forwarded-Proto", "https, http")],
        ["198.51.100.1", 0],
        "https",
        None,
    ),
    (
        "proto-list-one-hop",
        [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-Proto", "https, http")],
        ["198.51.100.1", 0],
        "http",
        None,
    ),
    ("host-port", [("X-Forwarded-Host", "shop.example:8443")], None, None, ["shop.example", 8443]),
    ("host-ipv6", [("X-Forwarded-Host", "[2001:db8::5]")], None, None, ["2001:db8::5", 80]),
    ("host-userinfo", [("X-Forwarded-Host", "a@shop.example")], None, None, None),
    ("host-space", [("X-Forwarded-Host", "shop example")], None, None, None),
    (
        "forwarded",
        [("Forwarded", "for=192.0.2.60;proto=https;host=shop.example;by=203.0.113.43")],
        ["192.0.2.60", 0],
        "https",
        ["shop.example", 443],
    ),
    (
        "forwarded-quoted-ipv6-port",
        [("Forwarded", 'for="[2001:db8:cafe::17]:4711"')],
        ["2001:db8:cafe::17", 4711],
        None,
        None,
    ),
    (
        "forwarded-case-and-spaces",
        [("Forwarded", 'For="192.0.2.60:80" ; Proto=HTTPS')],
        ["192.0.2.60", 80],
        "https",
        None,
    ),
    ("forwarded-obfuscated", [("Forwarded", "for=_hidden;proto=https")], None, "https", None),
    ("forwarded-unknown", [("Forwarded", "for=unknown")], None, None, None),
    (
        "forwarded-walk",
        [("Forwarded", "for=192.0.2.66, for=192.0.2.43;proto=https, for=127.0.0.1")],
        ["192.0.2.43", 0],
        "https",
        None,
    ),
    (
        "forwarded-two-lines",
        [("Forwarded", "for=192.0.2.66"), ("Forwarded", "for=192.0.2.43")],
        ["192.0.2.43", 0],
        None,
        None,
    ),
    ("forwarded-unquoted-ipv6", [("Forwarded", "for=[2001:db8::1]")], None, None, None),
    ("forwarded-bare-ipv6", [("Forwarded", 'for="2001:db8::1"')], None, None, None),
    ("forwarded-no-value", [("Forwarded", "for=192.0.2.60;proto")], None, None, None),
    ("forwarded-twice-in-one", [("Forwarded", "for=192.0.2.60;for=192.0.2.61")], None, None, None),
    ("forwarded-open-quote", [("Forwarded", 'for="192.0.2.60')], None, None, None),
    # a client's malformed element spoils its own hop only, not the one its
    # proxy appended after it (on the same line or another)
    (
        "forwarded-bad-client-element-twice",
        [("Forwarded", "for=1.2.3.4;for=5.6.7.8, for=203.0.113.9")],
        ["203.0.113.9", 0],
        None,
        None,
    ),
    (
        "forwarded-bad-client-element-open-quote",
        [("Forwarded", 'for="garbage, for=203.0.113.9')],
        ["203.0.113.9", 0],
        None,
        None,
    ),
    (
        "forwarded-bad-client-line",
        [("Forwarded", "for=1.2.3.4;x"), ("Forwarded", "for=203.0.113.9;proto=https")],
        ["203.0.113.9", 0],
        "https",
        None,
    ),
    (
        "forwarded-comma-in-quoted-extension",  # cut there: an unknown hop
        [("Forwarded", 'for=192.0.2.60;ext="a,b"')],
        None,
        None,
        None,
    ),
    (
        "forwarded-bad-element-is-an-unknown-hop",  # the walk stops there
        [("Forwarded", "for=1.2.3.4;x, for=127.0.0.1;proto=https")],
        None,
        None,
        None,
    ),
    (
        "forwarded-bad-host",
        [("Forwarded", 'for=192.0.2.60;host="a/b"')],
        ["192.0.2.60", 0],
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    ("headers", "client", "scheme", "server"), [w[1:] for w in WALKS], ids=[w[0] for w in WALKS]
)
async def test_what_the_headers_say(
    request: pytest.FixtureRequest,
    netsvc_server: Any,
    headers: list[tuple[str, str]],
    client: Any,
    scheme: Any,
    server: Any,
) -> None:
    walk = next(w[0] for w in WALKS if w[1] is headers)
    kind = "forwarded" if walk.startswith("forwarded") else "x-forwarded"
    settings = {"proxy_headers": kind, "forwarded_host": True}
    running = await netsvc_server("http", app=reporting_asgi, settings=settings)
    seen = await scope_for(running, headers)
    assert seen["client"] == (client or ["127.0.0.1", seen["client"][1]])
    assert seen["scheme"] == (scheme or "http")
    assert seen["server"] == (server or ["127.0.0.1", running.port])


async def test_the_walk_stops_at_the_first_address_not_trusted() -> None:
    trusted = TrustedProxies.parse("127.0.0.1,203.0.113.0/24")
    async with serve("http", app=reporting_asgi, trusted_proxies=trusted) as running:
        seen = await scope_for(
            running, [("X-Forwarded-For", "192.0.2.66, 198.51.100.1, 203.0.113.9, 203.0.113.7")]
        )
    assert seen["client"] == ["198.51.100.1", 0]


async def test_an_untrusted_peer_is_not_believed() -> None:
    headers = [
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "shop.example"),
    ]
    trusted = TrustedProxies.parse("10.0.0.0/8")
    async with serve("http", app=reporting_asgi, trusted_proxies=trusted) as running:
        seen = await scope_for(running, headers)
    assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"
    assert seen["server"] == ["127.0.0.1", running.port]
    assert ["x-forwarded-for", "203.0.113.7"] in seen["headers"]  # the app may read them
    async with serve("http", app=reporting_asgi, settings={"proxy_headers": "off"}) as running:
        seen = await scope_for(running, headers)  # trusted, but turned off
    assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"


async def test_a_unix_socket_peer_is_trusted(tmp_path: Path) -> None:
    path = str(tmp_path / "web.sock")
    trusted = TrustedProxies.parse("10.0.0.0/8")  # only Unix sockets, then
    address = ListenAddress("unix", path=path)
    async with serve("http", app=reporting_native, address=address, trusted_proxies=trusted):
        transport = httpx.AsyncHTTPTransport(uds=path)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            seen = (await http.get("/", headers={"X-Forwarded-For": "203.0.113.7"})).json()
            plain = (await http.get("/")).json()
    assert seen["peer"] == ["203.0.113.7", 0]
    assert plain["peer"] == "" and plain["server"] is None  # a Unix socket's own


async def test_websocket_scopes_get_ws_or_wss(netsvc_server: Any) -> None:
    running = await netsvc_server("http", app=reporting_asgi)
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    with await in_thread(client, ws_url(running, "/ws"), additional_headers=headers) as ws:
        seen = json.loads(await in_thread(ws.recv, timeout=10))
    assert seen["type"] == "websocket"
    assert (seen["scheme"], seen["client"]) == ("wss", ["203.0.113.7", 0])
    native = await netsvc_server("http", app=reporting_native)
    with await in_thread(client, ws_url(native, "/ws"), additional_headers=headers) as ws:
        seen = json.loads(await in_thread(ws.recv, timeout=10))
    assert (seen["scheme"], seen["peer"]) == ("https", ["203.0.113.7", 0])


async def test_the_access_log_names_the_client(
    netsvc_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="netsvc.http.access")
    running = await netsvc_server("http", app=reporting_native)
    await scope_for(running, [("X-Forwarded-For", "203.0.113.7")])
    (line,) = [r.getMessage() for r in caplog.records if r.name == "netsvc.http.access"]
    assert line.startswith('203.0.113.7:0 "GET /seen HTTP/1.1" 200 ')


async def test_behind_the_proxy_protocol_the_headers_are_the_clients() -> None:
    # the PROXY header names the real client (not a trusted proxy): an
    # X-Forwarded-For it sent is its own word, and ignored
    address = ListenAddress("tcp", host="127.0.0.1", port=0, proxy=True)
    async with serve("http", app=reporting_native, address=address) as running:
        stream = await running.connect()
        await stream.send_all(
            b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 8080\r\n"
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1\r\nConnection: close\r\n\r\n"
        )
        reply = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some():
                reply += chunk
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["peer"] == ["198.51.100.9", 40000]


def test_from_the_command_line() -> None:
    args = [
        "--protocol",
        "http",
        "--port",
        "0",
        "--app",
        "tests.protocols.http.apps:reporting_asgi",
    ]
    headers = {"X-Forwarded-For": "203.0.113.7"}
    with ServeProcess(args) as default:  # on, trusting 127.0.0.1
        assert httpx.get(default.urls[0], headers=headers).json()["client"][0] == "203.0.113.7"
    with ServeProcess([*args, "--forwarded-allow-ips", "10.0.0.0/8"]) as elsewhere:
        assert httpx.get(elsewhere.urls[0], headers=headers).json()["client"][0] == "127.0.0.1"
    with ServeProcess([*args, "--http-proxy-headers", "off"]) as off:
        assert httpx.get(off.urls[0], headers=headers).json()["client"][0] == "127.0.0.1"
    modern = {"Forwarded": "for=192.0.2.60;host=shop.example", **headers}
    env = {"NETSVC_HTTP_FORWARDED_HOST": "true"}
    with ServeProcess([*args, "--http-proxy-headers", "forwarded"], env=env) as forwarded:
        seen = httpx.get(forwarded.urls[0], headers=modern).json()
        assert seen["client"][0] == "192.0.2.60" and seen["server"] == ["shop.example", 80]
    wrong = run_netsvc("serve", *args, "--http-proxy-headers", "yes")
    assert wrong.returncode == 2
    assert "--http-proxy-headers: expected one of x-forwarded, forwarded, off, got 'yes'" in (
        wrong.stderr
    )


async def test_an_absolute_form_target_names_the_host(netsvc_server: Any) -> None:
    # RFC 9112 3.2.2: the target's authority, not the Host header
    running = await netsvc_server("http", app=reporting_native)
    stream = await running.connect()
    await stream.send_all(
        b"GET http://shop.example:8080/items?x=1 HTTP/1.1\r\n"
        b"Host: other\r\nConnection: close\r\n\r\n"
    )
    reply = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some():
            reply += chunk
    seen = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert (seen["host"], seen["path"]) == ("shop.example:8080", "/items")


async def test_an_absolute_form_target_is_the_asgi_apps_host_header(netsvc_server: Any) -> None:
    # RFC 9112 3.2.2: the received Host is ignored, so an ASGI app (which
    # builds its URLs from the host header) sees the target's authority
    running = await netsvc_server("http", app=reporting_asgi)
    for request, host in [
        (b"GET http://shop.example:8080/items HTTP/1.1\r\nHost: other\r\n", "shop.example:8080"),
        (b"GET http://shop.example/items HTTP/1.0\r\n", "shop.example"),  # no Host at all
    ]:
        stream = await running.connect()
        await stream.send_all(request + b"Connection: close\r\n\r\n")
        reply = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some():
                reply += chunk
        client = h11.Connection(h11.CLIENT)
        client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        client.receive_data(reply)
        client.receive_data(b"")
        body = b""
        while type(event := client.next_event()) is not h11.EndOfMessage:
            body += event.data if type(event) is h11.Data else b""
        seen = json.loads(body)
        assert [name for name, _ in seen["headers"]].count("host") == 1
        assert ["host", host] in seen["headers"], seen["headers"]
        assert seen["path"] == "/items"
