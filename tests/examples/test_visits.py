# The backing-service example, run as the README says: a RESP service and the
# web app, both through the CLI, the app finding the service by REDIS_URL.
from __future__ import annotations

import httpx
import redis

from tests.serveprocess import ServeProcess, host_port


def test_web_app_keeps_its_state_in_the_resp_service() -> None:
    with ServeProcess(["--protocol", "resp", "--port", "0"]) as backing:
        redis_url = backing.urls[0] + "/0"  # the URL netsvc logged, plus a database
        web_args = ["--protocol", "http", "--port", "0", "--app", "examples.visits.app:app"]
        with ServeProcess(web_args, env={"REDIS_URL": redis_url}) as web:
            with httpx.Client(base_url=web.urls[0]) as client:
                assert client.get("/healthz").text == "ok\n"
                assert client.get("/").json() == {"visits": 1, "notes": []}
                assert client.post("/notes", content=b"buy milk").status_code == 201
                assert client.post("/notes", content=b"").status_code == 400
                assert client.get("/").json() == {"visits": 2, "notes": ["buy milk"]}
        # the state is in the backing service, not in the web app
        r = redis.Redis(port=host_port(backing.urls[0])[1], decode_responses=True)
        assert r.get("visits") == "2" and r.lrange("notes", 0, -1) == ["buy milk"]
        r.close()


def test_web_app_reports_a_missing_backing_service() -> None:
    web_args = ["--protocol", "http", "--port", "0", "--app", "examples.visits.app:app"]
    with ServeProcess(web_args, env={"REDIS_URL": "redis://127.0.0.1:1/0"}) as web:
        with httpx.Client(base_url=web.urls[0]) as client:
            health = client.get("/healthz")
            assert health.status_code == 503 and "backing service unavailable" in health.text
