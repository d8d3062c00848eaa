# The HAProxy deployment of examples/haproxy/, run as its README says, with
# Debian's haproxy: three web instances and the RESP service behind it, all
# with the PROXY protocol. Requests spread over the instances, the app sees
# the real client's address, and an instance stopped with SIGTERM under load
# leaves rotation without one failed request.
from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.serveprocess import ServeProcess, host_port

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).resolve().parents[2] / "examples" / "haproxy" / "haproxy.cfg"
PASSWORD = "a long random password"
WEB_ARGS = ["--protocol", "http", "--port", "0", "--proxy-protocol"]


def free_port() -> int:
    # HAProxy cannot report a port it picked, so these are found first
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s")


class Deployment:
    def __init__(self, web_url: str, instances: dict[str, ServeProcess]) -> None:
        self.web_url = web_url
        self.instances = instances

    def whoami(self, client: httpx.Client) -> dict[str, str]:
        response = client.get(f"{self.web_url}/whoami")
        assert response.status_code == 200, response.text
        answer: dict[str, str] = response.json()
        return answer


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: ./dev test installs it")
    web_port, redis_port = free_port(), free_port()
    with ExitStack() as stack:
        backing = stack.enter_context(
            ServeProcess(
                ["--protocol", "resp", "--port", "0", "--proxy-protocol"],
                env={"NETSVC_RESP_REQUIREPASS": PASSWORD},
            )
        )
        redis_url = f"redis://:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{redis_port}/0"
        instances = {}
        for name in ("web1", "web2", "web3"):
            instances[name] = stack.enter_context(
                ServeProcess(
                    [*WEB_ARGS, "--app", "examples.visits.app:app", "--graceful-timeout", "10"],
                    env={"INSTANCE": name, "REDIS_URL": redis_url},
                )
            )
        addresses = {
            "WEB_BIND": f"127.0.0.1:{web_port}",
            "REDIS_BIND": f"127.0.0.1:{redis_port}",
            "REDIS": f"127.0.0.1:{host_port(backing.urls[0])[1]}",
        }
        for name, process in instances.items():
            addresses[name.upper()] = f"127.0.0.1:{host_port(process.urls[0])[1]}"
        log = stack.enter_context(open(tmp_path / "haproxy.log", "wb"))
        haproxy = subprocess.Popen(
            ["haproxy", "-db", "-f", str(CONFIG)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **addresses},
        )
        stack.callback(haproxy.wait, 10)
        stack.callback(haproxy.terminate)
        deployment = Deployment(f"http://127.0.0.1:{web_port}", instances)
        with httpx.Client(timeout=10) as client:

            def all_up() -> bool:  # HAProxy's health checks passed for all three
                try:
                    seen = {deployment.whoami(client)["instance"] for _ in range(6)}
                except (httpx.HTTPError, AssertionError):
                    return False
                return seen == set(instances)

            wait_until(all_up, timeout=30)
        yield deployment


def test_requests_spread_over_the_instances_and_see_the_real_client(
    deployment: Deployment,
) -> None:
    # the client's own address, 127.0.0.2; HAProxy connects from 127.0.0.1
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, timeout=10) as client:
        answers = [deployment.whoami(client) for _ in range(30)]
        assert collections.Counter(a["instance"] for a in answers) == {
            "web1": 10,
            "web2": 10,
            "web3": 10,
        }
        assert {a["client"].rpartition(":")[0] for a in answers} == {"127.0.0.2"}
        # the state goes through HAProxy to the RESP service, password and all
        first = client.get(f"{deployment.web_url}/").json()["visits"]
        assert client.get(f"{deployment.web_url}/").json()["visits"] == first + 1


def test_a_stopped_instance_leaves_rotation_with_no_failed_request(
    deployment: Deployment,
) -> None:
    failures: list[str] = []
    served: list[tuple[float, str]] = []
    stop = threading.Event()

    def load() -> None:  # a client keeping its connection to HAProxy, as browsers do
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.get(f"{deployment.web_url}/whoami")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    served.append((time.monotonic(), response.json()["instance"]))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        stopped_at = time.monotonic()
        web2 = deployment.instances["web2"]
        web2.signal(signal.SIGTERM)
        assert web2.wait(timeout=15) == 0
        time.sleep(2.0)  # HAProxy's next check (every 500 ms) has taken web2 out
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    assert failures == []
    before = {name for when, name in served if when < stopped_at}
    after = {name for when, name in served if when > stopped_at + 1.5}
    assert before == {"web1", "web2", "web3"}
    assert after == {"web1", "web3"}
    assert len(served) > 100  # the load was real
