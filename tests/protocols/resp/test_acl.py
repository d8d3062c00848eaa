# ACL users on netsvc's RESP plugin, from outside with redis-py, redis-cli and
# a raw client: ACL SETUSER then AUTH (and HELLO AUTH, RESP2 and RESP3) as that
# user; the permissions its rules give, applied in order and described as
# given (Redis 7.2); MULTI/EXEC and scripts' redis.call refused with Redis
# 7.2's texts; ACL DELUSER and SETUSER disconnecting clients; ACL LOG and
# INFO's counters; the ACL file (--resp-aclfile) at start, ACL SAVE then a
# restart, ACL LOAD all or nothing, a bad file refusing to start; user
# commands' categories; the startup audit line. Replies that redis-server 7.0
# shares are compared with it in test_acl_vs_redis.py.
from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from tests.protocols.resp.respclient import RespClient, error
from tests.protocols.resp.test_redis_cli import tool
from tests.serveprocess import ServeProcess, host_port

PASSWORD = "alice-s3cret-pw"


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    with ServeProcess(["--protocol", "resp", "--port", "0"]) as process:
        yield process


@pytest.fixture
def port(server: ServeProcess) -> Iterator[int]:
    """The module's server, with only the default user and an empty ACL LOG."""
    port = host_port(server.urls[0])[1]
    yield port
    with RespClient(port) as admin:
        others = [name for name in admin.call("ACL", "USERS") if name != b"default"]
        if others:
            admin.call("ACL", "DELUSER", *others)
        admin.call("ACL", "LOG", "RESET")
        admin.call("FLUSHALL")


def add_user(port: int, name: str, *rules: str) -> None:
    with RespClient(port) as admin:
        assert admin.call("ACL", "SETUSER", name, "on", f">{PASSWORD}", *rules) == b"OK"


# -- logging in ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_setuser_then_log_in_as_that_user_with_redis_py(port: int, protocol: int) -> None:
    admin = redis.Redis(port=port, protocol=protocol)
    assert admin.acl_setuser(
        "alice", enabled=True, passwords=[f"+{PASSWORD}"], keys=["app:*"], commands=["+@all"]
    )
    # redis-py logs in with AUTH alice ... (RESP2) or HELLO 3 AUTH alice ... (RESP3)
    alice = redis.Redis(port=port, username="alice", password=PASSWORD, protocol=protocol)
    assert alice.acl_whoami() in ("alice", b"alice")  # RESP2: decoded; RESP3: not
    assert alice.client_info()["user"] == "alice"
    assert alice.set("app:1", "v") and alice.get("app:1") == b"v"
    with pytest.raises(NoPermissionError, match=r"^No permissions to access a key$"):
        alice.get("other")
    listed = {int(entry["id"]): entry["user"] for entry in admin.client_list()}
    assert listed[alice.client_id()] == "alice"
    with pytest.raises(AuthenticationError, match="invalid username-password pair"):
        redis.Redis(port=port, username="alice", password="wrong", protocol=protocol).ping()
    alice.close()
    admin.close()


def test_redis_cli_logs_in_as_a_user(port: int) -> None:
    add_user(port, "alice", "+@all", "~*")
    login = ["--user", "alice", "--pass", PASSWORD, "--no-auth-warning"]
    done = subprocess.run(
        [tool("redis-cli"), "-p", str(port), *login, "ACL", "WHOAMI"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.strip() == "alice", done.stderr


def test_a_disabled_user_cannot_log_in_but_its_clients_stay(port: int) -> None:
    add_user(port, "alice", "+@all", "~*")
    with RespClient(port) as alice, RespClient(port) as admin:
        assert alice.call("AUTH", "alice", PASSWORD) == b"OK"
        assert admin.call("ACL", "SETUSER", "alice", "off") == b"OK"
        assert alice.call("PING") == b"PONG"  # logged in already: as in Redis
        with RespClient(port) as again:
            assert again.call("AUTH", "alice", PASSWORD) == error(
                "WRONGPASS invalid username-password pair or user is disabled."
            )


def test_reset_logs_back_in_as_default(port: int) -> None:
    add_user(port, "alice", "+@all", "~*")
    with RespClient(port) as client:
        client.call("AUTH", "alice", PASSWORD)
        assert client.call("RESET") == b"RESET"
        assert client.call("ACL", "WHOAMI") == b"default"


# -- what the rules allow -----------------------------------------------------------


def test_rules_apply_in_order_and_are_described_as_given(port: int) -> None:
    add_user(port, "bob", "+@read", "-get", "+@hash", "-hset", "+select|0", "~*")
    with RespClient(port) as admin:
        calls = [
            ("mget", "k"), ("get", "k"), ("hget", "h", "f"), ("hset", "h", "f", "v"),
            ("hdel", "h", "f"), ("select", "0"), ("select", "1"), ("set", "k", "v"),
        ]  # fmt: skip
        dryrun = [admin.call("ACL", "DRYRUN", "bob", *call) for call in calls]
        assert dryrun == [
            b"OK",
            b"User bob has no permissions to run the 'get' command",
            b"OK",
            b"User bob has no permissions to run the 'hset' command",
            b"OK",  # @hash
            b"OK",
            b"User bob has no permissions to run the 'select' command",
            b"User bob has no permissions to run the 'set' command",
        ]
        (line,) = [u for u in admin.call("ACL", "LIST") if u.startswith(b"user bob ")]
        assert line.endswith(b" ~* resetchannels -@all +@read -get +@hash -hset +select|0")
        # a rule given again moves to the end; +get drops -get, -@all drops them all
        admin.call("ACL", "SETUSER", "bob", "+@read", "+get", "+select|1", "+select|0")
        assert admin.call("ACL", "GETUSER", "bob")[5] == (
            b"-@all +@hash -hset +@read +get +select|1 +select|0"
        )
        admin.call("ACL", "SETUSER", "bob", "-@all", "+@all", "-config|set")
        assert admin.call("ACL", "GETUSER", "bob")[5] == b"+@all -config|set"
        assert admin.call("ACL", "DRYRUN", "bob", "config", "get", "x") == b"OK"
        assert admin.call("ACL", "DRYRUN", "bob", "config", "set", "x", "y") == (
            b"User bob has no permissions to run the 'config|set' command"
        )


def test_denials_have_redis_7_2_texts(port: int) -> None:
    add_user(port, "carol", "+@all", "-del", "resetkeys", "%R~r*", "%W~w*", "&news.*")
    carol = redis.Redis(port=port, username="carol", password=PASSWORD)
    assert carol.get("r1") is None
    assert carol.set("w1", "v")
    with pytest.raises(NoPermissionError) as denied:
        carol.delete("r1")
    assert str(denied.value) == "User carol has no permissions to run the 'del' command"
    with pytest.raises(NoPermissionError, match=r"^No permissions to access a key$"):
        carol.set("r1", "v")  # read only
    with pytest.raises(NoPermissionError, match=r"^No permissions to access a key$"):
        carol.incr("w1")  # INCR reads its key too
    assert carol.publish("news.today", "m") == 0
    with pytest.raises(NoPermissionError, match=r"^No permissions to access a channel$"):
        carol.publish("sport", "m")
    carol.close()
    with RespClient(port) as client:  # SUBSCRIBE: one channel denied, none subscribed
        client.call("AUTH", "carol", PASSWORD)
        assert client.call("SUBSCRIBE", "news.today", "sport") == error(
            "NOPERM No permissions to access a channel"
        )
        assert client.call("PSUBSCRIBE", "news.*") == [b"psubscribe", b"news.*", 1]


def test_a_denied_command_in_multi_aborts_exec(port: int) -> None:
    add_user(port, "dave", "+@all", "-del", "~*")
    with RespClient(port) as dave:
        dave.call("AUTH", "dave", PASSWORD)
        assert dave.call("MULTI") == b"OK"
        assert dave.call("SET", "k", "v") == b"QUEUED"
        assert dave.call("DEL", "k") == error(
            "NOPERM User dave has no permissions to run the 'del' command"
        )
        assert dave.call("EXEC") == error(
            "EXECABORT Transaction discarded because of previous errors."
        )
        assert dave.call("EXISTS", "k") == 0
    # redis-py: the transaction is refused whole
    with redis.Redis(port=port, username="dave", password=PASSWORD) as client:
        pipe = client.pipeline(transaction=True)
        pipe.set("k", "v").delete("k")
        with pytest.raises((ResponseError, NoPermissionError)):
            pipe.execute()
        assert client.exists("k") == 0


def test_a_script_s_redis_call_is_checked_as_its_caller(port: int) -> None:
    add_user(port, "erin", "+@all", "-del", "~k*")
    script = "return redis.call(ARGV[1], ARGV[2])"
    with RespClient(port) as erin:
        erin.call("AUTH", "erin", PASSWORD)
        sha = erin.call("SCRIPT", "LOAD", script).decode()
        assert erin.call("EVAL", script, "0", "get", "k1") is None
        assert erin.call("EVAL", script, "0", "del", "k1") == error(
            "ERR ACL failure in script: User erin has no permissions to run the 'del' command "
            f"script: {sha}, on @user_script:1."
        )
        assert erin.call("EVAL", script, "0", "get", "other") == error(
            "ERR ACL failure in script: No permissions to access a key "
            f"script: {sha}, on @user_script:1."
        )
        pcall = "return redis.pcall('del', 'k1')"
        assert erin.call("EVAL", pcall, "0") == error(
            "ERR ACL failure in script: User erin has no permissions to run the 'del' command"
        )
    with RespClient(port) as admin:
        log = admin.call("ACL", "LOG", "1")[0]
        fields = dict(zip(log[::2], log[1::2], strict=True))
        assert (fields[b"context"], fields[b"reason"], fields[b"object"]) == (
            b"lua",
            b"command",
            b"del",
        )
        assert fields[b"count"] == 2  # the same denial, grouped
        assert b" user=erin " in fields[b"client-info"]


def test_user_commands_get_categories_from_their_flags() -> None:
    args = ["--protocol", "resp", "--port", "0", "--app", "tests.protocols.resp.user_app:app"]
    with ServeProcess(args) as server:
        port = host_port(server.urls[0])[1]
        add_user(port, "fast", "-@all", "+@fast")
        add_user(port, "slow", "-@all", "+@slow")
        with RespClient(port) as admin:
            assert b"greet" in admin.call("ACL", "CAT", "fast")
            assert admin.call("COMMAND", "INFO", "greet")[0][6] == [b"@fast"]
            assert admin.call("ACL", "DRYRUN", "fast", "greet", "x") == b"OK"
            assert admin.call("ACL", "DRYRUN", "slow", "greet", "x") == (
                b"User slow has no permissions to run the 'greet' command"
            )


# -- changing users changes their clients ----------------------------------------------


def test_new_rules_apply_to_connected_clients_at_once(port: int) -> None:
    with RespClient(port) as client, RespClient(port) as admin:
        assert client.call("SET", "k", "v") == b"OK"
        admin.call("ACL", "SETUSER", "default", "-set")
        try:
            assert client.call("SET", "k", "v") == error(
                "NOPERM User default has no permissions to run the 'set' command"
            )
        finally:
            admin.call("ACL", "SETUSER", "default", "+@all")
        assert client.call("SET", "k", "v") == b"OK"


def test_deluser_disconnects_that_user_s_clients(port: int) -> None:
    add_user(port, "frank", "+@all", "~*")
    with RespClient(port) as frank, RespClient(port) as other, RespClient(port) as admin:
        frank.call("AUTH", "frank", PASSWORD)
        assert admin.call("ACL", "DELUSER", "default") == error(
            "ERR The 'default' user cannot be removed"
        )
        assert admin.call("ACL", "DELUSER", "frank", "nobody") == 1
        assert frank.closed()  # no reply more: gone
        assert other.call("PING") == b"PONG"
        assert b"frank" not in admin.call("ACL", "USERS")


def test_a_user_deleting_itself_gets_the_reply_then_the_end(port: int) -> None:
    add_user(port, "gina", "+@all", "~*")
    with RespClient(port) as gina:
        gina.call("AUTH", "gina", PASSWORD)
        assert gina.call("ACL", "DELUSER", "gina") == 1
        assert gina.closed()


@pytest.mark.parametrize(
    "call",
    [
        "redis.call('acl', 'setuser', 'x', 'on', '+@all')",
        "redis.call('acl', 'deluser', 'v')",
        "redis.call('acl', 'whoami')",
        "redis.call('client', 'setinfo', 'lib-name', 'x')",
    ],
)
def test_acl_and_noscript_subcommands_are_refused_from_scripts(port: int, call: str) -> None:
    # a subcommand's own noscript flag counts (Redis: "not allowed from script")
    with RespClient(port) as client:
        reply = client.call("EVAL", f"return {call}", "0")
        assert "This Redis command is not allowed from script" in str(reply), reply


def test_a_script_cannot_escape_its_user_by_deleting_it(port: int) -> None:
    # a user allowed to delete itself, and nothing else but GET: once deleted,
    # its client is on its way out with no permissions, never the default user's
    add_user(port, "v", "+eval", "+acl|deluser", "+get", "~*")
    script = "redis.pcall('acl', 'deluser', 'v'); return redis.pcall('set', 'pwned', 'after')"
    with RespClient(port) as v, RespClient(port) as admin:
        v.call("AUTH", "v", PASSWORD)
        reply = v.call("EVAL", script, "0")
        assert "no permissions to run the 'set' command" in str(reply), reply
        assert admin.call("GET", "pwned") is None
        assert b"v" in admin.call("ACL", "USERS")  # ACL DELUSER is not for scripts


def test_subscribers_losing_their_channels_are_disconnected(port: int) -> None:
    add_user(port, "hal", "+@all", "resetchannels", "&news.*", "&sport")
    with RespClient(port) as hal, RespClient(port) as admin, RespClient(port) as other:
        hal.call("AUTH", "hal", PASSWORD)
        assert hal.call("SUBSCRIBE", "news.1") == [b"subscribe", b"news.1", 1]
        assert admin.call("ACL", "SETUSER", "hal", "&more") == b"OK"  # still allowed: stays
        assert admin.call("PUBLISH", "news.1", "m") == 1
        assert hal.reply() == [b"message", b"news.1", b"m"]
        assert admin.call("ACL", "SETUSER", "hal", "resetchannels", "&sport") == b"OK"
        assert hal.closed()
        assert other.call("PING") == b"PONG"


# -- the log and the counters ----------------------------------------------------------


def test_acl_log_has_denials_and_failed_logins(port: int, server: ServeProcess) -> None:
    add_user(port, "ivy", "-@all", "+get", "+publish", "~k*", "&ch")
    with RespClient(port) as ivy, RespClient(port) as admin:
        admin.call("CONFIG", "RESETSTAT")
        assert ivy.call("AUTH", "ivy", "not-the-password") == error(
            "WRONGPASS invalid username-password pair or user is disabled."
        )
        ivy.call("AUTH", "ivy", PASSWORD)
        ivy.call("SET", "k", "v")
        ivy.call("GET", "other")
        ivy.call("PUBLISH", "elsewhere", "m")
        ivy.call("GET", "other")
        entries = admin.call("ACL", "LOG")
        fields = [dict(zip(e[::2], e[1::2], strict=True)) for e in entries]
        assert [(f[b"reason"], f[b"object"], f[b"count"]) for f in fields] == [
            (b"key", b"other", 2),
            (b"channel", b"elsewhere", 1),
            (b"command", b"set", 1),
            (b"auth", b"AUTH", 1),
        ]
        assert {f[b"username"] for f in fields} == {b"ivy"}
        assert {f[b"context"] for f in fields} == {b"toplevel"}
        newest = fields[0]
        assert sorted(newest) == sorted(
            [b"count", b"reason", b"context", b"object", b"username", b"age-seconds",
             b"client-info", b"entry-id", b"timestamp-created", b"timestamp-last-updated"]
        )  # fmt: skip
        assert float(newest[b"age-seconds"]) < 60
        assert newest[b"timestamp-created"] < newest[b"timestamp-last-updated"] + 1
        assert b"cmd=get user=ivy " in newest[b"client-info"]
        assert len(admin.call("ACL", "LOG", "2")) == 2
        stats = admin.call("INFO", "stats").decode()
        for name, count in (("auth", 1), ("cmd", 1), ("key", 2), ("channel", 1)):
            assert f"acl_access_denied_{name}:{count}\r\n" in stats
        assert admin.call("ACL", "LOG", "RESET") == b"OK"
        assert admin.call("ACL", "LOG") == []
    assert "not-the-password" not in server.log  # (failed logins: test_auth_failures.py)


def test_acllog_max_len_caps_the_log(port: int) -> None:
    add_user(port, "jay", "-@all")
    with RespClient(port) as jay, RespClient(port) as admin:
        jay.call("AUTH", "jay", PASSWORD)
        admin.call("CONFIG", "SET", "acllog-max-len", "3")
        for command in ("get", "set", "del", "incr", "decr"):
            jay.call(command, "k")
        assert len(admin.call("ACL", "LOG", "100")) == 3
        admin.call("CONFIG", "SET", "acllog-max-len", "128")


# -- the default user and protected mode --------------------------------------------------


def test_config_set_requirepass_sets_the_default_user_s_password(port: int) -> None:
    with RespClient(port) as admin:
        admin.call("CONFIG", "SET", "requirepass", "pw1")
        try:
            hashed = admin.call("ACL", "GETUSER", "default")[3]
            assert len(hashed) == 1 and re.fullmatch(rb"[0-9a-f]{64}", hashed[0])
            with RespClient(port) as client:
                assert client.call("PING") == error("NOAUTH Authentication required.")
                assert client.call("AUTH", "pw1") == b"OK"
        finally:
            admin.call("CONFIG", "SET", "requirepass", "")
        assert admin.call("ACL", "GETUSER", "default")[1] == [b"on", b"nopass", b"sanitize-payload"]


# -- the ACL file ----------------------------------------------------------------------


def aclfile_server(path: Path, listeners: int = 1) -> ServeProcess:
    args = ["--protocol", "resp", "--port", "0", "--resp-aclfile", str(path)]
    return ServeProcess(args, listeners=listeners)


def test_users_from_the_acl_file_at_start(tmp_path: Path) -> None:
    path = tmp_path / "users.acl"
    path.write_text(
        f"user alice on >{PASSWORD} ~app:* +@all\n\nuser default on nopass ~* &* +@all -flushall\n"
    )
    with aclfile_server(path) as server:
        port = host_port(server.urls[0])[1]
        alice = redis.Redis(port=port, username="alice", password=PASSWORD)
        assert alice.acl_whoami() == "alice"
        with pytest.raises(NoPermissionError):
            alice.get("other")
        with RespClient(port) as client:
            assert client.call("FLUSHALL") == error(
                "NOPERM User default has no permissions to run the 'flushall' command"
            )
        alice.close()
        server.wait_for_log(
            r"authentication ACL users \(AUTH user password\)|authentication none "
            r"\(protected mode: .*; ACL users besides default: 1\)"
        )


def test_the_acl_file_s_default_user_wins_over_requirepass(tmp_path: Path) -> None:
    # as Redis: requirepass is ignored when an ACL file defines the users
    path = tmp_path / "users.acl"
    path.write_text("user default on >from-the-file ~* &* +@all\n")
    args = ["--protocol", "resp", "--port", "0", "--resp-aclfile", str(path)]
    with ServeProcess(args, env={"NETSVC_RESP_REQUIREPASS": "from-the-env"}) as server:
        port = host_port(server.urls[0])[1]
        with RespClient(port) as client:
            assert client.call("AUTH", "from-the-env") == error(
                "WRONGPASS invalid username-password pair or user is disabled."
            )
            assert client.call("AUTH", "from-the-file") == b"OK"
        server.wait_for_log(
            rf"WARNING netsvc\.resp: --resp-requirepass is ignored: the ACL file {path} "
            "defines the default user"
        )
        assert "from-the" not in server.log


def test_acl_save_then_restart_keeps_the_users(tmp_path: Path) -> None:
    path = tmp_path / "users.acl"
    path.write_text("")
    with aclfile_server(path) as server:
        port = host_port(server.urls[0])[1]
        add_user(port, "bob", "~bob:*", "+@read", "(~x +get)")
        with RespClient(port) as admin:
            listed = admin.call("ACL", "LIST")
            assert admin.call("ACL", "SAVE") == b"OK"
    saved = path.read_bytes()
    assert saved == b"".join(line + b"\n" for line in listed)
    assert PASSWORD.encode() not in saved  # only its SHA-256
    assert path.stat().st_mode & 0o777 == 0o644  # as it was
    assert [p.name for p in tmp_path.iterdir()] == ["users.acl"]  # no temporary left
    with aclfile_server(path) as server:
        port = host_port(server.urls[0])[1]
        with RespClient(port) as admin:
            assert admin.call("ACL", "LIST") == listed
        bob = redis.Redis(port=port, username="bob", password=PASSWORD)
        assert bob.get("bob:1") is None
        bob.close()


def test_acl_save_writes_a_new_file_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "users.acl"
    path.write_text("")
    with aclfile_server(path) as server:
        port = host_port(server.urls[0])[1]
        path.unlink()
        with RespClient(port) as admin:
            assert admin.call("ACL", "SAVE") == b"OK"
            assert path.read_bytes() == b"user default on nopass sanitize-payload ~* &* +@all\n"
    assert path.stat().st_mode & 0o777 == 0o600  # it holds password hashes


@pytest.mark.server_errors(r"ACL SAVE to .* failed", required=False)
def test_acl_save_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "users.acl"
    path.write_text("")
    with aclfile_server(path) as server:
        port = host_port(server.urls[0])[1]
        path.unlink()
        tmp_path.rmdir()
        with RespClient(port) as admin:
            assert admin.call("ACL", "SAVE") == error(
                "ERR There was an error trying to save the ACLs. Please check the server logs "
                "for more information"
            )
        server.wait_for_log(r"WARNING netsvc.resp: ACL SAVE to .* failed: No such file")


def test_acl_load_is_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "users.acl"
    path.write_text(f"user alice on >{PASSWORD} ~* +@all\n")
    with aclfile_server(path) as server:
        port = host_port(server.urls[0])[1]
        with RespClient(port) as alice, RespClient(port) as admin:
            alice.call("AUTH", "alice", PASSWORD)
            path.write_text(f"user bob on >{PASSWORD} ~* +@all +nope\nuser carol on\n")
            before = admin.call("ACL", "LIST")
            assert admin.call("ACL", "LOAD") == error(
                f"ERR {path}:1: Unknown command or category name in ACL. WARNING: ACL errors "
                "detected, no change to the previously active ACL rules was performed"
            )
            assert admin.call("ACL", "LIST") == before
            assert alice.call("PING") == b"PONG"
            # a good file replaces every user: alice is gone, and so is her client
            path.write_text(f"user bob on >{PASSWORD} ~* +@all\n")
            assert admin.call("ACL", "LOAD") == b"OK"
            assert admin.call("ACL", "USERS") == [b"bob", b"default"]
            assert alice.closed()
            assert admin.call("PING") == b"PONG"


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("user alice on +nope\n", "{path}:1: Unknown command or category name in ACL. "),
        (
            "user ok on\n# a comment\n",
            "{path}:2 should start with user keyword followed by the username. ",
        ),
        ("user a on\nuser a off\n", "WARNING: Duplicate user 'a' found on line 2. "),
        ("user alice %Q~x\n", "{path}:1: Syntax error. "),
    ],
)
@pytest.mark.server_errors(r"the ACL file \(--resp-aclfile\) has errors")
def test_a_bad_acl_file_refuses_to_start(tmp_path: Path, content: str, complaint: str) -> None:
    path = tmp_path / "users.acl"
    path.write_text(content)
    with aclfile_server(path, listeners=0) as server:
        assert server.wait() == 1
    assert complaint.format(path=path) in server.log
    assert "no change to the previously active ACL rules was performed" in server.log
    assert "Traceback" not in server.log


@pytest.mark.server_errors(r"the ACL file \(--resp-aclfile\) has errors")
def test_a_missing_acl_file_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "missing.acl"
    with aclfile_server(path, listeners=0) as server:
        assert server.wait() == 1
    assert f"Error loading ACLs, opening file '{path}': No such file or directory" in server.log


def test_acl_load_and_save_need_an_acl_file(port: int) -> None:
    with RespClient(port) as admin:
        for sub in ("LOAD", "SAVE"):
            reply = admin.call("ACL", sub)
            assert reply.message.startswith(
                "ERR This Redis instance is not configured to use an ACL file."
            )
