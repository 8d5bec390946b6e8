"""``nk-runtime exec [--process FILE | ARGS...] [--detach|-d] [--pid-file FILE]
[--console-socket PATH] [--tty|-t] [--cwd DIR] [--env|-e K=V]... [--user|-u UID[:GID]]
[--additional-gids G] [--cap CAP]... [--no-new-privs] [--preserve-fds N] [--process-label L]
[--apparmor P] CONTAINER_ID``: run a new process inside a container (runc's flags).

Foreground: waits and exits with the process's status (128+N for signal N). ``--detach``: writes
the pid file (decimal, no newline) and exits; the process is left to the caller's subreaper.
Failures of the runtime itself exit 255, so they differ from the process's own exit codes.
"""

from __future__ import annotations

import argparse
import os
import signal

from nano_sandbox.cli import _args

EXIT_RUNTIME_FAILURE = 255


def _write_pid_file(path: str, pid: int) -> None:
    """Write ``pid`` to ``path`` (decimal, no newline; a temporary file renamed into place). If
    that fails the process is killed, as runc does: nobody could track it.

    Raises:
        errors.HostError: naming the path.
    """
    from nano_sandbox import errors

    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.rename(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise errors.HostError(f"--pid-file {path}: {e.strerror} (the process was killed)") from e


def run(g, argv: list[str]) -> int:
    p = _args.parser("exec", "Run a new process inside a container.")
    p.add_argument("--process", "-p", help="an OCI process JSON file (- for stdin); replaces ARGS")
    p.add_argument("--detach", "-d", action="store_true", help="return once the process has started")
    p.add_argument("--pid-file", help="write the process's pid here (decimal, no newline)")
    p.add_argument("--console-socket", help="unix socket that receives the pty master (with a terminal)")
    p.add_argument("--tty", "-t", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("--cwd", help="working directory inside the container")
    p.add_argument("--env", "-e", action="append", default=[], metavar="K=V", help="add an environment variable")
    p.add_argument("--user", "-u", help="UID[:GID] to run as")
    p.add_argument("--additional-gids", "-g", action="append", type=int, default=[], metavar="GID")
    p.add_argument("--cap", "-c", action="append", default=[], dest="caps", metavar="CAP", help="add a capability")
    p.add_argument("--no-new-privs", action="store_true", help="set no_new_privileges")
    p.add_argument("--preserve-fds", type=int, default=0, metavar="N", help="pass fds 3..3+N-1 to the process")
    p.add_argument("--process-label", help="SELinux label of the process")
    p.add_argument("--apparmor", help="AppArmor profile of the process")
    p.add_argument("--ignore-paused", action="store_true", help="accepted for runc compatibility; exec into a paused container is refused")
    _args.add_id(p)
    # Everything after the container id is the command, flags included (sh -c ...), as in runc.
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")
    try:
        a = _args.parse(p, argv)
    except _args.UsageError as e:
        g.log.error(str(e))
        return EXIT_RUNTIME_FAILURE
    from nano_sandbox import errors
    from nano_sandbox.lifecycle import ops

    opts = ops.Options(process=a.process, detach=a.detach, console_socket=a.console_socket, tty=a.tty, cwd=a.cwd,
                       env=a.env, user=a.user, additional_gids=a.additional_gids, caps=a.caps, no_new_privs=a.no_new_privs,
                       preserve_fds=a.preserve_fds, process_label=a.process_label, apparmor=a.apparmor, args=a.args)
    try:
        _args.check_preserve_fds(a.preserve_fds)
        pid, master = ops.exec_(g, a.id, opts)
        if a.pid_file:
            _write_pid_file(a.pid_file, pid)
    except errors.NkError as e:
        g.log.error(str(e))
        return EXIT_RUNTIME_FAILURE
    if a.detach:
        return 0
    from nano_sandbox.cli.run import FORWARDED, wait_status

    if master is not None:
        from nano_sandbox.process.tty import proxy

        return wait_status(proxy(master, pid))

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    while True:
        try:
            wpid, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return EXIT_RUNTIME_FAILURE
        if wpid == pid:
            return wait_status(status)
