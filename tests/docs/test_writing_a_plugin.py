# docs/writing-a-plugin.md, followed end to end: its code blocks are the
# example plugin's files, they build and install into a fresh directory, the
# installed plugin is found by name, and the session the guide shows happens.
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serveprocess import NETSVC, ROOT, ServeProcess, SyncLineClient, host_port

GUIDE = ROOT / "docs" / "writing-a-plugin.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str, str]]:
    """(language, info, body) of every fenced block in the guide."""
    return [(m.group(1), m.group(2).strip(), m.group(3)) for m in BLOCK.finditer(GUIDE.read_text())]


def file_blocks() -> dict[str, str]:
    return {
        info.removeprefix("file="): body for _, info, body in blocks() if info.startswith("file=")
    }


def test_every_file_of_the_example_is_in_the_guide_verbatim() -> None:
    files = file_blocks()
    package = ROOT / "examples" / "kvline"
    expected = {"examples/kvline/pyproject.toml"} | {
        str(path.relative_to(ROOT)) for path in (package / "netsvc_kvline").glob("*.py")
    }
    assert set(files) == expected
    for path, body in files.items():
        assert body == (ROOT / path).read_text(), f"{path} in the guide differs from the file"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The plugin built from the guide's blocks and pip-installed into a new
    directory; returns the environment that puts it first on the path."""
    root = tmp_path_factory.mktemp("guide")
    source, site = root / "kvline", root / "site"
    for path, body in file_blocks().items():
        target = source / Path(path).relative_to("examples/kvline")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--target", str(site), str(source)],
        check=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETSVC_")}
    env["PYTHONPATH"] = str(site)
    return env


def test_installed_plugin_is_listed(installed: dict[str, str]) -> None:
    result = subprocess.run(
        [NETSVC, "protocols"], env=installed, capture_output=True, text=True, timeout=30
    )
    assert re.search(r"^kvline\s+kvline,kvlines\s+7379\s", result.stdout, re.MULTILINE)


def session() -> list[tuple[str, str]]:
    """(what you type, what you read) pairs from the guide's session block."""
    (body,) = [body for _, info, body in blocks() if info == "session"]
    lines = body.splitlines()
    pairs = []
    for typed, answer in zip(lines[::2], lines[1::2], strict=True):
        assert typed.startswith("> ") and not answer.startswith(">")
        pairs.append((typed[2:], answer))
    return pairs


def test_the_guides_session(installed: dict[str, str]) -> None:
    with ServeProcess(["--protocol", "kvline", "--port", "0"], env=installed) as server:
        (url,) = server.urls
        assert url.startswith("kvline://127.0.0.1:")
        with SyncLineClient(host_port(url)) as client:
            for typed, answer in session():
                assert client.ask(typed).decode() == answer


def test_the_guides_user_app(installed: dict[str, str], tmp_path: Path) -> None:
    (myapp,) = [body for lang, _, body in blocks() if lang == "python" and "# myapp.py" in body]
    (tmp_path / "myapp.py").write_text(myapp)
    args = ["--protocol", "kvline", "--port", "0", "--app", "myapp:app"]
    with ServeProcess(args, env=installed, cwd=tmp_path) as server:
        with SyncLineClient(host_port(server.urls[0])) as client:
            assert client.ask("SET word quiet") == b"OK"
            assert client.ask("UPPER word") == b"VALUE QUIET"
