"""The runtime's side of the container init: fork it, talk to it, write its id maps.

:class:`InitHandle` owns the parent's end of the SOCK_SEQPACKET socket pair. :meth:`spawn`
forks stage 1 of :mod:`nano_sandbox.process.init`; the other methods drive the protocol in
:mod:`nano_sandbox.process.messages`, handing every :class:`~.messages.Step` the init reports
to ``on_step`` (explain mode, the trace journal) and turning a :class:`~.messages.Fail` into
one clear error: ``create: mount proc on /proc: Operation not permitted (EPERM)``.
"""

from __future__ import annotations

import errno as errnomod
import os
import signal
import socket
import struct

from nano_sandbox import errors
from nano_sandbox.linux import syscalls as sc
from nano_sandbox.process import messages as M


class InitError(errors.NkError):
    """The init failed during setup; the message names the step and the errno."""


def _errname(e: int) -> str:
    return errnomod.errorcode.get(e, str(e))


class InitHandle:
    """The parent's handle on a container init being created.

    Attributes:
        stage1_pid: pid of the stage-1 child (in the runtime's namespaces).
        pid: host pid of the container's init (stage 2), once reported.
        on_step: callable receiving each :class:`~.messages.Step`.
    """

    def __init__(self, verb: str = "create") -> None:
        self.verb = verb
        self.stage1_pid = 0
        self.pid = 0
        self.sock: socket.socket | None = None
        self.on_step = None
        self.last_step = "start the init"

    def spawn(self, plan, console_fd: int | None = None, entry: str = "init") -> int:
        """Start stage 1 of the container's init (``entry="init"``) or of an exec (``"exec"``)
        with ``plan``; returns its pid.

        For the init the child is normally forked already, by :func:`nano_sandbox.process.zygote.fork_early`
        at the start of ``create``/``run`` while the runtime was still small: it then receives the
        plan (marshalled, see :func:`nano_sandbox.process.plan.to_wire`) and the console socket in
        one packet. Otherwise (exec, or a create called in-process) a child is forked now with
        the plan in its memory.

        The child keeps stdio, the preserved fds 3..3+N-1, its sync socket (3+N) and the console
        socket (3+N+1); every other fd is closed. The runtime becomes a child subreaper so the
        init (a grandchild) is re-parented to it when stage 1 exits, and from it to the engine's
        subreaper when the runtime exits.
        """
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1, what="prctl(PR_SET_CHILD_SUBREAPER, 1)")
        from nano_sandbox.process import zygote

        early = zygote.take() if entry == "init" else None
        if early is not None:
            pid, fd = early
            parent = socket.socket(fileno=fd)
            self.sock, self.stage1_pid = parent, pid
            self._send_plan(plan, console_fd)
            return pid
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sc.record("socketpair(AF_UNIX, SOCK_SEQPACKET) ; fork()")
        if console_fd is not None:
            plan.console_fd = console_fd
        pid = os.fork()
        if pid == 0:  # ---- child: never returns ----
            try:
                parent.close()
                from nano_sandbox.process.init import child_main

                child_main(child.detach(), plan, entry)
            finally:
                os._exit(1)
        child.close()
        self.sock = parent
        self.stage1_pid = pid
        return pid

    def _send_plan(self, plan, console_fd: int | None) -> None:
        from nano_sandbox.process.plan import to_wire

        data = to_wire(plan)
        assert self.sock is not None
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 32, max(len(data) * 2, 1 << 16))  # SO_SNDBUFFORCE
        except OSError:
            pass
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", console_fd))] if console_fd is not None else []
        sc.record(f"sendmsg(init, <plan: {len(data)} bytes>{', SCM_RIGHTS=[console socket]' if anc else ''})")
        try:
            self.sock.sendmsg([data], anc)
        except OSError as e:
            raise InitError(f"{self.verb}: cannot send the plan to the init: {e.strerror}") from e

    # ---- protocol ------------------------------------------------------------------------------------
    def send(self, msg: M.Msg) -> None:
        assert self.sock is not None
        try:
            self.sock.send(M.encode(msg))
        except OSError as e:
            raise InitError(f"{self.verb}: the container init is gone ({e.strerror}) after: {self.last_step}") from e

    def recv(self) -> M.Msg:
        """Receive the next message, handling Step and Fail; raise on EOF."""
        assert self.sock is not None
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise InitError(f"{self.verb}: the container init exited unexpectedly after: {self.last_step}{self._exit_note()}")
            msg = M.decode(data)
            if isinstance(msg, M.Step):
                self.last_step = msg.name
                if self.on_step is not None:
                    self.on_step(msg)
                continue
            if isinstance(msg, M.Fail):
                body = msg.message if msg.message.startswith(msg.step + ":") else f"{msg.step}: {msg.message}"
                text = f"{self.verb}: {body}"
                if msg.errno:
                    text += f" ({_errname(msg.errno)})"
                raise InitError(text)
            return msg

    def _exit_note(self) -> str:
        """How the child that went away ended, peeked at without reaping it (waitid WNOWAIT)."""
        for pid in (self.pid, self.stage1_pid):
            if not pid:
                continue
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                continue
            if info is None:
                continue
            if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
                sig = info.si_status
                return f" (killed by signal {sig}{': out of memory?' if sig == 9 else ''})"
            return f" (exit status {info.si_status})"
        return ""

    def wait_exec(self) -> None:
        """Wait until the process exec'd: its close-on-exec end of the socket pair closes (EOF)
        at a successful execve; a :class:`~.messages.Fail` sent before means it failed.

        Raises:
            InitError: the failure it reported (step, message, errno name).
        """
        msg = self._recv_until_eof()
        if msg is not None:
            raise InitError(f"{self.verb}: protocol error: unexpected {type(msg).__name__}")

    def _recv_until_eof(self):
        assert self.sock is not None
        while True:
            data = self.sock.recv(65536)
            if not data:
                return None
            msg = M.decode(data)
            if isinstance(msg, M.Step):
                if self.on_step is not None:
                    self.on_step(msg)
                continue
            if isinstance(msg, M.Fail):
                text = msg.message if msg.message.startswith(msg.step + ":") else f"{msg.step}: {msg.message}"
                raise InitError(text)
            return msg

    def expect(self, kind: type) -> M.Msg:
        msg = self.recv()
        if not isinstance(msg, kind):
            raise InitError(f"{self.verb}: protocol error: expected {kind.__name__}, got {type(msg).__name__}")
        return msg

    def enter_namespaces(self, write_maps) -> int:
        """Let stage 1 enter its namespaces; answer its NeedMaps with ``write_maps(pid)``; reap
        it; return the init's host pid (stage 2 is then told to go on)."""
        self.send(M.Go())
        while True:
            msg = self.recv()
            if isinstance(msg, M.NeedMaps):
                write_maps(msg.pid)
                self.send(M.MapsDone())
                continue
            if isinstance(msg, M.Pid):
                self.pid = msg.pid
                break
            raise InitError(f"{self.verb}: protocol error: unexpected {type(msg).__name__}")
        _, status = os.waitpid(self.stage1_pid, 0)
        self.stage1_pid = 0
        self.send(M.Go())
        return self.pid

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def kill(self) -> None:
        """SIGKILL the init (and stage 1 if still there) and reap what is ours to reap."""
        for pid in (self.pid, self.stage1_pid):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid in (self.stage1_pid, self.pid):
            if pid:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        self.close()


def write_id_maps(pid: int, uid_mappings, gid_mappings) -> None:
    """Write ``/proc/<pid>/uid_map``, ``setgroups`` (deny, when the runtime itself is not root)
    and ``gid_map`` for a process that just unshared its user namespace (user_namespaces(7)).

    Raises:
        errors.HostError: naming the file and errno.
    """
    def fmt(maps) -> str:
        return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps or [])

    items = [("uid_map", fmt(uid_mappings)), ("gid_map", fmt(gid_mappings))]
    if os.geteuid() != 0:
        items.insert(1, ("setgroups", "deny"))
    for name, text in items:
        path = f"/proc/{pid}/{name}"
        sc.record(f'write("{path}", {text!r})')
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as e:
            raise errors.HostError(f"cannot write {path}: {e.strerror}") from e
