# CLIENT PAUSE, as Redis 7.2 does it: for a while, every client's commands
# (ALL) or those that may write (WRITE) are held, not refused: the caller's
# own too. Dispatch decides what a pause holds (_dispatch.py) and parks the
# client in this line; when the pause ends (CLIENT UNPAUSE, or its time is
# up) the held commands run one by one in the order they arrived, each
# handing the turn on once it has run or started to block, and commands that
# arrive meanwhile join the end of the line: as Redis runs all its postponed
# clients, in order, before it reads anything new. One client at a time has
# the turn: only it hands the turn on, however the pause ends meanwhile (a
# command that started under a WRITE pause and waits on a thread, FUNCTION
# DUMP, can outlive a pause that CLIENT PAUSE renewed). A held client that
# disconnects or is killed leaves the line.
from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import trio

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["ALL", "WRITE", "Pause"]

WRITE: Final = "write"
ALL: Final = "all"


@dataclasses.dataclass(eq=False)
class _Held:
    client: Client
    # whether the pause now in force still holds its command
    still_held: Callable[[], bool]
    turn: trio.Event = dataclasses.field(default_factory=trio.Event)


class Pause:
    def __init__(self) -> None:
        self.mode: str | None = None  # WRITE or ALL while a pause is in force
        self.until = -math.inf  # when it ends, on trio's clock
        self.held: collections.deque[_Held] = collections.deque()
        self.turn: Client | None = None  # whose held command runs now, after a pause
        self.active = False  # a pause is in force, or the line is being worked off

    def pause(self, seconds: float, mode: str) -> None:
        """CLIENT PAUSE: hold `mode`'s commands for `seconds` from now. As in
        Redis 7.2, a new pause sets the mode and can only extend the end."""
        self.mode = mode
        self.until = max(self.until, trio.current_time() + seconds)
        self.active = True

    def paused(self) -> str | None:
        """The mode of the pause in force, if any (one whose time is up ends
        here, and the held commands start to run)."""
        if self.mode is not None and self._over():
            self._start_line()
        return self.mode

    def waits_for_line(self, client: Client) -> bool:
        """With no pause in force: whether a command of `client` must join
        the line, which other held commands are still working off."""
        return self.turn is not None and self.turn is not client

    def unpause(self) -> None:
        """CLIENT UNPAUSE: held commands run, in order."""
        self.mode = None
        self.until = -math.inf
        self._start_line()

    def _start_line(self) -> None:
        """The pause ended: the first in line runs, unless a client has the
        turn (from before the pause, or one it did not hold): it hands the
        turn on when it is done, as ever. Two turns at once would reorder."""
        if self.turn is None:
            self.release_next()

    def release_next(self) -> None:
        """Give the turn to the first held client whose command the pause in
        force (if any) no longer holds; the client that had the turn calls
        this once its command has run, or has started to block (and the
        pause's end, when nobody has it)."""
        if self.mode is not None:
            self._over()
        self.turn = None
        for held in self.held:
            if self.mode is None or not held.still_held():
                self.held.remove(held)
                self.turn = held.client
                held.turn.set()
                break
        self.active = self.mode is not None or self.turn is not None

    def _over(self) -> bool:
        """End the pause if its time is up; whether it ended."""
        if trio.current_time() < self.until:
            return False
        self.mode = None
        self.until = -math.inf
        return True

    async def hold(self, client: Client, still_held: Callable[[], bool]) -> bool:
        """Wait in line until the pause no longer holds this client's command
        and its turn comes: True then (the caller runs the command, then
        calls release_next()), False if the client went away meanwhile."""
        held = _Held(client, still_held)
        self.held.append(held)
        client.starts_waiting()
        try:
            while not held.turn.is_set():
                deadline = self.until if self.mode is not None else math.inf
                with trio.move_on_at(deadline) as timer:
                    if client.link is not None:
                        await client.link.wait_blocked(held.turn)
                    else:
                        await held.turn.wait()
                if held.turn.is_set():
                    break
                if not timer.cancelled_caught:  # the client left, was killed, or we shut down
                    return False
                self.paused()  # the pause's time is up: it ends, the first in line runs
        except BaseException:
            if held.turn.is_set():  # it had the turn but will not take it
                self.release_next()
            raise
        finally:
            client.blocked = False
            if held in self.held:
                self.held.remove(held)
        return True
