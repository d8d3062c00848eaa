# The default application: /healthz for load balancers, and / as a status
# page (JSON) with this process's listeners, connections and counters.
from __future__ import annotations

import os
import time

from netsvc import Runtime

from ._app import HttpApp
from ._messages import Request

__all__ = ["default_app"]

STARTED = time.monotonic()


def default_app() -> HttpApp:
    app = HttpApp()

    @app.route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> str:
        return "ok\n"

    @app.route("/", methods=["GET"])
    async def status(request: Request) -> dict[str, object]:
        runtime = request.state["runtime"]
        assert isinstance(runtime, Runtime)
        return {
            "pid": os.getpid(),
            "uptime_seconds": round(time.monotonic() - STARTED, 3),
            "listeners": [
                {"url": info.url, "protocol": info.protocol, **info.counters.snapshot()}
                for info in runtime.listeners
            ],
            "totals": runtime.counters.snapshot(),
        }

    return app
