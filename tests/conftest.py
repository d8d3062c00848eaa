# The whole suite runs under netsvc's server-log guard: a test fails if a
# server it starts (in this process, or a `netsvc` subprocess) logs an error or
# a traceback that the test does not declare with @pytest.mark.server_errors.
# Shared fixtures: a trustme CA and certificates for TLS listeners, and the
# IPv6 loopback address for the tests that need one (skipped where it is not).
from __future__ import annotations

import functools
import socket
from pathlib import Path

import pytest
import trustme

from netsvc.testing import ServerLogGuard
from tests.serveprocess import Certificates, guard_netsvc_runs


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
