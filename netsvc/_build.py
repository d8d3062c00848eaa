# Which build runs: the compiled modules of a package (mypyc's extension
# modules, each beside the .py it was compiled from: setup.py) and, in a
# source checkout, those older than their source, which Python still imports
# instead of it (an editable install not rebuilt after an edit). For
# `netsvc --version`, `netsvc serve`'s warning and the test session's check.
# Imports only the standard library.
from __future__ import annotations

import importlib.machinery
import os
from pathlib import Path

__all__ = ["compiled_modules", "stale_compiled_modules"]

_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def compiled_modules(folder: Path) -> list[tuple[Path, Path]]:
    """The compiled modules of the package `folder` and its subpackages that
    shadow a .py source, each with that source. (mypyc's shared library,
    X__mypyc.*.so, has no source.) Folders that are not packages (a
    virtualenv, build/) are not entered."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if os.path.exists(os.path.join(root, d, "__init__.py")))
        for name in sorted(files):
            suffix = next((s for s in _SUFFIXES if name.endswith(s)), None)
            if suffix is None:
                continue
            source = Path(root, name.removesuffix(suffix) + ".py")
            if source.exists():
                found.append((Path(root, name), source))
    return found


def _in_source_checkout(folder: Path) -> bool:
    """True when `folder`'s package lies in a source tree (setup.py beside its
    top-level package), where an edit can leave a compiled module behind its
    source. An installed package's files all date from its installation, in
    whatever order pip wrote them, so their times say nothing there."""
    while (folder / "__init__.py").exists():
        folder = folder.parent
    return (folder / "setup.py").exists()


def stale_compiled_modules(folder: Path) -> list[Path]:
    """The sources under `folder` edited after they were compiled, in a source
    checkout: Python imports the compiled module, so the edit does not run."""
    if not _in_source_checkout(folder):
        return []
    return [
        source
        for compiled, source in compiled_modules(folder)
        if source.stat().st_mtime > compiled.stat().st_mtime
    ]
