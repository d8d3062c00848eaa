# A small web app whose only state lives in a backing service found through
# its config: REDIS_URL (any Redis, or `netsvc serve --protocol resp`). The
# twelve-factor idea end to end: both apps export their service by binding a
# port, and one is the other's attached resource.
#
#   netsvc serve --protocol resp --port 6380
#   REDIS_URL=redis://127.0.0.1:6380/0 netsvc serve --protocol http --port 8080 \
#       --app examples.visits.app:app
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import redis
import trio

from protocols.http import HttpApp, Request, Response

app = HttpApp()


@functools.cache
def store() -> redis.Redis:
    """The backing service, from the environment (decode_responses: str in, str out)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        raise RuntimeError("set REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6380/0")
    return redis.Redis.from_url(url, decode_responses=True)


async def call(method: Callable[..., Any], *args: Any) -> Any:
    """redis-py blocks, so it runs in a worker thread, not on the event loop."""
    return await trio.to_thread.run_sync(functools.partial(method, *args))


@app.route("/", methods=["GET"])
async def home(request: Request) -> dict[str, Any]:
    r = store()
    visits = await call(r.incr, "visits")
    notes = await call(r.lrange, "notes", 0, -1)
    return {"visits": visits, "notes": notes}


@app.route("/notes", methods=["POST"])
async def add_note(request: Request) -> Response:
    text = (await request.body()).decode().strip()
    if not text:
        return Response("a note needs some text\n", status=400)
    count = await call(store().rpush, "notes", text)
    return Response.json({"notes": count}, status=201)


@app.route("/whoami", methods=["GET"])
async def whoami(request: Request) -> dict[str, Any]:
    """Which instance answered, and the client it saw (behind HAProxy with
    the PROXY protocol: the real client, not the proxy)."""
    return {
        "instance": os.environ.get("INSTANCE", str(os.getpid())),
        "client": str(request.peer),
    }


@app.route("/healthz", methods=["GET"])
async def healthz(request: Request) -> Response:
    try:
        await call(store().ping)
    except (redis.RedisError, RuntimeError) as exc:
        return Response(f"backing service unavailable: {exc}\n", status=503)
    return Response("ok\n")
