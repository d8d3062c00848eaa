# The compiled hot paths (issue 12): pyproject.toml holds the metadata, this
# adds the C extensions mypyc builds from the same typed source. The modules
# in HOT_MODULES are compiled when mypyc and a C compiler are available;
# otherwise (or with NETSVC_COMPILE=0) the install warns and stays pure
# Python, which behaves the same (the build_ext fallback of msgpack and
# markupsafe). A compiled module is a .so beside its .py and shadows it: an
# editable install (./dev) must rebuild after a source change, which `./dev
# test` does and the test session checks (tests/conftest.py).
from __future__ import annotations

import contextlib
import importlib.machinery
import io
import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The RESP request path, parser to reply, compiled as a whole: compiling only
# a part (the parser alone, or parser, replies and dispatch) measured no clear
# gain, because each call across the compiled/Python boundary costs what the
# compiled side saves. The core's per-read path (a connection's reads, sends
# and deadlines, served inline from the parking) is compiled with it: with
# serve_inline() it was a third of a RESP GET's instructions (callgrind, GET
# -P 1, per request: 51,200 with the core in Python; 31,500 compiled, with
# the inline path trimmed); the rest of netsvc/ runs per connection or less.
# HTTP's per-request path (the driver, the httptools adapter, the parser
# seam, the strict checks, the dispatch) is compiled too: wrk -c50 on the
# native hello world with httptools served 38,500 requests/s instead of
# 21,000 (server CPU per request 26 us instead of 47; 0.72x uvicorn[standard]
# instead of 0.40x, measured in one run on the machine of 2026-11-28). On an
# earlier machine the same compiled path ran 30% fewer instructions but
# served no more requests (10,300/s either way): measure again on new
# hardware. Mutation testing runs the core's source (tools/mutation.py
# refuses a tree with compiled modules). Not compiled: the HTTP app,
# messages and WebSocket modules (classes users construct, subclass or
# extend: compiled classes forbid that), ASGI (its exception subclasses
# OSError, which mypyc cannot compile), the scripting modules (_scripting,
# _lua_libs, _functions, commands/scripting: Lua callbacks, cold), _plugin
# (settings dataclasses are read with get_type_hints, which compiled
# classes do not support) and _replytypes (subclasses of builtins, which
# mypyc cannot compile).
HOT_MODULES = [
    # the core: what runs per read and per send
    "netsvc/_connection.py",  # receive/send/deadlines, and the inline path (_inline_ready)
    "netsvc/_parking.py",  # the loop that serves inline reads
    "netsvc/_socketstream.py",  # the socket's recv/send
    "protocols/resp/_parser.py",  # the request parser: every byte a client sends
    "protocols/resp/_reply.py",  # reply encoding: every reply
    "protocols/resp/_dispatch.py",  # command lookup, arity, ACL and state checks per command
    "protocols/resp/_app.py",  # the command table dispatch reads per command
    "protocols/resp/_args.py",  # argument parsing every handler calls
    "protocols/resp/_acl.py",  # the permission check of every command
    "protocols/resp/_client.py",  # the per-connection state every command reads
    "protocols/resp/_driver.py",  # the connection loop: read, parse, dispatch, write
    "protocols/resp/_server.py",  # the shared server state every command reads
    "protocols/resp/_keyspace.py",  # databases, key lookup and expiry per key access
    "protocols/resp/_pause.py",  # CLIENT PAUSE, checked per command
    "protocols/resp/_blocking.py",  # blocking commands' wake-ups (per write to a watched key)
    "protocols/resp/_pubsub.py",  # PUBLISH fan-out
    "protocols/resp/_glob.py",  # glob matching: KEYS, SCAN MATCH, PSUBSCRIBE per message
    "protocols/resp/_stream.py",  # stream values (XADD, XRANGE)
    "protocols/resp/_zset.py",  # sorted set values (ZADD, ZRANGE)
    "protocols/resp/_config.py",  # CONFIG values dispatch reads (maxmemory, limits)
    "protocols/resp/_info.py",  # INFO's counters, updated per command
    # the command handlers
    "protocols/resp/commands/__init__.py",
    "protocols/resp/commands/acl.py",
    "protocols/resp/commands/connection.py",
    "protocols/resp/commands/hashes.py",
    "protocols/resp/commands/keys.py",
    "protocols/resp/commands/lists.py",
    "protocols/resp/commands/pubsub.py",
    "protocols/resp/commands/server.py",
    "protocols/resp/commands/sets.py",
    "protocols/resp/commands/streams.py",
    "protocols/resp/commands/strings.py",
    "protocols/resp/commands/transactions.py",
    "protocols/resp/commands/zsets.py",
    # XMPP's stream framing: expat's callbacks, per element of every stanza
    "protocols/xmpp/_xml.py",
    # HTTP's per-request path
    "protocols/http/_driver.py",  # the connection loop: request heads in, responses out
    "protocols/http/_httptools.py",  # the httptools adapter: every request head
    "protocols/http/_parse.py",  # the parser seam, and h11's wrapper
    "protocols/http/_strict.py",  # the head's checks, a chunked body's framing
    "protocols/http/_service.py",  # dispatch to the app, per request
]

OPT_LEVEL = "3"  # mypyc's default; 2 took the same compile time here

WARNING = """
**********************************************************************
WARNING: netsvc's hot paths could not be compiled ({reason}).
netsvc is installed as pure Python: it works the same, only slower.
{advice}
**********************************************************************
"""
COMPILER_ADVICE = """To compile them, install a C compiler and Python's headers (Debian:
apt-get install gcc libc6-dev python3-dev) and reinstall."""
MYPYC_ADVICE = """To compile them, install mypy (it brings mypyc: pip install mypy) and
reinstall; pip's isolated build installs it by itself."""
SOURCE_ADVICE = """mypyc refused the source: that is a bug in netsvc, please report it
with the error above."""


class BuildFailed(Exception):
    pass


class OptionalBuildExt(build_ext):
    """build_ext that turns a missing or failing C compiler into BuildFailed,
    so that setup() can be run again without the extensions."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:  # mypyc's groups compile in parallel (build_ext -j)
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        try:
            super().run()
        except BuildFailed:
            raise
        except Exception as exc:  # distutils' PlatformError, a missing compiler
            raise BuildFailed(f"{type(exc).__name__}: {exc}") from exc
        if self.inplace or self.editable_mode:
            # build_ext skips an extension whose C did not change, leaving its
            # .so older than a source that was saved without a change that
            # matters: mark them all as built from the sources as they are now,
            # for the check of tests/conftest.py
            built = set()
            for ext in self.extensions:
                compiled = self.get_ext_fullpath(ext.name)
                built.add(compiled)
                if os.path.exists(compiled):
                    os.utime(compiled)
            remove_compiled(keep=frozenset(built))  # modules compiled once, no longer

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # CCompilerError, CompileError, LinkError, ExecError
            raise BuildFailed(f"{type(exc).__name__}: {exc}") from exc


def compiled_extensions() -> tuple[list[Any], str | None, str]:
    """mypyc's extensions for HOT_MODULES, or none, why not and what to do."""
    if os.environ.get("NETSVC_COMPILE", "1") == "0":
        return [], None, ""  # pure Python on purpose: no warning
    if sys.implementation.name != "cpython":
        return [], f"mypyc needs CPython, not {sys.implementation.name}", ""
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        return [], f"mypyc is not installed: {exc}", MYPYC_ADVICE
    output = io.StringIO()
    try:
        # one group (one shared library) per module: groups compile in
        # parallel (build_ext -j) and a source change rebuilds its group
        with contextlib.redirect_stdout(output):
            extensions = mypycify(HOT_MODULES, opt_level=OPT_LEVEL, separate=True)
    except (Exception, SystemExit) as exc:  # mypy's errors exit through SystemExit
        # mypy prints its errors: the first one is the reason, not SystemExit(1)
        errors = [line for line in output.getvalue().splitlines() if ": error:" in line]
        return [], f"mypyc failed: {errors[0] if errors else repr(exc)}", SOURCE_ADVICE
    return extensions, None, ""


HERE = os.path.dirname(os.path.realpath(__file__))  # the source tree, wherever we run from
PACKAGES = ("netsvc", "protocols")  # where compiled modules are built in place


def is_compiled_module(name: str) -> bool:
    """A file name of an extension module this Python imports: `_glob.cpython-
    311-x86_64-linux-gnu.so`, not another Python's (`....cpython-312-....so`
    ends in `.so` too, but this one never imports it: it shadows nothing)."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if name.endswith(suffix) and "." not in name[: -len(suffix)]:
            return True
    return False


def remove_compiled(keep: frozenset[str] = frozenset()) -> None:
    """Delete an earlier build's compiled modules (each a .so beside its
    source, its code in the .so of its group, X__mypyc) from the source
    tree's packages, but those in `keep`: after a pure build, every one would
    shadow its source; after a compiled one, a module no longer in
    HOT_MODULES would (protocols/http/_driver left them for a while).
    Folders that are not packages are left alone, as netsvc/_build.py does."""
    kept = {os.path.realpath(path) for path in keep}
    for package in PACKAGES:
        for folder, folders, files in os.walk(os.path.join(HERE, package)):
            folders[:] = [
                f for f in folders if os.path.exists(os.path.join(folder, f, "__init__.py"))
            ]
            for name in files:
                path = os.path.join(folder, name)
                if is_compiled_module(name) and os.path.realpath(path) not in kept:
                    os.remove(path)


def installs_into_the_tree() -> bool:
    """True for a build that installs the source tree itself (pip install -e,
    ./dev, build_ext --inplace): only then would an earlier build's compiled
    modules in the tree shadow the pure Python it installs. A wheel built from
    a checkout leaves the checkout's compiled modules alone."""
    args = sys.argv[1:]
    return bool({"editable_wheel", "develop", "--inplace", "-i"} & set(args))


def pure_setup() -> None:
    if installs_into_the_tree():
        remove_compiled()
    setup()


def main() -> None:
    extensions, reason, advice = compiled_extensions()
    if not extensions:
        if reason is not None:
            print(WARNING.format(reason=reason, advice=advice), file=sys.stderr)
        pure_setup()
        return
    try:
        setup(ext_modules=extensions, cmdclass={"build_ext": OptionalBuildExt})
    except BuildFailed as exc:
        print(WARNING.format(reason=exc, advice=COMPILER_ADVICE), file=sys.stderr)
        pure_setup()


if __name__ == "__main__":
    main()
