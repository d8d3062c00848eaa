# The compiled build (setup.py, issue 12) from outside: `netsvc --version`
# says which build runs, an install without a C compiler warns and installs
# pure Python, NETSVC_COMPILE=0 builds pure Python without a word, and the
# guards against compiled modules that shadow their source (`netsvc
# --version` and `netsvc serve` in a checkout, the test session's check in
# tests/conftest.py, tools.mutation's refusal).
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from netsvc import __version__
from tests.conftest import compiled_module_problems
from tests.serveprocess import ServeProcess

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # .cpython-311-x86_64-linux-gnu.so
COMPILED_PARSER = ROOT / "protocols" / "resp" / f"_parser{SUFFIX}"
SKIP = shutil.ignore_patterns("*.so", "__pycache__", "build", "*.egg-info")


def source_tree(folder: Path, *parts: str) -> Path:
    """A copy of the repository's `parts` (netsvc, protocols...) without any
    compiled module: what a pure Python build runs."""
    for part in parts:
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, folder / part, ignore=SKIP)
        else:
            shutil.copy(ROOT / part, folder / part)
    return folder


def first_on_path(tree: Path) -> str:
    """PYTHONPATH with `tree` first: its netsvc is the one imported, and what
    the path held stays (mutation testing's mutants/ and its hit recorder)."""
    return os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))


def netsvc_version(cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "netsvc", "--version"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": first_on_path(cwd)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout


# -- netsvc --version ---------------------------------------------------------------


def test_version_says_pure_python_without_compiled_modules(tmp_path: Path) -> None:
    tree = source_tree(tmp_path, "netsvc", "protocols")
    assert netsvc_version(tree) == f"netsvc {__version__} (pure Python)\n"


@pytest.mark.skipif(not COMPILED_PARSER.exists(), reason="a pure Python build (no .so here)")
def test_version_says_compiled_for_the_compiled_build() -> None:
    # setup.py's HOT_MODULES: the core's per-read path, HTTP's and RESP's
    # request paths, XMPP's framing
    assert netsvc_version(ROOT) == f"netsvc {__version__} (compiled: core, http, resp, xmpp)\n"


def stale_tree(folder: Path, *, checkout: bool) -> Path:
    """A pure Python tree with one stand-in compiled module older than its
    source, a module nothing imports; `checkout`: with setup.py, as a source
    tree (an installed package has none beside it)."""
    tree = source_tree(folder, "netsvc", "protocols", *(["setup.py"] if checkout else []))
    source = tree / "protocols" / "resp" / "_unused.py"
    source.write_text("")
    compiled_beside(source, age=10)
    return tree


def test_version_names_a_stale_compiled_module_in_a_checkout(tmp_path: Path) -> None:
    assert netsvc_version(stale_tree(tmp_path, checkout=True)) == (
        f"netsvc {__version__} (compiled: resp; stale: protocols/resp/_unused.py changed after "
        "being compiled, the old code runs; rebuild with `pip install --no-deps -e .` "
        "(./dev does) or delete the .so files)\n"
    )


def test_folders_that_are_not_packages_are_not_searched(tmp_path: Path) -> None:
    # a plugin's vendored or build folder (no __init__.py) is not imported
    # as part of it: a compiled module there shadows nothing of netsvc's
    tree = source_tree(tmp_path, "netsvc", "protocols")
    vendored = tree / "protocols" / "resp" / "vendor"
    vendored.mkdir()
    (vendored / "fast.py").write_text("")
    compiled_beside(vendored / "fast.py", age=10)
    assert netsvc_version(tree) == f"netsvc {__version__} (pure Python)\n"


def test_a_compiled_module_as_old_as_its_source_is_not_stale(tmp_path: Path) -> None:
    # file systems that keep whole seconds (FAT, some network mounts) give a
    # source and the module compiled from it within the same second one time
    tree = source_tree(tmp_path, "netsvc", "protocols", "setup.py")
    source = tree / "protocols" / "resp" / "_unused.py"
    source.write_text("")
    whole_second = (source.stat().st_mtime_ns // 10**9) * 10**9
    for path in (source, compiled_beside(source, age=0)):
        os.utime(path, ns=(whole_second, whole_second))
    assert netsvc_version(tree) == f"netsvc {__version__} (compiled: resp)\n"


def test_an_installed_package_is_never_stale(tmp_path: Path) -> None:
    # pip writes an installed package's files in any order: their times say nothing
    version = netsvc_version(stale_tree(tmp_path, checkout=False))
    assert version == f"netsvc {__version__} (compiled: resp)\n"


def test_a_malformed_entry_point_does_not_break_version(tmp_path: Path) -> None:
    tree = source_tree(tmp_path, "netsvc", "protocols")
    info = tree / "badplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: badplug\nVersion: 0.1\n")
    # both sort before any plugin named with letters, whose compiled modules
    # are still found; a plugin that is one module has no folder to look in
    (tree / "onemodule.py").write_text("")
    (info / "entry_points.txt").write_text(
        "[netsvc.protocols]\n0bad = not a valid value!\n0one = onemodule:protocol\n"
    )
    source = tree / "protocols" / "resp" / "_unused.py"
    source.write_text("")
    compiled_beside(source, age=-10)
    assert netsvc_version(tree) == f"netsvc {__version__} (compiled: resp)\n"


def test_version_names_the_core_when_it_is_compiled(tmp_path: Path) -> None:
    tree = source_tree(tmp_path, "netsvc", "protocols")
    source = tree / "netsvc" / "_unused.py"
    source.write_text("")
    compiled_beside(source, age=-10)
    assert netsvc_version(tree) == f"netsvc {__version__} (compiled: core)\n"


def test_serve_looks_for_stale_modules_in_packages_only(tmp_path: Path) -> None:
    # a plugin that is one module, in a project whose virtualenv holds
    # compiled modules pip wrote before their sources: nothing to warn of
    tree = source_tree(tmp_path, "netsvc", "protocols", "setup.py")
    (tree / "myproto.py").write_text("from tests.netsvc.probe import protocol\n")
    shutil.copytree(ROOT / "tests", tree / "tests", ignore=SKIP)
    site = tree / ".venv" / "lib" / "site-packages" / "lib"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    (site / "mod.py").write_text("")
    compiled_beside(site / "mod.py", age=10)
    command = [sys.executable, "-m", "netsvc", "serve"]
    args = ["--protocol", "myproto:protocol", "--port", "0"]
    env = {"PYTHONPATH": first_on_path(tree)}
    with ServeProcess(args, command=command, cwd=tree, env=env) as server:
        server.wait_for_urls(1)
    assert "changed after it was compiled" not in server.log


def test_serve_warns_of_a_stale_compiled_module(tmp_path: Path) -> None:
    tree = stale_tree(tmp_path, checkout=True)
    command = [sys.executable, "-m", "netsvc", "serve"]
    env = {"PYTHONPATH": first_on_path(tree)}
    args = ["--protocol", "resp", "--port", "0"]
    with ServeProcess(args, command=command, cwd=tree, env=env) as server:
        (warning,) = server.wait_for_log("changed after it was compiled")
    assert warning.string.endswith(
        "WARNING netsvc: protocols/resp/_unused.py changed after it was compiled: this server "
        "runs the compiled module, the code from before the change; rebuild with "
        "`pip install --no-deps -e .` (./dev does) or delete the .so files"
    )


# -- installing -------------------------------------------------------------------------


def build_wheel(tree: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`pip wheel` of `tree` into tree/dist, with the venv's setuptools and
    mypy (no build isolation: no download)."""
    command = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation"]
    return subprocess.run(
        [*command, "-w", str(tree / "dist"), str(tree)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def wheel_names(tree: Path) -> list[str]:
    (wheel,) = (tree / "dist").glob("netsvc-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


PACKAGE = ("netsvc", "protocols", "pyproject.toml", "setup.py", "README.md")


@pytest.mark.slow
def test_install_without_a_c_compiler_warns_and_installs_pure_python(tmp_path: Path) -> None:
    tree = source_tree(tmp_path, *PACKAGE)
    built = build_wheel(tree, {"CC": "false", "NETSVC_COMPILE": "1"})  # `false`: a broken compiler
    assert built.returncode == 0, built.stderr
    assert "WARNING: netsvc's hot paths could not be compiled" in built.stdout + built.stderr
    names = wheel_names(tree)
    assert "protocols/resp/_parser.py" in names
    assert not [name for name in names if name.endswith(".so")]


@pytest.mark.slow
def test_install_warns_with_mypycs_first_error_when_it_refuses_the_source(
    tmp_path: Path,
) -> None:
    tree = source_tree(tmp_path, *PACKAGE)
    glob = tree / "protocols" / "resp" / "_glob.py"
    glob.write_text(glob.read_text() + "\nWRONG: int = 'a string'\n")
    built = build_wheel(tree, {"NETSVC_COMPILE": "1"})
    assert built.returncode == 0, built.stderr
    output = built.stdout + built.stderr
    assert "could not be compiled (mypyc failed: protocols/resp/_glob.py:" in output
    assert "Incompatible types in assignment" in output
    assert "that is a bug in netsvc" in output
    assert "install a C compiler" not in output  # not the advice for this cause
    assert not [name for name in wheel_names(tree) if name.endswith(".so")]


@pytest.mark.slow
def test_netsvc_compile_0_builds_pure_python_without_a_warning(tmp_path: Path) -> None:
    tree = source_tree(tmp_path, *PACKAGE)
    # a checkout's compiled module: building a wheel leaves it where it is
    in_the_tree = compiled_beside(tree / "protocols" / "resp" / "_parser.py", age=-10)
    built = build_wheel(tree, {"NETSVC_COMPILE": "0"})
    assert built.returncode == 0, built.stderr
    assert "WARNING" not in built.stdout + built.stderr
    assert in_the_tree.exists()
    names = wheel_names(tree)
    assert "protocols/resp/_parser.py" in names
    assert "protocols/resp/redis_docs.json" in names  # package data: COMMAND DOCS
    assert not [name for name in names if name.endswith(".so")]


def test_a_pure_build_in_place_removes_the_compiled_modules(tmp_path: Path) -> None:
    # ./dev's NETSVC_COMPILE=0 path: the tree itself is what runs afterwards
    tree = source_tree(tmp_path, *PACKAGE)
    stale = compiled_beside(tree / "protocols" / "resp" / "_parser.py", age=10)
    # and one of a module compiled once, no longer in HOT_MODULES
    once = compiled_beside(tree / "protocols" / "http" / "_websocket.py", age=-10)
    command = [sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"]
    env = {**os.environ, "NETSVC_COMPILE": "0"}
    built = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert not stale.exists()
    assert not once.exists()


def test_a_pure_build_in_place_run_from_elsewhere_cleans_its_own_tree_only(
    tmp_path: Path,
) -> None:
    tree = source_tree(tmp_path / "tree", *PACKAGE)
    stale = compiled_beside(tree / "protocols" / "resp" / "_parser.py", age=10)
    elsewhere = source_tree(tmp_path / "elsewhere", "protocols")  # the working directory's
    theirs = compiled_beside(elsewhere / "protocols" / "resp" / "_parser.py", age=10)
    command = [sys.executable, str(tree / "setup.py"), "--quiet", "build_ext", "--inplace"]
    env = {**os.environ, "NETSVC_COMPILE": "0"}
    subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert not stale.exists()
    assert theirs.exists()


def load_setup(tree: Path) -> Any:
    spec = importlib.util.spec_from_file_location("netsvc_setup", tree / "setup.py")
    assert spec is not None and spec.loader is not None
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)
    return setup


def test_a_compiled_build_in_place_removes_modules_compiled_once_no_longer(
    tmp_path: Path,
) -> None:
    # what build_ext --inplace does after compiling HOT_MODULES (keeping what
    # it built, by the paths build_ext gives): a module that left them (HTTP's
    # driver did for a while) would shadow its source, newer or not
    tree = source_tree(tmp_path, *PACKAGE)
    built = compiled_beside(tree / "protocols" / "resp" / "_parser.py", age=-10)
    once = compiled_beside(tree / "protocols" / "http" / "_websocket.py", age=-10)
    # another Python's build (it never imports ours, nor we its), and a folder
    # that is not a package (nothing there is imported as ours): left alone
    other_python = tree / "protocols" / "resp" / "_glob.cpython-399-x86_64-linux-gnu.so"
    other_python.write_bytes(b"")
    (tree / "protocols" / "vendored").mkdir()
    vendored = tree / "protocols" / "vendored" / f"fast{SUFFIX}"
    vendored.write_bytes(b"")
    load_setup(tree).remove_compiled(keep=frozenset({str(built)}))
    assert built.exists()
    assert not once.exists()
    assert other_python.exists()
    assert vendored.exists()


# -- compiled modules that would shadow their source -------------------------------------


def compiled_beside(source: Path, age: float) -> Path:
    """A stand-in compiled module beside `source`, `age` seconds older than it."""
    compiled = source.with_name(source.stem + SUFFIX)
    compiled.write_bytes(b"")
    mtime = source.stat().st_mtime - age
    os.utime(compiled, (mtime, mtime))
    return compiled


def test_a_compiled_module_older_than_its_source_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NETSVC_COMPILE", raising=False)
    resp = tmp_path / "protocols" / "resp"
    resp.mkdir(parents=True)
    for name in ("../__init__.py", "__init__.py", "_parser.py", "_reply.py"):
        (resp / name).write_text("")
    (tmp_path / "netsvc").mkdir()
    compiled_beside(resp / "_reply.py", age=-10)  # newer than its source: fine
    (resp / f"_reply__mypyc{SUFFIX}").write_bytes(b"")  # a group's library: no source
    assert compiled_module_problems(tmp_path) == []
    compiled_beside(resp / "_parser.py", age=10)
    assert compiled_module_problems(tmp_path) == [
        f"protocols/resp/_parser{SUFFIX} is older than protocols/resp/_parser.py"
    ]
    monkeypatch.setenv("NETSVC_COMPILE", "0")  # any compiled module is one then
    assert len(compiled_module_problems(tmp_path)) == 2


def test_the_test_session_refuses_a_stale_compiled_module(tmp_path: Path) -> None:
    """The real tests/conftest.py, in a tree of its own whose one compiled
    module is older than its source: pytest stops before running anything."""
    tree = source_tree(tmp_path, "pyproject.toml")
    tests = tree / "tests"
    tests.mkdir()
    for name in ("__init__.py", "conftest.py", "serveprocess.py"):
        shutil.copy(ROOT / "tests" / name, tests / name)
    (tests / "test_nothing.py").write_text("def test_nothing() -> None:\n    pass\n")
    source = tree / "protocols" / "resp" / "_parser.py"
    source.parent.mkdir(parents=True)
    for package in (source.parent, source.parent.parent):
        (package / "__init__.py").write_text("")
    source.write_text("")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"]
    env = {k: v for k, v in os.environ.items() if k != "NETSVC_COMPILE"}
    run = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr  # the check passes a tree without .so
    compiled_beside(source, age=10)
    run = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert f"protocols/resp/_parser{SUFFIX} is older than protocols/resp/_parser.py" in run.stderr
    assert "./dev test" in run.stderr
    assert "test_nothing" not in run.stdout


def test_mutation_testing_refuses_to_run_beside_compiled_modules(tmp_path: Path) -> None:
    tree = source_tree(tmp_path, "tools")
    (tree / "netsvc").mkdir()
    source = tree / "protocols" / "resp" / "_parser.py"
    source.parent.mkdir(parents=True)
    source.write_text("")
    compiled_beside(source, age=0)
    command = [sys.executable, "-m", "tools.mutation", "run"]
    run = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "refusing to run: 1 compiled module(s) in the tree" in run.stderr
    assert f"protocols/resp/_parser{SUFFIX}" in run.stderr
    assert not (tree / "mutants").exists()  # mutmut never started
