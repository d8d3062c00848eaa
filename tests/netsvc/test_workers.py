# --workers: several processes share the listeners (SO_REUSEPORT for TCP, an
# inherited socket for Unix sockets), a dead worker is replaced, and the
# whole group shuts down gracefully, or at once on a second SIGINT (130).
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from netsvc._workers import RESTART_BACKOFF
from tests.serveprocess import ServeProcess, host_port, run_netsvc


def worker_pids(url: str, requests: int = 40, **client: object) -> set[int]:
    with httpx.Client(base_url=url, **client) as http:  # type: ignore[arg-type]
        return {
            http.get("/", headers={"connection": "close"}).json()["pid"] for _ in range(requests)
        }


def test_two_workers_share_a_port_and_stop_together() -> None:
    server = ServeProcess(["--protocol", "http", "--port", "0", "--workers", "2"])
    try:
        (url,) = server.urls
        pids = worker_pids(url)
        assert len(pids) == 2 and server.proc.pid not in pids
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists()  # reaped by the supervisor
    finally:
        server.stop()


def test_a_worker_that_dies_is_replaced() -> None:
    with ServeProcess(["--protocol", "http", "--port", "0", "--workers", "2"]) as server:
        (url,) = server.urls
        victim = min(worker_pids(url))
        os.kill(victim, signal.SIGKILL)
        server.wait_for_log(
            rf"worker \d \(pid {victim}\) exited with status -9; starting a new one"
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pids = worker_pids(url, requests=20)
            if len(pids) == 2 and victim not in pids:
                break
            time.sleep(0.2)
        assert len(pids) == 2 and victim not in pids


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (its workers)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


@pytest.mark.server_errors(r"workers keep dying at once \(6 in a row\)")
def test_workers_that_keep_dying_at_once_make_the_supervisor_give_up() -> None:
    # killed as soon as they appear (as by an OOM killer): the supervisor waits
    # RESTART_BACKOFF after each young death and gives up after the sixth. With
    # two workers it never did: reaping the second waited out the first's
    # backoff, so its age at death looked old and reset the count (found by
    # mutation testing: the count's mutants all survived)
    with ServeProcess(["--protocol", "http", "--port", "0", "--workers", "2"]) as server:
        supervisor = server.proc.pid
        killed: dict[int, float] = {}  # pid: when it was seen and killed
        deadline = time.monotonic() + 60
        while server.proc.poll() is None and time.monotonic() < deadline:
            for worker in children(supervisor) - killed.keys():
                killed[worker] = time.monotonic()  # before: it cannot have died earlier
                os.kill(worker, signal.SIGKILL)
            time.sleep(0.02)
        assert server.wait(10) == 1
        assert 6 <= len(killed) <= 7  # each replaced after a pause until the sixth
        assert "workers keep dying at once (6 in a row)" in server.log
        # the pause: of the first three workers seen one is a replacement, and
        # none came sooner than RESTART_BACKOFF after the first death (each
        # time is taken before its kill, and a replacement is seen after it is born)
        seen = sorted(killed.values())
        assert seen[2] - seen[0] >= RESTART_BACKOFF


def test_workers_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "web.sock"
    with ServeProcess(["--protocol", "http", "--unix", str(path), "--workers", "2"]) as server:
        assert server.urls == [f"http+unix://{path}"]
        transport = httpx.HTTPTransport(uds=str(path))
        # both workers accept on the one inherited socket: whichever the kernel
        # wakes first takes a connection, so ask until both have answered
        pids: set[int] = set()
        deadline = time.monotonic() + 10
        while len(pids) < 2 and time.monotonic() < deadline:
            pids |= worker_pids("http://web", requests=10, transport=transport)
        assert len(pids) == 2 and server.proc.pid not in pids
    assert not path.exists()


def test_a_second_sigint_is_passed_on_and_exits_130() -> None:
    args = ["--protocol", "http", "--port", "0", "--workers", "2", "--graceful-timeout", "60"]
    server = ServeProcess([*args, "--app", "tests.protocols.http.apps:native"])
    try:
        with socket.create_connection(host_port(server.urls[0]), timeout=10) as busy:
            busy.sendall(b"GET /nap?s=60 HTTP/1.1\r\nhost: x\r\n\r\n")
            received = b""
            while b"started\n" not in received:  # a request in flight in one worker
                data = busy.recv(65536)
                assert data, received
                received += data
            server.signal(signal.SIGINT)
            server.wait_for_log(r"SIGINT: passing it to 2 worker\(s\)")
            server.wait_for_log(r"SIGINT: shutting down gracefully", count=2)  # each worker
            again = time.monotonic()
            server.signal(signal.SIGINT)
            assert server.wait(5) == 130
            assert time.monotonic() - again < 2  # at once, not after the grace period
            assert b"done" not in busy.recv(65536)
        assert "SIGINT again: stopping now" in server.log
    finally:
        server.stop()


def test_protocols_with_process_state_refuse_workers() -> None:
    result = run_netsvc("serve", "--protocol", "resp", "--port", "0", "--workers", "2")
    assert result.returncode == 2
    assert (
        "protocol 'resp' keeps state that all its connections share in one process" in result.stderr
    )


@pytest.mark.server_errors(r"2 of 2 workers failed to start", r"the ASGI app's startup failed")
def test_workers_that_cannot_start_stop_the_supervisor() -> None:
    args = ["--protocol", "http", "--port", "0", "--workers", "2"]
    args += ["--app", "tests.protocols.http.apps:failing_startup"]
    with ServeProcess(args, listeners=0) as server:
        assert server.wait(20) == 1
    assert "workers failed to start" in server.log


def test_workers_stop_when_their_supervisor_dies() -> None:
    with ServeProcess(["--protocol", "http", "--port", "0", "--workers", "2"]) as server:
        pids = worker_pids(server.urls[0])
        server.proc.kill()  # no chance to pass anything on
        server.wait(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.1)
        assert not any(Path(f"/proc/{p}").exists() for p in pids)
