# Finding plugins when some installed ones are broken: a real distribution
# (a *.dist-info directory with entry points, put on the path) whose entry
# points fail to import, raise, or are not protocols, next to the working
# built-ins; in this process and through `netsvc` subprocesses.
from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import netsvc
from netsvc._registry import scan_protocols
from tests.serveprocess import NETSVC, ROOT, ServeProcess, SyncLineClient, host_port

MISSING = "nosuch_dependency_for_netsvc_tests"

# entry-point name -> (module, its source); each entry point is `module:protocol`
PLUGINS = {
    # sorts before the built-ins: a scan that stops at the first failure finds none
    "broken_import": ("netsvc_test_broken_import", f"import {MISSING}\n"),
    "not_protocol": ("netsvc_test_not_protocol", "protocol = 42\n"),
    "raising": (
        "netsvc_test_raising",
        "SETTING = 1\nraise RuntimeError('plugin misconfigured\\nsecond line')\n",
    ),
    "bad_init": (
        "netsvc_test_bad_init",
        "from protocols.echo._plugin import EchoProtocol\n"
        "\n"
        "\n"
        "class BadInit(EchoProtocol):\n"
        "    def __init__(self) -> None:\n"
        "        raise ValueError('needs a licence key')\n"
        "\n"
        "\n"
        "protocol = BadInit\n",
    ),
}


def install_plugins(site: Path) -> Path:
    """Write a distribution registering PLUGINS into `site` (a sys.path entry)."""
    dist = site / "netsvc_test_plugins-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: netsvc-test-plugins\nVersion: 1.0\n"
    )
    lines = [f"{name} = {module}:protocol" for name, (module, _) in PLUGINS.items()]
    (dist / "entry_points.txt").write_text("[netsvc.protocols]\n" + "\n".join(lines) + "\n")
    for module, source in PLUGINS.values():
        (site / f"{module}.py").write_text(source)
    return site


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The broken plugins installed in this process."""
    monkeypatch.syspath_prepend(str(install_plugins(tmp_path / "site")))
    yield tmp_path / "site"
    for module, _ in PLUGINS.values():
        sys.modules.pop(module, None)


def plugin_env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETSVC_", "PORT"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return env


def expected_reasons(site: Path) -> dict[str, str]:
    return {
        "broken_import": "failed to load: ModuleNotFoundError: No module named "
        f"'{MISSING}' (at {site / 'netsvc_test_broken_import.py'}:1)",
        "not_protocol": "42 is not a netsvc.Protocol instance or subclass",
        "raising": "failed to load: RuntimeError: plugin misconfigured "
        f"(at {site / 'netsvc_test_raising.py'}:2)",
        "bad_init": "BadInit() failed: ValueError: needs a licence key "
        f"(at {site / 'netsvc_test_bad_init.py'}:6)",
    }


def test_scan_sets_broken_plugins_aside_with_one_line_reasons(site: Path) -> None:
    installed = scan_protocols()
    assert {"echo", "http", "resp", "xmpp"} <= {p.name for p in installed.protocols}
    reasons = {plugin.name: plugin.reason for plugin in installed.broken}
    assert reasons == expected_reasons(site)
    assert str(installed.broken[0]) == f"bad_init ({reasons['bad_init']})"


def test_scheme_lookup_passes_over_broken_plugins(site: Path) -> None:
    protocol, tls = netsvc.protocol_for_scheme("echos")
    assert (protocol.name, tls) == ("echo", True)
    assert netsvc.protocol_for_scheme("redis")[0].name == "resp"


def test_unknown_scheme_names_the_plugins_that_failed(site: Path) -> None:
    with pytest.raises(netsvc.LoadError) as caught:
        netsvc.protocol_for_scheme("gopher")
    reasons = expected_reasons(site)
    message = str(caught.value)
    assert message.startswith("no installed protocol serves URL scheme 'gopher' (known schemes: ")
    assert "echo, echos" in message
    assert message.endswith(
        "; these plugins failed to load: "
        + ", ".join(f"{name} ({reasons[name]})" for name in sorted(reasons))
    )


def test_unknown_scheme_without_broken_plugins_does_not_mention_them() -> None:
    with pytest.raises(netsvc.LoadError) as caught:
        netsvc.protocol_for_scheme("gopher")
    assert "failed to load" not in str(caught.value)


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_loading_a_broken_plugin_by_name_gives_its_error(site: Path, name: str) -> None:
    module, _ = PLUGINS[name]
    with pytest.raises(netsvc.LoadError) as caught:
        netsvc.load_protocol(name)
    reason = expected_reasons(site)[name]
    assert str(caught.value) == f"entry point {name!r} ({module}:protocol): {reason}"


def test_installed_protocols_leaves_broken_ones_out_and_logs_them(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="netsvc.registry"):
        names = [p.name for p in netsvc.installed_protocols()]
    assert {"echo", "http", "resp", "xmpp"} <= set(names) and not set(PLUGINS) & set(names)
    skipped = sorted(r.getMessage() for r in caplog.records)
    assert skipped[0] == (
        "protocol plugin bad_init (netsvc_test_bad_init:protocol) is skipped: "
        + expected_reasons(site)["bad_init"]
    )
    assert len(skipped) == len(PLUGINS)


# The same, as a user meets it: `netsvc` with the broken distribution installed.


def run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NETSVC, *args],
        cwd=ROOT,
        env=plugin_env(site),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_protocols_command_lists_working_and_broken_plugins(tmp_path: Path) -> None:
    site = install_plugins(tmp_path)
    result = run(site, "protocols")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert rows["echo"].split()[:3] == ["echo", "echo,echos", "7007"]
    assert rows["resp"].split()[:3] == ["resp", "redis,rediss", "6379"]
    for name, reason in expected_reasons(site).items():
        assert rows[name].split(None, 3) == [name, "-", "-", f"BROKEN: {reason}"]
    assert result.stderr == (
        "warning: 4 installed protocol plugins failed to load (listed as BROKEN): "
        "bad_init, broken_import, not_protocol, raising\n"
    )


def test_listen_url_serves_with_broken_plugins_installed(tmp_path: Path) -> None:
    site = install_plugins(tmp_path)
    with ServeProcess(["--listen", "echo://127.0.0.1:0"], env=plugin_env(site)) as server:
        (url,) = server.urls
        with SyncLineClient(host_port(url)) as client:
            assert client.ask("still serving") == b"still serving"
        for name, reason in expected_reasons(site).items():
            module = PLUGINS[name][0]
            assert f"WARNING netsvc: protocol plugin {name} ({module}:protocol) is skipped: " in (
                server.log
            )
            assert reason in server.log


def test_unknown_listen_scheme_names_the_broken_plugins(tmp_path: Path) -> None:
    site = install_plugins(tmp_path)
    result = run(site, "serve", "--listen", "gopher://127.0.0.1:0")
    assert result.returncode == 2
    assert "no installed protocol serves URL scheme 'gopher' (known schemes: " in result.stderr
    reason = expected_reasons(site)["not_protocol"]
    assert "; these plugins failed to load: bad_init (" in result.stderr
    assert f"not_protocol ({reason})" in result.stderr


@pytest.mark.parametrize("name", ["broken_import", "not_protocol"])
def test_protocol_option_naming_a_broken_plugin_fails_with_its_error(
    tmp_path: Path, name: str
) -> None:
    site = install_plugins(tmp_path)
    result = run(site, "serve", "--protocol", name, "--port", "0")
    assert result.returncode == 2
    module = PLUGINS[name][0]
    reason = expected_reasons(site)[name]
    assert f"Error: entry point {name!r} ({module}:protocol): {reason}\n" in result.stderr


# A plugin given by import path is found in the working directory, as
# `python -m` finds modules there (the `netsvc` script's own sys.path does not
# have it), and an import path to something else names itself in the error.


def test_protocol_by_import_path_loads_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "myechoplugin.py").write_text(
        "from protocols.echo._plugin import EchoProtocol\n\n\nprotocol = EchoProtocol()\n"
    )
    args = ["--protocol", "myechoplugin:protocol", "--port", "0"]
    with ServeProcess(args, cwd=tmp_path) as server:
        with SyncLineClient(host_port(server.urls[0])) as client:
            client.sock.sendall(b"from the working directory")
            assert client.sock.recv(100) == b"from the working directory"


def test_import_path_to_a_non_protocol_names_the_path() -> None:
    with pytest.raises(netsvc.LoadError) as caught:
        netsvc.load_protocol("tests.netsvc.test_registry:MISSING")
    assert str(caught.value) == (
        "'tests.netsvc.test_registry:MISSING': "
        "'nosuch_dependency_for_netsvc_tests' is not a netsvc.Protocol instance or subclass"
    )
