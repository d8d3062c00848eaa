# Plugin settings: a plugin declares its settings as a dataclass whose fields
# are made with `setting(...)`. This module turns those fields into named,
# typed, documented settings, and parses values for them from strings (the
# CLI and the environment: NETSVC_<PROTOCOL>_<SETTING>).
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

__all__ = ["SettingError", "SettingInfo", "build_settings", "describe_settings", "setting"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_SUPPORTED = (str, int, float, bool)


class SettingError(ValueError):
    """A setting's value could not be used; the message names the setting."""


def setting(default: Any, *, help: str, secret: bool = False) -> Any:
    """Declare one field of a plugin's settings dataclass.

    `help` is shown by `netsvc serve --protocol X --help`; a `secret` value
    (a password) is never logged.
    """
    return dataclasses.field(default=default, metadata={"help": help, "secret": secret})


@dataclasses.dataclass(frozen=True)
class SettingInfo:
    """One setting of one protocol, as the CLI and environment see it."""

    protocol: str
    field: str  # the dataclass field name: max_body_size
    type: type  # str, int, float or bool
    optional: bool  # None is allowed (written as an empty string)
    default: Any
    help: str
    secret: bool

    @property
    def name(self) -> str:
        """The setting's name in kebab case: max-body-size."""
        return self.field.replace("_", "-")

    @property
    def option(self) -> str:
        """The CLI option: --http-max-body-size."""
        return f"--{_slug(self.protocol)}-{self.name}"

    @property
    def envvar(self) -> str:
        """The environment variable: NETSVC_HTTP_MAX_BODY_SIZE."""
        return f"NETSVC_{_slug(self.protocol).upper()}_{self.field.upper()}".replace("-", "_")

    def parse(self, text: str, *, source: str) -> Any:
        """Convert `text` to this setting's type; `source` names where it came from."""
        if self.optional and text.strip() == "":
            return None
        try:
            if self.type is bool:
                lowered = text.strip().lower()
                if lowered in _TRUE:
                    return True
                if lowered in _FALSE:
                    return False
                raise ValueError
            return self.type(text.strip() if self.type is not str else text)
        except ValueError:
            expected = {bool: "true or false", int: "an integer", float: "a number"}.get(
                self.type, "a string"
            )
            raise SettingError(f"{source}: expected {expected}, got {text!r}") from None


def _slug(protocol: str) -> str:
    return protocol.lower().replace("_", "-")


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def describe_settings(protocol: str, settings_class: type[Any] | None) -> list[SettingInfo]:
    """List the settings a plugin declares, checking that each has a usable type."""
    if settings_class is None:
        return []
    if not dataclasses.is_dataclass(settings_class):
        raise TypeError(f"{protocol}: settings class {settings_class!r} is not a dataclass")
    hints = typing.get_type_hints(settings_class)
    infos = []
    for field in dataclasses.fields(settings_class):
        kind, optional = _unwrap_optional(hints[field.name])
        if kind not in _SUPPORTED:
            raise TypeError(
                f"{protocol}: setting {field.name!r} has type {kind!r}; "
                "settings may be str, int, float or bool (optionally | None)"
            )
        if field.default is dataclasses.MISSING:
            raise TypeError(f"{protocol}: setting {field.name!r} needs a default")
        infos.append(
            SettingInfo(
                protocol=protocol,
                field=field.name,
                type=kind,
                optional=optional,
                default=field.default,
                help=field.metadata.get("help", ""),
                secret=field.metadata.get("secret", False),
            )
        )
    return infos


def build_settings(
    protocol: str,
    settings_class: type[Any] | None,
    overrides: Mapping[str, Any],
    environ: Mapping[str, str],
) -> Any:
    """Make a plugin's settings object.

    Precedence, highest first: `overrides` (already typed, keyed by field name:
    the CLI's options or a test's arguments), the environment, the defaults.
    """
    if settings_class is None:
        if overrides:
            raise SettingError(f"protocol {protocol!r} has no settings, got {sorted(overrides)}")
        return None
    infos = {info.field: info for info in describe_settings(protocol, settings_class)}
    unknown = sorted(set(overrides) - set(infos))
    if unknown:
        known = ", ".join(sorted(infos)) or "none"
        raise SettingError(f"protocol {protocol!r} has no setting {unknown[0]!r} (it has: {known})")
    values: dict[str, Any] = {}
    for name, info in infos.items():
        if name in overrides:
            values[name] = overrides[name]
        elif info.envvar in environ:
            values[name] = info.parse(environ[info.envvar], source=info.envvar)
    return settings_class(**values)
