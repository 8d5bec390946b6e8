"""Forking the container's init first, while the runtime is still small.

A created container costs its waiting init's memory for as long as it waits. The init is a fork
of the runtime, so it would carry everything the runtime has imported by the time it forks
(msgspec, transitions, filelock, the config model: ~13 MiB of Python objects). ``create`` and
``run`` therefore fork the init as the very first thing they do, before importing any of that;
the child imports only the lean init code (:mod:`nano_sandbox.process.init`: os, ctypes and
small C modules) — in parallel with the runtime's own start-up — and waits for its plan on the
socket. If the runtime fails before sending a plan, closing the socket makes the child exit.

This module must stay import-light: it is imported before the fork.
"""

from __future__ import annotations

import os

_EARLY: tuple[int, int] | None = None


def fork_early() -> None:
    """Fork the init now (``create``/``run`` call this first). Idempotent."""
    global _EARLY
    if _EARLY is not None:
        return
    import _socket

    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            from nano_sandbox.process.init import child_main

            child_main(child.detach())
        finally:
            os._exit(1)
    child.close()
    _EARLY = (pid, parent.detach())


def take() -> tuple[int, int] | None:
    """Hand over the early child: ``(pid, socket fd)``, or None if there is none."""
    global _EARLY
    early, _EARLY = _EARLY, None
    return early


def discard() -> None:
    """Get rid of an early child nobody used (the command failed first): close its socket, so it
    exits, and reap it."""
    early = take()
    if early is None:
        return
    pid, fd = early
    os.close(fd)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
