"""Terminals: the container's pty, the console socket, and the foreground terminal proxy.

A container with ``process.terminal: true`` gets a new pseudo-terminal made *inside* the
container (on its own devpts instance, pts(4)): its slave becomes the process's controlling
terminal and fds 0-2, and its **master** is sent to the engine over the ``--console-socket``
unix socket — one ``sendmsg`` with exactly one SCM_RIGHTS message carrying exactly one fd
(unix(7)), as conmon and containerd-shim expect. Without a console socket, a foreground ``run``
or ``exec`` receives the master itself and proxies it to the caller's terminal (raw mode,
window size propagated, restored on exit), as runc does.
"""

from __future__ import annotations

import _socket  # the C module only: the init does not import the socket package
import fcntl
import os
import select
import signal
import struct
import termios

from nano_sandbox.linux import syscalls as sc

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def open_pty(size: tuple[int, int] | None = None) -> tuple[int, int, str]:
    """Open a new pty on the devpts mounted at ``/dev/pts`` (through ``/dev/ptmx``).

    Returns ``(master_fd, slave_fd, slave_path)``, both close-on-exec; ``size`` is
    ``(rows, cols)`` to set (TIOCSWINSZ) or None.
    """
    sc.record('open("/dev/ptmx", O_RDWR|O_NOCTTY)')
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt(3)
    (n,) = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))  # ptsname(3)
    path = f"/dev/pts/{n}"
    sc.record(f'ioctl(ptmx, TIOCSPTLCK, 0); ioctl(ptmx, TIOCGPTN) = {n}; open("{path}", O_RDWR|O_NOCTTY)')
    slave = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    if size:
        set_winsize(master, *size)
    return master, slave, path


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """TIOCSWINSZ: set a terminal's window size in character cells."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_winsize(fd: int) -> tuple[int, int] | None:
    """TIOCGWINSZ: ``(rows, cols)`` of a terminal, or None if ``fd`` is not one."""
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return rows, cols


def become_controlling(slave: int) -> None:
    """Make ``slave`` the controlling terminal of this (session leader) process and its
    stdin, stdout and stderr (TIOCSCTTY, tty_ioctl(4))."""
    sc.record("ioctl(slave, TIOCSCTTY, 0); dup2(slave, 0); dup2(slave, 1); dup2(slave, 2)")
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)


def send_fd(sock_fd: int, fd: int, name: str = "/dev/ptmx") -> None:
    """Send ``fd`` over the connected unix socket ``sock_fd``: one sendmsg, one SCM_RIGHTS
    message, one fd; the data is ``name`` (runc sends the pty's name)."""
    sc.record(f"sendmsg(console socket, {name!r}, SCM_RIGHTS=[master])")
    s = _socket.socket(fileno=os.dup(sock_fd))
    try:
        s.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])
    finally:
        s.close()


def recv_fd(sock) -> int:
    """Receive one fd sent with :func:`send_fd`.

    Raises:
        OSError: the peer closed the socket or sent no fd.
    """
    import socket

    _msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("console socket: no file descriptor received")
    return fds[0]


def proxy(master: int, pid: int) -> int:
    """Copy between the caller's terminal and the container's pty master until ``pid`` (our
    child) exits; returns its wait status. The caller's terminal is put in raw mode and restored,
    and SIGWINCH copies the caller's window size to the pty."""
    import tty

    stdin_tty = os.isatty(0)
    saved = termios.tcgetattr(0) if stdin_tty else None

    def winch(_sig, _frame):
        size = get_winsize(0)
        if size:
            set_winsize(master, *size)

    old_winch = signal.signal(signal.SIGWINCH, winch)
    if stdin_tty:
        winch(None, None)
        tty.setraw(0, termios.TCSANOW)  # TCSAFLUSH would drop what was typed already
    status = None
    stdin_open = True
    try:
        while True:
            fds = [master] + ([0] if stdin_open else [])
            try:
                ready, _, _ = select.select(fds, [], [], 0.1)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    stdin_open = False
                    # EOF on stdin: send the terminal's EOF character (as runc does).
                    os.write(master, b"\x04")
                else:
                    os.write(master, data)
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                status = st
                _drain(master)
                break
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old_winch)
    if status is None:
        _, status = os.waitpid(pid, 0)
    return status


def _drain(master: int) -> None:
    while True:
        ready, _, _ = select.select([master], [], [], 0)
        if not ready:
            return
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        os.write(1, data)
