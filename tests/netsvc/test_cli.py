# `netsvc serve` and `netsvc protocols` as a user runs them: real processes,
# real sockets, signals, inherited file descriptors, settings from options and
# the environment.
from __future__ import annotations

import json
import re
import resource
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from netsvc import __version__
from tests.serveprocess import (
    IN_USE,
    NETSVC,
    PROBE,
    Certificates,
    ServeProcess,
    SyncLineClient,
    host_port,
    netsvc_env,
)
from tests.serveprocess import run_netsvc as run


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as
    servers set it: a connection of an earlier test in TIME_WAIT there does
    not make the port taken)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def unused_port(host: str = "0.0.0.0") -> int:
    """A port nothing listens on at the moment, for the few tests about a port
    named in advance (all others listen on port 0 and read the logged URL).
    Something else may take it before the server does: such tests start
    their server with `ServeProcess.listening_or_in_use` and try again."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def test_port_zero_reports_the_real_port() -> None:
    with ServeProcess(["--protocol", PROBE, "--port", "0"]) as server:
        (url,) = server.urls
        host, port = host_port(url)
        assert url == f"probe://127.0.0.1:{port}" and port > 0
        with SyncLineClient((host, port)) as client:
            assert client.line() == b"HELLO"
            assert client.ask("ECHO hi") == b"hi"


@pytest.mark.server_errors(IN_USE, required=False)  # the port, taken by another in between
def test_dollar_port_sets_port_and_binds_all_interfaces() -> None:
    # $PORT is a port number, not 0: a port unused a moment ago, and another
    # one should something else take it before the server does
    for _ in range(5):
        port = unused_port()
        with ServeProcess(["--protocol", PROBE], env={"PORT": str(port)}, listeners=0) as server:
            if not server.listening_or_in_use():
                continue
            assert server.wait_for_urls(1) == [f"probe://0.0.0.0:{port}"]
            with SyncLineClient(("127.0.0.1", port)) as client:
                assert client.line() == b"HELLO"
            return
    pytest.fail("five unused ports were all taken before the server could listen")


ECHO_DEFAULT_PORT = 7007


@pytest.mark.parametrize(
    "args",
    [
        ["--listen", "echo://127.0.0.1"],
        ["--protocol", "echo"],
        ["--listen", "echo://127.0.0.1", "--workers", "2"],
    ],
    ids=["listen-url", "protocol", "workers"],
)
@pytest.mark.server_errors(IN_USE, required=False)  # the port, taken by another in between
def test_without_port_the_protocols_default_port_is_used(args: list[str]) -> None:
    # the one port this test can use: skipped, not failed, when something
    # else on this machine has it (another test run, say)
    taken = f"echo's default port {ECHO_DEFAULT_PORT} is in use on this machine"
    if not port_is_free(ECHO_DEFAULT_PORT):
        pytest.skip(taken)
    with ServeProcess(args, listeners=0) as server:
        if not server.listening_or_in_use():
            pytest.skip(f"{taken} (taken after the check)")
        assert server.wait_for_urls(1) == [f"echo://127.0.0.1:{ECHO_DEFAULT_PORT}"]
        with SyncLineClient(("127.0.0.1", ECHO_DEFAULT_PORT)) as client:
            assert client.ask("on the default port") == b"on the default port"


def test_listen_urls_serve_two_protocols_in_one_process() -> None:
    with ServeProcess(
        ["--listen", "echo://127.0.0.1:0", "--protocol", PROBE, "--port", "0"], listeners=2
    ) as server:
        echo_url, probe_url = server.urls
        assert echo_url.startswith("echo://127.0.0.1:")
        with (
            SyncLineClient(host_port(echo_url)) as echo,
            SyncLineClient(host_port(probe_url)) as probe,
        ):
            assert echo.ask("one") == b"one"
            assert probe.line() == b"HELLO"
            assert probe.ask("ECHO two") == b"two"


def test_ipv6_listen_url(ipv6_loopback: str) -> None:
    with ServeProcess(["--listen", f"echo://[{ipv6_loopback}]:0"]) as server:
        (url,) = server.urls
        assert url.startswith("echo://[::1]:")
        with SyncLineClient(host_port(url)) as client:
            assert client.ask("six") == b"six"


def test_unix_socket_listen_url(tmp_path: Path) -> None:
    path = tmp_path / "echo.sock"
    with ServeProcess(["--listen", f"echo+unix://{path}"]) as server:
        assert server.urls == [f"echo+unix://{path}"]
        with SyncLineClient(str(path)) as client:
            assert client.ask("unix") == b"unix"
    assert not path.exists()


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_inherited_socket_by_fd_number() -> None:
    sock = listening_socket()
    port = sock.getsockname()[1]
    fd = sock.fileno()
    with ServeProcess(["--protocol", PROBE, "--fd", str(fd)], pass_fds=(fd,)) as server:
        sock.close()  # the server holds its own copy
        assert server.urls == [f"probe://127.0.0.1:{port}"]
        with SyncLineClient(("127.0.0.1", port)) as client:
            assert client.line() == b"HELLO"


# What systemd does before it runs a socket-activated service: the sockets
# from fd 3 on, LISTEN_PID set to the service's own pid, then exec.
SYSTEMD_EXEC = """
import fcntl, os, sys
fds, names = sys.argv[1].split(","), sys.argv[2]
copies = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 100) for fd in fds]  # out of the way of 3, 4...
for index, fd in enumerate(copies):
    os.dup2(fd, 3 + index)  # inheritable, unlike the copies
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=names)
os.execv(sys.argv[3], sys.argv[3:])
"""


def systemd_command(*named: tuple[socket.socket, str]) -> tuple[list[str], tuple[int, ...]]:
    fds = [str(sock.fileno()) for sock, _ in named]
    names = ":".join(name for _, name in named)
    command = [sys.executable, "-c", SYSTEMD_EXEC, ",".join(fds), names, NETSVC, "serve"]
    return command, tuple(sock.fileno() for sock, _ in named)


def test_systemd_socket_activation() -> None:
    sock = listening_socket()
    port = sock.getsockname()[1]
    command, fds = systemd_command((sock, "probe"))
    with ServeProcess(["--protocol", PROBE], command=command, pass_fds=fds) as server:
        sock.close()
        assert server.urls == [f"probe://127.0.0.1:{port}"]
        with SyncLineClient(("127.0.0.1", port)) as client:
            assert client.line() == b"HELLO"
            assert client.ask("ECHO activated") == b"activated"


def test_systemd_sockets_go_to_listen_urls_by_name_each_once() -> None:
    web, admin = listening_socket(), listening_socket()
    ports = web.getsockname()[1], admin.getsockname()[1]
    command, fds = systemd_command((web, "web"), (admin, "admin"))
    # The nameless URL comes first: the named one after it is still served.
    args = ["--listen", "echo+systemd://", "--listen", "redis+systemd://admin"]
    with ServeProcess(args, command=command, pass_fds=fds, listeners=2) as server:
        web.close()
        admin.close()
        assert sorted(server.urls) == sorted(
            [f"echo://127.0.0.1:{ports[0]}", f"redis://127.0.0.1:{ports[1]}"]
        )


@pytest.mark.server_errors(r"only one listen URL may take all systemd sockets")
def test_systemd_socket_cannot_be_served_twice() -> None:
    sock = listening_socket()
    command, fds = systemd_command((sock, "web"))
    args = ["--listen", "echo+systemd://", "--listen", "echo+systemd://"]
    with ServeProcess(args, command=command, pass_fds=fds, listeners=0) as server:
        assert server.wait(10) == 1
    assert "only one listen URL may take all systemd sockets" in server.log
    sock.close()


@pytest.mark.server_errors(r"no systemd socket named 'web'")
def test_systemd_url_without_activation_says_so() -> None:
    result = run("serve", "--listen", "echo+systemd://web")
    assert result.returncode == 1
    assert (
        "no systemd socket named 'web': systemd passed no sockets to this process "
        "(LISTEN_FDS/LISTEN_PID are not set for it, or LISTEN_FDS is 0)"
    ) in result.stderr


def test_host_from_the_environment_does_not_conflict_with_unix(tmp_path: Path) -> None:
    path = tmp_path / "p.sock"
    args = ["--protocol", PROBE, "--unix", str(path)]
    with ServeProcess(args, env={"NETSVC_HOST": "127.0.0.1"}) as server:
        assert server.urls == [f"probe+unix://{path}"]


def test_tls_from_certfile_and_keyfile(certificates: Certificates) -> None:
    with ServeProcess(["--listen", "echos://127.0.0.1:0", *certificates.args]) as server:
        (url,) = server.urls
        assert url.startswith("echos://127.0.0.1:")
        context = certificates.client_context()
        with socket.create_connection(host_port(url), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"over tls")
                assert tls.recv(100) == b"over tls"


def test_client_certificates_without_a_ca_bundle_are_refused(certificates: Certificates) -> None:
    args = ["--listen", "echos://127.0.0.1:0", *certificates.args, "--client-certs", "required"]
    result = run("serve", *args)
    assert result.returncode == 2
    assert result.stderr.endswith(
        "Error: client certificates required: give the CA bundle they are checked against "
        "(--ca-certs)\n"
    )


def test_tls_scheme_without_certificate_is_refused() -> None:
    result = run("serve", "--listen", "echos://127.0.0.1:0")
    assert result.returncode == 2
    assert "a TLS scheme needs --certfile" in result.stderr


def test_certfile_for_a_protocol_without_a_tls_scheme_is_refused(
    certificates: Certificates,
) -> None:
    protocol = "tests.netsvc.probe:plain_protocol"
    result = run("serve", "--protocol", protocol, "--port", "0", *certificates.args)
    assert result.returncode == 2
    assert "protocol 'plainprobe' has no TLS scheme; it cannot serve TLS" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_lets_in_flight_requests_finish_and_exits_zero() -> None:
    server = ServeProcess(["--protocol", PROBE, "--port", "0", "--graceful-timeout", "5"])
    with (
        SyncLineClient(host_port(server.urls[0])) as busy,
        SyncLineClient(host_port(server.urls[0])) as idle,
    ):
        assert busy.line() == idle.line() == b"HELLO"
        busy.sock.sendall(b"SLEEP 1\n")
        time.sleep(0.2)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert idle.line() == b"BYE"
        assert busy.line() == b"SLEPT"
        assert busy.line() == b"BYE"
    assert server.wait(10) == 0
    assert time.monotonic() - started < 5
    assert "shutting down gracefully" in server.log


def test_second_sigint_exits_at_once() -> None:
    server = ServeProcess(["--protocol", PROBE, "--port", "0", "--graceful-timeout", "60"])
    with SyncLineClient(host_port(server.urls[0])) as busy:
        busy.line()
        busy.sock.sendall(b"SLEEP 60\n")
        time.sleep(0.2)
        server.signal(signal.SIGINT)
        server.wait_for_log("shutting down gracefully")
        started = time.monotonic()
        server.signal(signal.SIGINT)
        assert server.wait(5) == 130
    assert time.monotonic() - started < 2


def test_settings_from_options_and_environment() -> None:
    env = {"NETSVC_PROBE_GREETING": "from-env", "NETSVC_PROBE_MAX_LINE": "8"}
    with ServeProcess(["--protocol", PROBE, "--port", "0"], env=env) as server:
        with SyncLineClient(host_port(server.urls[0])) as client:
            assert client.line() == b"from-env"
            assert client.ask("ECHO this line is too long") == b"ERR line too long"
    args = ["--protocol", PROBE, "--port", "0", "--probe-greeting", "from-cli"]
    with ServeProcess(args, env=env) as server:  # the option beats the environment
        with SyncLineClient(host_port(server.urls[0])) as client:
            assert client.line() == b"from-cli"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            [],
            {"NETSVC_PROBE_MAX_LINE": "lots"},
            "NETSVC_PROBE_MAX_LINE: expected an integer, got 'lots'",
        ),
        (["--probe-polite", "maybe"], {}, "--probe-polite: expected true or false, got 'maybe'"),
        (["--max-connections", "0"], {}, "Invalid value for '--max-connections'"),
    ],
)
def test_bad_settings_are_precise_errors(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = run("serve", "--protocol", PROBE, "--port", "0", *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr


def test_help_lists_the_protocols_settings() -> None:
    result = run("serve", "--protocol", PROBE, "--help")
    assert result.returncode == 0
    for text in (
        "--probe-greeting",
        "NETSVC_PROBE_GREETING",
        "--probe-max-line",
        "first line sent",
    ):
        assert text in result.stdout
    # each with the type it takes and its default, as Python writes the value
    help_text = " ".join(result.stdout.split())
    assert "--probe-max-line INT longest line accepted" in help_text
    assert "NETSVC_PROBE_MAX_LINE; default 1024]" in help_text
    assert "--probe-greeting STR" in help_text and "default 'HELLO']" in help_text


def test_protocols_lists_installed_plugins() -> None:
    result = run("protocols")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SCHEMES", "PORT", "DESCRIPTION"]
    assert any(line.split()[:3] == ["echo", "echo,echos", "7007"] for line in lines)


def test_app_import_path_adds_and_overrides_handlers() -> None:
    args = ["--protocol", PROBE, "--port", "0", "--app", "tests.netsvc.probe_app:app"]
    with ServeProcess(args) as server:
        with SyncLineClient(host_port(server.urls[0])) as client:
            client.line()
            assert client.ask("ECHO quiet") == b"QUIET"
            assert client.ask("VERSION") == b"probe-app 1.0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--protocol", "nosuch"], "no protocol named 'nosuch'"),
        (
            ["--protocol", "tests.netsvc.nosuch:protocol"],
            "cannot import module 'tests.netsvc.nosuch'",
        ),
        (["--protocol", "tests.netsvc.probe:nosuch"], "has no attribute 'nosuch'"),
        (["--protocol", "tests.netsvc.probe_app:app"], "not a netsvc.Protocol"),
        (
            ["--protocol", PROBE, "--app", "tests.netsvc.probe_app:not_an_app"],
            "expected a ProbeApp",
        ),
        (["--listen", "gopher://127.0.0.1:70"], "no installed protocol serves URL scheme 'gopher'"),
        (["--listen", "echo:/127.0.0.1"], "has no scheme"),
        ([], "nothing to serve"),
    ],
)
def test_loading_errors_say_what_is_wrong(args: list[str], message: str) -> None:
    result = run("serve", *args)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.server_errors(r"cannot listen on 127\.0\.0\.1:\d+: the address is already in use")
def test_address_in_use_is_reported_and_exits_one() -> None:
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        result = run("serve", "--protocol", PROBE, "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: the address is already in use" in result.stderr


def test_json_log_format() -> None:
    with ServeProcess(
        ["--protocol", PROBE, "--port", "0", "--log-format", "json"], listeners=0
    ) as server:
        server.wait_for_log("listening on")
        entries = [json.loads(line) for line in server.log.splitlines()]
    listening = [e for e in entries if "listening on" in e["message"]]
    assert listening[0]["level"] == "info"
    assert listening[0]["url"].startswith("probe://127.0.0.1:")
    assert listening[0]["protocol"] == "probe"


@pytest.mark.server_errors(r"accept on .* failed: EMFILE")
def test_accept_errors_do_not_stop_the_server() -> None:
    def few_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    with ServeProcess(["--protocol", PROBE, "--port", "0"], preexec_fn=few_fds) as server:
        address = host_port(server.urls[0])
        clients = []
        for _ in range(60):  # more connections than the server has descriptors
            sock = socket.create_connection(address, timeout=5)
            clients.append(sock)
        # what failed, why, and that the server goes on: the whole line
        server.wait_for_log(
            r"\baccept on probe://127\.0\.0\.1:\d+ failed: EMFILE \(Too many open files\); "
            r"retrying every 0\.1s \(\d+ failures so far\)$"
        )
        for sock in clients:
            sock.close()
        time.sleep(0.3)
        with SyncLineClient(address) as client:
            assert client.line() == b"HELLO"
            assert client.ask("ECHO survived") == b"survived"


def test_netsvc_env_drops_what_netsvc_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETSVC_ECHO_GREETING", "leaked")
    monkeypatch.setenv("PORT", "7")
    monkeypatch.setenv("PORTABLE", "kept")  # only PORT itself is netsvc's
    env = netsvc_env({"NETSVC_PROBE_GREETING": "meant"})
    assert not {"NETSVC_ECHO_GREETING", "PORT"} & env.keys()
    assert env["PORTABLE"] == "kept" and env["NETSVC_PROBE_GREETING"] == "meant"


# A developer's shell may set what netsvc reads: neither the servers tests
# start nor the commands they run see it, only what a test gives (env=...).


def test_the_callers_environment_does_not_reach_a_served_netsvc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NETSVC_ECHO_GREETING", "leaked")  # a greeting line before the echo
    monkeypatch.setenv("PORT", "7")  # "$PORT=7 is not used: --listen gives the addresses"
    with ServeProcess(["--listen", "echo://127.0.0.1:0"]) as server:
        with SyncLineClient(host_port(server.urls[0])) as client:
            assert client.ask("first line") == b"first line"
    assert "$PORT" not in server.log


def test_the_callers_environment_does_not_reach_a_netsvc_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NETSVC_PROTOCOL", "nosuch")  # else "no protocol named 'nosuch'"
    result = run("serve")
    assert (result.returncode, result.stderr.count("nothing to serve")) == (2, 1), result.stderr
    monkeypatch.setenv("PORT", "not-a-port")  # else "$PORT is 'not-a-port'", before the settings
    result = run("serve", "--protocol", PROBE, "--probe-max-line", "lots")
    assert result.returncode == 2
    assert "--probe-max-line: expected an integer, got 'lots'" in result.stderr


def test_version_says_which_build_runs() -> None:
    # the core's selection of tests for mutation testing reaches --version
    # here; tests/test_build.py checks each build in its own tree
    result = run("--version")
    assert result.returncode == 0, result.stderr
    build = r"pure Python|compiled: [a-z]+(, [a-z]+)*"
    assert re.fullmatch(rf"netsvc {re.escape(__version__)} \(({build})\)\n", result.stdout)
