# Fixtures the core's tests share: LineClients closed after each test (a test
# module of async tests opts in with `pytestmark = pytest.mark.usefixtures(
# "close_line_clients")`; an autouse async fixture would break sync tests).
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from tests.lineclient import LineClient


@pytest.fixture
async def close_line_clients() -> AsyncIterator[None]:
    yield
    for client in LineClient.opened:
        await trio.aclose_forcefully(client.stream)
    LineClient.opened.clear()
