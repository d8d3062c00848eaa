# The process's open file limit: each connection is a descriptor, and shells
# and systemd start services with a soft limit of 1024, so `netsvc serve`
# raises it to the hard limit (as Redis does), says how many connections that
# leaves room for, and warns when the listeners' limits add up to more.
from __future__ import annotations

import logging
import resource
from typing import TYPE_CHECKING

from ._address import socket_count

if TYPE_CHECKING:
    from ._server import Listen

__all__ = ["RESERVED_FDS", "UNLIMITED_FDS_CAP", "adjust_open_file_limit", "open_file_target"]

log = logging.getLogger("netsvc")

RESERVED_FDS = 32  # descriptors kept for listeners, logs, the app's files (Redis keeps 32 too)
UNLIMITED_FDS_CAP = 1 << 20  # soft limit asked for when the hard one is unlimited (Linux's nr_open)


def open_file_target(soft: int, hard: int) -> int:
    """The soft RLIMIT_NOFILE to ask for: the hard limit, or UNLIMITED_FDS_CAP
    when that is unlimited; never lower than `soft`."""
    if soft == resource.RLIM_INFINITY:
        return soft
    if hard == resource.RLIM_INFINITY:
        return max(soft, UNLIMITED_FDS_CAP)
    return max(soft, hard)


def adjust_open_file_limit(listens: list[Listen], workers: int) -> None:
    """Raise the soft open file limit as far as allowed (each connection is a
    descriptor; systemd and shells start services at 1024), say how many
    connections it makes room for, and warn if --max-connections allows more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        log.info("open file limit: unlimited")
        return
    before, wanted = soft, open_file_target(soft, hard)
    target, error = wanted, None
    while target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # an OS may cap it below the hard limit (macOS)
            error = exc
            target = max(target // 2, soft)
    room = max(soft - RESERVED_FDS, 0)
    hard_text = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    room_text = (
        f"room for {room} connections ({RESERVED_FDS} descriptors kept for listeners, "
        "logs and the app's own files)"
    )
    if error is not None:
        now = f"raised to {soft}" if soft > before else f"it stays {soft}"
        log.warning(
            "cannot raise the open file limit from %d to %d (%s): %s, %s",
            before,
            wanted,
            error,
            now,
            room_text,
        )
    elif soft > before:
        log.info(
            "open file limit raised from %d to %d (hard limit %s): %s",
            before,
            soft,
            hard_text,
            room_text,
        )
    else:
        log.info("open file limit %d (hard limit %s): %s", soft, hard_text, room_text)
    # each socket a --listen binds has its own limit ("localhost": IPv4 and IPv6)
    limits = [(listen.limits or listen.protocol.limits).max_connections for listen in listens]
    sockets = [socket_count(listen.address) for listen in listens]
    per_listener = [limit * count for limit, count in zip(limits, sockets, strict=True)]
    if sum(per_listener) > room:
        whose = "the listeners" if workers == 1 else f"each of the {workers} workers' listeners"
        log.warning(
            "%s may hold %d connections together (--max-connections: %s), more than the %d "
            "that the open file limit of %d leaves room for, so accepts would fail with "
            "EMFILE first: raise `ulimit -n` (hard limit %s; LimitNOFILE= under systemd) or "
            "lower --max-connections",
            whose,
            sum(per_listener),
            " + ".join(
                f"{limit}{f' x {count} sockets' if count > 1 else ''} ({listen.protocol.name})"
                for limit, count, listen in zip(limits, sockets, listens, strict=True)
            ),
            room,
            soft,
            hard_text,
        )
