"""``nk-runtime run [create flags] [--detach|-d] [--keep] CONTAINER_ID``: create and start a
container. In the foreground it forwards signals to the container's init, waits for it, exits
with its status (128+N when killed by signal N) and deletes it unless ``--keep``."""

from __future__ import annotations

import os
import signal

from nano_sandbox.cli import _args
from nano_sandbox.cli.create import add_create_flags, options_from

#: Signals ``run`` passes on to the container's init (as runc's signal handler does).
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM)


def wait_status(status: int) -> int:
    """Turn a waitpid(2) status into a shell-style exit code (128+N for signal N)."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def run(g, argv: list[str]) -> int:
    p = _args.parser("run", "Create and start a container, wait for it and delete it.")
    add_create_flags(p)
    p.add_argument("--detach", "-d", action="store_true", help="return once the container has started")
    p.add_argument("--keep", action="store_true", help="do not delete the container when it exits")
    _args.add_id(p)
    a = _args.parse(p, argv)
    from nano_sandbox import errors
    from nano_sandbox.lifecycle import ops

    opts = options_from(a)
    opts.terminal_proxy = not a.detach and not a.console_socket
    c = ops.create(g, a.id, opts)
    pid = c.state.pid
    master = None
    receiver = c.scratch.get("console_receiver")
    if receiver is not None:
        from nano_sandbox.process.tty import recv_fd

        master = recv_fd(receiver)
        receiver.close()
    if a.detach:
        try:
            ops.start(g, a.id)
        except errors.NkError:
            _cleanup(g, a.id)
            raise
        return 0

    pending: list[int] = []

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        pending.append(sig)

    for sig in FORWARDED:
        if master is not None and sig in (signal.SIGWINCH, signal.SIGINT, signal.SIGQUIT):
            continue  # with a terminal these come through the pty (raw mode)
        signal.signal(sig, forward)
    try:
        ops.start(g, a.id)
    except errors.NkError:
        # The init may still wait on its exec fifo (start refused): delete it first, then reap.
        _cleanup(g, a.id, a.keep)
        if not a.keep:
            _reap(pid)
        raise
    if master is not None:
        from nano_sandbox.process.tty import proxy

        status = proxy(master, pid)
    else:
        status = _reap(pid)
    code = wait_status(status)
    if c.narrator is not None:
        c.narrator.note(f"container process exited: status {code}")
    if not a.keep:
        ops.delete(g, a.id, force=True)
    return code


def _reap(pid: int) -> int:
    """Wait for the container's init (our child: we are its subreaper) and return its status."""
    while True:
        try:
            wpid, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 0
        if wpid == pid:
            return status


def _cleanup(g, cid: str, keep: bool = False) -> None:
    from nano_sandbox import errors
    from nano_sandbox.lifecycle import ops

    if keep:
        return
    try:
        ops.delete(g, cid, force=True)
    except errors.NkError as e:
        g.log.warning(f"cleanup: {e}")
