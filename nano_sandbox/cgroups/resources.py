"""Writing ``linux.resources`` into cgroup files, for v1 and v2 (runtime-spec config-linux.md
"Control groups"; kernel docs admin-guide/cgroup-v1/*.rst and admin-guide/cgroup-v2.rst).

Each writer takes the :class:`~nano_sandbox.cgroups.manager.Manager` and one resource block,
and writes through :func:`write`, whose errors name the JSON path of the limit and the file:
``linux.resources.memory.limit: cannot set 4096 in /sys/fs/cgroup/memory/…/memory.limit_in_bytes:
Device or resource busy (the container already uses more)``.

Conventions shared with runc (so engines see the same behaviour):

* ``-1`` means unlimited wherever the spec allows it (``max`` in v2 files, ``-1`` in v1 files);
* ``0`` in ``memory.limit``/``reservation``/``swap``/``kernel``/``kernelTCP`` and in
  ``cpu.shares``/``quota``/``period``/``burst``/``realtime*`` means "not set" (runc's zero values);
  ``pids.limit`` 0 is a real limit of zero tasks (runtime-spec 1.3);
* a knob with no equivalent on the running kernel or cgroup version is a warning when the limit
  is advisory or obsolete (``memory.kernel``, ``kernelTCP`` on v2, ``swappiness`` and
  ``disableOOMKiller`` on v2), and an error naming the file otherwise.
"""

from __future__ import annotations

import errno
import os

from nano_sandbox import errors

UNLIMITED = -1


def write(path: str, value: str | int, field: str, hints: dict[int, str] | None = None) -> None:
    """Write ``value`` to cgroup file ``path``.

    Args:
        path: the cgroup file.
        value: what to write (decimal for ints).
        field: the JSON path of the limit (``linux.resources.memory.limit``) for the error.
        hints: errno → explanation appended to the error in parentheses (a default explains EBUSY
            on memory files and ENOENT).

    Raises:
        errors.HostError: ``<field>: cannot set <value> in <path>: <strerror> (<hint>)``.
    """
    from nano_sandbox.linux.syscalls import record

    text = str(value)
    record(f'write("{path}", "{text}")')
    try:
        _write_file(path, text.encode())
    except OSError as e:
        hint = (hints or {}).get(e.errno, "")
        if not hint:
            if e.errno == errno.EBUSY and "memory" in os.path.basename(path):
                hint = "the container already uses more"
            elif e.errno == errno.ENOENT:
                hint = "the kernel has no such cgroup file"
        raise errors.HostError(f"{field}: cannot set {text} in {path}: {e.strerror}" + (f" ({hint})" if hint else "")) from e


def _write_file(path: str, data: bytes) -> None:
    """The one kernel call of this module: open(O_WRONLY|O_TRUNC) + write(2), as runc's
    ``cgroups.WriteFile``. Unit tests replace it with a fake kernel that records writes and
    enforces rules (memsw >= limit, clamped shares, ...)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path: str) -> str:
    """Return the stripped content of a cgroup file (raises OSError)."""
    with open(path) as f:
        return f.read().strip()


def warn(msg: str) -> None:
    """Log a warning (stderr / --log), as runc does for ignored settings."""
    from nano_sandbox import log

    log.get().warning(msg)


def _need(mgr, controller: str, field: str) -> tuple[str, bool]:
    d = mgr.dir_for(controller)
    if d is None:
        raise errors.HostError(f"{field}: the {controller} cgroup controller is not available on this host")
    return d, mgr.is_v2(controller)


def _nz(v):
    """runc's zero value: None and 0 both mean "not set"."""
    return None if v is None or v == 0 else v


def apply(mgr, r, update: bool = False, current=None) -> None:
    """Apply every block of ``r`` (a ``LinuxResources`` or None) that is set.

    Args:
        mgr: the container's Manager.
        r: the resources to write (for ``update``: only the changes).
        update: True for ``nk-runtime update``: devices are not changed (as runc) and
            ``memory.checkBeforeUpdate`` applies.
        current: the container's resources before this update (``LinuxResources`` or None): values
            that depend on one another (v2 swap = memory+swap − memory; v2 ``cpu.max`` = quota and
            period) take the unchanged half from here.

    Raises:
        errors.HostError: naming the limit and the file (see :func:`write`).
    """
    if r is None:
        return
    if not update:
        _devices(mgr, r.devices)
    elif r.devices:
        warn("linux.resources.devices: not changed by update (device rules are set at create, as runc does)")
    cur = current
    if r.memory is not None:
        _memory(mgr, r.memory, update, cur.memory if cur is not None else None)
    if r.pids is not None:
        _pids(mgr, r.pids)
    if r.cpu is not None:
        _cpu(mgr, r.cpu, cur.cpu if cur is not None else None)
    if r.block_io is not None:
        _block_io(mgr, r.block_io)
    if r.hugepage_limits:
        _hugetlb(mgr, r.hugepage_limits)
    if r.network is not None:
        _network(mgr, r.network)
    if r.rdma:
        _rdma(mgr, r.rdma)
    if r.unified:
        _unified(mgr, r.unified)


# --- memory ---------------------------------------------------------------------------------------------
def swap_to_v2(swap: int | None, limit: int | None) -> int | None:
    """Convert OCI ``memory.swap`` (memory + swap, bytes) to cgroup v2 ``memory.swap.max`` (swap
    alone), as runc's ``ConvertMemorySwapToCgroupV2Value``.

    ``None``/0 mean unset. Returns None (leave swap alone), -1 (``max``) or bytes of swap.

    * limit -1 and swap unset → -1 (unlimited memory means unlimited swap too);
    * swap -1 → -1; limit -1 → swap as given;
    * otherwise ``swap - limit``.

    Raises:
        ValueError: swap set without a memory limit, or below it.
    """
    swap, limit = _nz(swap), _nz(limit)
    if limit == UNLIMITED and swap is None:
        return UNLIMITED
    if swap is None or swap == UNLIMITED:
        return swap
    if limit == UNLIMITED:
        return swap
    if limit is None:
        raise ValueError("cannot limit swap without a memory limit (swap counts memory + swap)")
    if swap < limit:
        raise ValueError(f"{swap} is below memory.limit {limit} (swap counts memory + swap)")
    return swap - limit


def _memory(mgr, m, update: bool, cur) -> None:
    base = "linux.resources.memory"
    names = ("limit", "reservation", "swap", "kernel", "kernel_tcp", "swappiness", "disable_oom_killer", "use_hierarchy")
    if all(getattr(m, n) is None for n in names):
        return
    d, v2 = _need(mgr, "memory", base)
    limit, swap, reservation = _nz(m.limit), _nz(m.swap), _nz(m.reservation)
    check = m.check_before_update if m.check_before_update is not None else (cur.check_before_update if cur is not None else None)
    limit_file = f"{d}/{'memory.max' if v2 else 'memory.limit_in_bytes'}"
    if update and check and limit is not None and limit > 0:
        usage_file = f"{d}/{'memory.current' if v2 else 'memory.usage_in_bytes'}"
        usage = int(read(usage_file))
        if usage >= limit:
            raise errors.HostError(
                f"{base}.limit: cannot set {limit} in {limit_file}: the container already uses {usage} bytes "
                f"({usage_file}; memory.checkBeforeUpdate refuses a limit at or below the current usage)"
            )
    if v2:
        _memory_v2(d, m, limit, swap, reservation, cur, base)
    else:
        _memory_v1(d, m, limit, swap, reservation, base)


def _memory_v1(d: str, m, limit, swap, reservation, base: str) -> None:
    memsw = f"{d}/memory.memsw.limit_in_bytes"
    has_memsw = os.path.exists(memsw)
    lim_file = f"{d}/memory.limit_in_bytes"
    if limit == UNLIMITED and swap is None and has_memsw:
        swap = UNLIMITED  # runc: unlimited memory means unlimited memory+swap
    if swap is not None and not has_memsw:
        if swap != UNLIMITED and swap != limit:
            raise errors.HostError(
                f"{base}.swap: cannot set {swap} in {memsw}: the file does not exist "
                "(the kernel has no swap accounting: CONFIG_MEMCG_SWAP or the swapaccount=1 boot option)"
            )
        swap = None  # unlimited, or memory+swap == memory: nothing more to limit
    if swap is not None and limit is not None and swap != UNLIMITED and limit != UNLIMITED and swap < limit:
        raise errors.HostError(f"{base}.swap: {swap} is below memory.limit {limit} (swap counts memory + swap)")
    limit_hints = {errno.EINVAL: f"{memsw} is lower: raise linux.resources.memory.swap too"}
    swap_hints = {errno.EINVAL: f"memory + swap must be at least {lim_file}"}
    if limit is not None and swap is not None:
        # memory.memsw.limit_in_bytes >= memory.limit_in_bytes must hold at every moment
        # (cgroup-v1/memory.rst 2.5): set swap first when the new swap is above the current
        # memory limit (raising), else the memory limit first (lowering). runc's order.
        cur_limit = int(read(lim_file))
        if swap == UNLIMITED or cur_limit < swap:
            write(memsw, swap, f"{base}.swap", swap_hints)
            write(lim_file, limit, f"{base}.limit", limit_hints)
        else:
            write(lim_file, limit, f"{base}.limit", limit_hints)
            write(memsw, swap, f"{base}.swap", swap_hints)
    elif limit is not None:
        write(lim_file, limit, f"{base}.limit", limit_hints)
    elif swap is not None:
        write(memsw, swap, f"{base}.swap", swap_hints)
    if reservation is not None:
        write(f"{d}/memory.soft_limit_in_bytes", reservation, f"{base}.reservation")
    kernel = _nz(m.kernel)
    if kernel is not None:
        path = f"{d}/memory.kmem.limit_in_bytes"
        if not os.path.exists(path):
            warn(f"{base}.kernel: ignored: this kernel has no {path} (kernel memory limits were removed in Linux 6.1; kernel memory counts in the memory limit)")
        else:
            write(path, kernel, f"{base}.kernel")
            if kernel != UNLIMITED:
                page = os.sysconf("SC_PAGE_SIZE")
                if int(read(path)) != kernel - kernel % page:
                    warn(f"{base}.kernel: ignored: writing {kernel} to {path} has no effect on this kernel (deprecated since Linux 5.16; kernel memory counts in the memory limit)")
    kernel_tcp = _nz(m.kernel_tcp)
    if kernel_tcp is not None:
        path = f"{d}/memory.kmem.tcp.limit_in_bytes"
        if not os.path.exists(path):
            warn(f"{base}.kernelTCP: ignored: this kernel has no {path}")
        else:
            write(path, kernel_tcp, f"{base}.kernelTCP")
    if m.swappiness is not None:
        write(f"{d}/memory.swappiness", m.swappiness, f"{base}.swappiness")
    if m.disable_oom_killer is not None:
        write(f"{d}/memory.oom_control", 1 if m.disable_oom_killer else 0, f"{base}.disableOOMKiller")
    if m.use_hierarchy is not None:
        path = f"{d}/memory.use_hierarchy"
        try:
            write(path, 1 if m.use_hierarchy else 0, f"{base}.useHierarchy")
        except errors.HostError as e:
            cause = e.__cause__
            if m.use_hierarchy or not isinstance(cause, OSError) or cause.errno != errno.EINVAL:
                raise
            warn(f"{base}.useHierarchy: ignored: this kernel refuses 0 in {path} (memory cgroups are always hierarchical since Linux 5.x)")


def _memory_v2(d: str, m, limit, swap, reservation, cur, base: str) -> None:
    eff_limit = limit if limit is not None else (_nz(cur.limit) if cur is not None else None)
    if swap is not None or limit == UNLIMITED:
        try:
            value = swap_to_v2(swap, eff_limit)
        except ValueError as e:
            raise errors.HostError(f"{base}.swap: {e}") from None
        if value is not None:
            path = f"{d}/memory.swap.max"
            if os.path.exists(path):
                write(path, "max" if value == UNLIMITED else value, f"{base}.swap")
            elif value not in (UNLIMITED, 0):
                raise errors.HostError(
                    f"{base}.swap: cannot set {value} in {path}: the file does not exist (the kernel has no swap accounting)"
                )
    if limit is not None:
        write(f"{d}/memory.max", "max" if limit == UNLIMITED else limit, f"{base}.limit")
    if reservation is not None:
        write(f"{d}/memory.low", "max" if reservation == UNLIMITED else reservation, f"{base}.reservation")
    if _nz(m.kernel) is not None:
        warn(f"{base}.kernel: ignored: cgroup v2 has no kernel memory limit (kernel memory counts in memory.max)")
    if _nz(m.kernel_tcp) is not None:
        warn(f"{base}.kernelTCP: ignored: cgroup v2 has no TCP buffer limit (socket memory counts in memory.max)")
    if m.swappiness is not None:
        warn(f"{base}.swappiness: ignored: cgroup v2 has no per-cgroup swappiness")
    if m.disable_oom_killer:
        warn(f"{base}.disableOOMKiller: ignored: cgroup v2 cannot disable the OOM killer (memory.oom_control is v1 only)")
    if m.use_hierarchy is False:
        warn(f"{base}.useHierarchy: ignored: cgroup v2 is always hierarchical")


# --- pids -------------------------------------------------------------------------------------------------
def _pids(mgr, p) -> None:
    field = "linux.resources.pids.limit"
    d, _v2 = _need(mgr, "pids", field)
    # runtime-spec 1.3: -1 is unlimited ("max"); 0 is a real limit of zero tasks.
    value = "max" if p.limit is None or p.limit < 0 else p.limit
    write(f"{d}/pids.max", value, field)


# --- cpu ----------------------------------------------------------------------------------------------------
def shares_to_weight(shares: int) -> int:
    """Convert cgroup v1 ``cpu.shares`` (2..262144) to v2 ``cpu.weight`` (1..10000) as runc does
    (opencontainers/cgroups ``ConvertCPUSharesToCgroupV2Value``, runc PR #4785): a quadratic in
    log2(shares) through (2, 1), (1024, 100) and (262144, 10000), so the default 1024 shares map to
    the default weight 100. 0 stays 0 (unset)."""
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    import math

    lg = math.log2(shares)
    return int(math.ceil(10 ** ((lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0)))


def shares_to_weight_legacy(shares: int) -> int:
    """runc's conversion before PR #4785: ``1 + ((shares - 2) * 9999) // 262142`` (1024 → 39)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def _cpu(mgr, c, cur) -> None:
    base = "linux.resources.cpu"
    shares, quota, period, burst = _nz(c.shares), _nz(c.quota), _nz(c.period), c.burst
    rt_runtime, rt_period = _nz(c.realtime_runtime), _nz(c.realtime_period)
    if any(v is not None for v in (shares, quota, period, burst, rt_runtime, rt_period, c.idle)):
        d, v2 = _need(mgr, "cpu", base)
        if v2:
            _cpu_v2(d, c, shares, quota, period, burst, rt_runtime, rt_period, cur, base)
        else:
            _cpu_v1(d, c, shares, quota, period, burst, rt_runtime, rt_period, base)
    if c.cpus or c.mems:
        d, _v2 = _need(mgr, "cpuset", base + (".cpus" if c.cpus else ".mems"))
        if c.cpus:
            write(f"{d}/cpuset.cpus", c.cpus, f"{base}.cpus", {errno.EINVAL: "not a subset of the parent cgroup's cpuset.cpus, or no such CPU"})
        if c.mems:
            write(f"{d}/cpuset.mems", c.mems, f"{base}.mems", {errno.EINVAL: "not a subset of the parent cgroup's cpuset.mems, or no such memory node"})


def _cpu_v1(d: str, c, shares, quota, period, burst, rt_runtime, rt_period, base: str) -> None:
    # Realtime first (runc's order): a cgroup must have RT runtime before RT tasks join it.
    if rt_period is not None:
        write(f"{d}/cpu.rt_period_us", rt_period, f"{base}.realtimePeriod")
    if rt_runtime is not None:
        parent = os.path.dirname(d)
        write(
            f"{d}/cpu.rt_runtime_us", rt_runtime, f"{base}.realtimeRuntime",
            {errno.EINVAL: f"more than the parent cgroup grants: see {parent}/cpu.rt_runtime_us and its other children",
             errno.ENOENT: "the kernel has no RT group scheduling (CONFIG_RT_GROUP_SCHED)"},
        )
    idle_hint = {errno.EINVAL: f"out of range 2..262144, or {d}/cpu.idle is 1 (an idle cgroup has no weight)"}
    if shares is not None:
        path = f"{d}/cpu.shares"
        write(path, shares, f"{base}.shares", idle_hint)
        got = int(read(path))
        if got != shares:
            bound = "maximum" if shares > got else "minimum"
            raise errors.HostError(f"{base}.shares: cannot set {shares} in {path}: the {bound} allowed cpu shares is {got}")
    pending_period = None
    if period is not None:
        try:
            write(f"{d}/cpu.cfs_period_us", period, f"{base}.period")
        except errors.HostError as e:
            # A shorter period can exceed the parent's quota ratio with the old quota (EINVAL):
            # retry after the quota (runc does the same).
            if quota is None or not isinstance(e.__cause__, OSError) or e.__cause__.errno != errno.EINVAL:
                raise
            pending_period = period
    quota_hints = {errno.EINVAL: f"below 1000, above the parent's quota, or below {d}/cpu.cfs_burst_us"}
    if quota is not None:
        qv = UNLIMITED if quota < 0 else quota
        path = f"{d}/cpu.cfs_quota_us"
        try:
            write(path, qv, f"{base}.quota", quota_hints)
        except errors.HostError as e:
            # Lowering the quota below the current burst: set the (smaller) burst first.
            if burst is None or not isinstance(e.__cause__, OSError) or e.__cause__.errno != errno.EINVAL:
                raise
            write(f"{d}/cpu.cfs_burst_us", burst, f"{base}.burst")
            write(path, qv, f"{base}.quota", quota_hints)
        if pending_period is not None:
            write(f"{d}/cpu.cfs_period_us", pending_period, f"{base}.period")
    if burst is not None:
        write(f"{d}/cpu.cfs_burst_us", burst, f"{base}.burst",
              {errno.EINVAL: f"burst must not exceed the quota in {d}/cpu.cfs_quota_us (and needs a quota)",
               errno.ENOENT: "the kernel has no CFS burst (Linux >= 5.14)"})
    if c.idle is not None:
        write(f"{d}/cpu.idle", c.idle, f"{base}.idle", {errno.ENOENT: "the kernel has no SCHED_IDLE cgroups (Linux >= 5.15)"})


def _cpu_v2(d: str, c, shares, quota, period, burst, rt_runtime, rt_period, cur, base: str) -> None:
    if rt_runtime is not None or rt_period is not None:
        name = "realtimeRuntime" if rt_runtime is not None else "realtimePeriod"
        raise errors.HostError(f"{base}.{name}: cgroup v2 has no realtime CPU bandwidth (cpu.rt_* files exist only in the v1 cpu controller)")
    if shares is not None:
        write(f"{d}/cpu.weight", shares_to_weight(shares), f"{base}.shares",
              {errno.EINVAL: f"{d}/cpu.idle is 1 (an idle cgroup has no weight)"})
    if quota is not None or period is not None:
        # runc: "max" unless quota > 0; the period only when set (the kernel keeps the old one).
        q = quota if quota is not None else (_nz(cur.quota) if cur is not None else None)
        value = str(q) if q is not None and q > 0 else "max"
        if period is not None:
            value += f" {period}"
        write(f"{d}/cpu.max", value, f"{base}.quota" if quota is not None else f"{base}.period")
    if burst is not None:
        write(f"{d}/cpu.max.burst", burst, f"{base}.burst", {errno.EINVAL: "burst must not exceed the quota in cpu.max"})
    if c.idle is not None:
        write(f"{d}/cpu.idle", c.idle, f"{base}.idle")


# --- block I/O ---------------------------------------------------------------------------------------------
def blkio_weight_to_io_weight(weight: int) -> int:
    """Convert a v1 ``blkio.weight`` (10..1000) to v2 ``io.weight`` (1..10000), as runc:
    ``1 + (weight - 10) * 9999 // 990``; 0 stays 0."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def _block_dir(mgr, field: str) -> tuple[str, bool]:
    lay = mgr.layout
    h = lay.v1_hierarchy("blkio")
    if h is not None and h.key in mgr.paths:
        return mgr.paths[h.key], False
    if "io" in lay.v2_controllers and "" in mgr.paths:
        return mgr.paths[""], True
    raise errors.HostError(f"{field}: no block I/O cgroup controller (v1 blkio or v2 io) is available on this host")


_NO_CFQ = "leaf weights existed only with the CFQ I/O scheduler, removed in Linux 5.0"


def _block_io(mgr, b) -> None:
    base = "linux.resources.blockIO"
    throttles = (
        ("throttle_read_bps_device", "throttleReadBpsDevice", "read_bps_device", "rbps"),
        ("throttle_write_bps_device", "throttleWriteBpsDevice", "write_bps_device", "wbps"),
        ("throttle_read_iops_device", "throttleReadIOPSDevice", "read_iops_device", "riops"),
        ("throttle_write_iops_device", "throttleWriteIOPSDevice", "write_iops_device", "wiops"),
    )
    weight, leaf = _nz(b.weight), _nz(b.leaf_weight)
    if weight is None and leaf is None and not b.weight_device and not any(getattr(b, t[0]) for t in throttles):
        return
    d, v2 = _block_dir(mgr, base)
    if not v2:
        wfile = f"{d}/blkio.weight" if os.path.exists(f"{d}/blkio.weight") else f"{d}/blkio.bfq.weight"
        wdfile = f"{d}/blkio.weight_device" if os.path.exists(f"{d}/blkio.weight_device") else f"{d}/blkio.bfq.weight_device"
        if weight is not None:
            if not os.path.exists(wfile):
                raise errors.HostError(
                    f"{base}.weight: cannot set {weight} in {d}/blkio.weight: the file does not exist, nor blkio.bfq.weight "
                    "(the kernel has neither the CFQ nor the BFQ I/O scheduler)"
                )
            write(wfile, weight, f"{base}.weight")
        if leaf is not None:
            write(f"{d}/blkio.leaf_weight", leaf, f"{base}.leafWeight", {errno.ENOENT: _NO_CFQ})
        for i, wd in enumerate(b.weight_device):
            dev = f"{wd.major}:{wd.minor}"
            sched = {errno.EOPNOTSUPP: f"device {dev} does not use the BFQ I/O scheduler: see /sys/dev/block/{dev}/queue/scheduler",
                     errno.ENODEV: f"no block device {dev}", errno.ENOENT: "the kernel has neither the CFQ nor the BFQ I/O scheduler"}
            if _nz(wd.weight) is not None:
                write(wdfile, f"{dev} {wd.weight}", f"{base}.weightDevice[{i}].weight", sched)
            if _nz(wd.leaf_weight) is not None:
                write(f"{d}/blkio.leaf_weight_device", f"{dev} {wd.leaf_weight}", f"{base}.weightDevice[{i}].leafWeight", {errno.ENOENT: _NO_CFQ})
        for attr, enc, fname, _key in throttles:
            for i, t in enumerate(getattr(b, attr)):
                write(f"{d}/blkio.throttle.{fname}", f"{t.major}:{t.minor} {t.rate}", f"{base}.{enc}[{i}].rate",
                      {errno.ENODEV: f"no block device {t.major}:{t.minor}", errno.ENOENT: "the kernel has no block I/O throttling (CONFIG_BLK_DEV_THROTTLING)"})
        return
    bfq = os.path.exists(f"{d}/io.bfq.weight")
    if weight is not None:
        if bfq:
            write(f"{d}/io.bfq.weight", weight, f"{base}.weight")
        else:
            write(f"{d}/io.weight", blkio_weight_to_io_weight(weight), f"{base}.weight",
                  {errno.ENOENT: "the kernel has neither io.bfq.weight nor io.weight (no BFQ scheduler, no io.cost)"})
    if leaf is not None:
        raise errors.HostError(f"{base}.leafWeight: cgroup v2 has no leaf weight ({_NO_CFQ})")
    for i, wd in enumerate(b.weight_device):
        dev = f"{wd.major}:{wd.minor}"
        if _nz(wd.leaf_weight) is not None:
            raise errors.HostError(f"{base}.weightDevice[{i}].leafWeight: cgroup v2 has no leaf weight ({_NO_CFQ})")
        if _nz(wd.weight) is not None:
            if bfq:
                write(f"{d}/io.bfq.weight", f"{dev} {wd.weight}", f"{base}.weightDevice[{i}].weight")
            else:
                write(f"{d}/io.weight", f"{dev} {blkio_weight_to_io_weight(wd.weight)}", f"{base}.weightDevice[{i}].weight")
    for attr, enc, _fname, key in throttles:
        for i, t in enumerate(getattr(b, attr)):
            rate = t.rate if t.rate else "max"
            write(f"{d}/io.max", f"{t.major}:{t.minor} {key}={rate}", f"{base}.{enc}[{i}].rate",
                  {errno.ENODEV: f"no block device {t.major}:{t.minor}"})


# --- hugetlb -------------------------------------------------------------------------------------------------
def page_size_name(kib: int) -> str:
    """Name a huge page size in KiB as the hugetlb controller does: 2048 → ``"2MB"``,
    1048576 → ``"1GB"``, 64 → ``"64KB"``."""
    for unit, size in (("GB", 1 << 20), ("MB", 1 << 10)):
        if kib >= size and kib % size == 0:
            return f"{kib // size}{unit}"
    return f"{kib}KB"


#: where the kernel lists the huge page sizes it supports (Documentation/admin-guide/mm/hugetlbpage.rst)
HUGEPAGES_DIR = "/sys/kernel/mm/hugepages"


def host_page_sizes(root: str | None = None) -> list[str]:
    """The huge page sizes of this host (``["2MB", "1GB"]``), from the ``hugepages-<N>kB``
    directories of ``root`` (default :data:`HUGEPAGES_DIR`), smallest first."""
    try:
        names = os.listdir(root or HUGEPAGES_DIR)
    except OSError:
        return []
    kibs = sorted(int(n[len("hugepages-") : -2]) for n in names if n.startswith("hugepages-") and n.endswith("kB"))
    return [page_size_name(k) for k in kibs]


def _hugetlb(mgr, limits) -> None:
    base = "linux.resources.hugepageLimits"
    sizes_root = HUGEPAGES_DIR
    sizes = host_page_sizes(sizes_root)
    for i, h in enumerate(limits):
        field = f"{base}[{i}]"
        if h.page_size not in sizes:
            have = ", ".join(sizes) if sizes else "none"
            raise errors.HostError(f"{field}.pageSize: {h.page_size} is not a huge page size of this host (it has: {have}; see {sizes_root})")
        d, v2 = _need(mgr, "hugetlb", field)
        suffix = "max" if v2 else "limit_in_bytes"
        write(f"{d}/hugetlb.{h.page_size}.{suffix}", h.limit, f"{field}.limit")
        rsvd = f"{d}/hugetlb.{h.page_size}.rsvd.{suffix}"
        if os.path.exists(rsvd):  # reservations too (runc does the same)
            write(rsvd, h.limit, f"{field}.limit")


# --- network (v1 net_cls / net_prio) ------------------------------------------------------------------------
def _network(mgr, net) -> None:
    base = "linux.resources.network"
    lay = mgr.layout

    def v1_dir(controller: str, field: str) -> str:
        h = lay.v1_hierarchy(controller)
        if h is None or h.key not in mgr.paths:
            extra = " (cgroup v2 has no equivalent)" if lay.v2 is not None else ""
            raise errors.HostError(f"{field}: the {controller} cgroup controller is not mounted on this host (a cgroup v1 controller){extra}")
        return mgr.paths[h.key]

    if net.class_id is not None:
        d = v1_dir("net_cls", f"{base}.classID")
        write(f"{d}/net_cls.classid", net.class_id, f"{base}.classID")
    for i, p in enumerate(net.priorities):
        d = v1_dir("net_prio", f"{base}.priorities")
        write(f"{d}/net_prio.ifpriomap", f"{p.name} {p.priority}", f"{base}.priorities[{i}]", {errno.ENODEV: f"no interface {p.name!r}"})


# --- rdma -----------------------------------------------------------------------------------------------------
def _rdma(mgr, rdma) -> None:
    base = "linux.resources.rdma"
    for dev, lim in rdma.items():
        field = f'{base}["{dev}"]'
        d, _v2 = _need(mgr, "rdma", field)
        parts = []
        if lim.hca_handles is not None:
            parts.append(f"hca_handle={lim.hca_handles}")
        if lim.hca_objects is not None:
            parts.append(f"hca_object={lim.hca_objects}")
        if parts:
            write(f"{d}/rdma.max", f"{dev} {' '.join(parts)}", field, {errno.EINVAL: f"no RDMA device {dev!r}"})


# --- devices --------------------------------------------------------------------------------------------------
#: The devices every container may use (runc's AllowedDevices): mknod of any char/block device,
#: null, zero, full, random, urandom, tty, console, ptmx and the pts devices.
DEFAULT_ALLOWED = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
]


def device_rules(devices) -> list[tuple[bool, str]]:
    """Return the ``(allow, "type major:minor access")`` rules for ``linux.resources.devices``
    (a list of ``LinuxDeviceCgroup``): deny-all, the config's rules in order, then the default
    devices every container may use (runc appends its AllowedDevices after the config's rules,
    so a config's leading ``deny all`` does not take /dev/null away)."""
    rules: list[tuple[bool, str]] = [(False, "a *:* rwm")]
    for dev in devices or []:
        t = dev.type or "a"
        major = "*" if dev.major is None or dev.major < 0 else str(dev.major)
        minor = "*" if dev.minor is None or dev.minor < 0 else str(dev.minor)
        access = dev.access or "rwm"
        rules.append((bool(dev.allow), f"{t} {major}:{minor} {access}"))
    rules += [(True, r) for r in DEFAULT_ALLOWED]
    return rules


def _devices(mgr, devices) -> None:
    field = "linux.resources.devices"
    h = mgr.layout.v1_hierarchy("devices")
    if h is not None and h.key in mgr.paths:
        d = mgr.paths[h.key]
        for allow, rule in device_rules(devices):
            write(f"{d}/{'devices.allow' if allow else 'devices.deny'}", rule, field)
        return
    d = mgr.paths.get("")
    if d is None:
        warn(f"{field}: not enforced: no devices cgroup controller (v1) and no cgroup v2 hierarchy on this host")
        return
    from nano_sandbox.cgroups import devices_bpf

    if not devices_bpf.v2_devices_supported():
        warn(f"{field}: not enforced: cgroup v2 needs a BPF device program, which this host does not let nano-sandbox load")
        return
    from nano_sandbox.linux.syscalls import record

    record(f'bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE); bpf(BPF_PROG_ATTACH, "{d}", BPF_CGROUP_DEVICE)')
    try:
        devices_bpf.apply(d, device_rules(devices))
    except OSError as e:
        raise errors.HostError(f"{field}: cannot attach the BPF device program to {d}: {e.strerror}") from e


# --- unified --------------------------------------------------------------------------------------------------
def _unified(mgr, kv: dict[str, str]) -> None:
    base = "linux.resources.unified"
    d = mgr.paths.get("")
    if d is None:
        raise errors.HostError(f"{base}: needs cgroup v2, which this host has not mounted (its cgroups are v1 only)")
    lay = mgr.layout
    for k, v in kv.items():
        field = f'{base}["{k}"]'
        if not k or "/" in k or k in (".", ".."):
            raise errors.HostError(f"{field}: not a cgroup file name")
        ctrl = k.partition(".")[0]
        v1_name = {"io": "blkio"}.get(ctrl, ctrl)  # the v2 io controller is v1's blkio
        if "." in k and ctrl != "cgroup" and v1_name in lay.v1_controllers():
            as_ = f" (as {v1_name})" if v1_name != ctrl else ""
            raise errors.HostError(
                f"{field}: cannot set {v} in {d}/{k}: the {ctrl} controller is bound to cgroup v1{as_} on this host "
                f"(hybrid layout; cgroup v2 here has: {' '.join(lay.v2_controllers) or 'no controllers'})"
            )
        write(f"{d}/{k}", v, field)


# --- update: merging changes into the stored resources ----------------------------------------------------
def _merge_list(old: list, new: list, key) -> list:
    """Entries of ``new`` replace those of ``old`` with the same ``key``; others are appended."""
    out = list(old)
    for item in new:
        k = key(item)
        for i, o in enumerate(out):
            if key(o) == k:
                out[i] = item
                break
        else:
            out.append(item)
    return out


def _merge_block(old, new):
    import msgspec

    if old is None:
        return new
    if new is None:
        return old
    out = msgspec.structs.replace(old)
    dev = lambda d: (d.major, d.minor)  # noqa: E731
    for name in new.__struct_fields__:
        v = getattr(new, name)
        if v is None or (isinstance(v, str) and v == ""):
            continue
        if isinstance(v, list):
            if not v:
                continue
            key = (lambda p: p.name) if name == "priorities" else dev
            v = _merge_list(getattr(old, name), v, key)
        setattr(out, name, v)
    return out


def merge(current, changes):
    """Return the ``LinuxResources`` a container has after ``update`` applied ``changes`` to
    ``current`` (either may be None): set fields of ``changes`` win; per-device lists merge by
    major:minor, ``hugepageLimits`` by page size, ``network.priorities`` by interface, ``rdma`` and
    ``unified`` by key; ``devices`` are kept (update does not change them). As runc, memory limit -1
    without a swap value makes a set swap -1 too."""
    import msgspec

    from nano_sandbox.spec.config import LinuxResources

    cur = current if current is not None else LinuxResources()
    if changes is None:
        return cur
    out = msgspec.structs.replace(cur)
    for name in ("memory", "cpu", "block_io", "network"):
        setattr(out, name, _merge_block(getattr(cur, name), getattr(changes, name)))
    if changes.pids is not None:
        out.pids = changes.pids
    nm = changes.memory
    if nm is not None and nm.limit == UNLIMITED and nm.swap is None and out.memory is not None and _nz(out.memory.swap) is not None:
        out.memory = msgspec.structs.replace(out.memory, swap=UNLIMITED)
    if changes.hugepage_limits:
        out.hugepage_limits = _merge_list(cur.hugepage_limits, changes.hugepage_limits, lambda h: h.page_size)
    if changes.rdma:
        out.rdma = {**cur.rdma, **changes.rdma}
    if changes.unified:
        out.unified = {**cur.unified, **changes.unified}
    return out
