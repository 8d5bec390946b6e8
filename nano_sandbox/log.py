"""The runtime's log: runc-compatible ``--log FILE`` / ``--log-format text|json`` output.

Engines read this: containerd passes ``--log <bundle>/log.json --log-format json`` and reads the
last ``error`` line when a call fails; conmon does the same for podman. In json mode each line is
one object ``{"level": "...", "msg": "...", "time": "<RFC3339>"}``; in text mode a line is
``time="..." level=error msg="..."`` as runc's logrus prints it.

This module avoids the ``logging`` package on purpose: every ``nk-runtime`` call passes through
here and ``logging`` costs several milliseconds to import (measured with ``python -X importtime``).
"""

from __future__ import annotations

import os
import sys
import time

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _rfc3339() -> str:
    t = time.time()
    frac = f"{t % 1:.9f}"[1:]
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + frac + "Z"


def json_str(s: str) -> str:
    """``s`` as a JSON string (RFC 8259 section 7): quotes, backslashes and every control
    character escaped; without importing json. Shared by the log and the trace journal."""
    if s.isascii() and s.isprintable():  # the common case, at C speed
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class Logger:
    """Writes runc-style log lines to the ``--log`` file and, for errors, to stderr.

    Args:
        path: the ``--log`` file (opened in append mode on first write), or None for stderr only.
        fmt: ``"text"`` or ``"json"``.
        debug: when True, ``debug`` lines are written too (``--debug``).

    Warnings and errors always reach stderr (once), so a user without ``--log`` sees them.
    """

    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.min_level = _LEVELS["debug"] if debug else _LEVELS["info"]
        self._fd: int | None = None

    def format(self, level: str, msg: str, **fields: object) -> str:
        """Return one log line (with trailing newline) in the configured format."""
        ts = _rfc3339()
        if self.fmt == "json":
            parts = [f'"level":{json_str(level)}', f'"msg":{json_str(msg)}', f'"time":{json_str(ts)}']
            for k, v in fields.items():
                if isinstance(v, bool):
                    parts.append(f"{json_str(k)}:{'true' if v else 'false'}")
                elif isinstance(v, (int, float)):
                    parts.append(f"{json_str(k)}:{v}")
                else:
                    parts.append(f"{json_str(k)}:{json_str(str(v))}")
            return "{" + ",".join(parts) + "}\n"
        extra = "".join(f" {k}={json_str(str(v))}" for k, v in fields.items())
        return f"time={json_str(ts)} level={level} msg={json_str(msg)}{extra}\n"

    def open(self) -> None:
        """Open the ``--log`` file now (runc refuses to run when it cannot).

        Raises:
            OSError: the file cannot be opened for appending.
        """
        if self.path is not None and self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _write_file(self, line: str) -> None:
        if self.path is None:
            return
        try:
            self.open()
            os.write(self._fd, line.encode())
        except OSError as e:
            # A log that cannot be written (a full disk, /dev/full) must not break the operation.
            sys.stderr.write(f"nk-runtime: warning: cannot write to the log {self.path}: {e.strerror}\n")
            self.path = None

    def log(self, level: str, msg: str, **fields: object) -> None:
        """Log ``msg`` at ``level`` (debug, info, warning, error)."""
        if _LEVELS[level] < self.min_level:
            return
        line = self.format(level, msg, **fields)
        self._write_file(line)
        if level in ("warning", "error") or (self.path is None and level == "debug"):
            if self.fmt == "json" or level == "debug":
                sys.stderr.write(line)
            else:
                sys.stderr.write(f"nk-runtime: {'warning: ' if level == 'warning' else ''}{msg}\n")
            sys.stderr.flush()

    def debug(self, msg: str, **fields: object) -> None:
        self.log("debug", msg, **fields)

    def info(self, msg: str, **fields: object) -> None:
        self.log("info", msg, **fields)

    def warning(self, msg: str, **fields: object) -> None:
        self.log("warning", msg, **fields)

    def error(self, msg: str, **fields: object) -> None:
        self.log("error", msg, **fields)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


#: The process-wide logger; the CLI replaces it after parsing the global flags.
LOG = Logger()


def set_logger(logger: Logger) -> None:
    """Install ``logger`` as the process-wide :data:`LOG`."""
    global LOG
    LOG = logger
    sys.modules[__name__].LOG = logger


def get() -> Logger:
    """Return the process-wide logger (use this rather than importing ``LOG`` by value)."""
    return LOG
