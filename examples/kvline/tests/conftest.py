# Every test here runs under netsvc's server-log guard: it fails if the kvline
# server it starts logs an error (or a traceback) that the test does not
# declare with @pytest.mark.server_errors(r"regex").
from __future__ import annotations

import pytest

from netsvc.testing import ServerLogGuard


@pytest.fixture(autouse=True)
def _server_log_guard(netsvc_log_guard: ServerLogGuard) -> None:
    pass
