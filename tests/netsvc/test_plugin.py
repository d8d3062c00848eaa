# The plugin API's own objects (netsvc/_plugin.py) where no server runs them:
# a Runtime a plugin made for itself (a unit test of its service) says so
# when asked to shut a server down, instead of doing nothing.
from __future__ import annotations

import pytest

from netsvc import Runtime


def test_a_runtime_without_a_server_cannot_shut_one_down() -> None:
    with pytest.raises(
        RuntimeError, match=r"^this Runtime belongs to no server that could shut down$"
    ):
        Runtime().request_shutdown()


def test_a_runtime_asks_its_server_to_shut_down() -> None:
    asked: list[str] = []
    Runtime(request_shutdown=lambda: asked.append("stop")).request_shutdown()
    assert asked == ["stop"]
