"""Explain mode (``-E/--explain``): a numbered narration of every transition, kernel action and
init step, with the real kernel calls and their timings, on stderr (stdout stays
machine-readable).

Text for people (colour only when stderr is a terminal and ``NO_COLOR`` is unset), or one JSON
object per line with ``--log-format json``.
"""

from __future__ import annotations

import os
import sys
import textwrap


class _SafeStream:
    """A stream wrapper that goes quiet instead of raising when the reader went away (EPIPE):
    narration must never break the operation it narrates."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.broken = False

    def isatty(self) -> bool:
        return hasattr(self.stream, "isatty") and self.stream.isatty()

    def write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.stream.write(text)
        except (OSError, ValueError):
            self.broken = True

    def flush(self) -> None:
        if self.broken:
            return
        try:
            self.stream.flush()
        except (OSError, ValueError):
            self.broken = True


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.2f} ms"


class Narrator:
    """Prints explain-mode steps.

    Args:
        stream: where to write (stderr).
        fmt: ``"text"`` or ``"json"``.
        color: force colour on/off; None decides from the stream and ``NO_COLOR``.
    """

    def __init__(self, stream=None, fmt: str = "text", color: bool | None = None) -> None:
        self.stream = _SafeStream(stream or sys.stderr)
        self.fmt = fmt
        if color is None:
            color = self.stream.isatty() and not os.environ.get("NO_COLOR")
        self.color = color
        self.n = 0
        self.substeps = 0
        self.current: str | None = None
        self.transition_name = ""

    def _c(self, code: str, s: str) -> str:
        return f"\033[{code}m{s}\033[0m" if self.color else s

    def _json(self, **obj) -> None:
        import msgspec

        self.stream.write(msgspec.json.encode(obj).decode() + "\n")
        self.stream.flush()

    def transition(self, trigger: str, src: str, dst: str) -> None:
        """A transition is about to fire."""
        self.transition_name = trigger
        if self.fmt == "json":
            self._json(explain="transition", trigger=trigger, source=src, dest=dst)
            return
        arrow = f"{src} → {dst}" if src != dst else f"{src} (stays {src})"
        self.stream.write(self._c("1;35", f"\n== {trigger}: {arrow}") + "\n")
        self.stream.flush()

    def transition_done(self, trigger: str, dt_ns: int, err: BaseException | None) -> None:
        """A transition ended: its total time (all its actions, and the machine's own work)."""
        if self.fmt == "json":
            self._json(explain="transition-done", trigger=trigger, ms=round(dt_ns / 1e6, 3), ok=err is None)
            return
        verdict = "done" if err is None else "failed"
        self.stream.write(self._c("1;35", f"== {trigger} {verdict} in {_ms(dt_ns)}") + "\n")
        self.stream.flush()

    def action_start(self, name: str, explain: str) -> None:
        """A kernel action begins: print its number, name and explanation."""
        self.n += 1
        self.current = name
        self.substeps = 0
        if self.fmt == "json":
            return
        head = self._c("1;36", f"[{self.n}] {name}")
        body = textwrap.fill(" ".join(explain.split()), width=96, initial_indent="    ", subsequent_indent="    ")
        self.stream.write(f"{head}\n{self._c('2', body)}\n")
        self.stream.flush()

    def substep(self, step, where: str = "init") -> None:
        """A step the container's init (or an exec'd process: ``where``) reported, a
        :class:`~nano_sandbox.process.messages.Step`. It ran in that process, in parallel with
        the runtime, which only waited for it."""
        self.substeps += 1
        if self.fmt == "json":
            self._json(explain="init-step", action=self.current, process=where, step=step.name, calls=step.calls,
                       ms=round(step.ns / 1e6, 3))
            return
        self.stream.write(f"    {self._c('33', '•')} in {where}: {step.name}  {self._c('2', _ms(step.ns))}\n")
        for call in step.calls:
            self.stream.write(f"        {self._c('32', call)}\n")
        self.stream.flush()

    def action_done(self, name: str, calls: list[str], dt_ns: int, err: BaseException | None) -> None:
        """A kernel action ended (``err`` set when it failed)."""
        if self.fmt == "json":
            self._json(explain="action", step=self.n, action=name, calls=calls, ms=round(dt_ns / 1e6, 3),
                       ok=err is None, **({"error": str(err)} if err else {}))
            return
        for call in calls:
            self.stream.write(f"    {self._c('32', call)}\n")
        if err is None and self.substeps:
            # The init worked in parallel; this is how long the runtime itself took or waited.
            self.stream.write(f"    {self._c('32', '✓')} {_ms(dt_ns)} in the runtime (the steps above ran in the container's process)\n")
        elif err is None:
            self.stream.write(f"    {self._c('32', '✓')} {_ms(dt_ns)}\n")
        else:
            self.stream.write(f"    {self._c('31', '✗ ' + str(err))} ({_ms(dt_ns)})\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A free-form line (e.g. the container's exit status)."""
        if self.fmt == "json":
            self._json(explain="note", msg=text)
            return
        self.stream.write(self._c("1", f"-- {text}") + "\n")
        self.stream.flush()
