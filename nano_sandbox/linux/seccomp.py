"""A thin ctypes layer over libseccomp, turning an OCI ``linux.seccomp`` profile into a filter.

The OCI runtime-spec ("config-linux.md", section *Seccomp*) describes a profile in libseccomp's own
vocabulary (``SCMP_ACT_*``, ``SCMP_CMP_*``, ``SCMP_ARCH_*``), so this module hands it to the C
library (``libseccomp.so.2``) through :mod:`ctypes` instead of generating BPF by hand. No Python
binding package is needed. The library is loaded lazily, on the first call that needs it, so
importing this module costs next to nothing (``ctypes`` is not even imported until then).

Typical use, mirroring runc's ``libcontainer/seccomp``::

    flt = seccomp.build(config["linux"]["seccomp"])   # parent: validate + compile (may raise)
    pid = os.fork()
    if pid == 0:
        ...                                          # child: set up the container
        flt.load()                                   # seccomp_load(3), right before execve
        os.execve(...)

Input is plain data (the profile as a ``dict`` with the spec's JSON field names), so this layer
does not depend on the config model's classes.

Behaviour follows runc where the spec leaves room:

* ``SCMP_ACT_KILL`` is ``SCMP_ACT_KILL_THREAD``; ``errnoRet`` / ``defaultErrnoRet`` default to
  ``EPERM`` for both ``SCMP_ACT_ERRNO`` and ``SCMP_ACT_TRACE``; giving one with any other action is
  an error (the spec: "When the action doesn't support an errno, the runtime MUST print and error
  and fail").
* syscall names libseccomp does not know are skipped (listed in :attr:`Filter.skipped`), not errors:
  profiles list syscalls of newer kernels and of other architectures.
* a rule whose action equals the default action is redundant and skipped (libseccomp refuses it
  with ``EACCES``).
* a rule whose ``args`` compare the same argument index twice is split into one rule per
  comparison (so the comparisons are OR-ed); otherwise all comparisons go into one rule (AND-ed).
  libseccomp refuses to AND two comparisons of the same argument (``EINVAL``), and runc ("Revert
  to old behavior") does the same split.
* two entries naming the same syscall with different actions are not an error: libseccomp keeps
  the first rule added (observed with 2.5.4; runc behaves the same, using the same library).
* for ``SCMP_CMP_MASKED_EQ``, ``value`` is the mask and ``valueTwo`` the datum compared against
  (``(arg & value) == valueTwo``), as runc passes them to libseccomp.
* libseccomp's own setting of ``no_new_privs`` on load is turned off (``SCMP_FLTATR_CTL_NNP`` = 0):
  the runtime sets it itself when ``process.noNewPrivileges`` asks for it, and otherwise loads the
  filter while it still holds ``CAP_SYS_ADMIN``.
* with more than 32 rules, libseccomp's binary-tree optimisation is enabled.
* ``SCMP_ACT_NOTIFY`` (user notification with ``listenerPath``) is not supported: it is reported
  as a :class:`SeccompError`; ``listenerPath`` alone is ignored, as the spec says it is when no
  rule uses ``SCMP_ACT_NOTIFY``.

Not done (unlike runc): runc patches the generated BPF so that syscalls newer than any named in the
profile return ``ENOSYS`` rather than the default errno (``libcontainer/seccomp/patchbpf``).

Man pages: seccomp_init(3), seccomp_arch_add(3), seccomp_attr_set(3), seccomp_rule_add(3),
seccomp_syscall_resolve_name(3), seccomp_load(3), seccomp_export_bpf(3), seccomp(2).
"""

from __future__ import annotations

import os

from nano_sandbox.errors import NkError

TYPE_CHECKING = False  # typing costs ~10 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "Filter",
    "SeccompError",
    "available",
    "build",
    "supported_actions",
    "supported_archs",
    "supported_flags",
    "supported_operators",
    "version",
]

#: The shared object loaded on first use (``ctypes.CDLL``).
_LIBNAME = "libseccomp.so.2"

_EPERM = 1
_EEXIST = 17

# --- action values (<seccomp.h>: SCMP_ACT_*; the kernel's SECCOMP_RET_* in seccomp(2)) -----------
#: name -> (action value without data, whether the action takes an errno in its low 16 bits)
_ACTIONS: dict[str, tuple[int, bool]] = {
    "SCMP_ACT_KILL": (0x00000000, False),  # = SCMP_ACT_KILL_THREAD
    "SCMP_ACT_KILL_PROCESS": (0x80000000, False),
    "SCMP_ACT_KILL_THREAD": (0x00000000, False),
    "SCMP_ACT_TRAP": (0x00030000, False),
    "SCMP_ACT_ERRNO": (0x00050000, True),
    "SCMP_ACT_TRACE": (0x7FF00000, True),
    "SCMP_ACT_ALLOW": (0x7FFF0000, False),
    "SCMP_ACT_LOG": (0x7FFC0000, False),
    "SCMP_ACT_NOTIFY": (0x7FC00000, False),
}
_NOTIFY = "SCMP_ACT_NOTIFY"
_NOTIFY_MSG = (
    "SCMP_ACT_NOTIFY is not supported (seccomp user notification to a listenerPath agent "
    "is not implemented)"
)

# --- comparison operators (<seccomp.h>: enum scmp_compare) ----------------------------------------
_OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# --- architectures: the spec's list (libseccomp v2.5.0) plus those libseccomp 2.6 added ----------
#: Every architecture name runtime-spec and libseccomp know (the config model decodes against it).
KNOWN_ARCHS: tuple[str, ...] = (
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
)
_ARCH_PREFIX = "SCMP_ARCH_"

# --- filter attributes (<seccomp.h>: enum scmp_filter_attr) --------------------------------------
_ATTR_CTL_NNP = 3
_ATTR_CTL_TSYNC = 4
_ATTR_CTL_LOG = 6
_ATTR_CTL_SSB = 7
_ATTR_CTL_OPTIMIZE = 8
_ATTR_API_SYSRAWRC = 9
_ATTR_CTL_WAITKILL = 10  # libseccomp >= 2.6 only

#: spec flag -> filter attribute set to 1 (seccomp(2) SECCOMP_FILTER_FLAG_* via seccomp_attr_set(3))
_FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": _ATTR_CTL_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": _ATTR_CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": _ATTR_CTL_SSB,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": _ATTR_CTL_WAITKILL,
}
_WAIT_KILLABLE = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"

#: runc enables the binary-tree optimisation above this many rules (libseccomp <= 2.5.4
#: misbehaves with it and zero rules).
_OPTIMIZE_ABOVE = 32

_NR_SCMP_ERROR = -1
_MAX_ERRNO = 4095
_MAX_ARGS = 6
_U64_MAX = (1 << 64) - 1


class SeccompError(NkError):
    """A seccomp profile cannot be turned into a filter.

    ``str(err)`` is ``"<path>: <message>"``, e.g.
    ``linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_FOO"``. As an
    :class:`~nano_sandbox.errors.NkError` the CLI prints it and exits 1.

    Attributes:
        path: JSON path of the field at fault (``linux.seccomp.syscalls[3].args[0].op``);
            ``linux.seccomp`` for the profile as a whole.
        message: what is wrong.
        errno: the errno libseccomp returned, when the error came from the library; else ``None``.
    """

    def __init__(self, path: str, message: str, errno: int | None = None) -> None:
        self.path = path
        self.message = message
        self.errno = errno
        super().__init__(f"{path}: {message}")

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


# --------------------------------------------------------------------------------------------------
# Loading the library
# --------------------------------------------------------------------------------------------------


class _Lib:
    """The loaded ``libseccomp.so.2`` with prototypes set, plus the ctypes types it needs."""

    def __init__(self, name: str) -> None:
        import ctypes

        self.ctypes = ctypes
        cdll = ctypes.CDLL(name, use_errno=True)
        c_ctx = ctypes.c_void_p
        u32 = ctypes.c_uint32

        class ArgCmp(ctypes.Structure):
            """``struct scmp_arg_cmp`` (seccomp_rule_add(3))."""

            _fields_ = [
                ("arg", ctypes.c_uint),
                ("op", ctypes.c_int),  # enum scmp_compare
                ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64),
            ]

        class Version(ctypes.Structure):
            """``struct scmp_version`` (seccomp_version(3))."""

            _fields_ = [
                ("major", ctypes.c_uint),
                ("minor", ctypes.c_uint),
                ("micro", ctypes.c_uint),
            ]

        self.ArgCmp = ArgCmp

        def proto(fname: str, restype: Any, *argtypes: Any) -> Any:
            fn = getattr(cdll, fname)
            fn.restype = restype
            fn.argtypes = list(argtypes)
            return fn

        self.version = proto("seccomp_version", ctypes.POINTER(Version))
        self.api_get = proto("seccomp_api_get", ctypes.c_uint)
        self.init = proto("seccomp_init", c_ctx, u32)
        self.release = proto("seccomp_release", None, c_ctx)
        self.load = proto("seccomp_load", ctypes.c_int, c_ctx)
        self.attr_set = proto("seccomp_attr_set", ctypes.c_int, c_ctx, ctypes.c_int, u32)
        self.arch_resolve_name = proto("seccomp_arch_resolve_name", u32, ctypes.c_char_p)
        self.arch_add = proto("seccomp_arch_add", ctypes.c_int, c_ctx, u32)
        self.syscall_resolve_name = proto(
            "seccomp_syscall_resolve_name", ctypes.c_int, ctypes.c_char_p
        )
        self.rule_add_array = proto(
            "seccomp_rule_add_array",
            ctypes.c_int,
            c_ctx,
            u32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(ArgCmp),
        )
        self.export_bpf = proto("seccomp_export_bpf", ctypes.c_int, c_ctx, ctypes.c_int)
        self.export_pfc = proto("seccomp_export_pfc", ctypes.c_int, c_ctx, ctypes.c_int)


_lib: _Lib | None = None
_lib_error: str | None = None


def _library() -> _Lib:
    """Return the loaded library, loading it on first use; raise ``OSError`` if it cannot be."""
    global _lib, _lib_error
    if _lib is not None:
        return _lib
    if _lib_error is not None:
        raise OSError(_lib_error)
    try:
        _lib = _Lib(_LIBNAME)
    except (OSError, AttributeError) as e:  # AttributeError: a symbol is missing (too old)
        _lib_error = f"cannot load {_LIBNAME}: {e}"
        raise OSError(_lib_error) from e
    return _lib


def _check(rc: int, what: str) -> None:
    """Raise ``OSError(-rc, "<what>: <strerror>")`` when a libseccomp call returned ``rc < 0``."""
    if rc < 0:
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}")


def available() -> bool:
    """Return whether libseccomp (``libseccomp.so.2``) can be loaded on this host.

    Never raises; the result is cached after the first attempt.
    """
    try:
        _library()
    except OSError:
        return False
    return True


def version() -> tuple[int, int, int]:
    """Return the loaded libseccomp's version as ``(major, minor, micro)`` (seccomp_version(3)).

    Raises:
        OSError: libseccomp cannot be loaded.
    """
    v = _library().version().contents
    return (int(v.major), int(v.minor), int(v.micro))


# --------------------------------------------------------------------------------------------------
# Profile validation (pure Python, no library needed)
# --------------------------------------------------------------------------------------------------


def _uint(v: object, maximum: int) -> int | None:
    """Return ``v`` if it is an integer (not a bool) in ``0..maximum``, else ``None``."""
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= maximum:
        return v
    return None


def _action_value(name: object, errno_ret: object, path: str, errno_key: str) -> int:
    """Return the libseccomp action value for ``name`` (+ ``errno_ret``); ``path`` names the object.

    ``errno_key`` is the field holding the errno (``errnoRet`` or ``defaultErrnoRet``); the action's
    own field is ``action`` / ``defaultAction`` accordingly.
    """
    action_key = "defaultAction" if errno_key == "defaultErrnoRet" else "action"
    if not isinstance(name, str):
        raise SeccompError(f"{path}.{action_key}", f"expected a string, got {_type(name)}")
    if name == _NOTIFY:
        raise SeccompError(f"{path}.{action_key}", _NOTIFY_MSG)
    try:
        base, takes_errno = _ACTIONS[name]
    except KeyError:
        raise SeccompError(f"{path}.{action_key}", f'unknown action "{name}"') from None
    if errno_ret is None:
        return base | _EPERM if takes_errno else base
    if not takes_errno:
        raise SeccompError(
            f"{path}.{errno_key}",
            f"{name} does not take an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)",
        )
    # libseccomp accepts ERRNO data below MAX_ERRNO (4095); TRACE data is a 16-bit message number.
    maximum = _MAX_ERRNO - 1 if base == _ACTIONS["SCMP_ACT_ERRNO"][0] else 0xFFFF
    data = _uint(errno_ret, maximum)
    if data is None:
        raise SeccompError(
            f"{path}.{errno_key}", f"expected an integer in 0..{maximum}, got {errno_ret!r}"
        )
    return base | data


def _type(v: object) -> str:
    return type(v).__name__ if v is not None else "null"


def _list(v: object, path: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise SeccompError(path, f"expected an array, got {_type(v)}")
    return v


class _Rule:
    """One validated ``syscalls[i]`` entry: names, action value, list of comparison groups."""

    __slots__ = ("action", "action_name", "groups", "names", "path")

    def __init__(
        self,
        action_name: str,
        action: int,
        names: list[str],
        groups: list[list[tuple[int, int, int, int]]],
        path: str,
    ) -> None:
        self.action_name = action_name
        self.action = action
        self.names = names
        self.groups = groups  # each group -> one seccomp_rule_add_array call (AND within)
        self.path = path


def _parse_rule(entry: object, path: str) -> _Rule:
    if not isinstance(entry, dict):
        raise SeccompError(path, f"expected an object, got {_type(entry)}")
    action = _action_value(entry.get("action"), entry.get("errnoRet"), path, "errnoRet")

    names = entry.get("names")
    if not isinstance(names, list):
        raise SeccompError(f"{path}.names", f"expected an array of strings, got {_type(names)}")
    if not names:
        raise SeccompError(f"{path}.names", "must contain at least one syscall name")
    for j, n in enumerate(names):
        if not isinstance(n, str) or not n:
            raise SeccompError(f"{path}.names[{j}]", f"expected a non-empty string, got {n!r}")

    cmps: list[tuple[int, int, int, int]] = []
    for k, arg in enumerate(_list(entry.get("args"), f"{path}.args")):
        apath = f"{path}.args[{k}]"
        if not isinstance(arg, dict):
            raise SeccompError(apath, f"expected an object, got {_type(arg)}")
        index = _uint(arg.get("index"), _MAX_ARGS - 1)
        if index is None:
            raise SeccompError(
                f"{apath}.index",
                f"expected a syscall argument index 0..5, got {arg.get('index')!r}",
            )
        value = _uint(arg.get("value"), _U64_MAX)
        if value is None:
            raise SeccompError(f"{apath}.value", f"expected a uint64, got {arg.get('value')!r}")
        raw_two = arg.get("valueTwo")
        value_two = 0 if raw_two is None else _uint(raw_two, _U64_MAX)
        if value_two is None:
            raise SeccompError(f"{apath}.valueTwo", f"expected a uint64, got {raw_two!r}")
        op_name = arg.get("op")
        if not isinstance(op_name, str) or op_name not in _OPERATORS:
            raise SeccompError(
                f"{apath}.op",
                f'unknown operator "{op_name}"'
                if isinstance(op_name, str)
                else f"expected a string, got {_type(op_name)}",
            )
        cmps.append((index, _OPERATORS[op_name], value, value_two))

    indexes = [c[0] for c in cmps]
    if len(set(indexes)) != len(indexes):
        # runc: "If two or more arguments have the same condition, revert to old behavior,
        # adding each condition as a separate rule" -- the comparisons are OR-ed.
        groups = [[c] for c in cmps]
    else:
        groups = [cmps]
    return _Rule(entry["action"], action, list(names), groups, path)


def _parse_arch(name: object, path: str) -> str:
    """Return libseccomp's arch name (``"x86_64"``) for a spec name (``"SCMP_ARCH_X86_64"``)."""
    if not isinstance(name, str):
        raise SeccompError(path, f"expected a string, got {_type(name)}")
    if not name.startswith(_ARCH_PREFIX) or len(name) == len(_ARCH_PREFIX):
        raise SeccompError(path, f'unknown architecture "{name}"')
    return name[len(_ARCH_PREFIX) :].lower()


# --------------------------------------------------------------------------------------------------
# The filter
# --------------------------------------------------------------------------------------------------


class Filter:
    """A libseccomp filter context (``scmp_filter_ctx``) compiled from an OCI profile.

    Made by :func:`build`; load it with :meth:`load` (in the process that is about to
    ``execve`` the container's program), free it with :meth:`release` (also done on garbage
    collection and by ``with``).

    Attributes (for ``explain`` output):
        default_action: the profile's ``defaultAction`` (``"SCMP_ACT_ERRNO"``).
        default_action_value: its libseccomp value, errno included (``0x00050026``).
        rules: number of rules handed to seccomp_rule_add(3) (one per syscall name, or more when
            an entry's ``args`` compare the same argument twice).
        skipped: syscall names libseccomp does not know, in profile order, without duplicates.
        redundant: number of (entry, name) pairs skipped because their action equals the default.
        architectures: libseccomp arch names added (``["x86", "x32"]``), native one excluded.
        flags: the spec flags applied (``["SECCOMP_FILTER_FLAG_LOG"]``).
    """

    def __init__(self, lib: _Lib, ctx: int, default_action: str, default_action_value: int) -> None:
        self._lib: _Lib | None = lib
        self._ctx: int | None = ctx
        self.default_action = default_action
        self.default_action_value = default_action_value
        self.rules = 0
        self.skipped: list[str] = []
        self.redundant = 0
        self.architectures: list[str] = []
        self.flags: list[str] = []

    def _handle(self, what: str) -> tuple[_Lib, int]:
        if self._ctx is None or self._lib is None:
            raise ValueError(f"{what}: seccomp filter already released")
        return self._lib, self._ctx

    def load(self) -> None:
        """Load the filter into the calling thread with seccomp_load(3) (seccomp(2) underneath).

        Meant for a freshly forked, single-threaded child right before ``execve``: it is one call
        into libseccomp (which generates the BPF program and installs it with seccomp(2)); build
        the filter before forking. The filter persists across ``execve``, is inherited by
        children, and cannot be removed.

        libseccomp does not set ``no_new_privs`` here (``SCMP_FLTATR_CTL_NNP`` is 0), so the caller
        must either hold ``CAP_SYS_ADMIN`` or have set ``prctl(PR_SET_NO_NEW_PRIVS, 1)`` first.

        Raises:
            OSError: ``errno`` is the kernel's or libseccomp's error, ``strerror`` starts with
                ``"seccomp_load: "`` (``EACCES``: neither ``CAP_SYS_ADMIN`` nor no_new_privs;
                ``EINVAL``: a flag or action the kernel does not support).
            ValueError: the filter was released.
        """
        lib, ctx = self._handle("seccomp_load")
        _check(lib.load(ctx), "seccomp_load")

    def _export(self, fn_name: str) -> bytes:
        lib, ctx = self._handle(fn_name)
        # A memfd, not a pipe: a large filter would fill a pipe and block the single writer.
        fd = os.memfd_create("nk-seccomp-export", os.MFD_CLOEXEC)
        try:
            _check(getattr(lib, fn_name.removeprefix("seccomp_"))(ctx, fd), fn_name)
            size = os.fstat(fd).st_size
            return os.pread(fd, size, 0) if size else b""
        finally:
            os.close(fd)

    def export_bpf(self) -> bytes:
        """Return the raw BPF program (``struct sock_filter`` array) seccomp_export_bpf(3) writes.

        Raises:
            OSError: libseccomp failed (``strerror`` starts with ``"seccomp_export_bpf: "``).
            ValueError: the filter was released.
        """
        return self._export("seccomp_export_bpf")

    def export_bpf_len(self) -> int:
        """Return the length in bytes of the BPF program (8 bytes per instruction).

        Raises:
            OSError, ValueError: as :meth:`export_bpf`.
        """
        return len(self.export_bpf())

    def export_pfc(self) -> str:
        """Return the filter as libseccomp's readable pseudo filter code (seccomp_export_pfc(3)).

        Raises:
            OSError: libseccomp failed (``strerror`` starts with ``"seccomp_export_pfc: "``).
            ValueError: the filter was released.
        """
        return self._export("seccomp_export_pfc").decode("utf-8", "replace")

    def release(self) -> None:
        """Free the context with seccomp_release(3); idempotent. A loaded filter stays loaded."""
        ctx, lib = self._ctx, self._lib
        self._ctx = None
        self._lib = None
        if ctx is not None and lib is not None:
            lib.release(ctx)

    def __enter__(self) -> Filter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self) -> str:
        return (
            f"<seccomp.Filter default={self.default_action} rules={self.rules} "
            f"skipped={len(self.skipped)}{' released' if self._ctx is None else ''}>"
        )


def build(profile: Mapping[str, Any], path: str = "linux.seccomp") -> Filter:
    """Validate an OCI seccomp profile and compile it into a libseccomp :class:`Filter`.

    ``profile`` is the ``linux.seccomp`` object as plain JSON data::

        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
         "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
         "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
         "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                       "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}

    Steps (libseccomp calls): seccomp_init(3) with the default action; seccomp_attr_set(3) to
    clear ``SCMP_FLTATR_CTL_NNP`` and ask for raw kernel error codes; seccomp_arch_add(3) per
    architecture; seccomp_attr_set(3) per flag; seccomp_syscall_resolve_name(3) and
    seccomp_rule_add_array(3) per syscall name. The whole profile is validated before the library
    is touched, so a bad profile fails the same way on hosts without libseccomp.

    Args:
        profile: the profile (see above); unknown keys are ignored.
        path: JSON path of the profile, used as prefix in error paths.

    Returns:
        A filter, not yet loaded. See :class:`Filter` for its explain attributes.

    Raises:
        SeccompError: the profile is invalid or unsupported (unknown action / operator /
            architecture / flag, ``SCMP_ACT_NOTIFY``, ``errnoRet`` with an action that takes none,
            out-of-range numbers), libseccomp is missing, or libseccomp refused a rule or
            attribute (``.errno`` set); ``.path`` names the field at fault.
    """
    if not isinstance(profile, dict):
        raise SeccompError(path, f"expected an object, got {_type(profile)}")

    # ---- validate everything first -------------------------------------------------------------
    default_name = profile.get("defaultAction")
    if default_name is None:
        raise SeccompError(f"{path}.defaultAction", "is required")
    default = _action_value(default_name, profile.get("defaultErrnoRet"), path, "defaultErrnoRet")

    archs: list[tuple[str, str]] = []  # (libseccomp name, json path)
    for i, a in enumerate(_list(profile.get("architectures"), f"{path}.architectures")):
        apath = f"{path}.architectures[{i}]"
        archs.append((_parse_arch(a, apath), apath))

    flags: list[tuple[str, str]] = []
    for i, fl in enumerate(_list(profile.get("flags"), f"{path}.flags")):
        fpath = f"{path}.flags[{i}]"
        if not isinstance(fl, str):
            raise SeccompError(fpath, f"expected a string, got {_type(fl)}")
        if fl not in _FLAGS:
            raise SeccompError(fpath, f'unknown seccomp flag "{fl}"')
        if fl == _WAIT_KILLABLE:
            # The kernel accepts it only together with SECCOMP_FILTER_FLAG_NEW_LISTENER, i.e.
            # with SCMP_ACT_NOTIFY, which is not supported (and libseccomp 2.5 lacks the attribute).
            raise SeccompError(
                fpath, f"{fl} is not supported (it only applies to SCMP_ACT_NOTIFY filters)"
            )
        flags.append((fl, fpath))

    if "listenerMetadata" in profile and not profile.get("listenerPath"):
        raise SeccompError(f"{path}.listenerMetadata", "must not be set without listenerPath")

    rules = [
        _parse_rule(entry, f"{path}.syscalls[{i}]")
        for i, entry in enumerate(_list(profile.get("syscalls"), f"{path}.syscalls"))
    ]

    # ---- compile -------------------------------------------------------------------------------
    try:
        lib = _library()
    except OSError as e:
        raise SeccompError(path, f"seccomp is not available: {e}") from None

    ctx = lib.init(default)
    if not ctx:
        raise SeccompError(
            f"{path}.defaultAction",
            f"seccomp_init({default_name}): failed (action not supported by the kernel?)",
        )
    flt = Filter(lib, ctx, default_name, default)
    try:
        _compile(lib, ctx, flt, path, archs, flags, rules)
    except BaseException:
        flt.release()
        raise
    return flt


def _compile(
    lib: _Lib,
    ctx: int,
    flt: Filter,
    path: str,
    archs: list[tuple[str, str]],
    flags: list[tuple[str, str]],
    rules: list[_Rule],
) -> None:
    def attr(a: int, value: int, where: str, what: str) -> None:
        rc = lib.attr_set(ctx, a, value)
        if rc < 0:
            raise SeccompError(where, f"{what}: {os.strerror(-rc)}", errno=-rc)

    attr(_ATTR_CTL_NNP, 0, path, "seccomp_attr_set(SCMP_FLTATR_CTL_NNP, 0)")
    # Real kernel errnos from seccomp_load instead of libseccomp's generic ECANCELED (>= 2.5.0).
    lib.attr_set(ctx, _ATTR_API_SYSRAWRC, 1)

    for name, apath in archs:
        token = lib.arch_resolve_name(name.encode())
        if token == 0:
            raise SeccompError(apath, f'unknown architecture "{_ARCH_PREFIX}{name.upper()}"')
        rc = lib.arch_add(ctx, token)
        if rc == -_EEXIST:  # the native architecture is always there
            continue
        if rc < 0:
            raise SeccompError(apath, f"seccomp_arch_add({name}): {os.strerror(-rc)}", errno=-rc)
        flt.architectures.append(name)

    for fl, fpath in flags:
        attr(_FLAGS[fl], 1, fpath, f"{fl} (seccomp_attr_set)")
        if fl not in flt.flags:
            flt.flags.append(fl)

    ArgCmp = lib.ArgCmp
    skipped: set[str] = set()
    for rule in rules:
        arrays = []
        for group in rule.groups:
            arr = (ArgCmp * len(group))(*(ArgCmp(i, op, a, b) for i, op, a, b in group))
            arrays.append((len(group), arr))
        for j, name in enumerate(rule.names):
            if rule.action == flt.default_action_value:
                # runc: "This rule is redundant, silently skip it to avoid error from AddRule."
                flt.redundant += 1
                continue
            nr = lib.syscall_resolve_name(name.encode())
            if nr == _NR_SCMP_ERROR:
                if name not in skipped:
                    skipped.add(name)
                    flt.skipped.append(name)
                continue
            for n, arr in arrays:
                rc = lib.rule_add_array(ctx, rule.action, nr, n, arr if n else None)
                if rc < 0:
                    raise SeccompError(
                        f"{rule.path}.names[{j}]",
                        f'seccomp_rule_add_array("{name}", {rule.action_name}): {os.strerror(-rc)}',
                        errno=-rc,
                    )
                flt.rules += 1

    if flt.rules > _OPTIMIZE_ABOVE:
        lib.attr_set(ctx, _ATTR_CTL_OPTIMIZE, 2)  # best effort, as runc


# --------------------------------------------------------------------------------------------------
# Features (the runtime's ``features`` document, linux.seccomp)
# --------------------------------------------------------------------------------------------------


def supported_actions() -> list[str]:
    """Return the ``SCMP_ACT_*`` names :func:`build` accepts (``SCMP_ACT_NOTIFY`` is not one).

    When libseccomp is loadable and its API level (seccomp_api_get(3)) is below 3, the kernel-
    dependent ``SCMP_ACT_KILL_PROCESS`` and ``SCMP_ACT_LOG`` are left out. Never raises.
    """
    names = [n for n in _ACTIONS if n != _NOTIFY]
    try:
        level = _library().api_get()
    except OSError:
        return names
    if level < 3:
        names = [n for n in names if n not in ("SCMP_ACT_KILL_PROCESS", "SCMP_ACT_LOG")]
    return names


def supported_operators() -> list[str]:
    """Return the ``SCMP_CMP_*`` operator names :func:`build` accepts. Never raises."""
    return list(_OPERATORS)


def supported_archs() -> list[str]:
    """Return the ``SCMP_ARCH_*`` names the loaded libseccomp knows (seccomp_arch_resolve_name(3)).

    Empty when libseccomp cannot be loaded. Never raises.
    """
    try:
        lib = _library()
    except OSError:
        return []
    return [a for a in KNOWN_ARCHS if lib.arch_resolve_name(_parse_arch(a, "").encode()) != 0]


def supported_flags() -> list[str]:
    """Return the ``SECCOMP_FILTER_FLAG_*`` names usable with this libseccomp and kernel.

    Each flag is probed by setting its attribute on a scratch filter (seccomp_attr_set(3), which
    checks the kernel's support with seccomp(2)). ``SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`` is
    never listed: it needs ``SCMP_ACT_NOTIFY``, which is not supported. Empty when libseccomp
    cannot be loaded. Never raises.
    """
    try:
        lib = _library()
    except OSError:
        return []
    ctx = lib.init(_ACTIONS["SCMP_ACT_ALLOW"][0])
    if not ctx:
        return []
    try:
        return [
            f for f, a in _FLAGS.items() if f != _WAIT_KILLABLE and lib.attr_set(ctx, a, 1) == 0
        ]
    finally:
        lib.release(ctx)
