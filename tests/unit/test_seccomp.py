"""Tests for nano_sandbox.linux.seccomp: the ctypes layer over libseccomp.

Filters are loaded only in forked children, never in the pytest process. Loading a filter needs no
privilege when the child sets no_new_privs first (seccomp(2)), so these tests run without root;
the few that need CAP_SYS_ADMIN are marked ``root`` and skipped otherwise.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import select
import signal
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nano_sandbox.errors import NkError
from nano_sandbox.linux import seccomp

pytestmark = pytest.mark.skipif(not seccomp.available(), reason="libseccomp.so.2 not installed")

PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.personality.argtypes = [ctypes.c_ulong]  # as glibc declares it: seccomp sees all 64 bits


def libc_call(name: str, *args: Any) -> int:
    """Call a libc function; return 0 on success or the errno it failed with."""
    ctypes.set_errno(0)
    rc = getattr(_libc, name)(*args)
    return ctypes.get_errno() if rc == -1 else 0


def has_cap_sys_admin() -> bool:
    with open("/proc/self/status") as f:
        cap_eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(cap_eff & (1 << 21))


def set_no_new_privs() -> None:
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


#: A child that has not closed its pipe by then is killed and the test fails (never hang pytest).
CHILD_TIMEOUT = 30.0

_report_fd = -1


def report_before_exec(obj: Any) -> None:
    """In an :func:`in_child` body that will exec: send the result now (the pipe is O_CLOEXEC)."""
    os.write(_report_fd, json.dumps({"ok": obj}).encode())


def in_child(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Run ``fn`` in a forked child; return (exit code or -signal, JSON result or error dict).

    The child reports ``fn()``'s result as ``{"ok": ...}`` JSON through a pipe and ``_exit``s 0; on
    an exception it reports ``{"exc": ...}`` and exits 99. A body that execs reports with
    :func:`report_before_exec`; the exit code is then the exec'd program's.
    """
    global _report_fd
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 100
        try:
            os.close(r)
            _report_fd = w
            out = fn()
            os.write(w, json.dumps({"ok": out}).encode())
            code = 0
        except BaseException as e:
            try:
                os.write(w, json.dumps({"exc": repr(e), "tb": traceback.format_exc()}).encode())
            except BaseException:
                pass
            code = 99
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)  # our own child, by PID
                os.waitpid(pid, 0)
                pytest.fail(f"child {pid} still running after {CHILD_TIMEOUT}s: killed")
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    return os.waitstatus_to_exitcode(status), (json.loads(data) if data else None)


def load_then(flt: seccomp.Filter, probe: Callable[[], Any], nnp: bool = True) -> Callable[[], Any]:
    """A child body: set no_new_privs (unless told not to), load ``flt``, return ``probe()``."""

    def body() -> Any:
        if nnp:
            set_no_new_privs()
        flt.load()
        return probe()

    return body


def errno_of(fn: Callable[[], Any]) -> int:
    """Call ``fn``; return 0 if it succeeded, else the OSError's errno."""
    try:
        fn()
    except OSError as e:
        return e.errno or -1
    return 0


def getcwd_profile(action: str = "SCMP_ACT_ERRNO", **extra: Any) -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": action, **extra}],
    }


def build_err(profile: Any) -> seccomp.SeccompError:
    with pytest.raises(seccomp.SeccompError) as ei:
        seccomp.build(profile)
    return ei.value


# --------------------------------------------------------------------------------------------------
# Library basics
# --------------------------------------------------------------------------------------------------


def test_version_and_available() -> None:
    assert seccomp.available()
    major, minor, micro = seccomp.version()
    assert (major, minor) >= (2, 4)
    assert all(isinstance(x, int) for x in (major, minor, micro))


def test_features_lists() -> None:
    actions = seccomp.supported_actions()
    assert "SCMP_ACT_ERRNO" in actions and "SCMP_ACT_ALLOW" in actions
    assert "SCMP_ACT_NOTIFY" not in actions
    assert seccomp.supported_operators() == [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ]
    archs = seccomp.supported_archs()
    assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_S390X"} <= set(archs)
    flags = seccomp.supported_flags()
    assert "SECCOMP_FILTER_FLAG_TSYNC" in flags  # kernel >= 3.17
    assert "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" not in flags


def test_unavailable_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seccomp, "_LIBNAME", "libnk-no-such-seccomp.so.9")
    monkeypatch.setattr(seccomp, "_lib", None)
    monkeypatch.setattr(seccomp, "_lib_error", None)
    assert not seccomp.available()
    assert seccomp.supported_archs() == [] and seccomp.supported_flags() == []
    with pytest.raises(OSError):
        seccomp.version()
    err = build_err(getcwd_profile())
    assert str(err).startswith("linux.seccomp: seccomp is not available")
    # validation still happens first, without the library
    assert build_err({"defaultAction": "SCMP_ACT_FOO"}).path == "linux.seccomp.defaultAction"


def test_pytest_process_is_never_filtered() -> None:
    # Guard for the whole module: every load happens in a child.
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    assert status["Seccomp"].strip() == "0"


# --------------------------------------------------------------------------------------------------
# Actions, observed in a child
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ret", [errno.EPERM, errno.ENOSYS])
def test_errno_action_getcwd(ret: int) -> None:
    flt = seccomp.build(getcwd_profile(errnoRet=ret))
    assert flt.rules == 1 and flt.skipped == [] and flt.default_action == "SCMP_ACT_ALLOW"
    code, out = in_child(load_then(flt, lambda: [errno_of(os.getcwd), errno_of(os.getpid)]))
    assert code == 0, out
    assert out["ok"] == [ret, 0]


def test_errno_action_raises_permission_error_in_child() -> None:
    flt = seccomp.build(getcwd_profile(errnoRet=1))

    def probe() -> str:
        try:
            os.getcwd()
        except PermissionError as e:
            return f"PermissionError {e.errno}"
        return "no error"

    assert in_child(load_then(flt, probe)) == (0, {"ok": "PermissionError 1"})


def test_errno_defaults_to_eperm() -> None:
    flt = seccomp.build(getcwd_profile())
    assert in_child(load_then(flt, lambda: errno_of(os.getcwd))) == (0, {"ok": errno.EPERM})


def test_default_errno_ret_defaults_to_eperm() -> None:
    flt = seccomp.build(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ALLOW"}],
        }
    )
    assert flt.default_action_value == 0x00050000 | errno.EPERM
    assert flt.rules == 1


def test_trace_without_tracer_gives_enosys() -> None:
    # seccomp(2): SECCOMP_RET_TRACE with no tracer attached fails the call with ENOSYS.
    flt = seccomp.build(getcwd_profile("SCMP_ACT_TRACE"))
    assert in_child(load_then(flt, lambda: errno_of(os.getcwd))) == (0, {"ok": errno.ENOSYS})


def test_log_action_allows() -> None:
    flt = seccomp.build(getcwd_profile("SCMP_ACT_LOG"))
    code, out = in_child(load_then(flt, lambda: os.getcwd()))
    assert code == 0 and out["ok"] == os.getcwd()


@pytest.mark.parametrize(
    "action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"]
)
def test_killing_actions_deliver_sigsys(action: str) -> None:
    flt = seccomp.build(getcwd_profile(action))
    code, out = in_child(load_then(flt, lambda: os.getcwd()))
    assert code == -31, out  # SIGSYS (KILL_THREAD on the only thread ends the process too)


# --------------------------------------------------------------------------------------------------
# A realistic allow-list profile (default ERRNO/ENOSYS), then execve
# --------------------------------------------------------------------------------------------------

# Close to moby's profiles/seccomp/default.json unconditional allow list: it names syscalls of
# other architectures and of kernels newer than libseccomp 2.5.4 knows (those get skipped).
DOCKER_ALLOW = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid
getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup
io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr
lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat
mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl
msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free
pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease
pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv
recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2
restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64
send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid
setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown
sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64
statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
""".split()


def docker_like_profile() -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.ENOSYS,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        if platform.machine() == "x86_64"
        else [],
        "syscalls": [
            {"names": DOCKER_ALLOW, "action": "SCMP_ACT_ALLOW"},
            {  # personality: only the harmless domains
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {"index": 0, "value": v, "op": "SCMP_CMP_EQ"}
                    for v in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF)
                ],
            },
            {  # clone without namespace flags (moby: mask 0x7E020000 must be 0)
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
                ],
            },
            {  # socket, except AF_VSOCK (40)
                "names": ["socket"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}],
            },
            {"names": ["arch_prctl", "modify_ldt"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
        ],
    }


def test_docker_like_profile_runs_python_and_execs_true(tmp_path: Any) -> None:
    profile = docker_like_profile()
    flt = seccomp.build(profile)
    assert flt.rules > 300
    assert set(flt.skipped) <= set(DOCKER_ALLOW)
    assert flt.redundant == 1  # clone3 → ERRNO(ENOSYS) equals the default action
    assert flt.export_bpf_len() > 0
    target = str(tmp_path).encode()

    def body() -> None:
        set_no_new_privs()
        flt.load()
        pid = os.fork()  # clone(SIGCHLD|...) passes the MASKED_EQ rule
        if pid == 0:
            os._exit(7)
        _, st_ = os.waitpid(pid, 0)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.close()
        report = {
            "cwd": os.getcwd(),
            "fork_status": os.waitstatus_to_exitcode(st_),
            "unshare": libc_call("unshare", CLONE_NEWUTS),
            "mount": libc_call("mount", b"none", target, b"tmpfs", 0, None),
            "personality_bad": libc_call("personality", 0x0400000),  # READ_IMPLIES_EXEC
            "vsock": errno_of(lambda: socket.socket(40, socket.SOCK_STREAM)),
        }
        report_before_exec(report)
        os.execv("/bin/true", ["true"])

    code, out = in_child(body)
    assert code == 0, out  # /bin/true ran under the filter and exited 0
    assert out["ok"] == {
        "cwd": os.getcwd(),
        "fork_status": 7,
        "unshare": errno.ENOSYS,
        "mount": errno.ENOSYS,
        "personality_bad": errno.ENOSYS,
        "vsock": errno.ENOSYS,
    }


def test_blocked_exec_fails_with_default_errno() -> None:
    profile = docker_like_profile()
    profile["syscalls"][0]["names"] = [n for n in DOCKER_ALLOW if n not in ("execve", "execveat")]
    flt = seccomp.build(profile)
    code, out = in_child(load_then(flt, lambda: errno_of(lambda: os.execv("/bin/true", ["true"]))))
    assert (code, out) == (0, {"ok": errno.ENOSYS})


# --------------------------------------------------------------------------------------------------
# Argument comparisons
# --------------------------------------------------------------------------------------------------


def socket_errnos() -> dict[str, int]:
    def mk(fam: int, typ: int) -> Callable[[], None]:
        return lambda: socket.socket(fam, typ).close()

    return {
        "inet_stream": errno_of(mk(socket.AF_INET, socket.SOCK_STREAM)),
        "inet_dgram": errno_of(mk(socket.AF_INET, socket.SOCK_DGRAM)),
        "unix_stream": errno_of(mk(socket.AF_UNIX, socket.SOCK_STREAM)),
        "unix_dgram": errno_of(mk(socket.AF_UNIX, socket.SOCK_DGRAM)),
    }


def socket_profile(args: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": args}
        ],
    }


def test_arg_eq_blocks_only_matching_calls() -> None:
    flt = seccomp.build(
        socket_profile([{"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"}])
    )
    code, out = in_child(load_then(flt, socket_errnos))
    assert code == 0, out
    assert out["ok"] == {"inet_stream": 13, "inet_dgram": 13, "unix_stream": 0, "unix_dgram": 0}


def test_arg_masked_eq_value_is_mask_value_two_is_datum() -> None:
    # Python passes SOCK_CLOEXEC in the type argument: only a mask isolates the socket type.
    flt = seccomp.build(
        socket_profile(
            [{"index": 1, "value": 0xF, "valueTwo": socket.SOCK_DGRAM, "op": "SCMP_CMP_MASKED_EQ"}]
        )
    )
    code, out = in_child(load_then(flt, socket_errnos))
    assert code == 0, out
    assert out["ok"] == {"inet_stream": 0, "inet_dgram": 13, "unix_stream": 0, "unix_dgram": 13}


def test_args_on_different_indexes_are_anded() -> None:
    flt = seccomp.build(
        socket_profile(
            [
                {"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"},
                {
                    "index": 1,
                    "value": 0xF,
                    "valueTwo": socket.SOCK_DGRAM,
                    "op": "SCMP_CMP_MASKED_EQ",
                },
            ]
        )
    )
    assert flt.rules == 1
    code, out = in_child(load_then(flt, socket_errnos))
    assert code == 0, out
    assert out["ok"] == {"inet_stream": 0, "inet_dgram": 13, "unix_stream": 0, "unix_dgram": 0}


def test_args_on_same_index_become_separate_rules_ored() -> None:
    # runc: same argument index twice → one rule per comparison.
    flt = seccomp.build(
        socket_profile(
            [
                {"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": socket.AF_UNIX, "op": "SCMP_CMP_EQ"},
                {
                    "index": 1,
                    "value": 0xF,
                    "valueTwo": socket.SOCK_DGRAM,
                    "op": "SCMP_CMP_MASKED_EQ",
                },
            ]
        )
    )
    assert flt.rules == 3
    code, out = in_child(load_then(flt, socket_errnos))
    assert code == 0, out
    assert out["ok"] == {"inet_stream": 13, "inet_dgram": 13, "unix_stream": 13, "unix_dgram": 13}


def test_arg_personality_ffffffff() -> None:
    # personality(0xffffffff) queries the persona; block just that query.
    flt = seccomp.build(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 22,
                    "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}],
                }
            ],
        }
    )

    def probe() -> list[int]:
        return [libc_call("personality", 0xFFFFFFFF), libc_call("personality", 0)]

    assert in_child(load_then(flt, probe)) == (0, {"ok": [22, 0]})


@pytest.mark.parametrize(
    ("op", "value", "blocked"),
    [
        ("SCMP_CMP_NE", 1, [0, 2]),
        ("SCMP_CMP_LT", 1, [0]),
        ("SCMP_CMP_LE", 1, [0, 1]),
        ("SCMP_CMP_GE", 1, [1, 2]),
        ("SCMP_CMP_GT", 1, [2]),
    ],
)
def test_ordering_operators(op: str, value: int, blocked: list[int]) -> None:
    # fcntl(fd, F_GETFD) on the open fds 0, 1, 2: an error can only come from the filter.
    flt = seccomp.build(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["fcntl"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 42,
                    "args": [{"index": 0, "value": value, "op": op}],
                }
            ],
        }
    )
    code, out = in_child(load_then(flt, lambda: [libc_call("fcntl", fd, 1) for fd in (0, 1, 2)]))
    assert code == 0, out
    assert out["ok"] == [42 if fd in blocked else 0 for fd in (0, 1, 2)]


# --------------------------------------------------------------------------------------------------
# Skips, attributes, flags, architectures
# --------------------------------------------------------------------------------------------------


def test_unknown_syscall_names_are_skipped() -> None:
    flt = seccomp.build(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["nk_no_such_call", "getcwd", "nk_no_such_call"],
                    "action": "SCMP_ACT_ERRNO",
                },
                {"names": ["nk_other_missing"], "action": "SCMP_ACT_KILL"},
            ],
        }
    )
    assert flt.skipped == ["nk_no_such_call", "nk_other_missing"]
    assert flt.rules == 1
    assert in_child(load_then(flt, lambda: errno_of(os.getcwd))) == (0, {"ok": errno.EPERM})


def test_rules_equal_to_default_are_skipped() -> None:
    flt = seccomp.build(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "syscalls": [
                {"names": ["getcwd", "chdir"], "action": "SCMP_ACT_ERRNO"},  # EPERM = default
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},  # differs
            ],
        }
    )
    assert (flt.rules, flt.redundant) == (1, 2)


def test_export_bpf_and_pfc() -> None:
    flt = seccomp.build(getcwd_profile(errnoRet=5))
    n = flt.export_bpf_len()
    assert n > 0 and n % 8 == 0  # struct sock_filter is 8 bytes
    assert flt.export_bpf()[:8] and len(flt.export_bpf()) == n
    pfc = flt.export_pfc()
    assert "getcwd" in pfc and "ERRNO(5)" in pfc


def test_large_profile_export_does_not_block() -> None:
    flt = seccomp.build(docker_like_profile())
    assert flt.export_bpf_len() > 2000


def test_no_new_privs_is_left_to_the_caller() -> None:
    """libseccomp would set no_new_privs on load by default; build() turns that off."""
    flt = seccomp.build(getcwd_profile())

    def probe() -> str:
        with open("/proc/self/status") as f:
            return next(line.split()[1] for line in f if line.startswith("NoNewPrivs:"))

    if has_cap_sys_admin():
        assert in_child(load_then(flt, probe, nnp=False)) == (0, {"ok": "0"})
    assert in_child(load_then(flt, probe, nnp=True)) == (0, {"ok": "1"})


def test_load_without_nnp_or_cap_sys_admin_is_eacces() -> None:
    flt = seccomp.build(getcwd_profile())

    def body() -> list[Any]:
        if has_cap_sys_admin():  # root: become nobody, which drops every capability
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)  # drops all capabilities
        try:
            flt.load()
        except OSError as e:
            return [e.errno, e.strerror]
        return ["loaded"]

    code, out = in_child(body)
    assert code == 0, out
    assert out["ok"] == [errno.EACCES, "seccomp_load: Permission denied"]


@pytest.mark.parametrize(
    "flag",
    ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
)
def test_flags_load(flag: str) -> None:
    if flag not in seccomp.supported_flags():
        pytest.skip(f"{flag} not supported here")
    flt = seccomp.build({**getcwd_profile(), "flags": [flag, flag]})
    assert flt.flags == [flag]
    assert in_child(load_then(flt, lambda: errno_of(os.getcwd))) == (0, {"ok": errno.EPERM})


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86 family arches")
def test_extra_architectures_grow_the_filter() -> None:
    base = seccomp.build(getcwd_profile())
    multi = seccomp.build(
        {
            **getcwd_profile(),
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        }
    )
    assert multi.architectures == ["x86", "x32"]  # native x86_64 is already present
    assert multi.export_bpf_len() > base.export_bpf_len()
    assert "x32" in multi.export_pfc() or "1073741886" in multi.export_pfc()
    assert in_child(load_then(multi, lambda: errno_of(os.getcwd))) == (0, {"ok": errno.EPERM})


def test_release_is_idempotent_and_final() -> None:
    flt = seccomp.build(getcwd_profile())
    with flt:
        assert flt.export_bpf_len() > 0
    flt.release()
    with pytest.raises(ValueError):
        flt.load()
    with pytest.raises(ValueError):
        flt.export_bpf_len()
    assert "released" in repr(flt)


# --------------------------------------------------------------------------------------------------
# Errors: path + message
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_FOO"}],
            },
            'linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_FOO"',
        ),
        (
            {"defaultAction": "SCMP_ACT_FOO"},
            'linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"',
        ),
        ({}, "linux.seccomp.defaultAction: is required"),
        ([], "linux.seccomp: expected an object"),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"],
            },
            'linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_VAX"',
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]},
            'linux.seccomp.architectures[0]: unknown architecture "x86_64"',
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]},
            'linux.seccomp.flags[0]: unknown seccomp flag "SECCOMP_FILTER_FLAG_BOGUS"',
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            },
            "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                    {
                        "names": ["getcwd"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}],
                    },
                ],
            },
            'linux.seccomp.syscalls[1].args[0].op: unknown operator "SCMP_CMP_XX"',
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["getcwd"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "linux.seccomp.syscalls[0].args[0].index: expected a syscall argument index 0..5",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["getcwd"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "linux.seccomp.syscalls[0].args[0].value: expected a uint64, got -1",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["getcwd"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [
                            {
                                "index": 0,
                                "value": 1,
                                "valueTwo": 1 << 64,
                                "op": "SCMP_CMP_MASKED_EQ",
                            }
                        ],
                    }
                ],
            },
            "linux.seccomp.syscalls[0].args[0].valueTwo: expected a uint64",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}],
            },
            "linux.seccomp.syscalls[0].names: must contain at least one syscall name",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read", ""], "action": "SCMP_ACT_ERRNO"}],
            },
            "linux.seccomp.syscalls[0].names[1]: expected a non-empty string",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_KILL", "errnoRet": 1}],
            },
            "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL does not take an errno",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
            "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW does not take an errno",
        ),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000},
            "linux.seccomp.defaultErrnoRet: expected an integer in 0..4094, got 70000",
        ),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4095},
            "linux.seccomp.defaultErrnoRet: expected an integer in 0..4094, got 4095",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_TRACE", "errnoRet": 65536}],
            },
            "linux.seccomp.syscalls[0].errnoRet: expected an integer in 0..65535, got 65536",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": True}],
            },
            "linux.seccomp.syscalls[0].errnoRet: expected an integer",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {"names": ["getcwd"]}},
            "linux.seccomp.syscalls: expected an array, got dict",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"},
            "linux.seccomp.listenerMetadata: must not be set without listenerPath",
        ),
    ],
)
def test_errors_name_the_path(profile: Any, expected: str) -> None:
    err = build_err(profile)
    assert str(err).startswith(expected), str(err)
    assert isinstance(err, NkError) and err.exit_code == 1
    assert str(err) == f"{err.path}: {err.message}"


def test_notify_is_reported_as_unsupported() -> None:
    err = build_err(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
            ],
        }
    )
    assert err.path == "linux.seccomp.syscalls[1].action"
    assert "SCMP_ACT_NOTIFY is not supported" in str(err)
    err = build_err({"defaultAction": "SCMP_ACT_NOTIFY"})
    assert err.path == "linux.seccomp.defaultAction" and "not supported" in err.message


def test_listener_path_without_notify_is_ignored() -> None:
    # Spec: "If the SCMP_ACT_NOTIFY action is not used this value is ignored."
    flt = seccomp.build(
        {**getcwd_profile(), "listenerPath": "/run/agent.sock", "listenerMetadata": "m"}
    )
    assert flt.rules == 1


def test_custom_error_path_prefix() -> None:
    with pytest.raises(seccomp.SeccompError) as ei:
        seccomp.build({"defaultAction": 3}, path="profile")
    assert str(ei.value) == "profile.defaultAction: expected a string, got int"


# --------------------------------------------------------------------------------------------------
# Property: any errnoRet comes back as the child's errno
# --------------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ret=st.integers(min_value=1, max_value=4094))
def test_any_errno_ret_reaches_the_caller(ret: int) -> None:
    # Probe with libc fcntl(0, F_GETFD), not os.getcwd(): CPython retries getcwd on ERANGE with
    # ever larger buffers and glibc falls back to a userspace walk on ENAMETOOLONG, so some errnos
    # never reach the caller of getcwd (ERANGE even loops for minutes).
    flt = seccomp.build(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["fcntl"], "action": "SCMP_ACT_ERRNO", "errnoRet": ret}],
        }
    )
    try:
        assert in_child(load_then(flt, lambda: libc_call("fcntl", 0, 1))) == (0, {"ok": ret})
    finally:
        flt.release()
