# The whole suite runs under netsvc's server-log guard: a test fails if a
# server it starts (in this process, or a `netsvc` subprocess) logs an error or
# a traceback that the test does not declare with @pytest.mark.server_errors.
from __future__ import annotations

import pytest

from netsvc.testing import ServerLogGuard
from tests.serveprocess import guard_netsvc_runs


@pytest.fixture(autouse=True)
def _server_log_guard(netsvc_log_guard: ServerLogGuard, monkeypatch: pytest.MonkeyPatch) -> None:
    guard_netsvc_runs(monkeypatch)
