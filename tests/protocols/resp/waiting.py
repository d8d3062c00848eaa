# Helpers for tests whose clients block (BLMPOP, WAIT, CLIENT PAUSE): wait
# until the server reports that many blocked clients (INFO's blocked_clients,
# which counts clients a pause holds too), on netsvc and redis-server alike,
# instead of sleeping and hoping.
from __future__ import annotations

import time

from tests.protocols.resp.respclient import RespClient

DEADLINE = 20.0  # seconds: generous, the machine is shared


def blocked_clients(port: int) -> int:
    with RespClient(port) as probe:
        info = probe.call("INFO", "clients").decode()
    for line in info.splitlines():
        if line.startswith("blocked_clients:"):
            return int(line.partition(":")[2])
    raise AssertionError(f"no blocked_clients in INFO clients: {info!r}")


def until_blocked(port: int, count: int) -> None:
    """Return once exactly `count` clients are blocked (or held by a pause)."""
    deadline = time.monotonic() + DEADLINE
    while (seen := blocked_clients(port)) != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} blocked clients, the server has {seen}")
        time.sleep(0.005)
