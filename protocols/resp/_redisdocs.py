# Redis's own documentation of the built-in commands (COMMAND DOCS: summary,
# since, complexity, arguments, history), read once from redis_docs.json, which
# tools/command_docs.py writes from a real redis-server. Data, not docstrings:
# the compiled build drops docstrings, and Redis's words are what clients show.
# Imports nothing of the plugin: the reply types only.
from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from ._replytypes import OrderedSet, SetReply, Status

__all__ = ["redis_docs", "redis_version"]

# what tools/command_docs.py checked are sets (JSON has only arrays)
_STATUS_SETS = ("flags", "doc_flags")
_ARRAY_SETS = ("history",)


@functools.cache
def _load() -> tuple[str, dict[bytes, Any]]:
    text = resources.files(__package__).joinpath("redis_docs.json").read_text("utf-8")
    data = json.loads(text)
    return data["redis_version"], {
        name.encode(): _reply(entry) for name, entry in data["commands"].items()
    }


def _reply(value: Any, key: str = "") -> Any:
    """A JSON value as the reply Redis gives: strings as bulk strings (bytes),
    the values of the set keys as sets."""
    if key in _STATUS_SETS:
        return OrderedSet(Status(flag) for flag in value)
    if key in _ARRAY_SETS:
        return SetReply(_reply(item) for item in value)
    if isinstance(value, dict):
        return {k.encode(): _reply(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_reply(item) for item in value]
    if isinstance(value, str):
        return value.encode()
    return value


def redis_docs(name: bytes) -> dict[bytes, Any] | None:
    """COMMAND DOCS's reply for the built-in command `name` (lower case), as
    redis-server gives it, or None for a name Redis does not document."""
    docs: dict[bytes, Any] | None = _load()[1].get(name)
    return docs


def redis_version() -> str:
    """The redis-server whose docs these are."""
    return _load()[0]
