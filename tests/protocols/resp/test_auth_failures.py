# Failed logins: each counted in INFO (acl_access_denied_auth, as Redis 7.2),
# and logged with the client's address at most once a second per address,
# never with the password tried.
from __future__ import annotations

import time

import redis

from tests.protocols.resp.respclient import RespClient, error
from tests.serveprocess import ServeProcess, host_port


def test_failed_logins_are_counted_and_logged_sparingly() -> None:
    args = ["--protocol", "resp", "--port", "0"]
    with ServeProcess(args, env={"NETSVC_RESP_REQUIREPASS": "right"}) as server:
        host, port = host_port(server.urls[0])
        for attempt in range(5):  # raw: a client library may retry a failed login
            with RespClient(port, host) as client:
                reply = client.call("AUTH", f"wrong-{attempt}")
                assert reply == error(
                    "WRONGPASS invalid username-password pair or user is disabled."
                )
        admin = redis.Redis(host=host, port=port, password="right")
        assert admin.info("stats")["acl_access_denied_auth"] == 5
        admin.close()
        server.wait_for_log(r"WARNING netsvc\.connection: authentication failed for user 'default'")
        time.sleep(0.2)
        failures = [line for line in server.lines if "authentication failed" in line]
        assert len(failures) == 1, failures  # five in well under a second: logged once
        assert "127.0.0.1" in failures[0]
        assert "wrong-" not in server.log
