"""The OCI runtime-spec ``config.json`` model (runtime-spec 1.3.0, generic + Linux parts).

One ``msgspec.Struct`` per JSON object of ``config.md`` and ``config-linux.md``; class names are
those of the spec's Go bindings (``specs-go/config.go``). Python attributes are snake_case; the
JSON names are exactly the spec's (``rename="camel"`` plus an explicit ``msgspec.field(name=...)``
wherever camel conversion would be wrong: ``containerID``, ``hostID``, ``classID``, ``kernelTCP``,
``disableOOMKiller``, ``execCPUAffinity``, ``closID``, ``blockIO``, ``throttleReadIOPSDevice``...).

Conventions (``kw_only=True, omit_defaults=True`` everywhere):

* Fields the JSON schema marks ``required`` have no default: a missing one is a decode error.
* Optional scalars default to ``None`` (unset); optional arrays and maps default to ``[]`` / ``{}``
  where the spec gives an absent and an empty value the same meaning; booleans the spec says
  "default to false" default to ``False``.
* Unknown JSON fields are ignored, as the spec requires (``config.md``: "Runtimes MUST ignore
  unknown properties"); that is how Windows/Solaris/FreeBSD/z/OS sections and ``commandLine`` are
  skipped.
* Integer widths come from ``schema/defs.json`` (``int32``, ``int64``, ``uint16``, ``uint32``,
  ``uint64``) as ``msgspec.Meta`` bounds, so out-of-range numbers are decode errors. msgspec cannot
  express the uint64 upper bound (2**64-1) as a constraint; :data:`UINT64_FIELDS` lists those
  fields and ``nano_sandbox.spec`` checks them after decoding.
* Enumerations of the schema (namespace types, seccomp actions/operators/architectures/flags,
  scheduler policies and flags, I/O priority classes, device types, memory-policy modes...) are
  ``Literal`` types, so an unknown value is a decode error; the allowed values are also exported
  as tuples (``NAMESPACE_TYPES``...) for the validator and the ``features`` verb.
* Schema ``pattern`` constraints are ``Meta(pattern=...)`` (``pageSize``, ``execCPUAffinity``,
  ``memBwSchema``); ``rlimits[].type`` is checked against the list of Linux rlimits instead (see
  ``nano_sandbox.spec.validate``).

Deliberate differences from the schema file, each for runc compatibility:

* ``linux.rootfsPropagation`` also accepts runc's recursive spellings ``rprivate``, ``rshared``,
  ``rslave`` and ``runbindable`` (Docker writes ``rslave``/``rshared``).
"""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, field

from nano_sandbox.linux.seccomp import KNOWN_ARCHS

# -- integer types of schema/defs.json ---------------------------------------------------------

Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
UInt16 = Annotated[int, Meta(ge=0, le=2**16 - 1)]
UInt32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
#: uint64: msgspec checks ``>= 0``; the upper bound :data:`UINT64_MAX` is checked after decoding.
UInt64 = Annotated[int, Meta(ge=0)]
#: ``FileMode`` of defs.json: permission bits in decimal (0o777 = 511 at most).
FileMode = Annotated[int, Meta(ge=0, le=0o777)]

UINT64_MAX = 2**64 - 1

# -- enumerations of schema/defs-linux.json and config-schema.json ----------------------------

NAMESPACE_TYPES = ("mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time")
ROOTFS_PROPAGATIONS = ("private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable")
SECCOMP_ACTIONS = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
)
SECCOMP_OPERATORS = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)
SECCOMP_ARCHES = KNOWN_ARCHS  # one list, with the seccomp layer that resolves them
SECCOMP_FLAGS = (
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)
DEVICE_TYPES = ("c", "b", "u", "p")
SCHEDULER_POLICIES = (
    "SCHED_OTHER",
    "SCHED_FIFO",
    "SCHED_RR",
    "SCHED_BATCH",
    "SCHED_ISO",
    "SCHED_IDLE",
    "SCHED_DEADLINE",
)
SCHEDULER_FLAGS = (
    "SCHED_FLAG_RESET_ON_FORK",
    "SCHED_FLAG_RECLAIM",
    "SCHED_FLAG_DL_OVERRUN",
    "SCHED_FLAG_KEEP_POLICY",
    "SCHED_FLAG_KEEP_PARAMS",
    "SCHED_FLAG_UTIL_CLAMP_MIN",
    "SCHED_FLAG_UTIL_CLAMP_MAX",
)
IOPRIO_CLASSES = ("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")
MEMORY_POLICY_MODES = (
    "MPOL_DEFAULT",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_LOCAL",
)
MEMORY_POLICY_FLAGS = ("MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES")
PERSONALITY_DOMAINS = ("LINUX", "LINUX32")

NamespaceType = Literal[NAMESPACE_TYPES]
RootfsPropagation = Literal[ROOTFS_PROPAGATIONS]
SeccompAction = Literal[SECCOMP_ACTIONS]
SeccompOperator = Literal[SECCOMP_OPERATORS]
SeccompArch = Literal[SECCOMP_ARCHES]
SeccompFlag = Literal[SECCOMP_FLAGS]
DeviceType = Literal[DEVICE_TYPES]
SchedulerPolicy = Literal[SCHEDULER_POLICIES]
SchedulerFlag = Literal[SCHEDULER_FLAGS]
IOPriorityClass = Literal[IOPRIO_CLASSES]
MemoryPolicyMode = Literal[MEMORY_POLICY_MODES]
MemoryPolicyFlag = Literal[MEMORY_POLICY_FLAGS]
PersonalityDomain = Literal[PERSONALITY_DOMAINS]

#: schema patterns (config-schema.json / config-linux.json)
PageSize = Annotated[str, Meta(pattern="^[1-9][0-9]*[KMG]B$")]
CPUList = Annotated[str, Meta(pattern="^[0-9, -]*$")]
MemBwSchema = Annotated[str, Meta(pattern="^MB:[^\\n]*$")]


class _Obj(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """Base of every config object: keyword-only, defaults omitted on encode, camelCase JSON."""


# -- generic (config.md) ----------------------------------------------------------------------


class Root(_Obj, kw_only=True):
    """``root`` (config.md "Root"): the container's root filesystem.

    Attributes:
        path: rootfs directory, absolute or relative to the bundle (REQUIRED).
        readonly: mount the rootfs read-only inside the container.
    """

    path: str
    readonly: bool = False


class LinuxIDMapping(_Obj, kw_only=True):
    """One uid or gid range (config-linux.md "User namespace mappings", also idmapped mounts).

    Attributes:
        container_id: first id inside the container (JSON ``containerID``).
        host_id: first id on the host (JSON ``hostID``).
        size: number of ids mapped.
    """

    container_id: UInt32 = field(name="containerID")
    host_id: UInt32 = field(name="hostID")
    size: UInt32


class Mount(_Obj, kw_only=True):
    """One entry of ``mounts`` (config.md "Mounts", "POSIX-platform Mounts").

    Attributes:
        destination: path inside the container (REQUIRED). runtime-spec >= 1.1 allows a relative
            path on Linux, meaning relative to ``/`` (deprecated); ``decode_config`` makes it
            absolute.
        type: filesystem type (``proc``, ``tmpfs``, ``bind``/``none`` for bind mounts...).
        source: device, file/directory (bind mounts: absolute or relative to the bundle) or dummy.
        options: mount(8) options, kept verbatim (unknown strings included); the mount code
            decides what each means.
        uid_mappings / gid_mappings: idmapped-mount ranges (Linux).
    """

    destination: str
    type: str | None = None
    source: str | None = None
    options: list[str] = []
    uid_mappings: list[LinuxIDMapping] = []
    gid_mappings: list[LinuxIDMapping] = []


class Box(_Obj, kw_only=True):
    """``process.consoleSize``: terminal size in characters (ignored unless ``terminal``)."""

    height: UInt64
    width: UInt64


class User(_Obj, kw_only=True):
    """``process.user`` (config.md "POSIX-platform User").

    Attributes:
        uid, gid: ids in the container's user namespace (default 0, as Go's zero value).
        umask: umask for the process; None leaves the runtime's default (0022).
        additional_gids: supplementary groups (container namespace).
        username: Windows only; kept for completeness, unused on Linux.
    """

    uid: UInt32 = 0
    gid: UInt32 = 0
    umask: UInt32 | None = None
    additional_gids: list[UInt32] = []
    username: str | None = None


class LinuxCapabilities(_Obj, kw_only=True):
    """``process.capabilities`` (config.md "Linux Process"): capability names per set.

    Names are kept as given (``CAP_CHOWN``...); unknown names are reported as warnings by
    ``nano_sandbox.spec.validate.warnings`` and ignored, as runc does. An absent set is empty.
    """

    bounding: list[str] = []
    effective: list[str] = []
    inheritable: list[str] = []
    permitted: list[str] = []
    ambient: list[str] = []


class POSIXRlimit(_Obj, kw_only=True):
    """One ``process.rlimits`` entry (config.md "POSIX process").

    Attributes:
        type: ``RLIMIT_*`` name from getrlimit(2) (checked by the structural rules).
        soft, hard: limits as uint64; 18446744073709551615 is RLIM_INFINITY.
    """

    type: str
    soft: UInt64
    hard: UInt64


class Scheduler(_Obj, kw_only=True):
    """``process.scheduler`` (config.md "Linux Process", sched_setattr(2)).

    Attributes:
        policy: ``SCHED_*`` policy (REQUIRED).
        nice: nice value for SCHED_OTHER/SCHED_BATCH (-20..19).
        priority: static priority for SCHED_FIFO/SCHED_RR (1..99).
        flags: ``SCHED_FLAG_*`` names.
        runtime, deadline, period: SCHED_DEADLINE parameters in nanoseconds.
    """

    policy: SchedulerPolicy
    nice: Int32 | None = None
    priority: Int32 | None = None
    flags: list[SchedulerFlag] = []
    runtime: UInt64 | None = None
    deadline: UInt64 | None = None
    period: UInt64 | None = None


class IOPriority(_Obj, kw_only=True):
    """``process.ioPriority`` (ioprio_set(2)): ``class`` (REQUIRED, JSON ``class``) and ``priority`` 0..7."""

    class_: IOPriorityClass = field(name="class")
    priority: Int32 = 0


class CPUAffinity(_Obj, kw_only=True):
    """``process.execCPUAffinity``: CPU lists (``"0-3,7"``) for ``exec``'d processes.

    Attributes:
        initial: affinity while the runtime's exec helper joins the container.
        final: affinity of the process after it joined the cgroup.
    """

    initial: CPUList | None = None
    final: CPUList | None = None


class Process(_Obj, kw_only=True):
    """``process`` (config.md "Process"); also the document of ``exec --process``.

    Attributes:
        terminal: allocate a pseudoterminal for the process.
        console_size: initial terminal size.
        user: uid/gid/groups/umask.
        args: argv; at least one entry is required on Linux (structural rule).
        env: ``KEY=value`` strings.
        cwd: absolute working directory (REQUIRED).
        capabilities, rlimits, no_new_privileges, apparmor_profile, oom_score_adj, scheduler,
        selinux_label, io_priority, exec_cpu_affinity: the Linux/POSIX process properties.
    """

    terminal: bool = False
    console_size: Box | None = None
    user: User = field(default_factory=User)
    args: list[str] = []
    env: list[str] = []
    cwd: str
    capabilities: LinuxCapabilities | None = None
    rlimits: list[POSIXRlimit] = []
    no_new_privileges: bool = False
    apparmor_profile: str | None = None
    oom_score_adj: Int64 | None = None
    scheduler: Scheduler | None = None
    selinux_label: str | None = None
    io_priority: IOPriority | None = None
    exec_cpu_affinity: CPUAffinity | None = field(default=None, name="execCPUAffinity")


class Hook(_Obj, kw_only=True):
    """One hook (config.md "POSIX-platform Hooks").

    Attributes:
        path: absolute path of the executable in the runtime namespace (REQUIRED).
        args: argv (``args[0]`` is the program name, as execv).
        env: ``KEY=value`` strings.
        timeout: seconds before the hook is aborted (>= 1); None means no timeout.
    """

    path: str
    args: list[str] = []
    env: list[str] = []
    timeout: Annotated[int, Meta(ge=1)] | None = None


class Hooks(_Obj, kw_only=True):
    """``hooks``: lists of :class:`Hook` per lifecycle point (``prestart`` is deprecated)."""

    prestart: list[Hook] = []
    create_runtime: list[Hook] = []
    create_container: list[Hook] = []
    start_container: list[Hook] = []
    poststart: list[Hook] = []
    poststop: list[Hook] = []


# -- Linux (config-linux.md) ------------------------------------------------------------------


class LinuxNamespace(_Obj, kw_only=True):
    """One ``linux.namespaces`` entry: ``type`` and, to join an existing one, an absolute ``path``."""

    type: NamespaceType
    path: str | None = None


class LinuxTimeOffset(_Obj, kw_only=True):
    """Offset of one clock in a new time namespace: ``secs`` (int64) and ``nanosecs`` (uint32)."""

    secs: Int64 = 0
    nanosecs: UInt32 = 0


class LinuxDevice(_Obj, kw_only=True):
    """One ``linux.devices`` entry: a device node to create in the container.

    Attributes:
        type: ``c`` (char), ``b`` (block), ``u`` (unbuffered char) or ``p`` (FIFO) (REQUIRED).
        path: absolute path inside the container (REQUIRED).
        major, minor: device numbers (required unless ``type`` is ``p``).
        file_mode: permission bits (decimal, at most 0o777); uid, gid: owner in the container.
    """

    type: DeviceType
    path: str
    major: Int64 | None = None
    minor: Int64 | None = None
    file_mode: FileMode | None = None
    uid: UInt32 | None = None
    gid: UInt32 | None = None


class LinuxNetDevice(_Obj, kw_only=True):
    """One ``linux.netDevices`` value: ``name`` the host interface gets inside the container."""

    name: str | None = None


class LinuxDeviceCgroup(_Obj, kw_only=True):
    """One ``linux.resources.devices`` rule (device cgroup allow/deny list).

    Attributes:
        allow: allow (True) or deny (REQUIRED).
        type: ``a`` (all), ``c`` or ``b``; None means all.
        major, minor: numbers; None (or -1) means all.
        access: any of ``r``, ``w``, ``m``; None means ``rwm``.
    """

    allow: bool
    type: str | None = None
    major: Int64 | None = None
    minor: Int64 | None = None
    access: str | None = None


class LinuxMemory(_Obj, kw_only=True):
    """``linux.resources.memory``; byte values, -1 means unlimited.

    Attributes:
        limit, reservation, swap (memory+swap, as cgroup v1 ``memsw``), kernel (deprecated),
        kernel_tcp (JSON ``kernelTCP``): int64 bytes.
        swappiness: 0..100.
        disable_oom_killer (JSON ``disableOOMKiller``), use_hierarchy, check_before_update: flags.
    """

    limit: Int64 | None = None
    reservation: Int64 | None = None
    swap: Int64 | None = None
    kernel: Int64 | None = None
    kernel_tcp: Int64 | None = field(default=None, name="kernelTCP")
    swappiness: UInt64 | None = None
    disable_oom_killer: bool | None = field(default=None, name="disableOOMKiller")
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


class LinuxCPU(_Obj, kw_only=True):
    """``linux.resources.cpu``: CFS/RT bandwidth in microseconds, cpuset lists, idle.

    Attributes:
        shares: relative weight (cgroup v1 shares; converted to a v2 weight).
        quota: microseconds per period, -1 unlimited; period: CFS period in microseconds.
        burst: CFS burst in microseconds.
        realtime_runtime (-1 unlimited), realtime_period: RT bandwidth in microseconds.
        cpus, mems: cpuset lists (``"0-3,7"``).
        idle: 1 makes the cgroup SCHED_IDLE, 0 not.
    """

    shares: UInt64 | None = None
    quota: Int64 | None = None
    burst: UInt64 | None = None
    period: UInt64 | None = None
    realtime_runtime: Int64 | None = None
    realtime_period: UInt64 | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: Int64 | None = None


class LinuxPids(_Obj, kw_only=True):
    """``linux.resources.pids``: ``limit`` on the number of tasks (REQUIRED; -1 unlimited)."""

    limit: Int64


class LinuxWeightDevice(_Obj, kw_only=True):
    """Per-device block I/O weight: ``major``, ``minor`` (REQUIRED), ``weight``, ``leaf_weight``."""

    major: Int64
    minor: Int64
    weight: UInt16 | None = None
    leaf_weight: UInt16 | None = None


class LinuxThrottleDevice(_Obj, kw_only=True):
    """Per-device block I/O throttle: ``major``, ``minor`` (REQUIRED), ``rate`` (bytes or IO/s)."""

    major: Int64
    minor: Int64
    rate: UInt64 = 0


class LinuxBlockIO(_Obj, kw_only=True):
    """``linux.resources.blockIO`` (JSON ``blockIO``): weights and per-device throttles."""

    weight: UInt16 | None = None
    leaf_weight: UInt16 | None = None
    weight_device: list[LinuxWeightDevice] = []
    throttle_read_bps_device: list[LinuxThrottleDevice] = []
    throttle_write_bps_device: list[LinuxThrottleDevice] = []
    throttle_read_iops_device: list[LinuxThrottleDevice] = field(default_factory=list, name="throttleReadIOPSDevice")
    throttle_write_iops_device: list[LinuxThrottleDevice] = field(default_factory=list, name="throttleWriteIOPSDevice")


class LinuxHugepageLimit(_Obj, kw_only=True):
    """One ``hugepageLimits`` entry: ``page_size`` (JSON ``pageSize``, e.g. ``"2MB"``) and ``limit`` in bytes."""

    page_size: PageSize
    limit: UInt64


class LinuxInterfacePriority(_Obj, kw_only=True):
    """One ``network.priorities`` entry: interface ``name`` and its ``priority`` (net_prio)."""

    name: str
    priority: UInt32


class LinuxNetwork(_Obj, kw_only=True):
    """``linux.resources.network``: ``class_id`` (JSON ``classID``, net_cls) and ``priorities`` (net_prio)."""

    class_id: UInt32 | None = field(default=None, name="classID")
    priorities: list[LinuxInterfacePriority] = []


class LinuxRdma(_Obj, kw_only=True):
    """One ``linux.resources.rdma`` value (keyed by device name): ``hca_handles``, ``hca_objects``."""

    hca_handles: UInt32 | None = None
    hca_objects: UInt32 | None = None


class LinuxResources(_Obj, kw_only=True):
    """``linux.resources`` (config-linux.md "Control groups"); also the document of ``update --resources``.

    Attributes:
        devices: device cgroup rules, in order.
        memory, cpu, pids, block_io (JSON ``blockIO``), network: controller settings or None.
        hugepage_limits: per page size limits.
        rdma: device name -> limits.
        unified: cgroup v2 file name -> value, written verbatim.
    """

    devices: list[LinuxDeviceCgroup] = []
    memory: LinuxMemory | None = None
    cpu: LinuxCPU | None = None
    pids: LinuxPids | None = None
    block_io: LinuxBlockIO | None = field(default=None, name="blockIO")
    hugepage_limits: list[LinuxHugepageLimit] = []
    network: LinuxNetwork | None = None
    rdma: dict[str, LinuxRdma] = {}
    unified: dict[str, str] = {}


class LinuxSeccompArg(_Obj, kw_only=True):
    """One syscall argument comparison: ``index`` (0..5), ``value``, ``value_two`` (masked ops), ``op``."""

    index: UInt32
    value: UInt64
    value_two: UInt64 = 0
    op: SeccompOperator


class LinuxSyscall(_Obj, kw_only=True):
    """One ``seccomp.syscalls`` rule: ``names`` (at least one), ``action``, ``errno_ret``, ``args``."""

    names: Annotated[list[str], Meta(min_length=1)]
    action: SeccompAction
    errno_ret: UInt32 | None = None
    args: list[LinuxSeccompArg] = []


class LinuxSeccomp(_Obj, kw_only=True):
    """``linux.seccomp`` (config-linux.md "Seccomp").

    Attributes:
        default_action: action for syscalls no rule matches (REQUIRED).
        default_errno_ret: errno for ``SCMP_ACT_ERRNO``/``SCMP_ACT_TRACE`` (default EPERM).
        architectures: ``SCMP_ARCH_*`` the filter also covers.
        flags: ``SECCOMP_FILTER_FLAG_*``.
        listener_path, listener_metadata: ``SCMP_ACT_NOTIFY`` agent socket and opaque data.
        syscalls: rules, in order.
    """

    default_action: SeccompAction
    default_errno_ret: UInt32 | None = None
    architectures: list[SeccompArch] = []
    flags: list[SeccompFlag] = []
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: list[LinuxSyscall] = []


class LinuxIntelRdt(_Obj, kw_only=True):
    """``linux.intelRdt`` (resctrl): ``clos_id`` (JSON ``closID``), ``schemata`` lines,
    ``l3_cache_schema``, ``mem_bw_schema`` (``MB:...``), ``enable_monitoring``."""

    clos_id: str | None = field(default=None, name="closID")
    schemata: list[str] = []
    l3_cache_schema: str | None = None
    mem_bw_schema: MemBwSchema | None = None
    enable_monitoring: bool = False


class LinuxMemoryPolicy(_Obj, kw_only=True):
    """``linux.memoryPolicy`` (set_mempolicy(2)): ``mode``, ``nodes`` (node list), ``flags``."""

    mode: MemoryPolicyMode | None = None
    nodes: str | None = None
    flags: list[MemoryPolicyFlag] = []


class LinuxPersonality(_Obj, kw_only=True):
    """``linux.personality`` (personality(2)): execution ``domain`` and ``flags``."""

    domain: PersonalityDomain | None = None
    flags: list[str] = []


class Linux(_Obj, kw_only=True):
    """``linux`` (config-linux.md): namespaces, id mappings, devices, cgroups, security.

    Attributes:
        namespaces: namespaces to create (no ``path``) or join (``path``); absent types are shared
            with the runtime.
        uid_mappings, gid_mappings: user-namespace id ranges.
        time_offsets: clock name (``monotonic``, ``boottime``) -> offset for a new time namespace.
        devices: device nodes to create; net_devices: host interface name -> settings.
        cgroups_path: cgroup path (absolute, relative to the runtime's cgroup, or None).
        resources: cgroup limits.
        intel_rdt, memory_policy, personality: further Linux features.
        sysctl: name -> value (``net.ipv4.ip_forward``).
        seccomp: the syscall filter.
        rootfs_propagation: propagation of the rootfs mount.
        masked_paths, readonly_paths: absolute container paths to mask / remount read-only.
        mount_label: SELinux context for mounts.
    """

    namespaces: list[LinuxNamespace] = []
    uid_mappings: list[LinuxIDMapping] = []
    gid_mappings: list[LinuxIDMapping] = []
    time_offsets: dict[str, LinuxTimeOffset] = {}
    devices: list[LinuxDevice] = []
    net_devices: dict[str, LinuxNetDevice] = {}
    cgroups_path: str | None = None
    resources: LinuxResources | None = None
    intel_rdt: LinuxIntelRdt | None = None
    memory_policy: LinuxMemoryPolicy | None = None
    personality: LinuxPersonality | None = None
    sysctl: dict[str, str] = {}
    seccomp: LinuxSeccomp | None = None
    rootfs_propagation: RootfsPropagation | None = None
    masked_paths: list[str] = []
    readonly_paths: list[str] = []
    mount_label: str | None = None


class Spec(_Obj, kw_only=True):
    """The whole ``config.json`` (config.md), Linux and generic parts.

    Attributes:
        oci_version: ``ociVersion``, the runtime-spec version the bundle follows (REQUIRED).
        root: root filesystem (REQUIRED on Linux: checked by the structural rules, since the
            schema leaves it optional).
        mounts: additional mounts, in order.
        process: the container process (needed by ``start``).
        hostname, domainname: UTS names (need a uts namespace).
        hooks: lifecycle hooks.
        annotations: arbitrary string metadata.
        linux: Linux-specific configuration.
    """

    oci_version: str
    root: Root | None = None
    mounts: list[Mount] = []
    process: Process | None = None
    hostname: str | None = None
    domainname: str | None = None
    hooks: Hooks | None = None
    annotations: dict[str, str] = {}
    linux: Linux | None = None


#: class -> attribute names holding a uint64 (their upper bound is checked after decoding).
UINT64_FIELDS: dict[type, tuple[str, ...]] = {
    Box: ("height", "width"),
    POSIXRlimit: ("soft", "hard"),
    Scheduler: ("runtime", "deadline", "period"),
    LinuxMemory: ("swappiness",),
    LinuxCPU: ("shares", "burst", "period", "realtime_period"),
    LinuxThrottleDevice: ("rate",),
    LinuxHugepageLimit: ("limit",),
    LinuxSeccompArg: ("value", "value_two"),
}
