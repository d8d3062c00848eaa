# The WebSocket chat example, run as its header says: a RESP service and the
# web app, both through the CLI, the app finding the service by REDIS_URL.
# WebSocket clients (the websockets library) and a real headless Chromium,
# driven through chromedriver's W3C WebDriver API, talk in one room; a
# message published on the RESP service by redis-py reaches them all.
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from websockets.sync.client import ClientConnection, connect

from tests.serveprocess import ServeProcess, host_port

APP = "examples.wschat.app:app"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key


@pytest.fixture
def chat() -> Iterator[tuple[str, int]]:
    """The web app's URL and the RESP service's port."""
    with ServeProcess(["--protocol", "resp", "--port", "0"]) as backing:
        redis_url = backing.urls[0] + "/0"
        web_args = ["--protocol", "http", "--port", "0", "--app", APP]
        with ServeProcess(web_args, env={"REDIS_URL": redis_url}) as web:
            yield web.urls[0], host_port(backing.urls[0])[1]


def ws_client(url: str) -> ClientConnection:
    return connect(url.replace("http://", "ws://") + "/ws", open_timeout=10)


def test_messages_reach_everyone_in_the_room(chat: tuple[str, int]) -> None:
    url, redis_port = chat
    with ws_client(url) as alice, ws_client(url) as bob:
        alice.send("hello from alice")
        assert alice.recv(timeout=10) == "hello from alice"
        assert bob.recv(timeout=10) == "hello from alice"
        # the room is the RESP service's channel: any Redis client can speak in it
        r = redis.Redis(port=redis_port)
        assert r.publish("wschat", "hello from redis-py") == 2  # two subscribers
        r.close()
        assert alice.recv(timeout=10) == bob.recv(timeout=10) == "hello from redis-py"
    with httpx.Client() as client:
        page = client.get(url + "/")
        assert page.status_code == 200 and "new WebSocket" in page.text


# -- a real browser ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Browser:
    """Headless Chromium through chromedriver's W3C WebDriver HTTP API."""

    def __init__(self, driver_url: str) -> None:
        self.http = httpx.Client(base_url=driver_url, timeout=60)
        options = {
            "binary": shutil.which("chromium"),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        }
        capabilities = {"browserName": "chrome", "goog:chromeOptions": options}
        answer = self.call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = f"/session/{answer['sessionId']}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, path, content=json.dumps(body or {}))
        value = response.json()["value"]
        if response.status_code != 200:
            raise AssertionError(f"WebDriver {method} {path}: {value}")
        return value

    def open(self, url: str) -> None:
        self.call("POST", f"{self.session}/url", {"url": url})

    def element(self, css: str) -> str:
        found = self.call(
            "POST", f"{self.session}/element", {"using": "css selector", "value": css}
        )
        return str(found[ELEMENT])

    def type(self, css: str, text: str) -> None:
        self.call("POST", f"{self.session}/element/{self.element(css)}/value", {"text": text})

    def click(self, css: str) -> None:
        self.call("POST", f"{self.session}/element/{self.element(css)}/click")

    def script(self, code: str) -> Any:
        return self.call("POST", f"{self.session}/execute/sync", {"script": code, "args": []})

    def wait_for(self, code: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := self.script(code):
                return value
            time.sleep(0.1)
        raise AssertionError(f"never true in the page: {code}")

    def close(self) -> None:
        self.call("DELETE", self.session)
        self.http.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if shutil.which("chromedriver") is None or shutil.which("chromium") is None:
        pytest.fail("chromium and chromium-driver are not installed: ./dev test installs them")
    port = free_port()
    driver = subprocess.Popen(
        ["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/status", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        browser = Browser(f"http://127.0.0.1:{port}")
        try:
            yield browser
        finally:
            browser.close()
    finally:
        driver.terminate()
        driver.wait(10)


@pytest.mark.slow
def test_a_browser_sends_and_receives_a_message(chat: tuple[str, int], browser: Browser) -> None:
    url, _ = chat
    browser.open(url + "/")
    browser.wait_for("return document.body.dataset.ready === '1'")  # its WebSocket is open
    with ws_client(url) as bob:
        browser.type("#text", "hello from the browser")
        browser.click("#send")
        assert bob.recv(timeout=10) == "hello from the browser"
        bob.send("hello, browser")
        shown = browser.wait_for(
            "const items = [...document.querySelectorAll('#messages li')]"
            ".map(li => li.textContent);"
            "return items.includes('hello, browser') && items;"
        )
    assert shown == ["hello from the browser", "hello, browser"]
