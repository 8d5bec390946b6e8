"""Helpers shared by the verb modules: an argparse parser that reports usage errors as runc
does (one line, exit status 2 here), and signal-name parsing."""

from __future__ import annotations

import argparse
import sys

from nano_sandbox import errors


class UsageError(errors.NkError):
    """A command-line usage error (exit status 2)."""

    exit_code = 2


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog.removeprefix('nk-runtime ')}: {message}")


def parser(verb: str, description: str, usage: str | None = None) -> Parser:
    """A parser for ``nk-runtime <verb>``."""
    return Parser(prog=f"nk-runtime {verb}", description=description, usage=usage, allow_abbrev=False)


def parse(p: Parser, argv: list[str]):
    """Parse ``argv``; ``--help`` prints usage and exits 0."""
    return p.parse_args(argv)


def add_id(p: Parser) -> None:
    p.add_argument("id", metavar="CONTAINER_ID", help="the container id")


def parse_signal(text: str) -> int:
    """Parse a signal given as a number, ``KILL`` or ``SIGKILL`` (signal(7)).

    Raises:
        errors.InvalidArgument: unknown name or number out of range.
    """
    import signal

    t = text.strip()
    if t.isdigit():
        n = int(t)
        if 0 < n < signal.NSIG:
            return n
        raise errors.InvalidArgument(f"signal {text!r}: out of range (1..{signal.NSIG - 1})")
    name = t.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
        base = signal.SIGRTMIN if name.startswith("SIGRTMIN") else signal.SIGRTMAX
        rest = name[8:]
        try:
            off = int(rest) if rest else 0
        except ValueError:
            raise errors.InvalidArgument(f"signal {text!r}: unknown signal") from None
        return int(base) + off
    try:
        return int(getattr(signal.Signals, name))
    except AttributeError:
        raise errors.InvalidArgument(f"signal {text!r}: unknown signal") from None


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
