"""Writing ``linux.resources`` into cgroup files, for v1 and v2 (runtime-spec config-linux.md
"Control groups"; kernel docs cgroup-v1/*.rst and cgroup-v2.rst).

Each writer takes the :class:`~nano_sandbox.cgroups.manager.Manager` and one resource block,
and writes through :func:`write`, whose errors name the JSON path of the limit and the file:
``linux.resources.memory.limit: cannot set 4096 in /sys/fs/cgroup/memory/…/memory.limit_in_bytes:
Device or resource busy (the container already uses more)``.
"""

from __future__ import annotations

import errno
import os

from nano_sandbox import errors

UNLIMITED = -1


def write(path: str, value: str | int, field: str) -> None:
    """Write ``value`` to cgroup file ``path``; on failure raise HostError naming ``field``."""
    from nano_sandbox.linux.syscalls import record

    text = str(value)
    record(f'write("{path}", "{text}")')
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as e:
        hint = ""
        if e.errno == errno.EBUSY and "memory" in path:
            hint = " (the container already uses more)"
        elif e.errno == errno.ENOENT:
            hint = " (the kernel has no such cgroup file)"
        raise errors.HostError(f"{field}: cannot set {text} in {path}: {e.strerror}{hint}") from e


def read(path: str) -> str:
    """Return the stripped content of a cgroup file."""
    with open(path) as f:
        return f.read().strip()


def _need(mgr, controller: str, field: str) -> tuple[str, bool]:
    d = mgr.dir_for(controller)
    if d is None:
        raise errors.HostError(f"{field}: the {controller} cgroup controller is not available on this host")
    return d, mgr.is_v2(controller)


def apply(mgr, r, update: bool = False) -> None:
    """Apply every block of ``r`` (``LinuxResources`` or None) that is set."""
    if r is None:
        return
    if not update:
        _devices(mgr, getattr(r, "devices", None))
    if getattr(r, "memory", None) is not None:
        _memory(mgr, r.memory)
    if getattr(r, "pids", None) is not None:
        _pids(mgr, r.pids)
    if getattr(r, "cpu", None) is not None:
        _cpu(mgr, r.cpu)
    extra = getattr(r, "unified", None)
    if extra:
        _unified(mgr, extra)


# --- memory ---------------------------------------------------------------------------------------------
def _memory(mgr, m) -> None:
    base = "linux.resources.memory"
    d, v2 = _need(mgr, "memory", base)
    limit, swap, reservation = m.limit, m.swap, m.reservation
    if v2:
        if limit is not None:
            write(f"{d}/memory.max", "max" if limit == UNLIMITED else limit, f"{base}.limit")
        if swap is not None:
            # OCI swap is memory+swap; v2 memory.swap.max is swap alone (runc's conversion).
            if swap == UNLIMITED:
                value = "max"
            elif limit is None or limit == UNLIMITED:
                raise errors.HostError(f"{base}.swap: cannot convert {swap} to cgroup v2 without a memory limit")
            else:
                if swap < limit:
                    raise errors.HostError(f"{base}.swap: {swap} is below memory.limit {limit} (swap counts memory+swap)")
                value = swap - limit
            path = f"{d}/memory.swap.max"
            if os.path.exists(path):
                write(path, value, f"{base}.swap")
        if reservation is not None:
            write(f"{d}/memory.low", "max" if reservation == UNLIMITED else reservation, f"{base}.reservation")
        return
    memsw = f"{d}/memory.memsw.limit_in_bytes"
    has_memsw = os.path.exists(memsw)
    if swap is not None and limit is not None and swap != UNLIMITED and limit != UNLIMITED and swap < limit:
        raise errors.HostError(f"{base}.swap: {swap} is below memory.limit {limit} (swap counts memory+swap)")
    if limit is not None:
        new_limit = limit
        if swap is not None and has_memsw:
            # memory.memsw.limit_in_bytes must stay >= memory.limit_in_bytes at every moment:
            # when raising, set memsw first; when lowering, the memory limit first.
            cur = int(read(f"{d}/memory.limit_in_bytes"))
            raising = new_limit == UNLIMITED or new_limit > cur
            if raising:
                write(memsw, swap, f"{base}.swap")
                write(f"{d}/memory.limit_in_bytes", new_limit, f"{base}.limit")
            else:
                write(f"{d}/memory.limit_in_bytes", new_limit, f"{base}.limit")
                write(memsw, swap, f"{base}.swap")
        else:
            write(f"{d}/memory.limit_in_bytes", new_limit, f"{base}.limit")
    elif swap is not None and has_memsw:
        write(memsw, swap, f"{base}.swap")
    if reservation is not None:
        write(f"{d}/memory.soft_limit_in_bytes", reservation, f"{base}.reservation")
    if getattr(m, "swappiness", None) is not None:
        write(f"{d}/memory.swappiness", m.swappiness, f"{base}.swappiness")
    if getattr(m, "disable_oom_killer", None):
        write(f"{d}/memory.oom_control", 1, f"{base}.disableOOMKiller")


# --- pids -------------------------------------------------------------------------------------------------
def _pids(mgr, p) -> None:
    field = "linux.resources.pids.limit"
    d, _v2 = _need(mgr, "pids", field)
    # runtime-spec 1.3: -1 is unlimited ("max"); 0 is a real limit of zero tasks.
    value = "max" if p.limit is None or p.limit < 0 else p.limit
    write(f"{d}/pids.max", value, field)


# --- cpu ----------------------------------------------------------------------------------------------------
def shares_to_weight(shares: int) -> int:
    """Convert cgroup v1 ``cpu.shares`` (2..262144) to v2 ``cpu.weight`` (1..10000), as runc
    does: ``1 + ((shares - 2) * 9999) / 262142`` (0 stays 0: unset)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def _cpu(mgr, c) -> None:
    base = "linux.resources.cpu"
    if c.shares is not None or c.quota is not None or c.period is not None:
        d, v2 = _need(mgr, "cpu", base)
        if v2:
            if c.shares:
                write(f"{d}/cpu.weight", shares_to_weight(c.shares), f"{base}.shares")
            if c.quota is not None or c.period is not None:
                period = c.period or 100000
                quota = "max" if c.quota is None or c.quota <= 0 else c.quota
                write(f"{d}/cpu.max", f"{quota} {period}", f"{base}.quota")
        else:
            if c.shares:
                write(f"{d}/cpu.shares", c.shares, f"{base}.shares")
            if c.period:
                write(f"{d}/cpu.cfs_period_us", c.period, f"{base}.period")
            if c.quota is not None:
                write(f"{d}/cpu.cfs_quota_us", -1 if c.quota <= 0 else c.quota, f"{base}.quota")
    if c.cpus or c.mems:
        d, _v2 = _need(mgr, "cpuset", base + ".cpus")
        if c.cpus:
            write(f"{d}/cpuset.cpus", c.cpus, f"{base}.cpus")
        if c.mems:
            write(f"{d}/cpuset.mems", c.mems, f"{base}.mems")


# --- devices (v1) -------------------------------------------------------------------------------------------
#: The devices every container may use (runc's AllowedDevices): null, zero, full, random,
#: urandom, tty, console, ptmx and the pts devices.
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
    h = mgr.layout.v1_hierarchy("devices")
    if h is None:
        return  # cgroup v2: a BPF device program (resources issue); nothing to write here
    d = mgr.paths[h.key]
    for allow, rule in device_rules(devices):
        write(f"{d}/{'devices.allow' if allow else 'devices.deny'}", rule, "linux.resources.devices")


# --- unified --------------------------------------------------------------------------------------------------
def _unified(mgr, kv: dict[str, str]) -> None:
    d = mgr.paths.get("")
    if d is None:
        raise errors.HostError("linux.resources.unified: needs cgroup v2, which this host has not mounted")
    for k, v in kv.items():
        if "/" in k or k.startswith("."):
            raise errors.HostError(f"linux.resources.unified.{k}: not a cgroup file name")
        write(f"{d}/{k}", v, f"linux.resources.unified.{k}")
