# `netsvc serve` raises its soft open file limit to the hard one, says how
# many connections that leaves room for, and warns when the listeners'
# --max-connections add up to more: real processes started under lowered
# limits, their limits read back from /proc.
from __future__ import annotations

import logging
import re
import resource
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from netsvc import ConnectionLimits, Listen, ListenAddress, load_protocol
from netsvc._address import socket_count
from netsvc._fdlimit import (
    RESERVED_FDS,
    UNLIMITED_FDS_CAP,
    adjust_open_file_limit,
    open_file_target,
)
from tests.serveprocess import PROBE, ServeProcess, SyncLineClient, host_port

SOFT, HARD = resource.getrlimit(resource.RLIMIT_NOFILE)
LOWERED_SOFT = 256

needs_room_above_256 = pytest.mark.skipif(
    HARD != resource.RLIM_INFINITY and HARD <= LOWERED_SOFT,
    reason=f"the hard open file limit ({HARD}) leaves no room to raise a soft limit of 256",
)


def with_nofile(soft: int, hard: int) -> Callable[[], None]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return preexec


def open_files_limit(pid: int) -> tuple[str, str]:
    """(soft, hard) "Max open files" of a running process, as /proc shows them."""
    text = Path(f"/proc/{pid}/limits").read_text()
    match = re.search(r"^Max open files\s+(\S+)\s+(\S+)", text, re.MULTILINE)
    assert match, text
    return match.group(1), match.group(2)


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@needs_room_above_256
def test_soft_limit_is_raised_to_the_hard_limit() -> None:
    hard = "unlimited" if HARD == resource.RLIM_INFINITY else str(HARD)
    args = ["--listen", "echo://127.0.0.1:0"]
    with ServeProcess(args, preexec_fn=with_nofile(LOWERED_SOFT, HARD)) as server:
        assert open_files_limit(server.proc.pid) == (hard, hard)
        room = HARD - RESERVED_FDS
        server.wait_for_log(
            rf"INFO netsvc: open file limit raised from 256 to {HARD} \(hard limit {hard}\): "
            rf"room for {room} connections \(32 descriptors kept for listeners, logs and the "
            r"app's own files\)$"
        )
        assert "may hold" not in server.log  # echo's 1024 connections fit
        with SyncLineClient(host_port(server.urls[0])) as client:
            assert client.ask("roomy") == b"roomy"


@needs_room_above_256
def test_every_worker_runs_with_the_raised_limit() -> None:
    args = ["--listen", "echo://127.0.0.1:0", "--workers", "2"]
    with ServeProcess(args, preexec_fn=with_nofile(LOWERED_SOFT, HARD)) as server:
        workers = children(server.proc.pid)
        assert len(workers) == 2
        limits = {open_files_limit(pid) for pid in (server.proc.pid, *workers)}
        assert limits == {(str(HARD), str(HARD))}
        assert server.log.count("open file limit raised from 256") == 1  # the supervisor's


def test_listeners_allowed_more_connections_than_descriptors_get_a_warning() -> None:
    args = ["--listen", "echo://127.0.0.1:0", "--max-connections", "1000"]
    with ServeProcess(args, preexec_fn=with_nofile(200, 200)) as server:
        assert open_files_limit(server.proc.pid) == ("200", "200")
        server.wait_for_log(
            r"INFO netsvc: open file limit 200 \(hard limit 200\): room for 168 connections "
        )
        server.wait_for_log(
            r"WARNING netsvc: the listeners may hold 1000 connections together "
            r"\(--max-connections: 1000 \(echo\)\), more than the 168 that the open file limit "
            r"of 200 leaves room for, so accepts would fail with EMFILE first: raise `ulimit -n` "
            r"\(hard limit 200; LimitNOFILE= under systemd\) or lower --max-connections$"
        )
        with SyncLineClient(host_port(server.urls[0])) as client:
            assert client.ask("still serving") == b"still serving"


def test_the_warning_adds_up_each_listeners_own_default_limit() -> None:
    echo = load_protocol("echo").limits.max_connections
    probe = load_protocol(PROBE).limits.max_connections
    limit = max(echo, probe) + RESERVED_FDS  # room for either listener alone, not both
    args = ["--listen", "echo://127.0.0.1:0", "--protocol", PROBE, "--port", "0"]
    with ServeProcess(args, listeners=2, preexec_fn=with_nofile(limit, limit)) as server:
        server.wait_for_log(
            rf"WARNING netsvc: the listeners may hold {echo + probe} connections together "
            rf"\(--max-connections: {echo} \(echo\) \+ {probe} \(probe\)\), more than the "
            rf"{limit - RESERVED_FDS} "
        )
    with ServeProcess(args[:2], preexec_fn=with_nofile(limit, limit)) as server:
        server.wait_for_log(
            rf"open file limit {limit} \(hard limit {limit}\): "
            rf"room for {limit - RESERVED_FDS} connections"
        )
        assert "WARNING" not in server.log


def test_workers_are_warned_about_per_process() -> None:
    args = ["--listen", "echo://127.0.0.1:0", "--workers", "2", "--max-connections", "300"]
    with ServeProcess(args, preexec_fn=with_nofile(200, 200)) as server:
        server.wait_for_log(
            r"WARNING netsvc: each of the 2 workers' listeners may hold 300 connections together"
        )


def test_target_is_the_hard_limit_or_a_cap_when_unlimited() -> None:
    infinity = resource.RLIM_INFINITY
    assert open_file_target(1024, 524288) == 524288
    assert open_file_target(1024, 1024) == 1024
    assert open_file_target(1024, infinity) == UNLIMITED_FDS_CAP
    assert open_file_target(UNLIMITED_FDS_CAP * 2, infinity) == UNLIMITED_FDS_CAP * 2
    assert open_file_target(infinity, infinity) == infinity


LOCALHOST = {
    info[4][0]
    for info in socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
}


@pytest.mark.skipif(len(LOCALHOST) < 2, reason=f"localhost resolves to {LOCALHOST} only")
def test_a_host_with_two_addresses_counts_each_sockets_limit() -> None:
    # "localhost" binds 127.0.0.1 and ::1, each listener with its own limit
    args = ["--listen", "echo://localhost:0", "--max-connections", "100"]
    with ServeProcess(args, listeners=2, preexec_fn=with_nofile(200, 200)) as server:
        server.wait_for_log(
            r"WARNING netsvc: the listeners may hold 200 connections together "
            r"\(--max-connections: 100 x 2 sockets \(echo\)\), more than the 168 "
        )


def test_socket_count_is_one_per_distinct_address(monkeypatch: pytest.MonkeyPatch) -> None:
    # what the test above checks end to end, where "localhost" resolves to one
    # address only (as on this CI machine): a resolver giving two, and a repeat
    v4 = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))
    v6 = (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", 0, 0, 0))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: [v4, v6, v4])
    assert socket_count(ListenAddress("tcp", "localhost", 0)) == 2
    assert socket_count(ListenAddress("unix", path="/tmp/x.sock")) == 1


class CappingOS:
    """An OS that refuses a soft open file limit above `cap` whatever the
    hard limit says, as macOS does above kern.maxfilesperproc. Linux cannot
    be made to (root may raise the soft limit to any hard limit it can set),
    so here getrlimit/setrlimit play that OS for adjust_open_file_limit()."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, soft: int, hard: int, cap: int) -> None:
        self.soft, self.hard, self.cap = soft, hard, cap
        monkeypatch.setattr(resource, "getrlimit", self.getrlimit)
        monkeypatch.setattr(resource, "setrlimit", self.setrlimit)

    def getrlimit(self, which: int) -> tuple[int, int]:
        assert which == resource.RLIMIT_NOFILE
        return self.soft, self.hard

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        assert which == resource.RLIMIT_NOFILE and limits[1] == self.hard
        if limits[0] > self.cap:
            raise ValueError("current limit exceeds maximum limit")
        self.soft = limits[0]


def echo_on(host: str, max_connections: int | None = None) -> Listen:
    limits = None if max_connections is None else ConnectionLimits(max_connections)
    return Listen(load_protocol("echo"), ListenAddress("tcp", host, 0), limits=limits)


@pytest.mark.parametrize(
    ("cap", "soft", "outcome"),
    [
        # halving from the target (2**20 when the hard limit is unlimited) to what is allowed
        (10240, 8192, "raised to 8192, room for 8160 connections"),
        (200, 256, "it stays 256, room for 224 connections"),
    ],
)
def test_a_limit_the_os_caps_is_raised_as_far_as_it_allows_and_says_why_not_further(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    cap: int,
    soft: int,
    outcome: str,
) -> None:
    system = CappingOS(monkeypatch, soft=256, hard=resource.RLIM_INFINITY, cap=cap)
    caplog.set_level(logging.INFO, logger="netsvc")
    adjust_open_file_limit([echo_on("127.0.0.1", max_connections=100)], workers=1)
    assert system.soft == soft
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            f"cannot raise the open file limit from 256 to {UNLIMITED_FDS_CAP} "
            f"(current limit exceeds maximum limit): {outcome} (32 descriptors kept for "
            "listeners, logs and the app's own files)",
        )
    ]


def test_each_socket_of_a_two_address_host_counts_in_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # test_a_host_with_two_addresses_counts_each_sockets_limit where
    # "localhost" resolves to one address (this CI machine): a resolver giving two
    v4 = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))
    v6 = (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", 0, 0, 0))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: [v4, v6])
    CappingOS(monkeypatch, soft=200, hard=200, cap=200)
    caplog.set_level(logging.INFO, logger="netsvc")
    adjust_open_file_limit([echo_on("localhost", max_connections=100)], workers=1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "the listeners may hold 200 connections together "
        "(--max-connections: 100 x 2 sockets (echo)), more than the 168 "
    )
