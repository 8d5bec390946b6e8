"""Rules a decoded config must follow beyond its JSON types: structural, semantic and host checks.

Three levels, each returning :class:`~nano_sandbox.errors.ConfigError` objects whose ``path``
uses the format of :mod:`nano_sandbox.spec` (``linux.namespaces[3].type``,
``linux.sysctl["net.ipv4.ip_forward"]``):

* :func:`structural_problems`: cheap rules without which the config cannot be run at all
  (``decode_config`` raises the first one): root present, process args/cwd, rlimit names,
  duplicates and soft <= hard, duplicate namespaces and relative namespace paths, hostname or
  domainname without a uts namespace.
* :func:`check`: every problem: the structural ones, the host-independent semantic rules
  (resource values, sysctl namespacing, user/time namespace consistency, device/masked/readonly
  paths, seccomp consistency, env format, hook paths...) and the rules that depend on the
  host (:class:`Host`: namespaces and cgroup controllers available, LSMs, rootfs present).
* :func:`warnings`: things the runtime ignores or tolerates (unknown capability names, deprecated
  relative mount destinations, an ``ociVersion`` outside the supported range, no ``process``).

Spec sections: config.md, config-linux.md (runtime-spec 1.3.0); where the spec leaves a choice the
rule follows runc's ``libcontainer/configs/validate`` and says so.
"""

from __future__ import annotations

import os

from nano_sandbox.errors import ConfigError

#: Linux resource limits of getrlimit(2) (``process.rlimits[].type``).
RLIMITS = frozenset(
    {
        "RLIMIT_AS",
        "RLIMIT_CORE",
        "RLIMIT_CPU",
        "RLIMIT_DATA",
        "RLIMIT_FSIZE",
        "RLIMIT_LOCKS",
        "RLIMIT_MEMLOCK",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_NOFILE",
        "RLIMIT_NPROC",
        "RLIMIT_RSS",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
        "RLIMIT_SIGPENDING",
        "RLIMIT_STACK",
    }
)

#: sysctls namespaced by the ipc namespace (runc's list, plus the ``*_next_id`` files which the
#: kernel also keeps per ipc namespace); every ``fs.mqueue.*`` name too.
IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.msg_next_id",
        "kernel.sem",
        "kernel.sem_next_id",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_next_id",
        "kernel.shm_rmid_forced",
    }
)

#: every OCI namespace type (config-linux.md "Namespaces").
ALL_NAMESPACES = frozenset({"mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time"})
#: cgroup controllers a fully featured host offers through v1 or v2 (``Host()``'s default).
ALL_CONTROLLERS = frozenset(
    {"cpu", "cpuacct", "cpuset", "io", "blkio", "memory", "pids", "hugetlb", "rdma", "misc", "net_cls", "net_prio", "devices", "freezer", "perf_event"}
)
#: /proc/self/ns file name -> OCI namespace type.
_NS_FILES = {"mnt": "mount", "net": "network", "pid": "pid", "ipc": "ipc", "uts": "uts", "user": "user", "cgroup": "cgroup", "time": "time"}


class Host:
    """What the host supports, as the host-dependent rules of :func:`check` need it.

    Construct it directly in tests (every argument defaults to "fully featured"), or read the
    running system with :meth:`probe`.

    Attributes:
        namespaces: OCI namespace types available (``"pid"``, ``"network"``, ``"mount"``, ...).
        controllers: cgroup controllers usable through v1 or v2 (``"memory"``, ``"io"``, ...).
        last_cap: highest capability number the kernel knows (``/proc/sys/kernel/cap_last_cap``).
        lsms: ``"apparmor"`` and/or ``"selinux"`` when enabled.
        cgroup_mode: ``"v1"``, ``"v2"``, ``"hybrid"`` or ``"none"`` (``linux.resources.unified``
            needs a cgroup2 hierarchy).
    """

    __slots__ = ("cgroup_mode", "controllers", "last_cap", "lsms", "namespaces")

    def __init__(
        self,
        namespaces: frozenset[str] | set[str] = ALL_NAMESPACES,
        controllers: frozenset[str] | set[str] = ALL_CONTROLLERS,
        last_cap: int = 40,
        lsms: frozenset[str] | set[str] = frozenset({"apparmor", "selinux"}),
        cgroup_mode: str = "v2",
    ) -> None:
        self.namespaces = frozenset(namespaces)
        self.controllers = frozenset(controllers)
        self.last_cap = last_cap
        self.lsms = frozenset(lsms)
        self.cgroup_mode = cgroup_mode

    def __repr__(self) -> str:
        return (
            f"Host(namespaces={sorted(self.namespaces)!r}, controllers={sorted(self.controllers)!r}, "
            f"last_cap={self.last_cap}, lsms={sorted(self.lsms)!r}, cgroup_mode={self.cgroup_mode!r})"
        )

    @classmethod
    def probe(cls) -> Host:
        """Read the running system: ``/proc/self/ns``, the cgroup mounts
        (:func:`nano_sandbox.cgroups.layout.detect`), ``cap_last_cap`` and the LSM files
        (``/sys/kernel/security/lsm``, else ``/sys/module/apparmor/parameters/enabled`` and
        ``/sys/fs/selinux/enforce``). Never raises: an unreadable source counts as "absent"."""
        from nano_sandbox.cgroups import layout
        from nano_sandbox.linux import caps

        try:
            ns = {_NS_FILES[n] for n in os.listdir("/proc/self/ns") if n in _NS_FILES}
        except OSError:
            ns = set()
        try:
            lay = layout.detect()
            controllers, mode = lay.controllers(), lay.mode
        except OSError:
            controllers, mode = set(), "none"
        return cls(ns, controllers, caps.last_cap(), _probe_lsms(), mode)


def _probe_lsms() -> frozenset[str]:
    try:
        with open("/sys/kernel/security/lsm") as f:
            names = set(f.read().strip().split(","))
        return frozenset(names & {"apparmor", "selinux"})
    except OSError:
        pass
    found = set()
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            if f.read().strip().upper().startswith("Y"):
                found.add("apparmor")
    except OSError:
        pass
    if os.path.exists("/sys/fs/selinux/enforce"):
        found.add("selinux")
    return frozenset(found)


# -- helpers ------------------------------------------------------------------------------------


def _j(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _q(s: object) -> str:
    import msgspec

    return msgspec.json.encode(s).decode()


def _ns_index(spec) -> dict[str, int]:
    """namespace type -> index of its first entry in linux.namespaces."""
    out: dict[str, int] = {}
    if spec.linux is not None:
        for i, ns in enumerate(spec.linux.namespaces):
            out.setdefault(ns.type, i)
    return out


# -- structural rules ---------------------------------------------------------------------------


def structural_problems(spec, source: str = "config.json") -> list[ConfigError]:
    """Return the problems that make ``spec`` unusable, in document order (config.md, config-linux.md).

    Rules: ``root`` present with a non-empty ``path``; every ``mounts[].destination`` absolute;
    ``process`` rules of :func:`process_problems`; ``hostname``/``domainname`` need a ``uts``
    entry in ``linux.namespaces`` (runc's rule; joining a uts namespace by ``path`` is accepted, as
    the hostname is then set in that namespace); each namespace type at most once; a namespace
    ``path`` must be absolute.

    Args:
        spec: a decoded :class:`~nano_sandbox.spec.config.Spec`.
        source: document name for the errors.

    Returns:
        A list of ConfigError (empty when the config is structurally sound).
    """
    out: list[ConfigError] = []

    def err(path: str, msg: str) -> None:
        out.append(ConfigError(path, msg, source))

    if spec.root is None:
        err("root", "required field is missing")
    elif not spec.root.path:
        err("root.path", "must not be empty")
    for i, m in enumerate(spec.mounts):
        if not m.destination:
            err(f"mounts[{i}].destination", "must not be empty")
        elif not m.destination.startswith("/"):
            # runtime-spec >= 1.1 tolerates (and deprecates) a relative destination; this runtime
            # refuses it, so a typo never silently mounts somewhere else.
            err(f"mounts[{i}].destination", f'must be an absolute path, got "{m.destination}"')
    if spec.process is not None:
        out.extend(process_problems(spec.process, "process", source))
    ns = _ns_index(spec)
    for field in ("hostname", "domainname"):
        if getattr(spec, field) and "uts" not in ns:
            err(field, "requires a uts namespace in linux.namespaces")
    if spec.linux is not None:
        seen: set[str] = set()
        for i, n in enumerate(spec.linux.namespaces):
            if n.type in seen:
                err(f"linux.namespaces[{i}].type", f"duplicate namespace {_q(n.type)}")
            seen.add(n.type)
            if n.path and not n.path.startswith("/"):
                err(f"linux.namespaces[{i}].path", f"must be an absolute path, got {_q(n.path)}")
    return out


def process_problems(proc, prefix: str = "process", source: str = "config.json") -> list[ConfigError]:
    """Structural rules of a ``process`` object (config.md "Process", "POSIX process").

    ``args`` needs at least one entry (REQUIRED on Linux); ``cwd`` must be absolute; each
    ``rlimits[].type`` must be a Linux rlimit, appear once, and have ``soft <= hard``.

    Args:
        proc: a :class:`~nano_sandbox.spec.config.Process`.
        prefix: JSON path of the object (``"process"`` in config.json, ``""`` for process.json).
        source: document name for the errors.
    """
    out: list[ConfigError] = []
    if not proc.args:
        out.append(ConfigError(_j(prefix, "args"), "at least one entry is required", source))
    if not proc.cwd.startswith("/"):
        out.append(ConfigError(_j(prefix, "cwd"), f"must be an absolute path, got {_q(proc.cwd)}", source))
    seen: set[str] = set()
    for i, rl in enumerate(proc.rlimits):
        p = f"{_j(prefix, 'rlimits')}[{i}]"
        if rl.type not in RLIMITS:
            out.append(ConfigError(f"{p}.type", f"unknown rlimit {_q(rl.type)}", source))
        elif rl.type in seen:
            out.append(ConfigError(f"{p}.type", f"duplicate rlimit {_q(rl.type)}", source))
        seen.add(rl.type)
        if rl.soft > rl.hard:
            out.append(ConfigError(f"{p}.soft", f"soft limit {rl.soft} is above the hard limit {rl.hard}", source))
    return out


def resource_problems(res, prefix: str = "linux.resources", source: str = "config.json") -> list[ConfigError]:
    """Host-independent value rules of ``linux.resources`` (config-linux.md "Control groups").

    * memory ``limit``/``reservation``/``swap``/``kernel``/``kernelTCP``, ``pids.limit``,
      ``cpu.quota`` and ``cpu.realtimeRuntime``: -1 (unlimited) or >= 0;
    * ``memory.swap`` (memory + swap) >= ``memory.limit`` when both are > 0;
    * ``memory.swappiness`` 0..100; ``cpu.idle`` 0 or 1;
    * block I/O weights 10..1000 (0 = unset);
    * device rules: ``type`` a/c/b, ``access`` letters from ``rwm``;
    * ``unified`` keys are file names (no ``/``).

    Args:
        res: a :class:`~nano_sandbox.spec.config.LinuxResources`.
        prefix: JSON path of the object (``""`` for update's resources.json).
        source: document name for the errors.
    """
    out: list[ConfigError] = []

    def err(path: str, msg: str) -> None:
        out.append(ConfigError(path, msg, source))

    def unlimited_or_positive(obj, name: str, enc: str, base: str) -> None:
        v = getattr(obj, name)
        if v is not None and v < -1:
            err(_j(base, enc), f"must be -1 (unlimited) or >= 0, got {v}")

    for i, d in enumerate(res.devices):
        p = f"{_j(prefix, 'devices')}[{i}]"
        if d.type is not None and d.type not in ("a", "c", "b"):
            err(f"{p}.type", f'invalid value {_q(d.type)} (expected one of "a", "c", "b")')
        if d.access is not None and (not d.access or set(d.access) - set("rwm")):
            err(f"{p}.access", f'invalid access {_q(d.access)} (expected letters from "rwm")')
    mem = res.memory
    if mem is not None:
        base = _j(prefix, "memory")
        for name, enc in (("limit", "limit"), ("reservation", "reservation"), ("swap", "swap"), ("kernel", "kernel"), ("kernel_tcp", "kernelTCP")):
            unlimited_or_positive(mem, name, enc, base)
        if mem.limit is not None and mem.swap is not None and mem.limit > 0 and mem.swap > 0 and mem.swap < mem.limit:
            err(_j(base, "swap"), f"must be >= memory.limit (swap counts memory + swap), got {mem.swap} < {mem.limit}")
        if mem.swappiness is not None and mem.swappiness > 100:
            err(_j(base, "swappiness"), f"must be 0..100, got {mem.swappiness}")
    cpu = res.cpu
    if cpu is not None:
        base = _j(prefix, "cpu")
        unlimited_or_positive(cpu, "quota", "quota", base)
        unlimited_or_positive(cpu, "realtime_runtime", "realtimeRuntime", base)
        if cpu.idle is not None and cpu.idle not in (0, 1):
            err(_j(base, "idle"), f"must be 0 or 1, got {cpu.idle}")
    if res.pids is not None:
        unlimited_or_positive(res.pids, "limit", "limit", _j(prefix, "pids"))
    bio = res.block_io
    if bio is not None:
        base = _j(prefix, "blockIO")

        def weight(v, path: str) -> None:
            if v is not None and v != 0 and not 10 <= v <= 1000:
                err(path, f"must be 10..1000, got {v}")

        weight(bio.weight, _j(base, "weight"))
        weight(bio.leaf_weight, _j(base, "leafWeight"))
        for i, wd in enumerate(bio.weight_device):
            weight(wd.weight, f"{base}.weightDevice[{i}].weight")
            weight(wd.leaf_weight, f"{base}.weightDevice[{i}].leafWeight")
    for key in res.unified:
        if not key or "/" in key or key in (".", ".."):
            err(f"{_j(prefix, 'unified')}[{_q(key)}]", "must be a cgroup file name (no '/')")
    return out


# -- semantic rules -----------------------------------------------------------------------------


def _env_problems(env: list[str], base: str, source: str) -> list[ConfigError]:
    out = []
    for i, kv in enumerate(env):
        name, eq, _ = kv.partition("=")
        if not eq:
            out.append(ConfigError(f"{base}[{i}]", f"must have the form KEY=value, got {_q(kv)}", source))
        elif not name:
            out.append(ConfigError(f"{base}[{i}]", f"variable name is empty in {_q(kv)}", source))
        elif "\0" in kv:
            out.append(ConfigError(f"{base}[{i}]", "contains a NUL byte", source))
    return out


def _semantic_problems(spec, bundle_dir: str | None, source: str) -> list[ConfigError]:
    out: list[ConfigError] = []

    def err(path: str, msg: str) -> None:
        out.append(ConfigError(path, msg, source))

    ns = _ns_index(spec)
    linux = spec.linux
    new_ns = {n.type for n in linux.namespaces if not n.path} if linux is not None else set()

    for i, m in enumerate(spec.mounts):
        if bool(m.uid_mappings) != bool(m.gid_mappings):
            have, need = ("uidMappings", "gidMappings") if m.uid_mappings else ("gidMappings", "uidMappings")
            err(f"mounts[{i}].{need}", f"required with {have} (an idmapped mount needs both)")

    proc = spec.process
    if proc is not None:
        for i, a in enumerate(proc.args):
            if "\0" in a:
                err(f"process.args[{i}]", "contains a NUL byte")
        out.extend(_env_problems(proc.env, "process.env", source))
        if proc.oom_score_adj is not None and not -1000 <= proc.oom_score_adj <= 1000:
            err("process.oomScoreAdj", f"must be -1000..1000, got {proc.oom_score_adj}")
        if proc.io_priority is not None and not 0 <= proc.io_priority.priority <= 7:
            err("process.ioPriority.priority", f"must be 0..7, got {proc.io_priority.priority}")
        sch = proc.scheduler
        if sch is not None:
            if sch.nice is not None and not -20 <= sch.nice <= 19:
                err("process.scheduler.nice", f"must be -20..19, got {sch.nice}")
            if sch.policy in ("SCHED_FIFO", "SCHED_RR"):
                if sch.priority is None or not 1 <= sch.priority <= 99:
                    err("process.scheduler.priority", f"must be 1..99 for {sch.policy}, got {sch.priority}")
            elif sch.priority:
                err("process.scheduler.priority", f"must be 0 for {sch.policy}, got {sch.priority}")

    if spec.hooks is not None:
        for point in ("prestart", "create_runtime", "create_container", "start_container", "poststart", "poststop"):
            enc = {"create_runtime": "createRuntime", "create_container": "createContainer", "start_container": "startContainer"}.get(point, point)
            for i, h in enumerate(getattr(spec.hooks, point)):
                if not h.path.startswith("/"):
                    err(f"hooks.{enc}[{i}].path", f"must be an absolute path, got {_q(h.path)}")
                out.extend(_env_problems(h.env, f"hooks.{enc}[{i}].env", source))

    if linux is None:
        return out

    if linux.resources is not None:
        out.extend(resource_problems(linux.resources, "linux.resources", source))

    # user namespace and id mappings (config-linux.md "User namespace mappings"; runc's rule)
    if "user" in ns:
        if "user" in new_ns:
            for enc, maps in (("uidMappings", linux.uid_mappings), ("gidMappings", linux.gid_mappings)):
                if not maps:
                    err(f"linux.{enc}", f"required by the new user namespace (linux.namespaces[{ns['user']}])")
    else:
        for enc, maps in (("uidMappings", linux.uid_mappings), ("gidMappings", linux.gid_mappings)):
            if maps:
                err(f"linux.{enc}", "requires a user namespace in linux.namespaces")
    for enc, maps in (("uidMappings", linux.uid_mappings), ("gidMappings", linux.gid_mappings)):
        for i, mp in enumerate(maps):
            if mp.size == 0:
                err(f"linux.{enc}[{i}].size", "must be >= 1")

    # time namespace offsets (config-linux.md "Offset for Time Namespace")
    if linux.time_offsets:
        if "time" not in ns:
            err("linux.timeOffsets", "requires a new time namespace in linux.namespaces")
        elif "time" not in new_ns:
            err("linux.timeOffsets", f"can only be set for a new time namespace, not a joined one (linux.namespaces[{ns['time']}].path)")
        for clock, off in linux.time_offsets.items():
            p = f"linux.timeOffsets[{_q(clock)}]"
            if clock not in ("monotonic", "boottime"):
                err(p, 'unknown clock (expected "monotonic" or "boottime")')
            if off.nanosecs >= 1_000_000_000:
                err(f"{p}.nanosecs", f"must be < 1000000000, got {off.nanosecs}")

    # devices (config-linux.md "Devices")
    for i, d in enumerate(linux.devices):
        p = f"linux.devices[{i}]"
        if not d.path.startswith("/"):
            err(f"{p}.path", f"must be an absolute path, got {_q(d.path)}")
        if d.type != "p":
            for name in ("major", "minor"):
                v = getattr(d, name)
                if v is None:
                    err(f"{p}.{name}", f"required for a {_q(d.type)} device")
                elif v < 0:
                    err(f"{p}.{name}", f"must be >= 0, got {v}")

    if linux.net_devices and "network" not in new_ns:
        err("linux.netDevices", "requires a new network namespace in linux.namespaces")

    # masked and read-only paths (config-linux.md; runc: need a mount namespace)
    for enc, paths in (("maskedPaths", linux.masked_paths), ("readonlyPaths", linux.readonly_paths)):
        for i, pth in enumerate(paths):
            if not pth.startswith("/"):
                err(f"linux.{enc}[{i}]", f"must be an absolute path, got {_q(pth)}")
        if paths and "mount" not in ns:
            err(f"linux.{enc}", "requires a mount namespace in linux.namespaces")

    # sysctl (config-linux.md "Sysctl"; runc's list of namespaced names)
    for key in linux.sysctl:
        p = f"linux.sysctl[{_q(key)}]"
        name = key.replace("/", ".")
        if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if "ipc" not in ns:
                err(p, "requires an ipc namespace in linux.namespaces (it would change the host's value)")
        elif name.startswith("net."):
            if "network" not in ns:
                err(p, "requires a network namespace in linux.namespaces (it would change the host's value)")
        elif name == "kernel.domainname" and "uts" in ns:
            pass
        elif name == "kernel.hostname" and "uts" in ns:
            err(p, 'conflicts with the "hostname" field: set the hostname there')
        else:
            err(p, "is not namespaced (it would change the host's value)")

    # seccomp (config-linux.md "Seccomp")
    sc = linux.seccomp
    if sc is not None:
        errno_actions = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
        if sc.default_errno_ret is not None and sc.default_action not in errno_actions:
            err("linux.seccomp.defaultErrnoRet", f"only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {sc.default_action}")
        notify = sc.default_action == "SCMP_ACT_NOTIFY"
        for i, rule in enumerate(sc.syscalls):
            p = f"linux.seccomp.syscalls[{i}]"
            notify = notify or rule.action == "SCMP_ACT_NOTIFY"
            if rule.errno_ret is not None and rule.action not in errno_actions:
                err(f"{p}.errnoRet", f"only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {rule.action}")
            for j, name in enumerate(rule.names):
                if not name:
                    err(f"{p}.names[{j}]", "must not be empty")
            for j, a in enumerate(rule.args):
                if a.index > 5:
                    err(f"{p}.args[{j}].index", f"must be 0..5 (a syscall has at most 6 arguments), got {a.index}")
        if notify and not sc.listener_path:
            err("linux.seccomp.listenerPath", "required when SCMP_ACT_NOTIFY is used")
    return out


# -- host rules ---------------------------------------------------------------------------------


def _host_problems(spec, bundle_dir: str | None, host: Host, source: str) -> list[ConfigError]:
    out: list[ConfigError] = []

    def err(path: str, msg: str) -> None:
        out.append(ConfigError(path, msg, source))

    if spec.root is not None and spec.root.path:
        rootfs = spec.root.path
        if not os.path.isabs(rootfs) and bundle_dir is not None:
            rootfs = os.path.join(bundle_dir, rootfs)
        if os.path.isabs(rootfs) or bundle_dir is not None:
            rootfs = os.path.abspath(rootfs)
            if not os.path.exists(rootfs):
                err("root.path", f"rootfs directory {rootfs} does not exist")
            elif not os.path.isdir(rootfs):
                err("root.path", f"rootfs {rootfs} is not a directory")

    proc = spec.process
    if proc is not None:
        if proc.apparmor_profile and "apparmor" not in host.lsms:
            err("process.apparmorProfile", "AppArmor is not enabled on this host")
        if proc.selinux_label and "selinux" not in host.lsms:
            err("process.selinuxLabel", "SELinux is not enabled on this host")

    linux = spec.linux
    if linux is None:
        return out
    if linux.mount_label and "selinux" not in host.lsms:
        err("linux.mountLabel", "SELinux is not enabled on this host")

    for i, n in enumerate(linux.namespaces):
        if n.type not in host.namespaces:
            err(f"linux.namespaces[{i}].type", f"the {n.type} namespace is not available on this host")
        elif n.path and n.path.startswith("/") and not os.path.exists(n.path):
            err(f"linux.namespaces[{i}].path", f"{n.path} does not exist")
        elif n.type == "network" and n.path and linux.sysctl and _same_file(n.path, "/proc/self/ns/net"):
            for key in linux.sysctl:
                if key.replace("/", ".").startswith("net."):
                    err(f"linux.sysctl[{_q(key)}]", f"not allowed: linux.namespaces[{i}].path is the host's network namespace")

    res = linux.resources
    if res is not None:
        out.extend(_controller_problems(res, host, source))
    return out


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _any_set(obj) -> bool:
    return any(getattr(obj, n) not in (None, [], {}) for n in obj.__struct_fields__)


def _controller_problems(res, host: Host, source: str) -> list[ConfigError]:
    out: list[ConfigError] = []
    have = host.controllers

    def need(path: str, controller: str) -> None:
        if controller not in have:
            out.append(ConfigError(path, f"the {controller} cgroup controller is not available", source))

    p = "linux.resources"
    if res.memory is not None and _any_set(res.memory):
        need(f"{p}.memory", "memory")
    cpu = res.cpu
    if cpu is not None:
        if any(getattr(cpu, n) is not None for n in ("shares", "quota", "burst", "period", "realtime_runtime", "realtime_period", "idle")):
            need(f"{p}.cpu", "cpu")
        for n in ("cpus", "mems"):
            if getattr(cpu, n):
                need(f"{p}.cpu.{n}", "cpuset")
    if res.pids is not None:
        need(f"{p}.pids", "pids")
    if res.block_io is not None and _any_set(res.block_io) and not ({"io", "blkio"} & have):
        out.append(ConfigError(f"{p}.blockIO", "no block I/O cgroup controller (io or blkio) is available", source))
    if res.hugepage_limits:
        need(f"{p}.hugepageLimits", "hugetlb")
    net = res.network
    if net is not None:
        if net.class_id is not None:
            need(f"{p}.network.classID", "net_cls")
        if net.priorities:
            need(f"{p}.network.priorities", "net_prio")
    if res.rdma:
        need(f"{p}.rdma", "rdma")
    if res.unified:
        if host.cgroup_mode not in ("v2", "hybrid"):
            out.append(ConfigError(f"{p}.unified", f"requires a cgroup v2 hierarchy (this host's cgroups are {host.cgroup_mode})", source))
        else:
            for key in res.unified:
                ctrl = key.partition(".")[0]
                if ctrl and ctrl != "cgroup" and "." in key and ctrl not in have:
                    out.append(ConfigError(f"{p}.unified[{_q(key)}]", f"the {ctrl} cgroup controller is not available", source))
    return out


# -- the public checks --------------------------------------------------------------------------


def check(spec, bundle_dir: str | None = None, host: Host | None = None, source: str = "config.json") -> list[ConfigError]:
    """Return EVERY problem of ``spec``: structural, semantic and host-dependent, in that order.

    Args:
        spec: a decoded :class:`~nano_sandbox.spec.config.Spec` (decoded with or without
            ``normalize``).
        bundle_dir: the bundle directory; a relative ``root.path`` is resolved against it (without
            it, only an absolute ``root.path`` is checked for existence).
        host: what the host supports; :meth:`Host.probe` when None.
        source: document name for the errors.

    Returns:
        A list of ConfigError, empty when the bundle can be run on this host. Nothing is raised
        for problems; the list is the result.
    """
    from nano_sandbox.spec import _uint64_overflows
    from nano_sandbox.spec.config import UINT64_MAX

    if host is None:
        host = Host.probe()
    out = structural_problems(spec, source)
    out.extend(ConfigError(p, f"expected int <= {UINT64_MAX}, got {v}", source) for p, v in _uint64_overflows(spec, ""))
    out.extend(_semantic_problems(spec, bundle_dir, source))
    out.extend(_host_problems(spec, bundle_dir, host, source))
    return out


def warnings(spec, host: Host | None = None) -> list[str]:
    """Return what the runtime tolerates or ignores in ``spec``, one ``"<path>: <message>"`` each.

    * unknown capability names (``process.capabilities.bounding[3]: unknown capability "CAP_FOO"
      (ignored)``), and, given ``host``, names the running kernel does not know (runc ignores both);
    * ``ociVersion`` not SemVer or outside ``OCI_VERSION_MIN``..``OCI_VERSION``;
    * no ``process`` (the container can be created but not started);
    * ``hooks.prestart`` (deprecated by the spec).
    """
    from nano_sandbox import OCI_VERSION, OCI_VERSION_MIN
    from nano_sandbox.linux.caps import CAP_NUMBERS

    out: list[str] = []
    ver = _semver(spec.oci_version)
    if ver is None:
        out.append(f"ociVersion: {_q(spec.oci_version)} is not a SemVer 2.0.0 version")
    elif ver < _semver(OCI_VERSION_MIN):
        out.append(f"ociVersion: {spec.oci_version} is older than {OCI_VERSION_MIN}, the oldest version this runtime supports")
    elif ver[0] != _semver(OCI_VERSION)[0] or ver[:2] > _semver(OCI_VERSION)[:2]:
        out.append(f"ociVersion: {spec.oci_version} is newer than {OCI_VERSION}, the version this runtime implements; unknown fields are ignored")
    if spec.process is None:
        out.append("process: not set; the container can be created but not started")
    else:
        caps = spec.process.capabilities
        if caps is not None:
            for set_name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
                for i, name in enumerate(getattr(caps, set_name)):
                    num = CAP_NUMBERS.get(name)
                    where = f"process.capabilities.{set_name}[{i}]"
                    if num is None:
                        out.append(f"{where}: unknown capability {_q(name)} (ignored)")
                    elif host is not None and num > host.last_cap:
                        out.append(f"{where}: capability {_q(name)} is not supported by the running kernel (ignored)")
    if spec.hooks is not None and spec.hooks.prestart:
        out.append("hooks.prestart: deprecated by the runtime-spec; use createRuntime, createContainer or startContainer")
    return out


def _semver(v: str) -> tuple[int, int, int, int] | None:
    """``"1.2.3"`` -> (1, 2, 3, 1); a pre-release (``"1.2.3-rc.1"``) sorts before: (1, 2, 3, 0)."""
    core, _, _build = v.partition("+")
    core, dash, _pre = core.partition("-")
    parts = core.split(".")
    if len(parts) != 3 or not all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2]), 0 if dash else 1
