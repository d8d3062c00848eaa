# `netsvc serve` as a subprocess, for tests of the CLI: waits for its
# "listening on URL" lines, collects its log (and hands it to the server-log
# guard), stops it; `netsvc` commands run to completion; the one environment
# both get; the guard's view of `netsvc` commands tests run through
# subprocess.run; certificates for TLS listeners; and a blocking line client
# to talk to a server.
from __future__ import annotations

import dataclasses
import functools
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trustme

from netsvc.testing import ProcessLog, guard_process_output

ROOT = Path(__file__).resolve().parent.parent
NETSVC = str(Path(sys.executable).with_name("netsvc"))
PROBE = "tests.netsvc.probe:protocol"
LISTENING = re.compile(r"listening on (\S+)")
IN_USE = r"the address is already in use"  # how netsvc says its port is taken


def netsvc_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every `netsvc` a test runs: this process's, less
    what netsvc reads (NETSVC_* and $PORT), so that a developer's shell
    cannot change what a test sees; then `extra`, which the test means."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("NETSVC_") or k == "PORT")}
    env.update(extra or {})
    return env


def run_netsvc(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """`netsvc ARGS` run to its end in the repository root, with
    `netsvc_env(env)`; its stderr goes to the server-log guard."""
    return subprocess.run(
        [NETSVC, *args],
        cwd=ROOT,
        env=netsvc_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class ServeProcess:
    """`netsvc serve ARGS` started in the repository root."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        listeners: int = 1,
        command: Sequence[str] | None = None,
        cwd: Path = ROOT,
        **popen: object,
    ) -> None:
        self.lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            [*(command or [NETSVC, "serve"]), *args],
            cwd=cwd,
            env=netsvc_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            **popen,  # type: ignore[call-overload]
        )
        self._guard_log = ProcessLog(f"netsvc serve {' '.join(args)} (pid {self.proc.pid})")
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        self.urls: list[str] = []
        if listeners:
            self.urls = self.wait_for_urls(listeners)

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
            self._guard_log.add(line)
        self.proc.stderr.close()
        self._guard_log.close()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def log(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_log(
        self, pattern: str, count: int = 1, timeout: float = 10.0
    ) -> list[re.Match[str]]:
        """The first `count` matches of `pattern` in the log, waiting for them."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self._changed:
            while True:
                matches = [m for line in self.lines if (m := regex.search(line))]
                if len(matches) >= count:
                    return matches[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    log = "\n".join(self.lines)
                    raise AssertionError(
                        f"no {count} log line(s) matching {pattern!r}; log:\n{log}"
                    )
                self._changed.wait(remaining)

    def wait_for_urls(self, count: int, timeout: float = 10.0) -> list[str]:
        return [m.group(1) for m in self.wait_for_log(LISTENING.pattern, count, timeout)]

    def listening_or_in_use(self, timeout: float = 10.0) -> bool:
        """For a server started with listeners=0 on a given port: True once it
        listens, False if it said the port was taken (and so exits)."""
        (found,) = self.wait_for_log(f"{LISTENING.pattern}|{IN_USE}", timeout=timeout)
        return found.group(1) is not None

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        code: int = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.wait()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def guard_netsvc_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand the stderr of every `netsvc` command a test runs with
    `subprocess.run(..., capture_output=True)` to the server-log guard. The
    command still runs for real; only its result is looked at on the way."""
    run = subprocess.run

    @functools.wraps(run)
    def observed(*args: Any, **kwargs: Any) -> Any:
        command: Any = args[0] if args else kwargs.get("args")
        if not _is_netsvc(command):
            return run(*args, **kwargs)
        name = " ".join(["netsvc", *(str(part) for part in command[1:])])
        try:
            result = run(*args, **kwargs)
        except subprocess.SubprocessError as exc:  # check=True, timeout: the output so far
            guard_process_output(name, getattr(exc, "stderr", None))
            raise
        guard_process_output(name, result.stderr)
        return result

    monkeypatch.setattr(subprocess, "run", observed)


def _is_netsvc(command: object) -> bool:
    return (
        isinstance(command, list | tuple)
        and bool(command)
        and isinstance(command[0], str | Path)
        and Path(command[0]).name == "netsvc"
    )


@dataclasses.dataclass
class Certificates:
    """A certificate from a trustme CA for 127.0.0.1, ::1 and localhost, in
    the files `netsvc serve --certfile/--keyfile` and clients read."""

    ca: trustme.CA
    certfile: Path
    keyfile: Path
    cafile: Path

    IDENTITIES: ClassVar[tuple[str, ...]] = ("127.0.0.1", "::1", "localhost")

    @classmethod
    def issue(cls, ca: trustme.CA, folder: Path) -> Certificates:
        cert = ca.issue_cert(*cls.IDENTITIES)
        files = cls(ca, folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
        cert.cert_chain_pems[0].write_to_path(str(files.certfile))
        cert.private_key_pem.write_to_path(str(files.keyfile))
        ca.cert_pem.write_to_path(str(files.cafile))
        return files

    @property
    def args(self) -> list[str]:
        """The `netsvc serve` options that serve this certificate."""
        return ["--certfile", str(self.certfile), "--keyfile", str(self.keyfile)]

    def client_context(self) -> ssl.SSLContext:
        """A client's default context that trusts the CA (and only it)."""
        return ssl.create_default_context(cafile=str(self.cafile))

    def server_context(self) -> ssl.SSLContext:
        """A server's context with this certificate, for an in-process server."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.certfile), str(self.keyfile))
        return context


def host_port(url: str) -> tuple[str, int]:
    address = url.split("://", 1)[1]
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class SyncLineClient:
    """A blocking line client over a plain socket."""

    def __init__(self, address: tuple[str, int] | str, timeout: float = 5.0) -> None:
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        else:
            self.sock = socket.create_connection(address, timeout=timeout)
        self.buffer = b""

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                rest, self.buffer = self.buffer, b""
                return rest
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def ask(self, command: str) -> bytes:
        self.sock.sendall(command.encode() + b"\n")
        return self.line()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SyncLineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
