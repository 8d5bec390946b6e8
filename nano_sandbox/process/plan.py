"""The init plan: everything the container init will do, computed by the runtime *before* it
forks, as plain data.

The parent turns the OCI config into an :class:`InitPlan` (resolving paths against the bundle,
turning option words into mount(2) flags, capability names into bit masks, rlimit names into
numbers, building the seccomp filter). The child then only executes it: it never parses, imports
or decides. Errors in the config are found here, with their JSON path, before anything exists.
"""

from __future__ import annotations

import os

from nano_sandbox import errors
from nano_sandbox.linux import caps as capsmod
from nano_sandbox.linux import mountopts
from nano_sandbox.linux import syscalls as sc

#: OCI rlimit type -> resource number (getrlimit(2), <asm-generic/resource.h>; Python's
#: ``resource`` module lacks some of them, e.g. RLIMIT_LOCKS).
RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

RLIM_INFINITY_OCI = 18446744073709551615



class MountStep:
    """One mount the init performs.

    Attributes:
        dest: destination inside the container (absolute).
        source: source (absolute host path for bind mounts), or the fs source name.
        fstype: filesystem type (``None`` for binds).
        flags: MS_* flags for the first mount(2) call.
        data: filesystem data string or None.
        propagation: MS_* propagation flags applied afterwards.
        bind: a bind mount (needs a remount for ro/nosuid/... flags).
        remount_flags: flags for the bind remount (0: none needed).
        tmpcopyup: copy the rootfs directory's content into the new tmpfs.
        cgroup: the special ``cgroup`` type (a cgroup tree view, see init.mount_cgroup).
        index: the mount's index in ``mounts`` (for error paths).
    """

    __slots__ = ("dest", "source", "fstype", "flags", "data", "propagation", "bind", "remount_flags", "tmpcopyup", "cgroup", "index")

    def __init__(self, **kw) -> None:
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def describe(self) -> str:
        return f"mount {self.source or self.fstype} on {self.dest}"


class DeviceNode:
    """A device node to create in the container's /dev (mknod, or bind from the host in a user
    namespace). ``kind`` is ``c``, ``b`` or ``p``; ``mode`` the permission bits."""

    __slots__ = ("path", "kind", "major", "minor", "mode", "uid", "gid")

    def __init__(self, path: str, kind: str, major: int, minor: int, mode: int = 0o666, uid: int = 0, gid: int = 0) -> None:
        self.path, self.kind, self.major, self.minor, self.mode, self.uid, self.gid = path, kind, major, minor, mode, uid, gid


#: runc's default devices, created when /dev is not bind-mounted from the host.
DEFAULT_DEVICES = [
    DeviceNode("/dev/null", "c", 1, 3),
    DeviceNode("/dev/zero", "c", 1, 5),
    DeviceNode("/dev/full", "c", 1, 7),
    DeviceNode("/dev/random", "c", 1, 8),
    DeviceNode("/dev/urandom", "c", 1, 9),
    DeviceNode("/dev/tty", "c", 5, 0),
]


class Hook:
    """A hook to run: ``path``, ``args``, ``env`` and ``timeout`` seconds (None: no limit)."""

    __slots__ = ("path", "args", "env", "timeout", "kind", "index")

    def __init__(self, path: str, args: list[str], env: list[str], timeout: int | None, kind: str, index: int) -> None:
        self.path, self.args, self.env, self.timeout, self.kind, self.index = path, args, env, timeout, kind, index


class ProcessPlan:
    """The part of the plan that describes the process to execve (shared by init and exec).

    Attributes:
        args: argv; args[0] is resolved through ``PATH`` from ``env`` inside the container.
        env: the environment, ``["K=V", ...]``, duplicates collapsed to the last value.
        cwd: working directory inside the container.
        uid, gid, additional_gids, umask: the identity (umask None: 0o022).
        caps: ``(bounding, effective, inheritable, permitted, ambient)`` bit masks, or None to
            keep the capabilities as they are.
        no_new_privs: set PR_SET_NO_NEW_PRIVS before execve.
        rlimits: ``[(name, resource, soft, hard)]`` (RLIM_INFINITY as -1).
        seccomp_bpf: the BPF program libseccomp compiled from ``linux.seccomp`` (bytes) or None;
            the init installs it with seccomp(2), so it need not load libseccomp itself.
        seccomp_flags: seccomp(2) filter flags (SECCOMP_FILTER_FLAG_*).
        apparmor, selinux_label: LSM labels for exec (None when unset).
        oom_score_adj: or None.
        scheduler, io_priority: config objects or None.
        terminal: allocate a pty.
        preserve_fds: how many fds after stdio reach the process.
    """

    def __init__(self) -> None:
        self.args: list[str] = []
        self.env: list[str] = []
        self.cwd = "/"
        self.uid = 0
        self.gid = 0
        self.additional_gids: list[int] = []
        self.umask: int | None = None
        self.caps: tuple[int, int, int, int, int] | None = None
        self.no_new_privs = False
        self.rlimits: list[tuple[str, int, int, int]] = []
        self.seccomp_bpf: bytes | None = None
        self.seccomp_flags = 0
        self.apparmor: str | None = None
        self.selinux_label: str | None = None
        self.oom_score_adj: int | None = None
        self.scheduler = None
        self.io_priority = None
        self.terminal = False
        self.console_size: tuple[int, int] | None = None
        self.preserve_fds = 0
        self.personality: int | None = None
        self.last_cap = capsmod.last_cap()


class InitPlan:
    """Everything the container init does, in order. See the module docstring.

    Attributes (beyond :class:`ProcessPlan` in ``process``):
        cid, state_dir: container id and its state directory (the exec fifo lives there).
        rootfs: absolute host path of the root filesystem.
        join: ``[(oci type, path)]`` namespaces to join with setns, user first.
        new_flags: CLONE_NEW* flags of the namespaces to create (user excluded).
        new_user: create a user namespace (then the parent writes the id maps).
        time_offsets: ``{"monotonic": (secs, nsecs), "boottime": ...}`` for a new time namespace.
        mount_ns: the init has its own mount namespace (new or joined): build the rootfs.
        root_propagation: MS_* flags for ``/`` before building (default MS_SLAVE|MS_REC).
        final_propagation: flags for ``/`` after pivot_root (rootfsPropagation) or 0.
        mounts: the :class:`MountStep` list.
        devices: device nodes to create; ``default_dev`` whether /dev gets the default set.
        masked, readonly: paths to mask / make read-only.
        sysctl: ``{key: value}``.
        hostname, domainname: or None.
        root_readonly: remount / read-only.
        no_pivot: use MS_MOVE + chroot instead of pivot_root.
        new_keyring: join a new session keyring.
        hooks_create_container, hooks_start_container: hooks run by the init itself.
        state_json: the state document given to hooks on stdin (bytes).
        cgroup_paths: hierarchy key -> host cgroup dir (for the ``cgroup`` mount).
        explain: record kernel calls and send them with each step.
    """

    def __init__(self) -> None:
        self.cid = ""
        self.state_dir = ""
        self.rootfs = ""
        self.join: list[tuple[str, str]] = []
        self.new_flags = 0
        self.new_user = False
        self.time_offsets: dict[str, tuple[int, int]] = {}
        self.mount_ns = False
        self.root_propagation = sc.MS_SLAVE | sc.MS_REC
        self.final_propagation = 0
        self.mounts: list[MountStep] = []
        self.devices: list[DeviceNode] = []
        self.default_dev = False
        self.masked: list[str] = []
        self.readonly: list[str] = []
        self.sysctl: dict[str, str] = {}
        self.hostname: str | None = None
        self.domainname: str | None = None
        self.root_readonly = False
        self.no_pivot = False
        self.new_keyring = True
        self.hooks_create_container: list[Hook] = []
        self.hooks_start_container: list[Hook] = []
        self.state_json = b""
        self.cgroup_paths: dict[str, str] = {}
        self.cgroup_v1_keys: list[str] = []
        self.has_v2 = False
        self.new_cgroupns = False
        self.explain = False
        self.process: ProcessPlan | None = None
        self.warnings: list[str] = []
        self.console_socket: str | None = None
        self.console_fd: int | None = None
        self.state_fd = -1
        self.preserve_fds = 0


class ExecPlan:
    """What ``nk-runtime exec`` does inside a container.

    Attributes:
        cid: container id.
        init_pid: host pid of the container's init (whose namespaces are joined).
        join: ``[(oci type, "/proc/<pid>/ns/<name>")]`` for every namespace of the init that
            differs from the runtime's, user first.
        process: the :class:`ProcessPlan` to exec.
        console_fd: the console socket's fd in the child (set by the spawner) or None.
        explain: record kernel calls.
    """

    def __init__(self) -> None:
        self.cid = ""
        self.init_pid = 0
        self.join: list[tuple[str, str]] = []
        self.process: ProcessPlan | None = None
        self.console_fd: int | None = None
        self.explain = False
        self.preserve_fds = 0


def _ns_flag(t: str) -> int:
    return sc.NAMESPACES[t][0]


def hooks_of(spec, kind: str) -> list[Hook]:
    """Return the hooks of ``kind`` (``prestart``, ``createRuntime``...) from the config."""
    hooks = getattr(spec.hooks, _HOOK_ATTR[kind], None) if spec.hooks is not None else None
    return [Hook(h.path, list(h.args or [h.path]), list(h.env or []), h.timeout, kind, i) for i, h in enumerate(hooks or [])]


_HOOK_ATTR = {
    "prestart": "prestart",
    "createRuntime": "create_runtime",
    "createContainer": "create_container",
    "startContainer": "start_container",
    "poststart": "poststart",
    "poststop": "poststop",
}


def collapse_env(env: list[str]) -> list[str]:
    """Collapse duplicate variables to their last value, keeping first-seen order."""
    seen: dict[str, str] = {}
    for item in env:
        k, _, _ = item.partition("=")
        seen.pop(k, None)
        seen[k] = item
    return list(seen.values())


def cap_masks(caps, warnings: list[str], field: str = "process.capabilities") -> tuple[int, int, int, int, int]:
    """Turn ``process.capabilities`` into bit masks ``(bounding, effective, inheritable,
    permitted, ambient)``.

    Unknown names and capabilities outside this process's bounding set (it cannot grant them)
    are dropped with a warning naming them (runtime-spec config.md: runtimes SHOULD NOT fail for
    capabilities the kernel does not know; runc and crun only warn).
    """
    last = capsmod.last_cap()
    have = capsmod.bounding_set()
    out = []
    for setname in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        mask = 0
        for i, name in enumerate(getattr(caps, setname, None) or []):
            n = capsmod.CAP_NUMBERS.get(name)
            if n is None or n > last:
                warnings.append(f'{field}.{setname}[{i}]: unknown capability "{name}" (ignored)')
                continue
            if not have >> n & 1:
                warnings.append(f'{field}.{setname}[{i}]: {name} is not in the runtime\'s bounding set and cannot be granted (ignored)')
                continue
            mask |= 1 << n
        out.append(mask)
    return tuple(out)  # type: ignore[return-value]


def rlimit_list(rlimits, field: str = "process.rlimits") -> list[tuple[str, int, int, int]]:
    """Turn ``process.rlimits`` into ``[(name, resource, soft, hard)]``; 2^64-1 means unlimited.

    Raises:
        errors.ConfigError: unknown or duplicate type, soft > hard.
    """
    out = []
    seen = set()
    for i, rl in enumerate(rlimits or []):
        if rl.type not in RLIMITS:
            raise errors.ConfigError(f"{field}[{i}].type", f'unknown rlimit "{rl.type}"')
        if rl.type in seen:
            raise errors.ConfigError(f"{field}[{i}].type", f'duplicate rlimit "{rl.type}"')
        seen.add(rl.type)
        soft = -1 if rl.soft >= RLIM_INFINITY_OCI else rl.soft
        hard = -1 if rl.hard >= RLIM_INFINITY_OCI else rl.hard
        if hard != -1 and (soft == -1 or soft > hard):
            raise errors.ConfigError(f"{field}[{i}]", f"soft limit {rl.soft} is above hard limit {rl.hard}")
        out.append((rl.type, RLIMITS[rl.type], soft, hard))
    return out


def process_plan(proc, warnings: list[str], field: str = "process") -> ProcessPlan:
    """Build the :class:`ProcessPlan` of an OCI ``process`` object."""
    p = ProcessPlan()
    p.args = list(proc.args or [])
    env = collapse_env(list(proc.env or []))
    p.env = env
    p.cwd = proc.cwd or "/"
    if proc.user is not None:
        p.uid = proc.user.uid
        p.gid = proc.user.gid
        p.additional_gids = list(proc.user.additional_gids or [])
        p.umask = proc.user.umask
    if proc.capabilities is not None:
        p.caps = cap_masks(proc.capabilities, warnings, f"{field}.capabilities")
    else:
        p.caps = (0, 0, 0, 0, 0)
    p.no_new_privs = bool(proc.no_new_privileges)
    p.rlimits = rlimit_list(proc.rlimits, f"{field}.rlimits")
    p.apparmor = proc.apparmor_profile or None
    p.selinux_label = proc.selinux_label or None
    p.oom_score_adj = proc.oom_score_adj
    p.scheduler = proc.scheduler
    p.io_priority = proc.io_priority
    p.terminal = bool(proc.terminal)
    if proc.console_size is not None:
        p.console_size = (proc.console_size.height, proc.console_size.width)
    return p


def build(spec, *, cid: str, bundle: str, state_dir: str, cgroup_paths: dict[str, str], layout=None,
          no_pivot: bool = False, no_new_keyring: bool = False, preserve_fds: int = 0, explain: bool = False) -> InitPlan:
    """Compute the :class:`InitPlan` for ``spec`` (a decoded ``Spec``).

    Raises:
        errors.ConfigError: something in the config cannot be applied (names the JSON path).
    """
    plan = InitPlan()
    plan.cid = cid
    plan.state_dir = state_dir
    root = spec.root.path
    # Symlinks resolved once, here, as runc does (EvalSymlinks): the init may not be able to
    # traverse the path (a user namespace's root), and pivot_root wants the real directory.
    plan.rootfs = os.path.realpath(root if os.path.isabs(root) else os.path.join(bundle, root))
    plan.no_pivot = no_pivot
    plan.new_keyring = not no_new_keyring
    plan.explain = explain
    linux = spec.linux
    namespaces = list(linux.namespaces or []) if linux is not None else []
    types = {ns.type for ns in namespaces}
    for ns in sorted(namespaces, key=lambda n: 0 if n.type == "user" else 1):
        if ns.path:
            plan.join.append((ns.type, ns.path))
        elif ns.type == "user":
            plan.new_user = True
        else:
            plan.new_flags |= _ns_flag(ns.type)
    plan.mount_ns = "mount" in types
    plan.new_cgroupns = bool(plan.new_flags & sc.CLONE_NEWCGROUP)
    if linux is not None and linux.time_offsets:
        for clock, off in linux.time_offsets.items():
            plan.time_offsets[clock] = (off.secs or 0, off.nanosecs or 0)
    plan.cgroup_paths = dict(cgroup_paths)
    if layout is not None:
        plan.cgroup_v1_keys = [h.key for h in layout.v1]
        plan.has_v2 = layout.v2 is not None

    # Mounts
    if linux is not None and linux.rootfs_propagation:
        prop = mountopts.PROPAGATION.get(linux.rootfs_propagation)
        if prop is None:
            raise errors.ConfigError("linux.rootfsPropagation", f"unknown propagation {linux.rootfs_propagation!r}")
        # While building, "/" is a recursive slave unless shared or private is asked for (an
        # unbindable "/" could not be bind-mounted); the requested type is applied to the new
        # root after pivot_root.
        if prop & (sc.MS_SHARED | sc.MS_PRIVATE):
            plan.root_propagation = (prop & (sc.MS_SHARED | sc.MS_PRIVATE)) | sc.MS_REC
        plan.final_propagation = prop
    has_dev_mount = False
    for i, m in enumerate(spec.mounts or []):
        field = f"mounts[{i}]"
        if not m.destination.startswith("/"):
            raise errors.ConfigError(f"{field}.destination", f'must be an absolute path, got "{m.destination}"')
        opts = mountopts.parse(m.options)
        fstype = m.type or None
        is_bind = opts.is_bind or fstype == "bind"
        if fstype == "bind":
            opts.flags |= sc.MS_BIND
        source = m.source
        if is_bind:
            if not source:
                raise errors.ConfigError(f"{field}.source", "a bind mount needs a source")
            if not source.startswith("/"):
                source = os.path.join(bundle, source)
            fstype = None
        step = MountStep(dest=os.path.normpath(m.destination), source=source, fstype=fstype, index=i,
                         propagation=opts.propagation, bind=is_bind, tmpcopyup="tmpcopyup" in opts.extensions,
                         cgroup=fstype in ("cgroup", "cgroup2") and not is_bind, data=opts.data_str)
        if is_bind:
            step.flags = opts.flags & (sc.MS_BIND | sc.MS_REC)
            extra = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
            step.remount_flags = extra if extra else 0
        else:
            step.flags = opts.flags
            step.remount_flags = 0
        if step.dest == "/dev":
            has_dev_mount = True
            if is_bind:
                plan.default_dev = False
        plan.mounts.append(step)
    dev_is_bind = any(m.dest == "/dev" and m.bind for m in plan.mounts)
    plan.default_dev = plan.mount_ns and has_dev_mount and not dev_is_bind
    if plan.default_dev:
        plan.devices = list(DEFAULT_DEVICES)
    if linux is not None:
        for i, d in enumerate(linux.devices or []):
            field = f"linux.devices[{i}]"
            if not d.path.startswith("/"):
                raise errors.ConfigError(f"{field}.path", f'must be an absolute path, got "{d.path}"')
            kind = "c" if d.type == "u" else d.type
            if kind not in ("c", "b", "p"):
                raise errors.ConfigError(f"{field}.type", f'unknown device type "{d.type}" (expected c, b, u or p)')
            plan.devices = [x for x in plan.devices if x.path != d.path]
            mode = d.file_mode if d.file_mode is not None else 0o666
            plan.devices.append(DeviceNode(d.path, kind, d.major or 0, d.minor or 0, mode & 0o7777, d.uid or 0, d.gid or 0))
        plan.masked = list(linux.masked_paths or [])
        plan.readonly = list(linux.readonly_paths or [])
        plan.sysctl = dict(linux.sysctl or {})
    plan.hostname = spec.hostname
    plan.domainname = spec.domainname
    plan.root_readonly = bool(spec.root.readonly)
    plan.hooks_create_container = hooks_of(spec, "createContainer")
    plan.hooks_start_container = hooks_of(spec, "startContainer")

    if spec.process is not None:
        p = process_plan(spec.process, plan.warnings)
        p.preserve_fds = preserve_fds
        plan.preserve_fds = preserve_fds
        if linux is not None and linux.personality is not None:
            p.personality = {"LINUX": 0x0000, "LINUX32": 0x0008}.get(linux.personality.domain)
        if linux is not None and linux.seccomp is not None:
            p.seccomp_bpf, p.seccomp_flags = build_seccomp(linux.seccomp)
        plan.process = p
    return plan


def build_seccomp(seccomp) -> tuple[bytes, int]:
    """Compile ``linux.seccomp`` with libseccomp and return ``(bpf program, seccomp(2) flags)``.

    The runtime compiles (seccomp_init(3), seccomp_rule_add(3), seccomp_export_bpf(3)); the init
    only installs the result with seccomp(2), as seccomp_load(3) would.

    Raises:
        errors.ConfigError: the profile names an unknown action, operator, architecture or flag.
    """
    import msgspec

    from nano_sandbox.linux import seccomp as sec

    try:
        f = sec.build(msgspec.to_builtins(seccomp))
    except sec.SeccompError as e:
        raise errors.ConfigError(getattr(e, "path", "linux.seccomp"), getattr(e, "message", str(e))) from e
    try:
        bpf = f.export_bpf()
        flags = 0
        for name in f.flags:
            flags |= sc.SECCOMP_FILTER_FLAGS.get(name, 0)
    finally:
        f.release()
    return bpf, flags


def to_wire(plan) -> bytes:
    """Marshal a plan (:class:`InitPlan` or :class:`ExecPlan` with everything it holds) into
    one packet of plain data for :func:`nano_sandbox.process.init.from_wire`: objects become
    dicts tagged with ``"_"``, msgspec Structs (scheduler, ioPriority) their fields."""
    import marshal

    return marshal.dumps(_plain(plan))


def _plain(v):
    if v is None or isinstance(v, (bool, int, float, str, bytes)):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    fields = getattr(v, "__struct_fields__", None)
    if fields is not None:  # a msgspec Struct
        return {"_": type(v).__name__, **{f: _plain(getattr(v, f)) for f in fields}}
    names = getattr(type(v), "__slots__", None) or list(vars(v))
    return {"_": type(v).__name__, **{n: _plain(getattr(v, n)) for n in names}}
