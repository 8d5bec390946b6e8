"""ctypes wrappers for the system calls Python 3.11's ``os`` module lacks.

Every wrapper raises ``OSError(errno, strerror, path)`` on failure, naming the path or argument
involved, and records the call with its real arguments in :data:`RECORDER` when one is installed
(explain mode and the trace use this to show ``mount("proc", "/proc", "proc", MS_NOSUID|...)``).

Man pages: unshare(2), setns(2), mount(2), umount2(2), pivot_root(2), sethostname(2),
setdomainname(2), capget(2)/capset(2), prctl(2), personality(2), ioprio_set(2),
sched_setattr(2), keyctl(2), close_range(2).
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

# --- namespaces (sched.h) -------------------------------------------------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

#: OCI namespace type -> (clone flag, name of the file under /proc/<pid>/ns/)
NAMESPACES: dict[str, tuple[int, str]] = {
    "user": (CLONE_NEWUSER, "user"),
    "mount": (CLONE_NEWNS, "mnt"),
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

_CLONE_NAMES = [
    (CLONE_NEWUSER, "CLONE_NEWUSER"),
    (CLONE_NEWPID, "CLONE_NEWPID"),
    (CLONE_NEWNS, "CLONE_NEWNS"),
    (CLONE_NEWUTS, "CLONE_NEWUTS"),
    (CLONE_NEWIPC, "CLONE_NEWIPC"),
    (CLONE_NEWNET, "CLONE_NEWNET"),
    (CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
    (CLONE_NEWTIME, "CLONE_NEWTIME"),
]

# --- mount flags (sys/mount.h) --------------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

_MS_NAMES = [
    (MS_RDONLY, "MS_RDONLY"),
    (MS_NOSUID, "MS_NOSUID"),
    (MS_NODEV, "MS_NODEV"),
    (MS_NOEXEC, "MS_NOEXEC"),
    (MS_SYNCHRONOUS, "MS_SYNCHRONOUS"),
    (MS_REMOUNT, "MS_REMOUNT"),
    (MS_MANDLOCK, "MS_MANDLOCK"),
    (MS_DIRSYNC, "MS_DIRSYNC"),
    (MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"),
    (MS_NOATIME, "MS_NOATIME"),
    (MS_NODIRATIME, "MS_NODIRATIME"),
    (MS_BIND, "MS_BIND"),
    (MS_MOVE, "MS_MOVE"),
    (MS_REC, "MS_REC"),
    (MS_SILENT, "MS_SILENT"),
    (MS_POSIXACL, "MS_POSIXACL"),
    (MS_UNBINDABLE, "MS_UNBINDABLE"),
    (MS_PRIVATE, "MS_PRIVATE"),
    (MS_SLAVE, "MS_SLAVE"),
    (MS_SHARED, "MS_SHARED"),
    (MS_RELATIME, "MS_RELATIME"),
    (MS_I_VERSION, "MS_I_VERSION"),
    (MS_STRICTATIME, "MS_STRICTATIME"),
    (MS_LAZYTIME, "MS_LAZYTIME"),
]

# --- prctl (linux/prctl.h) ------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# --- syscall numbers not wrapped by glibc 2.36 ------------------------------------------------------
_MACHINE = os.uname().machine
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "ioprio_set": 251, "keyctl": 250, "sched_setattr": 314, "close_range": 436, "seccomp": 317},
    "aarch64": {"pivot_root": 41, "ioprio_set": 30, "keyctl": 219, "sched_setattr": 274, "close_range": 436, "seccomp": 277},
    "ppc64le": {"pivot_root": 203, "ioprio_set": 273, "keyctl": 271, "sched_setattr": 355, "close_range": 436, "seccomp": 358},
    "s390x": {"pivot_root": 217, "ioprio_set": 282, "keyctl": 280, "sched_setattr": 345, "close_range": 436, "seccomp": 348},
    "riscv64": {"pivot_root": 41, "ioprio_set": 30, "keyctl": 219, "sched_setattr": 274, "close_range": 436, "seccomp": 277},
}.get(_MACHINE, {})

#: seccomp(2) filter flags, by the names runtime-spec's ``linux.seccomp.flags`` uses.
SECCOMP_FILTER_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}


class Recorder:
    """Collects the system calls made while it is installed, as display strings.

    ``calls`` is a list of strings such as ``'mount("proc", "/proc", "proc", MS_NOSUID, NULL)'``.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []

    def take(self) -> list[str]:
        """Return the calls recorded so far and start a new list."""
        calls, self.calls = self.calls, []
        return calls


#: The active recorder (None: calls are not recorded; zero cost beyond one test).
RECORDER: Recorder | None = None


def record(call: str) -> None:
    """Record a call made outside this module (``os.chdir``, ``execve``...) for explain mode."""
    if RECORDER is not None:
        RECORDER.calls.append(call)


def flag_names(value: int, table: list[tuple[int, str]]) -> str:
    """Render a flag word as ``A|B|C`` using ``table``; ``0`` for none."""
    names = [n for bit, n in table if value & bit]
    rest = value & ~sum(bit for bit, _ in table)
    if rest:
        names.append(hex(rest))
    return "|".join(names) if names else "0"


def ms_flags(value: int) -> str:
    """Render mount(2) flags as ``MS_BIND|MS_REC``."""
    return flag_names(value, _MS_NAMES)


def clone_flags(value: int) -> str:
    """Render namespace clone flags as ``CLONE_NEWPID|CLONE_NEWNS``."""
    return flag_names(value, _CLONE_NAMES)


def _q(s: str | bytes | None) -> str:
    if s is None:
        return "NULL"
    if isinstance(s, bytes):
        s = s.decode(errors="replace")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _err(name: str, path: str | None = None) -> OSError:
    e = ctypes.get_errno()
    return OSError(e, f"{name}: {os.strerror(e)}", path)


def _b(s: str | bytes | None) -> bytes | None:
    if s is None or isinstance(s, bytes):
        return s
    return os.fsencode(s)


# --- namespaces -----------------------------------------------------------------------------------
def unshare(flags: int) -> None:
    """unshare(2): move this process into new namespaces given as CLONE_NEW* ``flags``."""
    if RECORDER is not None:
        RECORDER.calls.append(f"unshare({clone_flags(flags)})")
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        raise _err("unshare", clone_flags(flags))


def setns(fd: int, nstype: int = 0, what: str = "") -> None:
    """setns(2): join the namespace open at ``fd`` (``nstype`` 0 = any); ``what`` names it in errors."""
    if RECORDER is not None:
        RECORDER.calls.append(f"setns({what or fd}, {clone_flags(nstype)})")
    if _libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)) != 0:
        raise _err("setns", what or str(fd))


# --- mounts ---------------------------------------------------------------------------------------
def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    """mount(2). ``flags`` are MS_* bits; ``data`` the filesystem-specific option string."""
    if RECORDER is not None:
        RECORDER.calls.append(f"mount({_q(source)}, {_q(target)}, {_q(fstype)}, {ms_flags(flags)}, {_q(data)})")
    if _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)) != 0:
        raise _err("mount", target)


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2) with MNT_* ``flags`` (MNT_DETACH for a lazy unmount)."""
    if RECORDER is not None:
        RECORDER.calls.append(f"umount2({_q(target)}, {flag_names(flags, [(MNT_DETACH, 'MNT_DETACH'), (MNT_FORCE, 'MNT_FORCE')])})")
    if _libc.umount2(_b(target), ctypes.c_int(flags)) != 0:
        raise _err("umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2): make ``new_root`` the root of this mount namespace, old root at ``put_old``."""
    if RECORDER is not None:
        RECORDER.calls.append(f"pivot_root({_q(new_root)}, {_q(put_old)})")
    if _libc.syscall(ctypes.c_long(_SYSCALLS["pivot_root"]), _b(new_root), _b(put_old)) != 0:
        raise _err("pivot_root", new_root)


# --- identity ---------------------------------------------------------------------------------------
def sethostname(name: str) -> None:
    """sethostname(2) in the current UTS namespace."""
    if RECORDER is not None:
        RECORDER.calls.append(f"sethostname({_q(name)})")
    b = name.encode()
    if _libc.sethostname(b, ctypes.c_size_t(len(b))) != 0:
        raise _err("sethostname", name)


def setdomainname(name: str) -> None:
    """setdomainname(2) in the current UTS namespace."""
    if RECORDER is not None:
        RECORDER.calls.append(f"setdomainname({_q(name)})")
    b = name.encode()
    if _libc.setdomainname(b, ctypes.c_size_t(len(b))) != 0:
        raise _err("setdomainname", name)


# --- prctl and capabilities ---------------------------------------------------------------------------
def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0, what: str = "") -> int:
    """prctl(2); returns its non-negative result. ``what`` is a display name for explain mode."""
    if RECORDER is not None and what:
        RECORDER.calls.append(what)
    rc = _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4), ctypes.c_ulong(arg5))
    if rc < 0:
        raise _err("prctl", what or str(option))
    return rc


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capget() -> tuple[int, int, int]:
    """capget(2) for this thread: returns (effective, permitted, inheritable) as 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.capget(ctypes.byref(hdr), data) != 0:
        raise _err("capget")
    join = lambda f: getattr(data[0], f) | (getattr(data[1], f) << 32)  # noqa: E731
    return join("effective"), join("permitted"), join("inheritable")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for this thread with 64-bit capability masks (version 3 header)."""
    if RECORDER is not None:
        RECORDER.calls.append(f"capset(effective={effective:#x}, permitted={permitted:#x}, inheritable={inheritable:#x})")
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    if _libc.capset(ctypes.byref(hdr), data) != 0:
        raise _err("capset")


def personality(persona: int) -> None:
    """personality(2): set the execution domain (``0`` = PER_LINUX, ``8`` = PER_LINUX32)."""
    if RECORDER is not None:
        RECORDER.calls.append(f"personality({persona:#x})")
    if _libc.personality(ctypes.c_ulong(persona)) == -1:
        raise _err("personality")


def ioprio_set(ioclass: int, level: int) -> None:
    """ioprio_set(2) for this process: ``ioclass`` 1=RT, 2=BE, 3=IDLE, ``level`` 0..7."""
    value = (ioclass << 13) | level
    if RECORDER is not None:
        RECORDER.calls.append(f"ioprio_set(IOPRIO_WHO_PROCESS, 0, {value:#x})")
    if _libc.syscall(ctypes.c_long(_SYSCALLS["ioprio_set"]), ctypes.c_int(1), ctypes.c_int(0), ctypes.c_int(value)) != 0:
        raise _err("ioprio_set")


class _SchedAttr(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
    ]


def sched_setattr(policy: int, flags: int = 0, nice: int = 0, priority: int = 0, runtime: int = 0, deadline: int = 0, period: int = 0) -> None:
    """sched_setattr(2) for this thread; times in nanoseconds (SCHED_DEADLINE)."""
    attr = _SchedAttr(ctypes.sizeof(_SchedAttr), policy, flags, nice, priority, runtime, deadline, period)
    if RECORDER is not None:
        RECORDER.calls.append(f"sched_setattr(0, {{policy={policy}, flags={flags:#x}, nice={nice}, priority={priority}}}, 0)")
    if _libc.syscall(ctypes.c_long(_SYSCALLS["sched_setattr"]), ctypes.c_int(0), ctypes.byref(attr), ctypes.c_uint(0)) != 0:
        raise _err("sched_setattr")


def join_session_keyring(name: str | None = None) -> None:
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): give the container its own session keyring."""
    if RECORDER is not None:
        RECORDER.calls.append(f"keyctl(KEYCTL_JOIN_SESSION_KEYRING, {_q(name)})")
    if _libc.syscall(ctypes.c_long(_SYSCALLS["keyctl"]), ctypes.c_int(1), _b(name)) < 0:
        raise _err("keyctl(KEYCTL_JOIN_SESSION_KEYRING)")


MADV_DONTNEED = 4


def set_proctitle(title: str) -> None:
    """Make this process show as ``title`` in /proc/<pid>/cmdline and comm (prctl PR_SET_NAME):
    the argv area the kernel points at (``arg_start``..``arg_end``, fields 48-49 of
    /proc/self/stat) is overwritten in place, as setproctitle does. The container's init would
    otherwise show the runtime's whole command line, host paths included, to the container."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # stat fields 48, 49 (fields[0] is field 3)
    data = title.encode()[: max(0, end - start - 1)]
    ctypes.memset(start, 0, end - start)
    ctypes.memmove(start, data, len(data))
    _libc.prctl(ctypes.c_int(PR_SET_NAME), ctypes.c_char_p(title.encode()[:15]), 0, 0, 0)


def madvise(addr: int, length: int, advice: int) -> bool:
    """madvise(2) on ``[addr, addr+length)``; returns False (errno ignored) when refused."""
    return _libc.madvise(ctypes.c_void_p(addr), ctypes.c_size_t(length), ctypes.c_int(advice)) == 0


def malloc_trim(pad: int = 0) -> None:
    """malloc_trim(3): return free heap memory to the kernel."""
    _libc.malloc_trim(ctypes.c_size_t(pad))


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_filter(bpf: bytes, flags: int = 0) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): install a BPF program that libseccomp
    compiled (``struct sock_filter`` array, 8 bytes per instruction, as seccomp_export_bpf(3)
    writes it). Needs no_new_privs or CAP_SYS_ADMIN (seccomp(2))."""
    if RECORDER is not None:
        RECORDER.calls.append(f"seccomp(SECCOMP_SET_MODE_FILTER, {flags:#x}, {{len={len(bpf) // 8} instructions}})")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if _libc.syscall(ctypes.c_long(_SYSCALLS["seccomp"]), ctypes.c_uint(1), ctypes.c_uint(flags), ctypes.byref(prog)) != 0:
        raise _err("seccomp(SECCOMP_SET_MODE_FILTER)")


def close_range(first: int, last: int = 0xFFFFFFFF) -> None:
    """close_range(2): close every fd from ``first`` to ``last``; falls back to os.closerange."""
    nr = _SYSCALLS.get("close_range")
    if nr is not None and _libc.syscall(ctypes.c_long(nr), ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(0)) == 0:
        return
    os.closerange(first, min(last, 65536) + 1)
