# INFO: the sections Redis prints, in Redis's format ("# Section" then
# key:value lines, CRLF-separated), from this server's live state.
from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._server import RedisServer

__all__ = ["render_info"]

DEFAULT_SECTIONS: Final = (
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "keyspace",
)
ALL_SECTIONS: Final = (*DEFAULT_SECTIONS, "commandstats", "errorstats")


def render_info(server: RedisServer, wanted: set[str], version: str) -> str:
    if wanted & {"all", "everything"}:
        names: tuple[str, ...] = ALL_SECTIONS
    elif "default" in wanted:
        names = DEFAULT_SECTIONS
    else:
        names = tuple(name for name in ALL_SECTIONS if name in wanted)
    blocks = []
    for name in names:
        fields = _SECTIONS[name](server, version)
        lines = [f"# {name.capitalize() if name != 'cpu' else 'CPU'}"]
        lines += [f"{key}:{value}" for key, value in fields.items()]
        blocks.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(blocks)


def _server(server: RedisServer, version: str) -> dict[str, Any]:
    uptime = time.monotonic() - server.started
    uname = os.uname()
    return {
        "redis_version": version,
        "redis_mode": "standalone",
        "os": f"{uname.sysname} {uname.release} {uname.machine}",
        "arch_bits": 64,
        "multiplexing_api": "trio",
        "process_id": os.getpid(),
        "run_id": server.run_id,
        "tcp_port": server.port,
        "server_time_usec": time.time_ns() // 1000,
        "uptime_in_seconds": int(uptime),
        "uptime_in_days": int(uptime // 86400),
        "hz": 10,
        "executable": "netsvc",
        "config_file": "",
    }


def _clients(server: RedisServer, version: str) -> dict[str, Any]:
    return {
        "connected_clients": len(server.clients),
        "maxclients": server.config.parameters[b"maxclients"].value.decode(),
        "blocked_clients": server.blocking.clients + len(server.pause.held),
        "pubsub_clients": sum(1 for c in server.clients.values() if c.subscribed),
    }


def _memory(server: RedisServer, version: str) -> dict[str, Any]:
    rss = _current_rss()
    scripting = server.scripting.memory_info()
    return {
        "used_memory": rss,
        "used_memory_human": _human(rss),
        "used_memory_rss": rss,
        "used_memory_lua": scripting["used_memory_vm_eval"],
        **scripting,
        "maxmemory": int(server.config.parameters[b"maxmemory"].value),
        "maxmemory_policy": server.config.parameters[b"maxmemory-policy"].value.decode(),
    }


def _current_rss() -> int:
    """This process's resident memory now (the peak where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return pages * os.sysconf("SC_PAGE_SIZE")


def _persistence(server: RedisServer, version: str) -> dict[str, Any]:
    return {"loading": 0, "rdb_changes_since_last_save": 0, "aof_enabled": 0}


def _stats(server: RedisServer, version: str) -> dict[str, Any]:
    counters = server.runtime.counters
    return {
        "total_connections_received": counters.connections_total,
        "total_commands_processed": sum(server.command_calls.values()),
        "rejected_connections": counters.connections_refused,
        "expired_keys": server.keyspace.expired,
        "keyspace_hits": server.stats.get("keyspace_hits", 0),
        "keyspace_misses": server.stats.get("keyspace_misses", 0),
        "pubsub_channels": len(server.pubsub.channels),
        "pubsub_patterns": len(server.pubsub.patterns),
        "total_error_replies": server.stats.get("error_replies", 0),
        "acl_access_denied_auth": server.stats.get("acl_access_denied_auth", 0),
        "acl_access_denied_cmd": server.stats.get("acl_access_denied_cmd", 0),
        "acl_access_denied_key": server.stats.get("acl_access_denied_key", 0),
        "acl_access_denied_channel": server.stats.get("acl_access_denied_channel", 0),
    }


def _replication(server: RedisServer, version: str) -> dict[str, Any]:
    return {"role": "master", "connected_slaves": 0}


def _cpu(server: RedisServer, version: str) -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"used_cpu_sys": f"{usage.ru_stime:.6f}", "used_cpu_user": f"{usage.ru_utime:.6f}"}


def _commandstats(server: RedisServer, version: str) -> dict[str, Any]:
    return {
        f"cmdstat_{name}": f"calls={calls},usec=0,usec_per_call=0.00,rejected_calls=0,"
        "failed_calls=0"
        for name, calls in sorted(server.command_calls.items())
    }


def _errorstats(server: RedisServer, version: str) -> dict[str, Any]:
    return {
        f"errorstat_{code}": f"count={count}" for code, count in sorted(server.error_codes.items())
    }


def _keyspace(server: RedisServer, version: str) -> dict[str, Any]:
    return {
        f"db{db.index}": f"keys={len(db)},expires={len(db.expires)},avg_ttl=0"
        for db in server.keyspace.databases
        if len(db)
    }


def _human(size: float) -> str:
    for unit in ("B", "K", "M", "G"):
        if size < 1024:
            return f"{size:.2f}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1024
    return f"{size:.2f}T"


_SECTIONS: Final = {
    "server": _server,
    "clients": _clients,
    "memory": _memory,
    "persistence": _persistence,
    "stats": _stats,
    "replication": _replication,
    "cpu": _cpu,
    "commandstats": _commandstats,
    "errorstats": _errorstats,
    "keyspace": _keyspace,
}
