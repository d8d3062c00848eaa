# Finding protocol plugins and applications: by name through the entry-point
# group `netsvc.protocols`, by URL scheme, or by an import path
# `package.module:attribute`. An installed plugin that fails to load is set
# aside with its reason; it never hides the plugins that work.
from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from ._plugin import Protocol

__all__ = [
    "ENTRY_POINT_GROUP",
    "BrokenPlugin",
    "InstalledPlugins",
    "LoadError",
    "import_object",
    "installed_protocols",
    "load_protocol",
    "plugin_folders",
    "protocol_for_scheme",
    "scan_protocols",
]

ENTRY_POINT_GROUP = "netsvc.protocols"
REPR_LIMIT = 80  # characters of a wrong object's repr shown in a reason

log = logging.getLogger("netsvc.registry")


class LoadError(Exception):
    """A plugin or application could not be found or loaded; says why."""


class _NotAProtocol(Exception):
    """The reason an object is not a usable netsvc.Protocol (one line)."""


@dataclasses.dataclass(frozen=True)
class BrokenPlugin:
    """An installed entry point that did not give a usable protocol."""

    name: str
    """The entry point's name (what `--protocol NAME` would be)."""
    value: str
    """Where it points: `package.module:attribute`."""
    reason: str
    """Why it is unusable, on one line."""

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


@dataclasses.dataclass(frozen=True)
class InstalledPlugins:
    """Every entry point of the group, loaded: the working protocols and the
    broken ones, each sorted by entry-point name."""

    protocols: tuple[Protocol[Any, Any], ...]
    broken: tuple[BrokenPlugin, ...]

    def schemes(self) -> list[str]:
        return [s for p in self.protocols for s in (*p.schemes, *p.tls_schemes)]

    def for_scheme(self, scheme: str) -> tuple[Protocol[Any, Any], bool]:
        """The plugin serving URL scheme `scheme`, and whether the scheme means
        TLS. If none does, the error names the plugins that failed to load, as
        one of them may be the one meant."""
        scheme = scheme.lower()
        for protocol in self.protocols:
            if scheme in protocol.schemes:
                return protocol, False
            if scheme in protocol.tls_schemes:
                return protocol, True
        known = ", ".join(self.schemes()) or "none"
        message = f"no installed protocol serves URL scheme {scheme!r} (known schemes: {known})"
        if self.broken:
            message += "; these plugins failed to load: " + ", ".join(map(str, self.broken))
        raise LoadError(message)


def import_object(path: str) -> object:
    """Import `package.module:attribute` (the attribute may be dotted)."""
    module_name, colon, attribute = path.partition(":")
    if not colon or not module_name or not attribute:
        raise LoadError(f"{path!r} is not an import path of the form package.module:attribute")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules in the working directory load
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise LoadError(f"cannot import module {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise LoadError(f"module {module_name!r} has no attribute {attribute!r}") from None
    return target


def _one_line(text: str, limit: int | None = None) -> str:
    line = " ".join(text.split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 3] + "..."
    return line


def _describe(exc: BaseException) -> str:
    """`Type: first line of the message (at file:line)`, the place being the
    innermost frame outside the import machinery, when there is one."""
    lines = str(exc).strip().splitlines()
    text = type(exc).__name__ + (f": {_one_line(lines[0])}" if lines else "")
    machinery = os.path.dirname(importlib.__file__)
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename != __file__ and not frame.filename.startswith(("<frozen ", machinery))
    ]
    if frames and not isinstance(exc, SyntaxError):  # a SyntaxError says where itself
        text += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    return text


def _to_protocol(obj: object) -> Protocol[Any, Any]:
    """`obj` as a Protocol instance, or _NotAProtocol saying why it is not one."""
    if isinstance(obj, type) and issubclass(obj, Protocol):
        cls = obj
        try:
            obj = cls()
        except Exception as exc:
            raise _NotAProtocol(f"{cls.__name__}() failed: {_describe(exc)}") from exc
    if not isinstance(obj, Protocol):
        shown = _one_line(repr(obj), REPR_LIMIT)
        raise _NotAProtocol(f"{shown} is not a netsvc.Protocol instance or subclass")
    for attribute in ("name", "schemes", "default_port", "description"):
        if not hasattr(obj, attribute):
            raise _NotAProtocol(f"protocol class {type(obj).__name__} does not set {attribute!r}")
    return obj


def _as_protocol(obj: object, origin: str) -> Protocol[Any, Any]:
    try:
        return _to_protocol(obj)
    except _NotAProtocol as exc:
        raise LoadError(f"{origin}: {exc}") from exc.__cause__


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)


def _try_entry_point(entry: importlib.metadata.EntryPoint) -> Protocol[Any, Any] | BrokenPlugin:
    try:
        obj = entry.load()
    except Exception as exc:
        return BrokenPlugin(entry.name, entry.value, f"failed to load: {_describe(exc)}")
    try:
        return _to_protocol(obj)
    except _NotAProtocol as exc:
        return BrokenPlugin(entry.name, entry.value, str(exc))


def _load_entry_point(entry: importlib.metadata.EntryPoint) -> Protocol[Any, Any]:
    loaded = _try_entry_point(entry)
    if isinstance(loaded, BrokenPlugin):
        raise LoadError(f"entry point {entry.name!r} ({entry.value}): {loaded.reason}")
    return loaded


def scan_protocols() -> InstalledPlugins:
    """Load every plugin registered under the entry-point group; one that
    fails goes into `broken` with its reason instead of stopping the scan."""
    protocols: list[Protocol[Any, Any]] = []
    broken: list[BrokenPlugin] = []
    for entry in _entry_points():
        loaded = _try_entry_point(entry)
        if isinstance(loaded, BrokenPlugin):
            broken.append(loaded)
        else:
            protocols.append(loaded)
    return InstalledPlugins(tuple(protocols), tuple(broken))


def plugin_folders() -> dict[str, Path]:
    """Each installed plugin's name and the folder of the module its entry
    point names, found without loading the plugin (only its top-level package
    is imported): where `netsvc --version` looks for compiled modules."""
    folders = {}
    for entry in _entry_points():
        try:
            top, *rest = entry.module.split(".")
            spec = importlib.util.find_spec(top)
        # a malformed value: no module (Python 3.13's EntryPoint.module asserts its form)
        except (ImportError, ValueError, AttributeError, AssertionError):
            continue
        if spec is None or not spec.submodule_search_locations:
            continue  # a plugin that is a single module: nothing compiled beside it
        folder = Path(spec.submodule_search_locations[0]).joinpath(*rest)
        folders[entry.name] = folder if folder.is_dir() else folder.parent
    return folders


def installed_protocols() -> list[Protocol[Any, Any]]:
    """The working plugins registered under the entry-point group, sorted by
    name; each broken one is logged as a warning and left out (see
    scan_protocols for them)."""
    installed = scan_protocols()
    for plugin in installed.broken:
        log.warning(
            "protocol plugin %s (%s) is skipped: %s", plugin.name, plugin.value, plugin.reason
        )
    return list(installed.protocols)


def load_protocol(name_or_path: str) -> Protocol[Any, Any]:
    """A plugin by entry-point name (`resp`) or import path (`pkg.mod:attr`)."""
    if ":" in name_or_path:
        return _as_protocol(import_object(name_or_path), repr(name_or_path))
    entries = _entry_points()
    for entry in entries:
        if entry.name == name_or_path:
            return _load_entry_point(entry)
    names = ", ".join(entry.name for entry in entries) or "none installed"
    raise LoadError(
        f"no protocol named {name_or_path!r} (installed: {names}); "
        "give an installed name or an import path package.module:attribute"
    )


def protocol_for_scheme(scheme: str) -> tuple[Protocol[Any, Any], bool]:
    """The plugin serving URL scheme `scheme`, and whether the scheme means TLS;
    a plugin that fails to load is passed over (and named if none serves it)."""
    return scan_protocols().for_scheme(scheme)
