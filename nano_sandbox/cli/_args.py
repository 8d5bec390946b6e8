"""Helpers shared by the verb modules: argparse parsers that report usage errors as runc does
(one line, exit status 2 here), a fast path for the hot verbs, and signal-name parsing.

``argparse`` costs several milliseconds to import, and ``state``, ``kill``, ``start`` and
``delete`` are called by engines for every container; their arguments (a few boolean flags and
positionals) are parsed by :class:`Simple` without it. Anything unusual (``--help``, an unknown
flag, a missing argument) falls back to an argparse parser built from the same description, so
help and errors are argparse's.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

from nano_sandbox import errors


class UsageError(errors.NkError):
    """A command-line usage error (exit status 2)."""

    exit_code = 2


_PARSER_CLASS = None


def _parser_class():
    global _PARSER_CLASS
    if _PARSER_CLASS is None:
        import argparse

        class Parser(argparse.ArgumentParser):
            """``argparse.ArgumentParser`` that raises :class:`UsageError` instead of exiting."""

            def error(self, message: str):  # type: ignore[override]
                raise UsageError(f"{self.prog.removeprefix('nk-runtime ')}: {message}")

        _PARSER_CLASS = Parser
    return _PARSER_CLASS


def parser(verb: str, description: str, usage: str | None = None):
    """An argparse parser for ``nk-runtime <verb>`` (raises :class:`UsageError` on bad input)."""
    return _parser_class()(prog=f"nk-runtime {verb}", description=description, usage=usage, allow_abbrev=False)


def parse(p, argv: list[str]):
    """Parse ``argv``; ``--help`` prints usage and exits 0."""
    return p.parse_args(argv)


REQUIRED = object()


class Simple:
    """A verb whose arguments are boolean flags and positionals.

    Args:
        verb, description: as for :func:`parser`.
        flags: ``[(long name, short name or None, help)]``; the attribute is the long name
            without dashes, ``-`` as ``_`` (``--force`` → ``force``).
        positionals: ``[(attribute, metavar, help, default)]``; default :data:`REQUIRED` for a
            required one.
    """

    def __init__(self, verb: str, description: str, flags: list, positionals: list) -> None:
        self.verb, self.description, self.flags, self.positionals = verb, description, flags, positionals
        self._names = {}
        for long, short, _help in flags:
            dest = long.lstrip("-").replace("-", "_")
            self._names[long] = dest
            if short:
                self._names[short] = dest

    def parse(self, argv: list[str]) -> SimpleNamespace:
        """Parse ``argv``; falls back to argparse (help, errors) when the fast path cannot."""
        ns = SimpleNamespace(**{d: False for d in self._names.values()})
        values = []
        only_positionals = False
        for arg in argv:
            if not only_positionals and arg == "--":
                only_positionals = True
            elif not only_positionals and arg in self._names:
                setattr(ns, self._names[arg], True)
            elif not only_positionals and arg.startswith("-") and arg != "-":
                return self._argparse(argv)
            else:
                values.append(arg)
        required = sum(1 for p in self.positionals if p[3] is REQUIRED)
        if not required <= len(values) <= len(self.positionals):
            return self._argparse(argv)
        for i, (dest, _meta, _help, default) in enumerate(self.positionals):
            setattr(ns, dest, values[i] if i < len(values) else default)
        return ns

    def _argparse(self, argv: list[str]):
        p = parser(self.verb, self.description)
        for long, short, help_ in self.flags:
            p.add_argument(*([long, short] if short else [long]), action="store_true", help=help_)
        for dest, meta, help_, default in self.positionals:
            if default is REQUIRED:
                p.add_argument(dest, metavar=meta, help=help_)
            else:
                p.add_argument(dest, metavar=meta, help=help_, nargs="?", default=default)
        return p.parse_args(argv)


ID = ("id", "CONTAINER_ID", "the container id", REQUIRED)


def check_preserve_fds(n: int) -> int:
    """Check ``--preserve-fds N``: fds 3..3+N-1 must fit under the open-files limit (runc reads
    them with a loop bounded the same way).

    Raises:
        errors.InvalidArgument: negative, or beyond RLIMIT_NOFILE.
    """
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if n < 0:
        raise errors.InvalidArgument("--preserve-fds: must not be negative")
    if soft != resource.RLIM_INFINITY and 3 + n + 2 > soft:
        raise errors.InvalidArgument(f"--preserve-fds {n}: fds 3..{2 + n} exceed this process's open-files limit ({soft})")
    return n


def add_id(p) -> None:
    p.add_argument("id", metavar="CONTAINER_ID", help="the container id")


def parse_signal(text: str) -> int:
    """Parse a signal given as a number, ``KILL`` or ``SIGKILL`` (signal(7)).

    Raises:
        errors.InvalidArgument: unknown name or number out of range.
    """
    import signal

    t = text.strip()
    if t.isascii() and t.isdigit():
        n = int(t)
        if 0 <= n < signal.NSIG:  # 0: only check the process exists, as kill(2) (runc and crun accept it)
            return n
        raise errors.InvalidArgument(f"signal {text!r}: out of range (0..{signal.NSIG - 1})")
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
        n = int(base) + off
        if not int(signal.SIGRTMIN) <= n <= int(signal.SIGRTMAX):
            raise errors.InvalidArgument(f"signal {text!r}: out of range (SIGRTMIN..SIGRTMAX is {int(signal.SIGRTMIN)}..{int(signal.SIGRTMAX)})")
        return n
    try:
        return int(getattr(signal.Signals, name))
    except AttributeError:
        raise errors.InvalidArgument(f"signal {text!r}: unknown signal") from None


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
