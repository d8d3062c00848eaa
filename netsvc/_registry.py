# Finding protocol plugins and applications: by name through the entry-point
# group `netsvc.protocols`, by URL scheme, or by an import path
# `package.module:attribute`.
from __future__ import annotations

import importlib
import importlib.metadata
import sys
from typing import Any

from ._plugin import Protocol

__all__ = [
    "ENTRY_POINT_GROUP",
    "LoadError",
    "import_object",
    "installed_protocols",
    "load_protocol",
    "protocol_for_scheme",
]

ENTRY_POINT_GROUP = "netsvc.protocols"


class LoadError(Exception):
    """A plugin or application could not be found or loaded; says why."""


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


def _as_protocol(obj: object, origin: str) -> Protocol[Any, Any]:
    if isinstance(obj, type) and issubclass(obj, Protocol):
        obj = obj()
    if not isinstance(obj, Protocol):
        raise LoadError(f"{origin} is {obj!r}, not a netsvc.Protocol (or a subclass of it)")
    for attribute in ("name", "schemes", "default_port", "description"):
        if not hasattr(obj, attribute):
            raise LoadError(
                f"{origin}: protocol class {type(obj).__name__} does not set {attribute!r}"
            )
    return obj


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)


def installed_protocols() -> list[Protocol[Any, Any]]:
    """Every plugin registered under the entry-point group, sorted by name."""
    return [_load_entry_point(entry) for entry in _entry_points()]


def _load_entry_point(entry: importlib.metadata.EntryPoint) -> Protocol[Any, Any]:
    origin = f"entry point {entry.name!r} ({entry.value})"
    try:
        obj = entry.load()
    except Exception as exc:
        raise LoadError(f"{origin} failed to load: {exc}") from exc
    return _as_protocol(obj, origin)


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
    """The plugin serving URL scheme `scheme`, and whether the scheme means TLS."""
    scheme = scheme.lower()
    protocols = installed_protocols()
    for protocol in protocols:
        if scheme in protocol.schemes:
            return protocol, False
        if scheme in protocol.tls_schemes:
            return protocol, True
    known = ", ".join(s for p in protocols for s in (*p.schemes, *p.tls_schemes)) or "none"
    raise LoadError(f"no installed protocol serves URL scheme {scheme!r} (known schemes: {known})")
