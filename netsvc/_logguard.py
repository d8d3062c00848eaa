# The server-log guard's machinery, free of pytest: the errors a server logs,
# caught in process (a handler on the "netsvc" loggers) and scanned from a
# server subprocess's stderr (text or JSON lines, tracebacks), matched against
# the errors a test declares. netsvc.testing wires it into pytest.
from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "ExpectedError",
    "ProcessLog",
    "ServerError",
    "ServerLogGuard",
    "guard_process_output",
    "scan_log_lines",
    "take_process_logs",
]

# The server-log guard. A test whose servers log an error must say it expects
# one; everything else the servers log at ERROR (or with a traceback) fails it.

ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})
TRACEBACK = "Traceback (most recent call last)"
SHOWN_ERRORS = 10  # a failure report lists this many undeclared errors in full
# A line of netsvc's text log format (netsvc._logging.TextFormatter).
_TEXT_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>\S+): (?P<message>.*)$"
)


@dataclasses.dataclass(frozen=True)
class ServerError:
    """An error a server logged: a record at ERROR or above, or one with a
    traceback, or a traceback printed outside any record (`level` is then
    "TRACEBACK" and `message` the traceback's last line). `source` names the
    server: "in-process", or a subprocess's `ProcessLog` name."""

    source: str
    level: str
    logger: str
    message: str
    exc_text: str = ""

    @property
    def text(self) -> str:
        """What `server_errors` patterns are searched in: the message, and on
        the lines after it the exception's traceback, if any."""
        return f"{self.message}\n{self.exc_text}" if self.exc_text else self.message

    def describe(self) -> str:
        """The error as a report shows it: a head line, the traceback indented."""
        name = f" {self.logger}" if self.logger else ""
        lines = [f"[{self.source}] {self.level}{name}: {self.message}"]
        lines += [f"    {line}" for line in self.exc_text.splitlines()]
        return "\n".join(lines)


def scan_log_lines(lines: Iterable[str], source: str) -> list[ServerError]:
    """The errors in a server's stderr written in netsvc's text or JSON log
    format: records at ERROR or CRITICAL (with the traceback lines that follow
    a text one), JSON records of any level with a traceback, and tracebacks
    printed outside an error record (`traceback.print_exc()`, a crash)."""
    found: list[ServerError] = []
    head: tuple[str, str, str] | None = None  # level, logger, message of a text record
    tail: list[str] = []  # the lines after it that are not records

    def flush() -> None:
        # An error record's own traceback starts on the line after it; one that
        # starts later, or after a record below ERROR, was printed on its own
        # (the text format cannot tell a WARNING's traceback from a crash's).
        start = next((i for i, line in enumerate(tail) if TRACEBACK in line), None)
        if head is not None and head[0] in ERROR_LEVELS:
            found.append(ServerError(source, *head, "\n".join(tail if not start else tail[:start])))
            if not start:
                return
        elif start is None:
            return
        block = tail[start:]
        found.append(ServerError(source, "TRACEBACK", "", _last_line(block), "\n".join(block)))

    for line in lines:
        record = _json_record(line)
        match = None if record is not None else _TEXT_RECORD.match(line)
        if record is None and match is None:
            tail.append(line)
            continue
        flush()
        tail = []
        if match is not None:
            head = (match["level"], match["logger"], match["message"])
            continue
        assert record is not None
        head = None
        level = str(record.get("level", "")).upper()
        exc = str(record.get("exc") or "")
        if level in ERROR_LEVELS or exc:
            logger, message = str(record.get("logger", "")), str(record.get("message", ""))
            found.append(ServerError(source, level, logger, message, exc))
    flush()
    return found


def _last_line(traceback: list[str]) -> str:
    """The exception line of a printed traceback (an exception group's too)."""
    for line in reversed(traceback):
        text = line.strip().lstrip("|+ ")
        if text.strip("-"):
            return text
    return TRACEBACK


def _json_record(line: str) -> dict[str, Any] | None:
    """A line of netsvc's JSON log format, parsed; None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if isinstance(record, dict) and "level" in record and "message" in record:
        return record
    return None


_process_logs: list[ProcessLog] = []
_process_logs_lock = threading.Lock()


class ProcessLog:
    """The stderr of a server subprocess, watched by the log guard.

    Make one when the process starts, `add` each line as it is read (from any
    thread) and `close` it when the output ends. At the end of each test the
    guard (`netsvc_log_guard`) scans the lines added since the previous test
    ended: a process that outlives a test (a module-scoped fixture's) has its
    lines checked in the test during which they were read, and its last lines
    (written as it stops) in the test whose teardown stops it. A closed log is
    forgotten once checked. In a test without the guard the lines are dropped.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lines: list[str] = []
        self._closed = False
        self._lock = threading.Lock()
        with _process_logs_lock:
            _process_logs.append(self)

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line.rstrip("\r\n"))

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def take(self) -> tuple[list[str], bool]:
        """The lines added since the last call, and whether the log is closed."""
        with self._lock:
            lines, self._lines = self._lines, []
            return lines, self._closed


def take_process_logs() -> list[tuple[str, list[str]]]:
    """(name, new lines) of every process log; forgets the closed ones."""
    taken = []
    with _process_logs_lock:
        for log in list(_process_logs):
            lines, closed = log.take()
            if closed:
                _process_logs.remove(log)
            if lines:
                taken.append((log.name, lines))
    return taken


def guard_process_output(name: str, output: str | bytes | None) -> None:
    """Give the log guard the whole stderr of a server process that has ended,
    such as `subprocess.run([...], capture_output=True).stderr`."""
    if not output:
        return
    text = output.decode(errors="replace") if isinstance(output, bytes) else output
    log = ProcessLog(name)
    for line in text.splitlines():
        log.add(line)
    log.close()


@dataclasses.dataclass(frozen=True)
class ExpectedError:
    """A declared error: `pattern` is searched (`re.search`) in each error's
    `text`. A `required` one must match at least one error."""

    pattern: re.Pattern[str]
    required: bool = True

    def matches(self, error: ServerError) -> bool:
        return self.pattern.search(error.text) is not None


class _CaptureHandler(logging.Handler):
    """Keeps the records at ERROR or above, and those with a traceback."""

    def __init__(self, errors: list[ServerError]) -> None:
        super().__init__(logging.NOTSET)
        self.errors = errors
        self.last: logging.LogRecord | None = None  # one record reaches each watched ancestor
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        has_traceback = bool(record.exc_info and record.exc_info[0] is not None)
        if record is self.last or (record.levelno < logging.ERROR and not has_traceback):
            return
        self.last = record
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: show it as it is
            message = str(record.msg)
        context = " ".join(
            f"{key}={vars(record)[key]}" for key in ("peer", "conn") if key in vars(record)
        )
        if context:  # as the text log format shows it
            message = f"{message} [{context}]"
        exc = ""
        if has_traceback:
            assert record.exc_info is not None
            exc = self._formatter.formatException(record.exc_info)
        self.errors.append(ServerError("in-process", record.levelname, record.name, message, exc))


class ServerLogGuard:
    """Collects what servers log at ERROR or above (or with a traceback) while
    it is started: the records of `loggers` (and their children) in this
    process, and the lines of every `ProcessLog`; `check()` reports what
    `expected` does not declare. `netsvc_log_guard` runs one per test."""

    DEFAULT_LOGGERS = ("netsvc",)  # netsvc's own, and the built-in plugins'

    def __init__(
        self, expected: Sequence[ExpectedError] = (), loggers: Iterable[str] = DEFAULT_LOGGERS
    ) -> None:
        self.expected = list(expected)
        self.errors: list[ServerError] = []
        self._handler = _CaptureHandler(self.errors)
        self._levels: dict[str, int | None] = {}  # watched logger -> its level to restore
        self._started = False
        for name in loggers:
            self.watch_logger(name)

    def watch_logger(self, name: str) -> None:
        """Capture this logger's records too: for a plugin whose loggers are
        not under "netsvc" (or list them in the `netsvc_log_guard_loggers` ini
        option)."""
        if name not in self._levels:
            self._levels[name] = None
            if self._started:
                self._attach(name)

    def _attach(self, name: str) -> None:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.ERROR:  # errors would not reach the handler
            self._levels[name] = logger.level
            logger.setLevel(logging.ERROR)
        logger.addHandler(self._handler)

    def start(self) -> None:
        if not self._started:
            for name in self._levels:
                self._attach(name)
            self._started = True

    def stop(self) -> None:
        """Stop capturing records, then scan what server subprocesses wrote."""
        if self._started:
            for name, level in self._levels.items():
                logger = logging.getLogger(name)
                logger.removeHandler(self._handler)
                if level is not None:
                    logger.setLevel(level)
                    self._levels[name] = None
            self._handler.last = None
            self._started = False
        self.collect_process_logs()

    def collect_process_logs(self) -> None:
        """Scan the lines every `ProcessLog` got since it was last scanned."""
        for name, lines in take_process_logs():
            self.errors.extend(scan_log_lines(lines, name))

    def check(self, *, require_expected: bool = True) -> str | None:
        """What is wrong, for a test failure: the errors no expected pattern
        matches and (with `require_expected`) the required patterns that
        matched no error. None when the servers logged just what was declared."""
        undeclared = [e for e in self.errors if not any(x.matches(e) for x in self.expected)]
        missing = [
            x
            for x in self.expected
            if require_expected and x.required and not any(x.matches(e) for e in self.errors)
        ]
        parts = []
        if undeclared:
            parts.append(
                f"the server logged {len(undeclared)} error(s) this test does not declare; a test "
                'that expects them declares them: @pytest.mark.server_errors(r"regex", ...)'
            )
            parts += [error.describe() for error in undeclared[:SHOWN_ERRORS]]
            if len(undeclared) > SHOWN_ERRORS:
                parts.append(f"... and {len(undeclared) - SHOWN_ERRORS} more")
        if missing:
            patterns = ", ".join(repr(x.pattern.pattern) for x in missing)
            parts.append(
                f"declared with @pytest.mark.server_errors but never logged: {patterns}"
                f" (the servers logged {len(self.errors)} error(s))"
            )
        return "\n".join(parts) if parts else None
