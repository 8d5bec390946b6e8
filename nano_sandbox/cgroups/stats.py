"""A container's resource statistics, read from its cgroup files, in the JSON shape of runc's
``types.Stats`` (runc types/events.go), which ``nk-runtime events`` prints and containerd parses.

Field names, units and ``omitempty`` follow runc exactly: CPU times in nanoseconds (v1
``cpuacct.*`` is already in ns, ``cpuacct.stat`` ticks and v2 ``*_usec`` are converted), memory in
bytes, a Go ``omitempty`` field that is zero is left out. Sources (kernel docs):

* cpu: v1 ``cpuacct.usage``, ``cpuacct.usage_percpu``, ``cpuacct.usage_all``, ``cpuacct.stat``,
  ``cpu.stat`` (throttling); v2 ``cpu.stat``;
* memory: v1 ``memory.{usage,max_usage,limit}_in_bytes``, ``memory.failcnt`` and the same for
  ``memsw``/``kmem``/``kmem.tcp``, ``memory.stat``; v2 ``memory.current``/``peak``/``max``,
  ``memory.events`` (``max`` = failcnt), ``memory.swap.*`` (reported as memory+swap, like v1),
  ``memory.stat``;
* pids: ``pids.current``, ``pids.max``; blkio: v1 ``blkio.*_recursive`` (CFQ, else BFQ, else
  throttle), v2 ``io.stat``; hugetlb: per host page size; cpuset: ``cpuset.*``.
"""

from __future__ import annotations

import os

#: v2 "max" (and runc's value for an unlimited v2 limit): math.MaxUint64.
MAX_UINT64 = (1 << 64) - 1


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _int(path: str, default: int = 0) -> int:
    text = _read(path)
    if text is None:
        return default
    text = text.strip()
    if text == "max":
        return MAX_UINT64
    try:
        return int(text)
    except ValueError:
        return default


def _kv(path: str) -> dict[str, int]:
    """Parse a flat-keyed file (``key value`` lines: memory.stat, cpu.stat, memory.events)."""
    out: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _omit(d: dict, *names: str) -> dict:
    """Drop the Go ``omitempty`` fields ``names`` whose value is zero/empty."""
    for n in names:
        if not d.get(n):
            d.pop(n, None)
    return d


def parse_list(text: str) -> list[int]:
    """Parse a cpuset list (``"0-3,7"``) into ``[0, 1, 2, 3, 7]``."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


# --- cpu ------------------------------------------------------------------------------------------------
def _cpu(mgr) -> dict:
    usage: dict = {"total": 0, "percpu": [], "percpu_kernel": [], "percpu_user": [], "kernel": 0, "user": 0}
    thr = {"periods": 0, "throttledPeriods": 0, "throttledTime": 0}
    cpu_dir = mgr.dir_for("cpu")
    if cpu_dir is not None and mgr.is_v2("cpu"):
        st = _kv(f"{cpu_dir}/cpu.stat")
        usage["total"] = st.get("usage_usec", 0) * 1000
        usage["user"] = st.get("user_usec", 0) * 1000
        usage["kernel"] = st.get("system_usec", 0) * 1000
        thr.update(periods=st.get("nr_periods", 0), throttledPeriods=st.get("nr_throttled", 0),
                   throttledTime=st.get("throttled_usec", 0) * 1000)
    else:
        acct = mgr.dir_for("cpuacct")
        if acct is not None:
            usage["total"] = _int(f"{acct}/cpuacct.usage")
            usage["percpu"] = [int(x) for x in (_read(f"{acct}/cpuacct.usage_percpu") or "").split()]
            rows = (_read(f"{acct}/cpuacct.usage_all") or "").splitlines()[1:]  # "cpu user system"
            for row in rows:
                f = row.split()
                if len(f) == 3:
                    usage["percpu_user"].append(int(f[1]))
                    usage["percpu_kernel"].append(int(f[2]))
            st = _kv(f"{acct}/cpuacct.stat")  # USER_HZ ticks
            tick = os.sysconf("SC_CLK_TCK")
            usage["user"] = st.get("user", 0) * 1_000_000_000 // tick
            usage["kernel"] = st.get("system", 0) * 1_000_000_000 // tick
        if cpu_dir is not None:
            st = _kv(f"{cpu_dir}/cpu.stat")
            thr.update(periods=st.get("nr_periods", 0), throttledPeriods=st.get("nr_throttled", 0),
                       throttledTime=st.get("throttled_time", 0))
    return {"usage": _omit(usage, "total", "percpu", "percpu_kernel", "percpu_user"),
            "throttling": _omit(thr, "periods", "throttledPeriods", "throttledTime")}


def _cpuset(mgr) -> dict:
    d = mgr.dir_for("cpuset")
    out: dict = {"cpus": [], "cpu_exclusive": 0, "mems": [], "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
                 "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0, "sched_load_balance": 0,
                 "sched_relax_domain_level": 0}
    if d is not None:
        v2 = mgr.is_v2("cpuset")
        cpus = _read(f"{d}/cpuset.cpus.effective" if v2 else f"{d}/cpuset.cpus") or ""
        mems = _read(f"{d}/cpuset.mems.effective" if v2 else f"{d}/cpuset.mems") or ""
        out["cpus"], out["mems"] = parse_list(cpus), parse_list(mems)
        if not v2:
            for k in ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                      "memory_spread_slab", "memory_pressure", "sched_load_balance", "sched_relax_domain_level"):
                out[k] = _int(f"{d}/cpuset.{k}")
    return _omit(out, "cpus", "mems")


# --- memory ---------------------------------------------------------------------------------------------
def _entry(limit: int = 0, usage: int = 0, max_: int = 0, failcnt: int = 0) -> dict:
    return _omit({"limit": limit, "usage": usage, "max": max_, "failcnt": failcnt}, "usage", "max")


def _memory(mgr) -> dict:
    d = mgr.dir_for("memory")
    out: dict = {"cache": 0, "usage": _entry(), "swap": _entry(), "kernel": _entry(), "kernelTCP": _entry(), "raw": {}}
    if d is None:
        return _omit(out, "cache", "raw")
    raw = _kv(f"{d}/memory.stat")
    out["raw"] = raw
    if mgr.is_v2("memory"):
        out["cache"] = raw.get("file", 0)
        ev = _kv(f"{d}/memory.events")
        usage, limit = _int(f"{d}/memory.current"), _int(f"{d}/memory.max")
        out["usage"] = _entry(limit, usage, _int(f"{d}/memory.peak"), ev.get("max", 0))
        if os.path.exists(f"{d}/memory.swap.current"):
            # runc: report memory+swap, like v1's memsw.
            slimit = _int(f"{d}/memory.swap.max")
            if slimit != MAX_UINT64 and limit != MAX_UINT64:
                slimit += limit
            else:
                slimit = MAX_UINT64
            sev = _kv(f"{d}/memory.swap.events")
            out["swap"] = _entry(slimit, _int(f"{d}/memory.swap.current") + usage, _int(f"{d}/memory.swap.peak"), sev.get("max", 0))
    else:
        out["cache"] = raw.get("cache", 0)
        for key, prefix in (("usage", "memory"), ("swap", "memory.memsw"), ("kernel", "memory.kmem"), ("kernelTCP", "memory.kmem.tcp")):
            if os.path.exists(f"{d}/{prefix}.usage_in_bytes"):
                out[key] = _entry(_int(f"{d}/{prefix}.limit_in_bytes"), _int(f"{d}/{prefix}.usage_in_bytes"),
                                  _int(f"{d}/{prefix}.max_usage_in_bytes"), _int(f"{d}/{prefix}.failcnt"))
    return _omit(out, "cache", "raw")


def _pids(mgr) -> dict:
    d = mgr.dir_for("pids")
    if d is None:
        return {}
    limit = _int(f"{d}/pids.max")
    return _omit({"current": _int(f"{d}/pids.current"), "limit": 0 if limit == MAX_UINT64 else limit}, "current", "limit")


# --- blkio ---------------------------------------------------------------------------------------------
def _blkio_entries(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) != 3 or ":" not in f[0]:
            continue  # "Total N"
        major, _, minor = f[0].partition(":")
        out.append(_omit({"major": int(major), "minor": int(minor), "op": f[1], "value": int(f[2])}, "major", "minor", "op", "value"))
    return out


def _blkio(mgr) -> dict:
    out: dict = {}
    lay = mgr.layout
    h = lay.v1_hierarchy("blkio")
    if h is not None and h.key in mgr.paths:
        d = mgr.paths[h.key]
        # CFQ files, else BFQ, else the throttle layer's (which counts every I/O): runc's order.
        for prefix in ("blkio.", "blkio.bfq.", "blkio.throttle."):
            by = _read(f"{d}/{prefix}io_service_bytes_recursive")
            if by is None:
                continue
            entries = _blkio_entries(by)
            if entries or prefix == "blkio.throttle.":
                out["ioServiceBytesRecursive"] = entries
                out["ioServicedRecursive"] = _blkio_entries(_read(f"{d}/{prefix}io_serviced_recursive") or "")
                if prefix == "blkio.":
                    for key, name in (("ioQueueRecursive", "io_queued_recursive"), ("ioServiceTimeRecursive", "io_service_time_recursive"),
                                      ("ioWaitTimeRecursive", "io_wait_time_recursive"), ("ioMergedRecursive", "io_merged_recursive"),
                                      ("ioTimeRecursive", "time_recursive"), ("sectorsRecursive", "sectors_recursive")):
                        out[key] = _blkio_entries(_read(f"{d}/blkio.{name}") or "")
                break
    elif "io" in lay.v2_controllers and "" in mgr.paths:
        by, ops = [], []
        for line in (_read(mgr.paths[""] + "/io.stat") or "").splitlines():
            f = line.split()
            if not f or ":" not in f[0]:
                continue
            major, _, minor = f[0].partition(":")
            for kv in f[1:]:
                k, _, v = kv.partition("=")
                target, op = {"rbytes": (by, "Read"), "wbytes": (by, "Write"), "rios": (ops, "Read"), "wios": (ops, "Write")}.get(k, (None, ""))
                if target is not None:
                    target.append(_omit({"major": int(major), "minor": int(minor), "op": op, "value": int(v)}, "major", "minor", "op", "value"))
        out["ioServiceBytesRecursive"], out["ioServicedRecursive"] = by, ops
    return {k: v for k, v in out.items() if v}


def _hugetlb(mgr) -> dict:
    from nano_sandbox.cgroups.resources import host_page_sizes

    d = mgr.dir_for("hugetlb")
    if d is None:
        return {}
    out = {}
    v2 = mgr.is_v2("hugetlb")
    for size in host_page_sizes():
        if v2:
            ev = _kv(f"{d}/hugetlb.{size}.events")
            e = {"usage": _int(f"{d}/hugetlb.{size}.current"), "max": 0, "failcnt": ev.get("max", 0)}
        else:
            e = {"usage": _int(f"{d}/hugetlb.{size}.usage_in_bytes"), "max": _int(f"{d}/hugetlb.{size}.max_usage_in_bytes"),
                 "failcnt": _int(f"{d}/hugetlb.{size}.failcnt")}
        out[size] = _omit(e, "usage", "max")
    return out


def collect(mgr) -> dict:
    """Return the statistics of the container whose cgroups ``mgr`` holds, as runc's
    ``types.Stats``: ``{"cpu": {"usage": {"total", "percpu", "percpu_kernel", "percpu_user",
    "kernel", "user"}, "throttling": {...}}, "cpuset": {...}, "memory": {"cache", "usage": {"limit",
    "usage", "max", "failcnt"}, "swap", "kernel", "kernelTCP", "raw": {memory.stat}}, "pids":
    {"current", "limit"}, "blkio": {"ioServiceBytesRecursive": [{"major", "minor", "op", "value"}],
    ...}, "hugetlb": {"2MB": {"usage", "max", "failcnt"}}, "intel_rdt": {}, "network_interfaces":
    null}``. Times in ns, sizes in bytes. Missing files read as zero (never raises for them)."""
    return {
        "cpu": _cpu(mgr),
        "cpuset": _cpuset(mgr),
        "memory": _memory(mgr),
        "pids": _pids(mgr),
        "blkio": _blkio(mgr),
        "hugetlb": _hugetlb(mgr),
        "intel_rdt": {},
        "network_interfaces": None,
    }


# --- OOM notifications ------------------------------------------------------------------------------------
class OomWatcher:
    """Tells when the OOM killer acts in a container's memory cgroup.

    * v1: an eventfd registered through ``cgroup.event_control`` for ``memory.oom_control``
      (cgroup-v1/memory.rst "OOM Control") wakes the watcher when the cgroup enters OOM (and when
      it is removed, told apart by the directory being gone); the events reported are the kills
      counted by ``oom_kill`` in ``memory.oom_control``, or one for an OOM without a kill (OOM
      killer disabled).
    * v2: ``poll()`` on ``memory.events`` (the kernel notifies a change with POLLPRI) and the
      change of its ``oom_kill`` counter (cgroup-v2.rst "memory.events").

    Args:
        mgr: the container's Manager.

    Raises:
        OSError: the memory cgroup cannot be watched (no memory controller, cgroup gone).
    """

    def __init__(self, mgr) -> None:
        d = mgr.dir_for("memory")
        if d is None:
            raise OSError(2, "no memory cgroup controller")
        self.dir = d
        self.v2 = mgr.is_v2("memory")
        self.efd = -1
        self.fd = -1
        if self.v2:
            self.counter_file = f"{d}/memory.events"
            self.fd = os.open(self.counter_file, os.O_RDONLY | os.O_CLOEXEC)
        else:
            self.counter_file = f"{d}/memory.oom_control"
            self.efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self.fd = os.open(self.counter_file, os.O_RDONLY | os.O_CLOEXEC)
            with open(f"{d}/cgroup.event_control", "w") as f:
                f.write(f"{self.efd} {self.fd}")
        self.count = self._counter()

    def _counter(self) -> int:
        if self.v2:
            os.lseek(self.fd, 0, os.SEEK_SET)
            text = os.read(self.fd, 4096).decode()
        else:
            text = _read(self.counter_file) or ""
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "oom_kill":
                return int(parts[1])
        return 0

    def wait(self, timeout: float, extra_fd: int | None = None) -> tuple[int, bool]:
        """Wait up to ``timeout`` seconds. Returns ``(number of OOM events seen, extra_fd ready)``."""
        import select

        p = select.poll()
        if self.v2:
            p.register(self.fd, select.POLLPRI | select.POLLERR)
        else:
            p.register(self.efd, select.POLLIN)
        if extra_fd is not None:
            p.register(extra_fd, select.POLLIN)
        ready = dict(p.poll(max(0, int(timeout * 1000))))
        notified = 0
        if not self.v2 and self.efd in ready:
            try:
                notified = os.eventfd_read(self.efd)
            except BlockingIOError:
                notified = 0
            if not os.path.isdir(self.dir):
                notified = 0  # the cgroup was removed: that also signals the eventfd
        killed = self._killed()
        if notified and not killed:
            # The kernel notifies when the cgroup enters OOM, a moment before its victim is
            # counted: wait for the count so one kill makes one event (several notifications may
            # come for one OOM situation).
            import time

            for _ in range(40):
                time.sleep(0.005)
                killed = self._killed()
                if killed:
                    break
            else:
                killed = 1  # an OOM without a kill: the OOM killer is disabled (disableOOMKiller)
        return killed, extra_fd is not None and extra_fd in ready

    def _killed(self) -> int:
        try:
            now = self._counter()
        except OSError:
            return 0
        killed = max(0, now - self.count)
        self.count = max(self.count, now)
        return killed

    def close(self) -> None:
        for fd in (self.efd, self.fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.efd = self.fd = -1
