"""The container init: what the forked child does, from the runtime's namespaces to ``execve``.

Two processes run this code, both forked from the runtime (so the :class:`~.plan.InitPlan` is
already in their memory: nothing is parsed or imported here):

1. **stage 1** (:func:`stage1`) starts in the runtime's namespaces. It waits until the runtime
   has put it in the container's cgroups, joins the namespaces the config names by path
   (setns, user first), creates a user namespace and waits for the runtime to write its id
   maps, creates the other namespaces (unshare), then forks: a new pid namespace applies only to
   children, so that child is PID 1. Stage 1 reports the child's pid and exits.
2. **stage 2** (:func:`stage2`) is the container's init. It builds the root filesystem (mounts,
   devices), lets the runtime run the createRuntime hooks, runs the createContainer hooks,
   ``pivot_root``s, masks paths, sets hostname, sysctls and limits, reports Ready and blocks
   opening the exec fifo. When ``start`` opens the fifo, it runs the startContainer hooks,
   switches to the process's user and capabilities, loads seccomp and calls ``execve``.

Every step reports a ``Step`` message (with its kernel calls in explain mode); any failure reports
``Fail`` naming the step and errno, then ``os._exit``. No path returns. Messages are those of
:mod:`nano_sandbox.process.messages`, written and read here with the small codec in
:mod:`nano_sandbox.process.wire`: this module imports nothing heavy (no msgspec), because it runs in
the container's init, whose memory every created container pays for.
After the exec fifo opens, errors go to the fifo instead (``start`` reads them).
"""

from __future__ import annotations

import errno as errnomod
import os
import resource
import signal
import stat
import sys
import time

# Everything the init uses after pivot_root must be imported before it: the host's Python
# library is not reachable from inside the container's root filesystem.
from nano_sandbox.linux import syscalls as sc
from nano_sandbox.linux.paths import secure_join
from nano_sandbox.process import hooks as hooksmod
from nano_sandbox.process import tty as ttymod
from nano_sandbox.process import wire

#: The PATH used to find the process when its environment has none (runc's default).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

EXIT_SETUP_FAILED = 1
EXIT_EXEC_FAILED = 127


class StepError(Exception):
    """A setup step failed: ``step`` says which (``mount proc on /proc``), ``err`` the errno."""

    def __init__(self, step: str, err: int, message: str) -> None:
        super().__init__(message)
        self.step, self.err, self.message = step, err, message


class Channel:
    """The child's end of the sync socket (SOCK_SEQPACKET: one message per read/write).

    Messages are ``[tag, fields...]`` arrays (see :mod:`~nano_sandbox.process.wire`).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, tag: str, *fields) -> None:
        os.write(self.fd, wire.message(tag, *fields))

    def recv(self) -> list:
        data = os.read(self.fd, 1 << 20)
        if not data:
            os._exit(EXIT_SETUP_FAILED)  # the runtime went away: give up silently
        msg = wire.unpack(data)
        if msg[0] == "Abort":
            os._exit(EXIT_SETUP_FAILED)
        return msg

    def expect(self, tag: str) -> list:
        msg = self.recv()
        if msg[0] != tag:
            raise StepError("sync", errnomod.EPROTO, f"expected {tag}, got {msg[0]}")
        return msg

    def close(self) -> None:
        os.close(self.fd)


class Steps:
    """Runs named steps, timing them and reporting each to the runtime."""

    def __init__(self, chan: Channel, explain: bool) -> None:
        self.chan = chan
        self.explain = explain
        if explain:
            sc.RECORDER = sc.Recorder()

    def run(self, name: str, fn, *args):
        t0 = time.monotonic_ns()
        try:
            result = fn(*args)
        except StepError:
            raise
        except OSError as e:
            raise StepError(name, e.errno or 0, e.strerror or str(e)) from e
        except Exception as e:  # a bug, or a value error: still one clear line
            raise StepError(name, 0, f"{type(e).__name__}: {e}") from e
        calls = sc.RECORDER.take() if sc.RECORDER is not None else []
        self.chan.send("Step", name, t0, time.monotonic_ns() - t0, calls)
        return result


def _describe_error(e: BaseException) -> tuple[str, int, str]:
    """``(step, errno, message)`` for any exception: one clear line, never a Python repr when
    the error has words of its own (an OSError's strerror, a runtime error's message)."""
    if isinstance(e, StepError):
        return e.step, e.err, e.message
    if isinstance(e, OSError) and e.strerror:
        where = f" ({e.filename})" if e.filename else ""
        return "init", e.errno or 0, f"{e.strerror}{where}"
    if isinstance(e, hooksmod.HookError):
        return "hook", 0, str(e)
    return "init", 0, f"{type(e).__name__}: {e}"


def _fail(chan: Channel, e: BaseException) -> None:
    fields = _describe_error(e)
    try:
        chan.send("Fail", *fields)
    except OSError:
        pass


def reset_signals() -> None:
    """Restore every signal's default disposition and unblock all signals: dispositions set to
    ignore survive execve (signal(7)), and CPython ignores SIGPIPE and SIGXFSZ."""
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


class Obj:
    """A plan object rebuilt from its wire form: attributes only."""

    def __init__(self, attrs: dict) -> None:
        self.__dict__.update(attrs)


def from_wire(value):
    """Rebuild a plan from the plain data :func:`nano_sandbox.process.plan.to_wire` marshalled:
    dicts tagged with ``"_"`` become :class:`Obj`, recursively."""
    if isinstance(value, dict):
        if "_" in value:
            return Obj({k: from_wire(v) for k, v in value.items() if k != "_"})
        return {k: from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    return value


def child_main(sync_fd: int, plan=None, entry: str = "init") -> None:
    """Entry point of a forked child. Never returns.

    With ``plan`` None the child was forked before the runtime knew what to do (the container
    init is forked as the very first thing ``create`` does, while the runtime is still small): it
    receives the plan as one marshalled packet, with the console socket as SCM_RIGHTS when the
    container has a terminal. It then keeps only stdio, the preserved fds 3..3+N-1, its sync socket
    (moved to 3+N) and the console socket (3+N+1), and runs stage 1 (``entry``: ``init`` or
    ``exec``).
    """
    console_fd = None
    try:
        sc.set_proctitle("nk-runtime init")
        if plan is None:
            import _socket
            import marshal

            s = _socket.socket(fileno=os.dup(sync_fd))
            try:
                data, anc, _flags, _addr = s.recvmsg(1 << 22, _socket.CMSG_SPACE(4))
            finally:
                s.close()
            if not data:
                os._exit(EXIT_SETUP_FAILED)
            for level, kind, payload in anc:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    console_fd = int.from_bytes(payload[:4], sys.byteorder)
            plan = from_wire(marshal.loads(data))
        else:
            console_fd = getattr(plan, "console_fd", None)
        sync_fd, plan.console_fd = _arrange_fds(sync_fd, console_fd, plan.preserve_fds)
    except BaseException:  # noqa: BLE001 - nothing to report to yet
        os._exit(EXIT_SETUP_FAILED)
    (stage1 if entry == "init" else exec_stage1)(plan, sync_fd)
    os._exit(EXIT_SETUP_FAILED)


def _arrange_fds(sync_fd: int, console_fd: int | None, preserve_fds: int) -> tuple[int, int | None]:
    """Keep stdio, the preserved fds 3..3+N-1 *that the caller passed* (inheritable ones: the
    runtime's own fds are close-on-exec), the sync socket at 3+N and the console socket at 3+N+1;
    close everything else (close_range(2)). Returns the new (sync fd, console fd)."""
    import fcntl

    target = 3 + preserve_fds
    keep = {sync_fd} | ({console_fd} if console_fd is not None else set())
    for fd in range(3, target):
        if fd in keep:
            continue
        try:
            if not os.get_inheritable(fd):
                os.close(fd)
        except OSError:
            pass
    # First out of the way (above every final position), then down into place; close_range then
    # closes the temporary copies.
    tmp_sync = fcntl.fcntl(sync_fd, fcntl.F_DUPFD_CLOEXEC, target + 2)
    tmp_console = fcntl.fcntl(console_fd, fcntl.F_DUPFD_CLOEXEC, target + 2) if console_fd is not None else None
    for old in keep:
        os.close(old)
    os.dup2(tmp_sync, target, inheritable=False)
    last, new_console = target, None
    if tmp_console is not None:
        os.dup2(tmp_console, target + 1, inheritable=False)
        last = new_console = target + 1
    sc.close_range(last + 1)
    for fd in range(3, target):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    return target, new_console


# ==================================================================================================
# Stage 1: namespaces
# ==================================================================================================
def stage1(plan, sync_fd: int) -> None:
    """Stage 1 of the container's init. Never returns (every path ends in ``os._exit``)."""
    chan = Channel(sync_fd)
    try:
        reset_signals()
        os.umask(0)
        steps = Steps(chan, plan.explain)
        # Opened while still the host's root: in a user namespace the mapped root may not be
        # able to traverse the path to the state directory. Stage 2 inherits it.
        plan.state_fd = os.open(plan.state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        chan.expect("Go")
        if plan.join:
            steps.run("join namespaces", _join_namespaces, plan)
        if plan.new_user:
            steps.run("create user namespace", sc.unshare, sc.CLONE_NEWUSER)
            chan.send("NeedMaps", os.getpid())
            chan.expect("MapsDone")
            steps.run("become root in the user namespace", _become_root)
        if plan.new_flags:
            steps.run("create namespaces", sc.unshare, plan.new_flags)
        if plan.time_offsets:
            steps.run("set time namespace offsets", _time_offsets, plan.time_offsets)
        _fork_and_report(chan, "fork the container's init: host pid {pid}, PID 1 in its pid namespace",
                         lambda: stage2(plan, chan, steps))
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - the child must always exit here
        _fail(chan, e)
        os._exit(EXIT_SETUP_FAILED)


def _fork_and_report(chan: Channel, name: str, child) -> None:
    """Fork; the child runs ``child()`` (which never returns); the parent reports the fork as a
    step (``name`` formatted with the pid) and the child's host pid (``Pid``). A new pid or time
    namespace applies only to children: this fork is what puts the process in them."""
    t0 = time.monotonic_ns()
    try:
        pid = os.fork()
    except OSError as e:
        if e.errno == errnomod.EAGAIN:
            raise StepError("fork", e.errno, "cannot fork in the container: its pids limit is reached") from e
        if e.errno == errnomod.ENOMEM:
            raise StepError("fork", e.errno, "cannot fork in the container's pid namespace: its init has exited") from e
        raise
    if pid == 0:
        if sc.RECORDER is not None:
            sc.RECORDER.take()
        child()
        os._exit(EXIT_SETUP_FAILED)  # not reached
    calls = (sc.RECORDER.take() if sc.RECORDER is not None else []) + [f"fork() = {pid}"] if sc.RECORDER is not None else []
    chan.send("Step", name.format(pid=pid), t0, time.monotonic_ns() - t0, calls)
    chan.send("Pid", pid)


def _join_namespaces(plan) -> None:
    for nstype, path in plan.join:
        flag, _ = sc.NAMESPACES[nstype]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise StepError(f"open {nstype} namespace {path}", e.errno or 0, e.strerror or "") from e
        try:
            sc.setns(fd, flag, f'"{path}"')
        except OSError as e:
            raise StepError(f"join {nstype} namespace {path}", e.errno or 0, e.strerror or "") from e
        finally:
            os.close(fd)


def _become_root() -> None:
    sc.record("setresgid(0, 0, 0); setresuid(0, 0, 0)")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _time_offsets(offsets: dict) -> None:
    lines = "".join(f"{clock} {secs} {nsecs}\n" for clock, (secs, nsecs) in offsets.items())
    sc.record(f'write("/proc/self/timens_offsets", {lines!r})')
    with open("/proc/self/timens_offsets", "w") as f:
        f.write(lines)


# ==================================================================================================
# Stage 2: the container's init
# ==================================================================================================
def stage2(plan, chan: Channel, steps: Steps) -> None:
    """The container's init (PID 1 in a new pid namespace). Never returns."""
    try:
        chan.expect("Go")
        state_fd = plan.state_fd
        if plan.mount_ns:
            steps.run("set mount propagation of /", _root_propagation, plan)
            steps.run(f"bind-mount rootfs {plan.rootfs}", _bind_rootfs, plan)
            for m in plan.mounts:
                steps.run(_describe(m), _mount, plan, m)
            if plan.devices:
                steps.run("create device nodes", _devices, plan)
            if plan.default_dev:
                steps.run("create /dev symlinks", _dev_symlinks, plan)
        if plan.process is not None and plan.process.oom_score_adj is not None:
            steps.run("set oom_score_adj", _oom_score_adj, plan.process.oom_score_adj)
        chan.send("RootfsReady")
        plan.state_json = chan.expect("HooksDone")[1]
        for h in plan.hooks_create_container:
            steps.run(f"createContainer hook {h.path}", _run_hook, h, plan.state_json)
        if plan.mount_ns:
            if plan.no_pivot:
                steps.run(f"move rootfs {plan.rootfs} to / and chroot", _chroot, plan)
            else:
                steps.run(f"pivot_root into {plan.rootfs}", _pivot_root, plan)
        else:
            steps.run(f"chroot into {plan.rootfs}", _plain_chroot, plan)
        if plan.hostname is not None:
            steps.run("set hostname", sc.sethostname, plan.hostname)
        if plan.domainname is not None:
            steps.run("set domainname", sc.setdomainname, plan.domainname)
        # runc's order: sysctls are written before /proc/sys becomes read-only.
        if plan.sysctl:
            steps.run("set sysctls", _sysctl, plan.sysctl)
        if plan.mount_ns:
            if plan.readonly:
                steps.run("make paths read-only", _readonly_paths, plan.readonly)
            if plan.masked:
                steps.run("mask paths", _mask_paths, plan.masked)
        p = plan.process
        if p is not None and p.terminal:
            steps.run("create the container's terminal", _console, plan, p)
        if p is not None:
            steps.run(f"prepare cwd {p.cwd}", _prepare_cwd, p.cwd)
        if plan.mount_ns and plan.root_readonly:
            steps.run("remount / read-only", _readonly_root)
        if plan.mount_ns and plan.final_propagation:
            steps.run("set rootfs propagation", sc.mount, None, "/", None, plan.final_propagation, None)
        if plan.new_keyring:
            steps.run("join a new session keyring", _keyring, plan.cid)
        if p is not None and p.rlimits:
            steps.run("set rlimits", _rlimits, p.rlimits)
        if p is not None:
            # runc's order: the executable is looked up before the init waits for start, so a
            # missing one fails `create` (podman maps that error text to exit status 127). It is
            # looked up again at start, in case it went away meanwhile.
            steps.run(f"look up {p.args[0]}", lookup, p.args[0], p.env)
        chan.send("Ready")
        chan.close()
    except BaseException as e:  # noqa: BLE001
        _fail(chan, e)
        os._exit(EXIT_SETUP_FAILED)
    # ---- created: block until `start` opens the exec fifo for reading ----
    _shrink()
    try:
        fifo = os.open("exec.fifo", os.O_WRONLY | os.O_CLOEXEC, dir_fd=state_fd)
    except OSError:
        os._exit(EXIT_SETUP_FAILED)
    os.close(state_fd)
    if plan.process is None:
        _fifo_fail(fifo, 'process: the config has no process to start')
    try:
        for h in plan.hooks_start_container:
            try:
                _run_hook(h, plan.state_json)
            except OSError as e:
                raise StepError(f"startContainer hook {h.path}", e.errno or 0, e.strerror or str(e)) from e
        exec_process(plan.process)
    except StepError as e:
        _fifo_fail(fifo, e.message if e.message.startswith(e.step + ":") else f"{e.step}: {e.message}")
    except BaseException as e:  # noqa: BLE001
        step, _err, message = _describe_error(e)
        _fifo_fail(fifo, message if step in ("init", "hook") else f"{step}: {message}")


def _console(plan, p) -> None:
    """Make the container's pty (inside its /dev/pts), bind its slave on /dev/console, send the
    master to the console socket and make the slave our controlling terminal and stdio."""
    sc.record("setsid()")
    os.setsid()
    master, slave, path = ttymod.open_pty(p.console_size)
    if plan.mount_ns and os.path.isdir("/dev"):
        if not os.path.exists("/dev/console"):
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        sc.mount(path, "/dev/console", None, sc.MS_BIND, None)
    if getattr(plan, "console_fd", None) is None:
        raise StepError("console", errnomod.EBADF, "process.terminal is true but there is no console socket")
    ttymod.send_fd(plan.console_fd, master, "/dev/ptmx")
    os.close(master)
    os.close(plan.console_fd)
    ttymod.become_controlling(slave)
    if slave > 2:
        os.close(slave)


def _shrink() -> None:
    """Give back what the waiting init does not need while it waits: free heap pages (glibc
    malloc_trim(3)) and our page-table entries for code (the interpreter's and the libraries'
    text, madvise(2) MADV_DONTNEED on r-xp file mappings): shared with every other Python
    process, they fault back in from the page cache when ``start`` wakes the init. A waiting
    container then costs little more than its init's own dirty pages."""
    import gc

    gc.collect()
    sc.malloc_trim()
    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return  # no /proc in this container
    for line in lines:
        parts = line.split()
        # Only code (r-xp, file-backed): never written, so dropping our page-table entries
        # loses nothing. Writable or relocated (RELRO) mappings hold private copies: kept.
        if len(parts) < 6 or parts[1] != "r-xp" or not parts[5].startswith("/"):
            continue
        lo, _, hi = parts[0].partition("-")
        sc.madvise(int(lo, 16), int(hi, 16) - int(lo, 16), sc.MADV_DONTNEED)


def _fifo_fail(fd: int, message: str, code: int = EXIT_EXEC_FAILED) -> None:
    try:
        os.write(fd, message.encode()[:4000])
    except OSError:
        pass
    os._exit(code)


# ---- mounts --------------------------------------------------------------------------------------
def _describe(m) -> str:
    """How a mount step is named in messages: ``mount proc on /proc``."""
    return f"mount {m.source or m.fstype} on {m.dest}"


def _root_propagation(plan) -> None:
    # Stop our mount events from propagating to the host (and pivot_root needs a non-shared root).
    sc.mount(None, "/", None, plan.root_propagation, None)


def _bind_rootfs(plan) -> None:
    # pivot_root(2) needs new_root to be a mount point whose parent mount is not shared: make the
    # mount holding the rootfs private if it is shared (runc's rootfsParentMountPrivate), then
    # bind the rootfs onto itself.
    parent, shared = _mount_of(plan.rootfs)
    if shared:
        sc.mount(None, parent, None, sc.MS_PRIVATE, None)
    sc.mount(plan.rootfs, plan.rootfs, None, sc.MS_BIND | sc.MS_REC, None)


def _mount_of(path: str) -> tuple[str, bool]:
    """The mount point holding ``path`` (longest mountinfo prefix) and whether it is shared."""
    real = os.path.realpath(path)
    best, shared = "/", False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left = line.split(" - ", 1)[0].split()
            mp = left[4]
            if (real == mp or real.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, shared = mp, any(x.startswith("shared:") for x in left[6:])
    return best, shared


def _target(plan, dest: str) -> str:
    return secure_join(plan.rootfs, dest)


def _mkdir_p(path: str, mode: int = 0o755) -> None:
    """mkdir(2) every missing component of ``path``."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent != path:
        _mkdir_p(parent, mode)
    sc.record(f'mkdir("{path}", {mode:04o})')
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass


def _make_mountpoint(target: str, file: bool) -> None:
    if file:
        if os.path.exists(target) and not os.path.isdir(target):
            return
        _mkdir_p(os.path.dirname(target))
        if not os.path.lexists(target):
            sc.record(f'open("{target}", O_CREAT)')
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    else:
        _mkdir_p(target)


def _locked_flags(path: str) -> int:
    """MS_* flags of the mount at ``path`` that a bind remount must keep (statfs f_flag)."""
    f = os.statvfs(path).f_flag
    out = 0
    for st_bit, ms in ((1, sc.MS_RDONLY), (2, sc.MS_NOSUID), (4, sc.MS_NODEV), (8, sc.MS_NOEXEC),
                       (1024, sc.MS_NOATIME), (2048, sc.MS_NODIRATIME), (4096, sc.MS_RELATIME)):
        if f & st_bit:
            out |= ms
    return out


def _bind_remount(target: str, flags: int) -> None:
    try:
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | flags, None)
    except OSError as e:
        if e.errno != errnomod.EPERM:
            raise
        # In a user namespace, flags locked by the source mount must be kept (mount(2) EPERM).
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | flags | _locked_flags(target), None)


def _mount(plan, m) -> None:
    target = _target(plan, m.dest)
    if m.dest in ("/proc", "/sys") and os.path.islink(os.path.join(plan.rootfs, m.dest.lstrip("/"))):
        raise StepError(_describe(m), errnomod.ELOOP, f"{m.dest} is a symlink in the rootfs: refused")
    if m.cgroup:
        _mount_cgroup(plan, m, target)
        return
    if m.bind:
        try:
            st = os.stat(m.source)
        except OSError as e:
            raise StepError(_describe(m), e.errno or 0, f"source {m.source}: {e.strerror}") from e
        _make_mountpoint(target, not stat.S_ISDIR(st.st_mode))
        sc.mount(m.source, target, None, m.flags, None)
        if m.remount_flags:
            _bind_remount(target, m.remount_flags)
    else:
        _make_mountpoint(target, False)
        keep = None
        if m.tmpcopyup:
            keep = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            sc.mount(m.source or m.fstype, target, m.fstype, m.flags, m.data)
        except OSError as e:
            if m.fstype == "mqueue" and e.errno in (errnomod.EPERM, errnomod.EINVAL) or m.fstype == "sysfs" and e.errno == errnomod.EPERM:
                # Without a new ipc/network namespace the kernel refuses a fresh mqueue/sysfs
                # instance; runc binds the host's instead.
                src = "/dev/mqueue" if m.fstype == "mqueue" else "/sys"
                sc.mount(src, target, None, sc.MS_BIND | sc.MS_REC, None)
                _bind_remount(target, m.flags & ~(sc.MS_REMOUNT))
            else:
                raise
        if keep is not None:
            try:
                _copy_up(keep, target)
            finally:
                os.close(keep)
    for prop in m.propagation or []:
        sc.mount(None, target, None, prop, None)


def _copy_up(src_fd: int, dest: str) -> None:
    import shutil

    src = f"/proc/self/fd/{src_fd}"
    sc.record(f'copy "{src}" -> "{dest}" (tmpcopyup)')
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dest, name)
        if os.path.isdir(s) and not os.path.islink(s):
            shutil.copytree(s, d, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(s, d, follow_symlinks=False)
    st = os.fstat(src_fd)
    os.chmod(dest, stat.S_IMODE(st.st_mode))
    os.chown(dest, st.st_uid, st.st_gid)


def _mount_cgroup(plan, m, target: str) -> None:
    """The ``cgroup`` mount type: a view of the container's own cgroups at ``dest``.

    cgroup v2 only: a cgroup2 mount (with a cgroup namespace it shows the container's subtree).
    v1 or hybrid: a tmpfs with one directory per hierarchy, each either a fresh cgroup mount
    (with a cgroup namespace: its root is the container's cgroup) or a bind of the container's
    host cgroup directory; hybrid adds ``unified``.
    """
    _mkdir_p(target)
    base = m.flags & (sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RELATIME)
    ro = m.flags & sc.MS_RDONLY
    if not plan.cgroup_v1_keys:
        if plan.new_cgroupns or "" not in plan.cgroup_paths:
            sc.mount("cgroup2", target, "cgroup2", m.flags, None)
        else:
            sc.mount(plan.cgroup_paths[""], target, None, sc.MS_BIND, None)
            _bind_remount(target, base | ro)
        return
    sc.mount("tmpfs", target, "tmpfs", base, "mode=755")
    for key in plan.cgroup_v1_keys:
        name = key[5:] if key.startswith("name=") else key
        sub = os.path.join(target, name)
        _mkdir_p(sub)
        if plan.new_cgroupns:
            sc.mount("cgroup", sub, "cgroup", base | ro, key)
        else:
            sc.mount(plan.cgroup_paths[key], sub, None, sc.MS_BIND, None)
            _bind_remount(sub, base | ro)
        if "," in name:
            for alias in name.split(","):
                link = os.path.join(target, alias)
                if not os.path.lexists(link):
                    sc.record(f'symlink("{name}", "{link}")')
                    os.symlink(name, link)
    if plan.has_v2 and "" in plan.cgroup_paths:
        sub = os.path.join(target, "unified")
        _mkdir_p(sub)
        if plan.new_cgroupns:
            sc.mount("cgroup2", sub, "cgroup2", base | ro, None)
        else:
            sc.mount(plan.cgroup_paths[""], sub, None, sc.MS_BIND, None)
            _bind_remount(sub, base | ro)
    if ro:
        sc.mount(None, target, None, sc.MS_REMOUNT | base | sc.MS_RDONLY, "mode=755")


def _devices(plan) -> None:
    for d in plan.devices:
        target = _target(plan, d.path)
        _mkdir_p(os.path.dirname(target))
        if os.path.lexists(target):
            if os.path.isdir(target) and not os.path.islink(target):
                raise StepError(f"create device {d.path}", errnomod.EISDIR, "a directory is in the way")
            os.unlink(target)
        kind = {"c": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d.kind]
        if plan.new_user:
            # mknod(2) is not allowed in a user namespace: bind the host's node instead.
            host = d.path
            sc.record(f'open("{target}", O_CREAT); mount("{host}", "{target}", NULL, MS_BIND)')
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            sc.mount(host, target, None, sc.MS_BIND, None)
            continue
        sc.record(f'mknod("{target}", {d.kind} {d.major}:{d.minor}, {d.mode:04o})')
        try:
            os.mknod(target, kind | d.mode, os.makedev(d.major, d.minor))
        except OSError as e:
            raise StepError(f"create device {d.path}", e.errno or 0, e.strerror or "") from e
        os.chmod(target, d.mode)
        os.chown(target, d.uid, d.gid)


def _dev_symlinks(plan) -> None:
    links = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"),
             ("/proc/self/fd/2", "/dev/stderr")]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    has_pts = any(m.dest == "/dev/pts" for m in plan.mounts)
    if has_pts:
        links.append(("pts/ptmx", "/dev/ptmx"))
    for src, dst in links:
        target = _target(plan, dst)
        if os.path.lexists(target):
            if dst == "/dev/ptmx":
                os.unlink(target)
            else:
                continue
        sc.record(f'symlink("{src}", "{target}")')
        os.symlink(src, target)


def _oom_score_adj(value: int) -> None:
    sc.record(f'write("/proc/self/oom_score_adj", "{value}")')
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write(str(value))


def _pivot_root(plan) -> None:
    # runc's sequence: pivot_root(".", ".") stacks the old root on top of the new one at "/";
    # the old root is then made a slave (so unmounting it does not reach the host) and detached.
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(plan.rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.record(f'fchdir("{plan.rootfs}")')
        os.fchdir(new)
        sc.pivot_root(".", ".")
        sc.record("fchdir(old root)")
        os.fchdir(old)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None)
        sc.umount2(".", sc.MNT_DETACH)
        sc.record('chdir("/")')
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def _chroot(plan) -> None:
    sc.record(f'chdir("{plan.rootfs}")')
    os.chdir(plan.rootfs)
    sc.mount(plan.rootfs, "/", None, sc.MS_MOVE, None)
    _plain_chroot(plan, ".")


def _plain_chroot(plan, where: str | None = None) -> None:
    where = where or plan.rootfs
    sc.record(f'chroot("{where}")')
    os.chroot(where)
    os.chdir("/")


def _mask_paths(paths: list[str]) -> None:
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", p, "tmpfs", sc.MS_RDONLY, None)
        else:
            sc.mount("/dev/null", p, None, sc.MS_BIND, None)


def _readonly_paths(paths: list[str]) -> None:
    for p in paths:
        try:
            sc.mount(p, p, None, sc.MS_BIND | sc.MS_REC, None)
        except FileNotFoundError:
            sc.record(f"    = ENOENT: {p} does not exist here, skipped")
            continue
        sc.mount(None, p, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC | _locked_flags(p), None)


def _sysctl(values: dict[str, str]) -> None:
    for key, value in values.items():
        path = "/proc/sys/" + key.replace(".", "/")
        sc.record(f'write("{path}", "{value}")')
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise StepError(f"set sysctl {key}", e.errno or 0, e.strerror or "") from e


def _readonly_root() -> None:
    _bind_remount("/", sc.MS_RDONLY)


def _keyring(cid: str) -> None:
    try:
        sc.join_session_keyring(f"_ses.{cid}"[:255])
    except OSError as e:
        if e.errno not in (errnomod.ENOSYS, errnomod.EPERM, errnomod.EACCES):
            raise


def _rlimits(rlimits) -> None:
    for name, res, soft, hard in rlimits:
        sc.record(f"setrlimit({name}, {{soft={soft}, hard={hard}}})")
        try:
            resource.setrlimit(res, (soft, hard))
        except (OSError, ValueError) as e:
            cur = resource.getrlimit(res)[1]
            raise StepError(
                f"set rlimit {name}", errnomod.EPERM,
                f"cannot set hard limit {hard if hard != -1 else 'unlimited'} (current hard limit "
                f"{cur if cur != -1 else 'unlimited'}): raising a hard limit needs CAP_SYS_RESOURCE",
            ) from e


def _prepare_cwd(cwd: str) -> None:
    if not os.path.isdir(cwd):
        _mkdir_p(cwd)


# ---- hooks (run by the init itself: createContainer, startContainer) ------------------------------
def _run_hook(h, state_json: bytes) -> None:
    sc.record(f'fork(); execve("{h.path}", {h.args!r}, ...)')
    hooksmod.run_hook(h, state_json)


# ==================================================================================================
# exec: a new process in a running container
# ==================================================================================================
def exec_stage1(xp, sync_fd: int) -> None:
    """Stage 1 of ``nk-runtime exec``: made non-dumpable, opens every namespace of the container's
    init, waits until the runtime has put it in the container's cgroups, joins them (setns: user
    first) and forks the process that will exec (a pid namespace applies to children only)."""
    chan = Channel(sync_fd)
    try:
        reset_signals()
        # Before entering the container: a non-dumpable process cannot be ptrace'd, and its
        # /proc/<pid>/exe and fds cannot be opened, by the container's processes (ptrace(2)
        # "PTRACE_MODE_READ"), so nothing of the runtime leaks in while it sits there.
        sc.prctl(sc.PR_SET_DUMPABLE, 0, what="prctl(PR_SET_DUMPABLE, 0)")
        os.umask(0o022)
        steps = Steps(chan, xp.explain)
        fds = []
        for nstype, path in xp.join:
            fds.append((nstype, path, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
        chan.expect("Go")

        def join():
            for nstype, path, fd in fds:
                sc.setns(fd, sc.NAMESPACES[nstype][0], f'"{path}"')
                os.close(fd)

        steps.run("join the container's namespaces", join)
        _fork_and_report(chan, "fork the process: host pid {pid}", lambda: exec_stage2(xp, chan, steps))
        os._exit(0)
    except BaseException as e:  # noqa: BLE001
        _fail(chan, e)
        os._exit(EXIT_SETUP_FAILED)


def exec_stage2(xp, chan: Channel, steps: Steps) -> None:
    """The exec'd process before execve; a successful execve closes the (close-on-exec) sync
    socket, which the runtime reads as success; a failure is sent as a ``Fail`` message."""
    try:
        chan.expect("Go")
        p = xp.process
        if p.terminal:
            def console():
                sc.record("setsid()")
                os.setsid()
                master, slave, _path = ttymod.open_pty(p.console_size)
                ttymod.send_fd(xp.console_fd, master, "/dev/ptmx")
                os.close(master)
                os.close(xp.console_fd)
                ttymod.become_controlling(slave)
                if slave > 2:
                    os.close(slave)

            steps.run("create a terminal", console)
        if p.rlimits:
            steps.run("set rlimits", _rlimits, p.rlimits)
        if p.oom_score_adj is not None:
            steps.run("set oom_score_adj", _oom_score_adj, p.oom_score_adj)
        exec_process(p)
    except BaseException as e:  # noqa: BLE001
        _fail(chan, e)
        os._exit(EXIT_EXEC_FAILED)


# ==================================================================================================
# The last steps: identity, capabilities, seccomp, execve (shared with exec)
# ==================================================================================================
def lookup(argv0: str, env: list[str]) -> str:
    """Resolve ``argv0`` like execvp(3) through ``PATH`` from ``env`` (default PATH if unset).

    Raises:
        StepError: ``exec: "<name>": executable file not found in $PATH`` (runc's text, which
            podman maps to exit code 127) or a stat error for a path with a slash.
    """
    if "/" in argv0:
        if not os.path.exists(argv0):
            raise StepError("exec", errnomod.ENOENT, f'exec: "{argv0}": stat {argv0}: no such file or directory')
        return argv0
    path = next((e[5:] for e in env if e.startswith("PATH=")), None)
    if path is None:
        path = DEFAULT_PATH
    for d in path.split(":"):
        cand = os.path.join(d or ".", argv0)
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return cand
    raise StepError("exec", errnomod.ENOENT, f'exec: "{argv0}": executable file not found in $PATH')


def _refuse_runtime_binary(path: str, argv0: str) -> None:
    """Refuse a script whose interpreter is a /proc magic link (``#!/proc/self/exe``): execve
    would run the runtime's own interpreter inside the container, where it could be opened and
    overwritten once it exits (CVE-2019-5736)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return
    if not head.startswith(b"#!"):
        return
    interp = head[2:].split(b"\n", 1)[0].strip().split()[0:1]
    if not interp:
        return
    cur = interp[0].decode(errors="replace")
    for _ in range(40):
        if cur.startswith("/proc/"):
            raise StepError("exec", errnomod.EACCES, f'exec: "{argv0}": refusing interpreter {cur}: it would run the runtime\'s own binary inside the container')
        try:
            target = os.readlink(cur)
        except OSError:
            return
        cur = target if target.startswith("/") else os.path.join(os.path.dirname(cur), target)


def _home_env(p) -> list[str]:
    env = list(p.env)
    if any(e.startswith("HOME=") for e in env):
        return env
    home = "/"
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(p.uid):
                    home = parts[5] or "/"
                    break
    except OSError:
        pass
    return env + [f"HOME={home}"]


def finalize_identity(p) -> None:
    """Switch to the process's groups, gid and uid keeping the capabilities it asks for, then set
    them exactly (capabilities(7) "Effect of user ID changes on capabilities")."""
    bounding, effective, inheritable, permitted, ambient = p.caps or (0, 0, 0, 0, 0)
    last = p.last_cap
    if p.caps is not None:
        for cap in range(last + 1):
            if not bounding >> cap & 1:
                sc.prctl(sc.PR_CAPBSET_DROP, cap)
        sc.record(f"prctl(PR_CAPBSET_DROP, ...) keeping bounding={bounding:#x}")
    sc.prctl(sc.PR_SET_KEEPCAPS, 1, what="prctl(PR_SET_KEEPCAPS, 1)")
    try:
        sc.record(f"setgroups({p.additional_gids})")
        os.setgroups(p.additional_gids)
    except PermissionError:
        if p.additional_gids:
            raise
    sc.record(f"setresgid({p.gid}, {p.gid}, {p.gid}); setresuid({p.uid}, {p.uid}, {p.uid})")
    os.setresgid(p.gid, p.gid, p.gid)
    os.setresuid(p.uid, p.uid, p.uid)
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    if p.caps is not None:
        sc.capset(effective, permitted, inheritable)
        for cap in range(last + 1):
            if ambient >> cap & 1:
                try:
                    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, cap)
                except OSError:
                    pass  # runc ignores ambient raise failures (cap not permitted+inheritable)


def exec_process(p) -> None:
    """Apply the process's settings (a :class:`~.plan.ProcessPlan`) and ``execve`` it. Never
    returns; raises :class:`StepError` on failure (the caller reports it: through the exec fifo
    for the init, through the sync socket for exec)."""
    env = _home_env(p)
    if any(e.startswith("LISTEN_FDS=") for e in env):
        # sd_listen_fds(3): the fds are for this process; its pid in its own pid namespace.
        env = [e for e in env if not e.startswith("LISTEN_PID=")] + [f"LISTEN_PID={os.getpid()}"]
    path = lookup(p.args[0], env)
    _refuse_runtime_binary(path, p.args[0])
    if p.personality is not None:
        sc.personality(p.personality)
    for what, value, apply in (("process.scheduler", p.scheduler, _scheduler), ("process.ioPriority", p.io_priority, _ioprio)):
        if value is None:
            continue
        try:
            apply(value)
        except OSError as e:
            raise StepError(what, e.errno or 0, f"{what}: {e.strerror}") from e
    if p.seccomp_bpf is not None and not p.no_new_privs:
        # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it before dropping it.
        sc.seccomp_filter(p.seccomp_bpf, p.seccomp_flags)
    finalize_identity(p)
    try:
        sc.record(f'chdir("{p.cwd}")')
        os.chdir(p.cwd)
    except OSError as e:
        raise StepError("chdir", e.errno or 0, f"chdir to cwd {p.cwd!r}: {e.strerror}") from e
    os.umask(0o022 if p.umask is None else p.umask)
    _exec_labels(p)
    if p.no_new_privs:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1, what="prctl(PR_SET_NO_NEW_PRIVS, 1)")
    if p.seccomp_bpf is not None and p.no_new_privs:
        sc.seccomp_filter(p.seccomp_bpf, p.seccomp_flags)
    try:
        os.execve(path, p.args, _env_dict(env))
    except OSError as e:
        raise StepError("exec", e.errno or 0, f'exec: "{p.args[0]}": {e.strerror.lower() if e.strerror else e}') from e


def _exec_labels(p) -> None:
    """Ask the LSM to switch labels at the coming execve, as runc does: AppArmor through
    ``/proc/self/attr/apparmor/exec`` (``exec <profile>``, or the older ``/proc/self/attr/exec``),
    SELinux through ``/proc/self/attr/exec`` (proc(5) "/proc/pid/attr"). The runtime refuses a
    config that asks for an LSM the host does not have, so these only run where it has one."""
    for value, paths in (
        (f"exec {p.apparmor}" if p.apparmor else None, ("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec")),
        (p.selinux_label, ("/proc/self/attr/exec",)),
    ):
        if not value:
            continue
        for path in paths:
            try:
                sc.record(f'write("{path}", "{value}")')
                with open(path, "w") as f:
                    f.write(value)
                break
            except FileNotFoundError:
                continue
            except OSError as e:
                raise StepError("set the LSM label", e.errno or 0, f"{path}: {value}: {e.strerror}") from e


def _env_dict(env: list[str]) -> dict[str, str]:
    out = {}
    for item in env:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def _scheduler(s) -> None:
    policies = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
    flags = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
             "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
             "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
    fl = 0
    for f in s.flags or []:
        fl |= flags[f]
    sc.sched_setattr(policies[s.policy], fl, s.nice or 0, s.priority or 0, s.runtime or 0, s.deadline or 0, s.period or 0)


def _ioprio(io) -> None:
    classes = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
    sc.ioprio_set(classes[io.class_], io.priority or 0)
