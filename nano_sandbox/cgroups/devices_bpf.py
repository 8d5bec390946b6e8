"""The device controller of cgroup v2: an eBPF program of type ``BPF_PROG_TYPE_CGROUP_DEVICE``.

cgroup v2 has no ``devices.allow``/``devices.deny`` files. The kernel instead runs a BPF program
attached to the cgroup (``BPF_CGROUP_DEVICE``) whenever a process in it opens or mknods a device
node; the program returns 1 (allow) or 0 (deny, the syscall fails with EPERM). Kernel docs:
Documentation/admin-guide/cgroup-v2.rst "Device controller"; the context is
``struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`` (include/uapi/linux/bpf.h),
with ``access_type = (access << 16) | type``.

This module compiles the rule list of :func:`nano_sandbox.cgroups.resources.device_rules` (the
same list the v1 ``devices.allow``/``devices.deny`` files receive, in the same order) into BPF
instructions, loads them with ``bpf(BPF_PROG_LOAD)`` and attaches them to the container's cgroup2
directory with ``bpf(BPF_PROG_ATTACH, BPF_F_ALLOW_MULTI)``, replacing a program a previous apply
attached. Everything goes through ``ctypes`` over the raw ``bpf(2)`` system call (no libbpf).

Semantics (those of the v1 device cgroup, which runc emulates the same way):

* a rule of type ``a`` resets the list: ``deny a`` → everything denied by default, ``allow a`` →
  everything allowed by default; rules before the last reset no longer matter;
* for each access bit requested (``m`` mknod, ``r`` read, ``w`` write) the *last* rule that
  matches the device's type, major and minor and covers that bit decides; no matching rule → the
  default; the access is allowed only when every requested bit is.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

# bpf(2) commands and constants (include/uapi/linux/bpf.h).
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2

_ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
_TYPES = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351, "riscv64": 280}.get(platform.machine())

# Instruction opcodes (include/uapi/linux/bpf_common.h, bpf.h).
_LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_ALU32_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_ALU32_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_ALU64_MOV_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K
_JMP_JA = 0x05  # BPF_JMP | BPF_JA
_JMP_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_JMP_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_JMP_EXIT = 0x95  # BPF_JMP | BPF_EXIT

_R0, _R1, _R2, _R3, _R4, _R5 = range(6)


class Rule:
    """One parsed device rule.

    Attributes:
        allow: True for allow, False for deny.
        type: ``"a"``, ``"c"`` or ``"b"``.
        major, minor: device numbers, None for ``*``.
        access: a set of the letters ``r``, ``w``, ``m``.
    """

    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow: bool, type_: str, major: int | None, minor: int | None, access: str) -> None:
        self.allow, self.type, self.major, self.minor, self.access = allow, type_, major, minor, set(access)

    @classmethod
    def parse(cls, allow: bool, text: str) -> "Rule":
        """Parse a v1 rule string (``"c 1:3 rwm"``, ``"a *:* rwm"``, ``"a"``).

        Raises:
            ValueError: malformed rule.
        """
        parts = text.split()
        t = parts[0] if parts else ""
        if t == "a":
            return cls(allow, "a", None, None, "rwm")
        if t not in _TYPES or len(parts) != 3:
            raise ValueError(f"invalid device rule {text!r}")
        major, _, minor = parts[1].partition(":")
        access = parts[2]
        if set(access) - set("rwm") or not access:
            raise ValueError(f"invalid device access in {text!r}")
        return cls(allow, t, None if major == "*" else int(major), None if minor == "*" else int(minor), access)

    def matches(self, type_: str, major: int, minor: int) -> bool:
        """True when this rule covers device ``type_ major:minor`` (access not considered)."""
        return (
            self.type in ("a", type_)
            and (self.major is None or self.major == major)
            and (self.minor is None or self.minor == minor)
        )


def effective(rules: list[Rule]) -> tuple[bool, list[Rule]]:
    """Return ``(default_allow, rules)``: the default after the last ``a`` rule and the rules that
    follow it, in order. With no ``a`` rule the default is deny (the container's rules always start
    with ``deny a``)."""
    default = False
    out: list[Rule] = []
    for r in rules:
        if r.type == "a":
            default, out = r.allow, []
        else:
            out.append(r)
    return default, out


def decide(rules: list[Rule], type_: str, major: int, minor: int, access: str) -> bool:
    """Evaluate the rules in Python exactly as the generated BPF program does (for tests and
    explanations): True when ``access`` (letters of ``rwm``) on ``type_ major:minor`` is allowed."""
    default, rest = effective(rules)
    for bit in access:
        verdict = default
        for r in reversed(rest):
            if bit in r.access and r.matches(type_, major, minor):
                verdict = r.allow
                break
        if not verdict:
            return False
    return True


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    # struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; } (little endian on
    # the architectures listed in _SYS_BPF except s390x, which is big endian: bit fields swap).
    regs = (dst << 4 | src) if _BIG_ENDIAN else (src << 4 | dst)
    return struct.pack("=BBhi", code, regs, off, imm)


_BIG_ENDIAN = struct.pack("=H", 1) == b"\x00\x01"


def compile_rules(rules: list[Rule]) -> bytes:
    """Compile ``rules`` into the bytes of a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program.

    Layout: load type (R2), access (R3), major (R4), minor (R5) from the context; then for each
    access bit, if requested, test the rules covering that bit from last to first: the first match
    allows (go on with the next bit) or denies (return 0); no match applies the default. Finally
    return 1.
    """
    default, rest = effective(rules)
    # Program as a list of (kind, args) with symbolic jump labels resolved at the end.
    prog: list[tuple] = [
        ("i", _insn(_LDX_MEM_W, _R2, _R1, 0)),
        ("i", _insn(_ALU32_AND_K, _R2, imm=0xFFFF)),
        ("i", _insn(_LDX_MEM_W, _R3, _R1, 0)),
        ("i", _insn(_ALU32_RSH_K, _R3, imm=16)),
        ("i", _insn(_LDX_MEM_W, _R4, _R1, 4)),
        ("i", _insn(_LDX_MEM_W, _R5, _R1, 8)),
    ]
    label = [0]

    def new_label() -> str:
        label[0] += 1
        return f"L{label[0]}"

    deny = [("i", _insn(_ALU64_MOV_K, _R0, imm=0)), ("i", _insn(_JMP_EXIT))]
    for letter, bit in (("m", BPF_DEVCG_ACC_MKNOD), ("r", BPF_DEVCG_ACC_READ), ("w", BPF_DEVCG_ACC_WRITE)):
        next_bit = new_label()
        requested = new_label()
        # if (access & bit) goto requested; else goto next_bit
        prog.append(("j", _JMP_JSET_K, _R3, bit, requested))
        prog.append(("j", _JMP_JA, 0, 0, next_bit))
        prog.append(("label", requested))
        for r in reversed(rest):
            if letter not in r.access:
                continue
            next_rule = new_label()
            if r.type != "a":
                prog.append(("j", _JMP_JNE_K, _R2, _TYPES[r.type], next_rule))
            if r.major is not None:
                prog.append(("j", _JMP_JNE_K, _R4, r.major, next_rule))
            if r.minor is not None:
                prog.append(("j", _JMP_JNE_K, _R5, r.minor, next_rule))
            if r.allow:
                prog.append(("j", _JMP_JA, 0, 0, next_bit))
            else:
                prog.extend(deny)
            prog.append(("label", next_rule))
        if not default:
            prog.extend(deny)
        prog.append(("label", next_bit))
    prog.append(("i", _insn(_ALU64_MOV_K, _R0, imm=1)))
    prog.append(("i", _insn(_JMP_EXIT)))

    # Resolve labels: a jump's offset counts instructions after the jump itself.
    pos: dict[str, int] = {}
    n = 0
    for item in prog:
        if item[0] == "label":
            pos[item[1]] = n
        else:
            n += 1
    out = bytearray()
    n = 0
    for item in prog:
        if item[0] == "label":
            continue
        if item[0] == "i":
            out += item[1]
        else:
            _, code, dst, imm, target = item
            off = pos[target] - (n + 1)
            if not -32768 <= off <= 32767:
                raise ValueError("device program too large")
            out += _insn(code, dst, 0, off, imm)
        n += 1
    return bytes(out)


# --- bpf(2) -----------------------------------------------------------------------------------------
_libc = None


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    global _libc
    if _SYS_BPF is None:
        raise OSError(38, f"bpf(2): no syscall number known for {platform.machine()}")
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    _libc.syscall.restype = ctypes.c_long
    r = _libc.syscall(ctypes.c_long(_SYS_BPF), ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(len(attr)))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return int(r)


def load(program: bytes) -> int:
    """Load ``program`` (from :func:`compile_rules`) with ``bpf(BPF_PROG_LOAD)``; return its fd.

    Raises:
        OSError: the kernel refused it (EPERM without CAP_BPF/CAP_SYS_ADMIN; EINVAL with the
            verifier's log in the message).
    """
    insns = ctypes.create_string_buffer(program, len(program))
    license_ = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(65536)
    attr = ctypes.create_string_buffer(128)
    name = b"nk_devices"
    for with_log in (False, True):
        ctypes.memset(attr, 0, len(attr))
        struct.pack_into("=II", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8)
        struct.pack_into("=QQ", attr, 8, ctypes.addressof(insns), ctypes.addressof(license_))
        if with_log:
            struct.pack_into("=IIQ", attr, 24, 1, len(log), ctypes.addressof(log))
        attr[48 : 48 + len(name)] = name
        try:
            return _bpf(BPF_PROG_LOAD, attr)
        except OSError as e:
            if with_log or e.errno != 22:
                text = log.value.decode(errors="replace").strip() if with_log else ""
                raise OSError(e.errno, f"bpf(BPF_PROG_LOAD): {e.strerror}" + (f": {text}" if text else "")) from None
    raise AssertionError("unreachable")


def attached(cgroup_fd: int) -> list[int]:
    """Return the ids of the device programs attached to the cgroup (``BPF_PROG_QUERY``)."""
    ids = (ctypes.c_uint32 * 64)()
    attr = ctypes.create_string_buffer(40)
    struct.pack_into("=III", attr, 0, cgroup_fd, BPF_CGROUP_DEVICE, 0)
    struct.pack_into("=QI", attr, 16, ctypes.addressof(ids), 64)
    _bpf(BPF_PROG_QUERY, attr)
    (count,) = struct.unpack_from("=I", attr, 24)
    return list(ids[: min(count, 64)])


def _prog_fd(prog_id: int) -> int:
    attr = ctypes.create_string_buffer(16)
    struct.pack_into("=I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr)


def attach(prog_fd: int, cgroup_dir: str) -> None:
    """Attach ``prog_fd`` to ``cgroup_dir`` (``BPF_CGROUP_DEVICE``, ``BPF_F_ALLOW_MULTI``) and detach
    the device programs that were attached before, so the new rules replace the old ones.

    Raises:
        OSError: naming the cgroup directory.
    """
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            old = attached(fd)
        except OSError:
            old = []
        attr = ctypes.create_string_buffer(20)
        struct.pack_into("=IIII", attr, 0, fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        try:
            _bpf(BPF_PROG_ATTACH, attr)
        except OSError as e:
            raise OSError(e.errno, f"bpf(BPF_PROG_ATTACH): {e.strerror}", cgroup_dir) from None
        for pid in old:
            try:
                ofd = _prog_fd(pid)
            except OSError:
                continue
            try:
                struct.pack_into("=IIII", attr, 0, fd, ofd, BPF_CGROUP_DEVICE, 0)
                _bpf(BPF_PROG_DETACH, attr)
            except OSError:
                pass
            finally:
                os.close(ofd)
    finally:
        os.close(fd)


def apply(cgroup_dir: str, rules: list[tuple[bool, str]]) -> None:
    """Enforce ``rules`` (``(allow, "c 1:3 rwm")`` pairs, as from
    :func:`nano_sandbox.cgroups.resources.device_rules`) on cgroup2 directory ``cgroup_dir``.

    Raises:
        OSError: loading or attaching failed.
    """
    program = compile_rules([Rule.parse(a, t) for a, t in rules])
    fd = load(program)
    try:
        attach(fd, cgroup_dir)
    finally:
        os.close(fd)  # the cgroup keeps its own reference to the attached program


_SUPPORTED: bool | None = None


def v2_devices_supported() -> bool:
    """True when this runtime can enforce ``linux.resources.devices`` on cgroup v2 here: a cgroup2
    hierarchy is mounted and the kernel loads a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program for us
    (needs CAP_BPF or CAP_SYS_ADMIN and CONFIG_CGROUP_BPF). The features document reads this."""
    global _SUPPORTED
    if _SUPPORTED is None:
        try:
            from nano_sandbox.cgroups.layout import detect

            if detect().v2 is None:
                _SUPPORTED = False
            else:
                os.close(load(compile_rules([Rule(True, "a", None, None, "rwm")])))
                _SUPPORTED = True
        except OSError:
            _SUPPORTED = False
    return _SUPPORTED
