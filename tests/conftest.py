# The whole suite runs under netsvc's server-log guard: a test fails if a
# server it starts (in this process, or a `netsvc` subprocess) logs an error or
# a traceback that the test does not declare with @pytest.mark.server_errors.
# Shared fixtures: a trustme CA and certificates for TLS listeners, and the
# IPv6 loopback address for the tests that need one (skipped where it is not).
# The session refuses to start while a compiled module (setup.py's
# HOT_MODULES, a .so beside its .py) is older than its source: Python imports
# the .so, so the tests would run the code as it was before the edit.
from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

import pytest
import trustme

from netsvc._build import compiled_modules
from netsvc.testing import ServerLogGuard
from tests.serveprocess import Certificates, guard_netsvc_runs

REBUILD_HINT = (
    "Rebuild them with `./dev test` (or `.venv/bin/pip install --no-deps -e .`), or delete them "
    "to test pure Python: find netsvc protocols -name '*.so' -delete"
)


def compiled_module_problems(root: Path) -> list[str]:
    """Compiled modules under `root` that would hide their source from the
    tests: older than their .py, or present while NETSVC_COMPILE=0 asks for
    pure Python."""
    problems = []
    pure = os.environ.get("NETSVC_COMPILE") == "0"
    for folder in ("netsvc", "protocols"):
        for compiled, source in compiled_modules(root / folder):
            shown = compiled.relative_to(root)
            if pure:
                problems.append(f"{shown} is compiled, but NETSVC_COMPILE=0 asks for pure Python")
            elif source.stat().st_mtime > compiled.stat().st_mtime:
                problems.append(f"{shown} is older than {source.relative_to(root)}")
    return problems


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = compiled_module_problems(Path(__file__).resolve().parent.parent)
    if problems:
        raise pytest.UsageError(
            "compiled modules shadow their source (Python imports the .so, not the .py):\n  "
            + "\n  ".join(problems)
            + "\n"
            + REBUILD_HINT
        )


@pytest.fixture(autouse=True)
def _server_log_guard(netsvc_log_guard: ServerLogGuard, monkeypatch: pytest.MonkeyPatch) -> None:
    guard_netsvc_runs(monkeypatch)


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """One certificate authority for the session's test certificates."""
    return trustme.CA()


@pytest.fixture
def certificates(tls_ca: trustme.CA, tmp_path: Path) -> Certificates:
    """A server certificate for 127.0.0.1, ::1 and localhost, as files (use
    `Certificates.issue(tls_ca, folder)` in fixtures of a wider scope)."""
    return Certificates.issue(tls_ca, tmp_path)


@functools.cache
def ipv6_loopback_problem() -> str | None:
    """Why a socket cannot be bound to ::1 here, or None if it can: a kernel
    without IPv6, or a container with IPv6 disabled (socket.has_ipv6 is only
    what Python was built with)."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        return f"cannot bind ::1 here ({exc})"
    return None


@pytest.fixture
def ipv6_loopback() -> str:
    """'::1', for a test that listens or connects there; skips the test on a
    machine where ::1 cannot be bound. Every IPv6 test takes this fixture."""
    problem = ipv6_loopback_problem()
    if problem is not None:
        pytest.skip(f"no IPv6 loopback: {problem}")
    return "::1"
