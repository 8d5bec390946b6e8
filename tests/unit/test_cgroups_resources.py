"""``linux.resources`` writers, statistics, the BPF device program compiler, update's merge and
flag parsing, against fake cgroup trees of v1, v2 and hybrid hosts (see test_cgroups_layout.py)
and a fake kernel that records writes and enforces the kernel's rules. No root needed.

The same knobs are checked on real containers in tests/integration/test_resources.py, on the
layout this host has; these tests cover every layout.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import msgspec
import pytest

from nano_sandbox import errors, log
from nano_sandbox.cgroups import devices_bpf as bpf
from nano_sandbox.cgroups import resources as res
from nano_sandbox.cgroups import stats as st
from nano_sandbox.cgroups.manager import Manager
from nano_sandbox.spec.config import LinuxResources
from test_cgroups_layout import FakeKernel, fake_host

UNLIMITED_V1 = "9223372036854771712"

V1_FILES = {
    "memory": {"memory.limit_in_bytes": UNLIMITED_V1, "memory.memsw.limit_in_bytes": UNLIMITED_V1,
               "memory.soft_limit_in_bytes": UNLIMITED_V1, "memory.kmem.limit_in_bytes": UNLIMITED_V1,
               "memory.kmem.tcp.limit_in_bytes": UNLIMITED_V1, "memory.swappiness": "60",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "memory.use_hierarchy": "1",
               "memory.usage_in_bytes": "1048576"},
    "cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.cfs_burst_us": "0",
            "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0", "cpu.idle": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "pids": {"pids.max": "max"},
    "blkio": {"blkio.bfq.weight": "100", "blkio.bfq.weight_device": "default 100", "blkio.throttle.read_bps_device": "",
              "blkio.throttle.write_bps_device": "", "blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": ""},
    "devices": {"devices.allow": "", "devices.deny": ""},
    "hugetlb": {"hugetlb.2MB.limit_in_bytes": UNLIMITED_V1, "hugetlb.1GB.limit_in_bytes": UNLIMITED_V1,
                "hugetlb.2MB.rsvd.limit_in_bytes": UNLIMITED_V1},
    "net_cls": {"net_cls.classid": "0"},
    "net_prio": {"net_prio.ifpriomap": "lo 0\n"},
    "rdma": {"rdma.max": ""},
}

V2_FILES = {"memory.max": "max", "memory.low": "0", "memory.swap.max": "max", "memory.current": "1048576",
            "cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0", "cpuset.cpus": "",
            "cpuset.mems": "", "pids.max": "max", "io.weight": "default 100", "io.max": "", "hugetlb.2MB.max": "max",
            "hugetlb.2MB.rsvd.max": "max", "hugetlb.1GB.max": "max", "rdma.max": "", "cgroup.max.descendants": "max"}


@pytest.fixture
def hugepages(tmp_path, monkeypatch):
    d = tmp_path / "hugepages"
    for n in ("hugepages-2048kB", "hugepages-1048576kB"):
        (d / n).mkdir(parents=True)
    monkeypatch.setattr(res, "HUGEPAGES_DIR", str(d))
    return d


class Host:
    """A fake host: layout, created container cgroups with their kernel files, fake kernel, logs."""

    def __init__(self, tmp_path, monkeypatch, mode: str, drop: tuple[str, ...] = (), v2_controllers: str | None = None) -> None:
        self.layout, self.base = fake_host(tmp_path, mode, v2_controllers)
        self.mgr = Manager.for_container("web", None, self.layout)
        self.mgr.create()
        for key, d in self.mgr.paths.items():
            files = V2_FILES if key == "" else {k: v for c in key.split(",") for k, v in V1_FILES.get(c, {}).items()}
            for name, value in files.items():
                if name not in drop:
                    Path(d, name).write_text(value)
        self.kernel = FakeKernel(monkeypatch, self.base)
        self.monkeypatch = monkeypatch
        self.warnings: list[str] = []
        monkeypatch.setattr(log.get(), "warning", lambda msg, **kw: self.warnings.append(msg))
        # cgroup v2 devices: record the BPF program's rules instead of attaching to a tmp dir
        self.bpf_calls: list = []
        monkeypatch.setattr(bpf, "v2_devices_supported", lambda: True)
        monkeypatch.setattr(bpf, "apply", lambda d, rules: self.bpf_calls.append((d, rules)))

    def dir(self, controller: str) -> str:
        return self.mgr.dir_for(controller)

    def rel(self, controller: str, name: str) -> str:
        return os.path.relpath(f"{self.dir(controller)}/{name}", self.base)

    def read(self, controller: str, name: str) -> str:
        return Path(self.dir(controller), name).read_text()

    def apply(self, doc: dict, update: bool = False, current: dict | None = None) -> list[tuple[str, str]]:
        """Apply ``doc``; return the writes (those of the default device rules only when ``doc``
        has ``devices``)."""
        self.monkeypatch.setattr(res, "_write_file", self.kernel.write_file)  # this host's kernel
        self.kernel.writes.clear()
        cur = R(current) if current is not None else None
        self.mgr.apply(R(doc), update=update, current=cur)
        return [w for w in self.kernel.writes if "devices" in doc or "/devices." not in w[0]]


def R(doc: dict) -> LinuxResources:
    """A LinuxResources without the decode-time value checks (so the apply-time ones are tested)."""
    return msgspec.json.decode(json.dumps(doc), type=LinuxResources)


@pytest.fixture
def v1(tmp_path, monkeypatch, hugepages):
    return Host(tmp_path, monkeypatch, "v1")


@pytest.fixture
def v2(tmp_path, monkeypatch, hugepages):
    return Host(tmp_path, monkeypatch, "v2")


@pytest.fixture
def hybrid(tmp_path, monkeypatch, hugepages):
    return Host(tmp_path, monkeypatch, "hybrid")


def memsw_rule(host):
    """The v1 kernel rule: memory.memsw.limit_in_bytes >= memory.limit_in_bytes at every moment."""
    def rule(rel, text):
        d = os.path.join(host.base, os.path.dirname(rel))
        if rel.endswith("/memory.limit_in_bytes") and int(text) > int(Path(d, "memory.memsw.limit_in_bytes").read_text()):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        if rel.endswith("/memory.memsw.limit_in_bytes") and int(text) != -1 and int(text) < int(Path(d, "memory.limit_in_bytes").read_text()):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        if rel.endswith("limit_in_bytes") and text == "-1":
            return UNLIMITED_V1
        return None
    return rule


# --- write() --------------------------------------------------------------------------------------------


def test_write_error_names_field_file_and_errno(tmp_path):
    path = tmp_path / "memory.limit_in_bytes"
    with pytest.raises(errors.HostError) as e:
        res.write(str(path), 4096, "linux.resources.memory.limit")
    assert str(e.value) == (f"linux.resources.memory.limit: cannot set 4096 in {path}: No such file or directory "
                            "(the kernel has no such cgroup file)")


def test_write_ebusy_on_memory_file_says_the_container_uses_more(tmp_path, monkeypatch):
    def busy(path, data):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))

    monkeypatch.setattr(res, "_write_file", busy)
    with pytest.raises(errors.HostError) as e:
        res.write("/sys/fs/cgroup/memory/nano-sandbox/web/memory.limit_in_bytes", 4096, "linux.resources.memory.limit")
    assert str(e.value) == ("linux.resources.memory.limit: cannot set 4096 in /sys/fs/cgroup/memory/nano-sandbox/web/"
                            "memory.limit_in_bytes: Device or resource busy (the container already uses more)")


def test_write_truncates_like_runc(tmp_path):
    f = tmp_path / "cpu.shares"
    f.write_text("1024")
    res.write(str(f), 2, "x")
    assert f.read_text() == "2"


# --- memory v1 ------------------------------------------------------------------------------------------


def test_memory_v1_every_knob(v1):
    writes = v1.apply({"memory": {"limit": 33554432, "reservation": 16777216, "swap": 67108864, "kernelTCP": 8388608,
                                  "swappiness": 10, "disableOOMKiller": True, "useHierarchy": True}})
    m = lambda n: v1.rel("memory", n)  # noqa: E731
    assert writes == [
        (m("memory.limit_in_bytes"), "33554432"),  # a new cgroup's memsw is unlimited: the memory limit first
        (m("memory.memsw.limit_in_bytes"), "67108864"),
        (m("memory.soft_limit_in_bytes"), "16777216"),
        (m("memory.kmem.tcp.limit_in_bytes"), "8388608"),
        (m("memory.swappiness"), "10"),
        (m("memory.oom_control"), "1"),
        (m("memory.use_hierarchy"), "1"),
    ]
    assert v1.warnings == []


def test_memory_v1_memsw_ordering_raising_and_lowering(v1):
    v1.kernel.rules.append(memsw_rule(v1))
    m = lambda n: v1.rel("memory", n)  # noqa: E731
    assert v1.apply({"memory": {"limit": 33554432, "swap": 33554432}}) == [
        (m("memory.limit_in_bytes"), "33554432"), (m("memory.memsw.limit_in_bytes"), "33554432")]
    # raising above the current limit: memsw first
    assert v1.apply({"memory": {"limit": 67108864, "swap": 134217728}}, update=True) == [
        (m("memory.memsw.limit_in_bytes"), "134217728"), (m("memory.limit_in_bytes"), "67108864")]
    # lowering below the current limit: memory first
    assert v1.apply({"memory": {"limit": 16777216, "swap": 16777216}}, update=True) == [
        (m("memory.limit_in_bytes"), "16777216"), (m("memory.memsw.limit_in_bytes"), "16777216")]
    assert v1.read("memory", "memory.limit_in_bytes") == "16777216"
    assert v1.read("memory", "memory.memsw.limit_in_bytes") == "16777216"
    # unlimited memory without a swap value: memory+swap unlimited too (runc), memsw first
    assert v1.apply({"memory": {"limit": -1}}, update=True) == [
        (m("memory.memsw.limit_in_bytes"), "-1"), (m("memory.limit_in_bytes"), "-1")]


def test_memory_v1_raising_limit_above_memsw_names_the_way_out(v1):
    v1.kernel.rules.append(memsw_rule(v1))
    v1.apply({"memory": {"limit": 33554432, "swap": 33554432}})
    with pytest.raises(errors.HostError) as e:
        v1.apply({"memory": {"limit": 67108864}}, update=True)
    d = v1.dir("memory")
    assert str(e.value) == (f"linux.resources.memory.limit: cannot set 67108864 in {d}/memory.limit_in_bytes: Invalid argument "
                            f"({d}/memory.memsw.limit_in_bytes is lower: raise linux.resources.memory.swap too)")


def test_memory_swap_below_limit_is_an_error(v1, v2):
    for host in (v1, v2):
        with pytest.raises(errors.HostError) as e:
            host.apply({"memory": {"limit": 67108864, "swap": 33554432}})
        assert str(e.value) == "linux.resources.memory.swap: 33554432 is below memory.limit 67108864 (swap counts memory + swap)"
        assert [w for w in host.kernel.writes if "memory" in w[0]] == []


def test_memory_v1_without_swap_accounting(tmp_path, monkeypatch, hugepages):
    host = Host(tmp_path, monkeypatch, "v1", drop=("memory.memsw.limit_in_bytes",))
    d = host.dir("memory")
    with pytest.raises(errors.HostError) as e:
        host.apply({"memory": {"limit": 33554432, "swap": 67108864}})
    assert str(e.value) == (f"linux.resources.memory.swap: cannot set 67108864 in {d}/memory.memsw.limit_in_bytes: the file does not "
                            "exist (the kernel has no swap accounting: CONFIG_MEMCG_SWAP or the swapaccount=1 boot option)")
    # nothing to limit: swap == limit (no swap at all) or unlimited
    assert host.apply({"memory": {"limit": 33554432, "swap": 33554432}}) == [(host.rel("memory", "memory.limit_in_bytes"), "33554432")]
    assert host.apply({"memory": {"limit": -1, "swap": -1}}) == [(host.rel("memory", "memory.limit_in_bytes"), "-1")]


def test_memory_zero_means_unset_like_runc(v1):
    assert v1.apply({"memory": {"limit": 0, "swap": 0, "reservation": 0}}) == []


def test_memory_v1_kernel_limit_is_a_warning_when_the_kernel_ignores_it(v1):
    v1.kernel.rules.append(lambda rel, text: UNLIMITED_V1 if rel.endswith("memory.kmem.limit_in_bytes") else None)
    v1.apply({"memory": {"kernel": 16777216}})
    path = f"{v1.dir('memory')}/memory.kmem.limit_in_bytes"
    assert v1.warnings == [f"linux.resources.memory.kernel: ignored: writing 16777216 to {path} has no effect on this kernel "
                           "(deprecated since Linux 5.16; kernel memory counts in the memory limit)"]


def test_memory_v1_kernel_limit_applied_where_the_kernel_honours_it(v1):
    assert v1.apply({"memory": {"kernel": 16777216}}) == [(v1.rel("memory", "memory.kmem.limit_in_bytes"), "16777216")]
    assert v1.warnings == []


def test_memory_v1_kmem_files_absent_are_warnings(tmp_path, monkeypatch, hugepages):
    host = Host(tmp_path, monkeypatch, "v1", drop=("memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes"))
    d = host.dir("memory")
    assert host.apply({"memory": {"kernel": 16777216, "kernelTCP": 8388608}}) == []
    assert host.warnings == [
        f"linux.resources.memory.kernel: ignored: this kernel has no {d}/memory.kmem.limit_in_bytes (kernel memory limits were "
        "removed in Linux 6.1; kernel memory counts in the memory limit)",
        f"linux.resources.memory.kernelTCP: ignored: this kernel has no {d}/memory.kmem.tcp.limit_in_bytes",
    ]


def test_memory_v1_use_hierarchy_false_refused_by_the_kernel_is_a_warning(v1):
    def rule(rel, text):
        if rel.endswith("memory.use_hierarchy") and text == "0":
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    v1.kernel.rules.append(rule)
    v1.apply({"memory": {"useHierarchy": False}})
    assert v1.warnings == [f"linux.resources.memory.useHierarchy: ignored: this kernel refuses 0 in {v1.dir('memory')}/memory.use_hierarchy "
                           "(memory cgroups are always hierarchical since Linux 5.x)"]


@pytest.mark.parametrize("mode", ["v1", "v2"])
def test_check_before_update_refuses_a_limit_below_usage(tmp_path, monkeypatch, hugepages, mode):
    host = Host(tmp_path, monkeypatch, mode)
    d = host.dir("memory")
    usage_file, limit_file = ("memory.usage_in_bytes", "memory.limit_in_bytes") if mode == "v1" else ("memory.current", "memory.max")
    with pytest.raises(errors.HostError) as e:
        host.apply({"memory": {"limit": 1048576}}, update=True, current={"memory": {"checkBeforeUpdate": True}})
    assert str(e.value) == (f"linux.resources.memory.limit: cannot set 1048576 in {d}/{limit_file}: the container already uses "
                            f"1048576 bytes ({d}/{usage_file}; memory.checkBeforeUpdate refuses a limit at or below the current usage)")
    assert host.kernel.writes == []
    # above the usage: applied; without the flag: the kernel decides
    assert host.apply({"memory": {"limit": 2097152, "checkBeforeUpdate": True}}, update=True)
    assert host.apply({"memory": {"limit": 1048576}}, update=True)
    # create does not check
    assert host.apply({"memory": {"limit": 4096, "checkBeforeUpdate": True}})


# --- memory v2 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("swap", "limit", "want"), [
    (None, None, None), (None, -1, -1), (0, -1, -1), (-1, 100, -1), (300, 100, 200), (100, 100, 0), (300, -1, 300),
])
def test_swap_to_v2(swap, limit, want):
    assert res.swap_to_v2(swap, limit) == want


@pytest.mark.parametrize(("swap", "limit", "msg"), [
    (300, None, "cannot limit swap without a memory limit (swap counts memory + swap)"),
    (50, 100, "50 is below memory.limit 100 (swap counts memory + swap)"),
])
def test_swap_to_v2_errors(swap, limit, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        res.swap_to_v2(swap, limit)


def test_memory_v2_every_knob(v2):
    writes = v2.apply({"memory": {"limit": 33554432, "reservation": 16777216, "swap": 67108864}})
    assert writes == [(v2.rel("memory", "memory.swap.max"), "33554432"), (v2.rel("memory", "memory.max"), "33554432"),
                      (v2.rel("memory", "memory.low"), "16777216")]
    assert v2.apply({"memory": {"limit": -1}}) == [(v2.rel("memory", "memory.swap.max"), "max"), (v2.rel("memory", "memory.max"), "max")]
    assert v2.warnings == []


def test_memory_v2_update_swap_alone_uses_the_current_limit(v2):
    writes = v2.apply({"memory": {"swap": 100663296}}, update=True, current={"memory": {"limit": 33554432}})
    assert writes == [(v2.rel("memory", "memory.swap.max"), "67108864")]
    with pytest.raises(errors.HostError) as e:
        v2.apply({"memory": {"swap": 100663296}}, update=True)
    assert str(e.value) == "linux.resources.memory.swap: cannot limit swap without a memory limit (swap counts memory + swap)"


def test_memory_v2_v1_only_knobs_are_warnings(v2):
    assert v2.apply({"memory": {"kernel": 1048576, "kernelTCP": 1048576, "swappiness": 0, "disableOOMKiller": True,
                                "useHierarchy": False}}) == []
    assert v2.warnings == [
        "linux.resources.memory.kernel: ignored: cgroup v2 has no kernel memory limit (kernel memory counts in memory.max)",
        "linux.resources.memory.kernelTCP: ignored: cgroup v2 has no TCP buffer limit (socket memory counts in memory.max)",
        "linux.resources.memory.swappiness: ignored: cgroup v2 has no per-cgroup swappiness",
        "linux.resources.memory.disableOOMKiller: ignored: cgroup v2 cannot disable the OOM killer (memory.oom_control is v1 only)",
        "linux.resources.memory.useHierarchy: ignored: cgroup v2 is always hierarchical",
    ]


def test_memory_v2_without_swap_file(tmp_path, monkeypatch, hugepages):
    host = Host(tmp_path, monkeypatch, "v2", drop=("memory.swap.max",))
    assert host.apply({"memory": {"limit": 1048576, "swap": 1048576}}) == [(host.rel("memory", "memory.max"), "1048576")]
    with pytest.raises(errors.HostError) as e:
        host.apply({"memory": {"limit": 1048576, "swap": 2097152}})
    assert str(e.value) == (f"linux.resources.memory.swap: cannot set 1048576 in {host.dir('memory')}/memory.swap.max: the file does not "
                            "exist (the kernel has no swap accounting)")


# --- pids -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["v1", "v2", "hybrid"])
@pytest.mark.parametrize(("limit", "want"), [(-1, "max"), (0, "0"), (5, "5"), (-5, "max")])
def test_pids(tmp_path, monkeypatch, hugepages, mode, limit, want):
    host = Host(tmp_path, monkeypatch, mode)
    assert host.apply({"pids": {"limit": limit}}) == [(host.rel("pids", "pids.max"), want)]


# --- cpu ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("shares", "weight", "legacy"), [
    (0, 0, 0), (2, 1, 1), (512, 59, 20), (1024, 100, 39), (2048, 174, 79), (262144, 10000, 10000), (300000, 10000, 11443)])
def test_shares_to_weight(shares, weight, legacy):
    assert res.shares_to_weight(shares) == weight
    assert res.shares_to_weight_legacy(shares) == legacy


def test_cpu_v1_every_knob(v1):
    writes = v1.apply({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000, "realtimeRuntime": 10000,
                               "realtimePeriod": 1000000, "cpus": "0-1", "mems": "0", "idle": 1}})
    c = lambda n: v1.rel("cpu", n)  # noqa: E731
    s = lambda n: v1.rel("cpuset", n)  # noqa: E731
    assert writes == [
        (c("cpu.rt_period_us"), "1000000"), (c("cpu.rt_runtime_us"), "10000"), (c("cpu.shares"), "512"),
        (c("cpu.cfs_period_us"), "100000"), (c("cpu.cfs_quota_us"), "50000"), (c("cpu.cfs_burst_us"), "10000"),
        (c("cpu.idle"), "1"), (s("cpuset.cpus"), "0-1"), (s("cpuset.mems"), "0"),
    ]


def test_cpu_v1_quota_unlimited_and_zero_unset(v1):
    assert v1.apply({"cpu": {"quota": -1}}) == [(v1.rel("cpu", "cpu.cfs_quota_us"), "-1")]
    assert v1.apply({"cpu": {"quota": 0, "shares": 0, "period": 0}}) == []


def test_cpu_v1_shares_clamped_by_the_kernel_is_an_error(v1):
    v1.kernel.rules.append(lambda rel, text: "262144" if rel.endswith("cpu.shares") and int(text) > 262144 else None)
    with pytest.raises(errors.HostError) as e:
        v1.apply({"cpu": {"shares": 300000}})
    assert str(e.value) == f"linux.resources.cpu.shares: cannot set 300000 in {v1.dir('cpu')}/cpu.shares: the maximum allowed cpu shares is 262144"


def test_cpu_v1_shorter_period_retried_after_the_quota(v1):
    def rule(rel, text):
        d = os.path.join(v1.base, os.path.dirname(rel))
        quota = int(Path(d, "cpu.cfs_quota_us").read_text())
        if rel.endswith("cpu.cfs_period_us") and quota > int(text):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    v1.kernel.rules.append(rule)
    Path(v1.dir("cpu"), "cpu.cfs_quota_us").write_text("80000")
    writes = v1.apply({"cpu": {"quota": 20000, "period": 50000}}, update=True)
    assert writes == [(v1.rel("cpu", "cpu.cfs_quota_us"), "20000"), (v1.rel("cpu", "cpu.cfs_period_us"), "50000")]


def test_cpu_v1_lowering_quota_below_burst_sets_burst_first(v1):
    def rule(rel, text):
        d = os.path.join(v1.base, os.path.dirname(rel))
        if rel.endswith("cpu.cfs_quota_us") and int(text) < int(Path(d, "cpu.cfs_burst_us").read_text()):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    v1.kernel.rules.append(rule)
    Path(v1.dir("cpu"), "cpu.cfs_burst_us").write_text("40000")
    writes = v1.apply({"cpu": {"quota": 20000, "burst": 10000}}, update=True)
    assert writes == [(v1.rel("cpu", "cpu.cfs_burst_us"), "10000"), (v1.rel("cpu", "cpu.cfs_quota_us"), "20000"),
                      (v1.rel("cpu", "cpu.cfs_burst_us"), "10000")]


def test_cpu_v1_rt_runtime_beyond_the_parent_names_it(v1):
    def rule(rel, text):
        if rel.endswith("cpu.rt_runtime_us"):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    v1.kernel.rules.append(rule)
    d = v1.dir("cpu")
    with pytest.raises(errors.HostError) as e:
        v1.apply({"cpu": {"realtimeRuntime": 10000}})
    assert str(e.value) == (f"linux.resources.cpu.realtimeRuntime: cannot set 10000 in {d}/cpu.rt_runtime_us: Invalid argument "
                            f"(more than the parent cgroup grants: see {os.path.dirname(d)}/cpu.rt_runtime_us and its other children)")


def test_cpu_v2_every_knob(v2):
    writes = v2.apply({"cpu": {"shares": 1024, "quota": 50000, "period": 200000, "burst": 10000, "cpus": "1", "mems": "0", "idle": 0}})
    c = lambda n: v2.rel("cpu", n)  # noqa: E731
    assert writes == [(c("cpu.weight"), "100"), (c("cpu.max"), "50000 200000"), (c("cpu.max.burst"), "10000"), (c("cpu.idle"), "0"),
                      (c("cpuset.cpus"), "1"), (c("cpuset.mems"), "0")]


@pytest.mark.parametrize(("cpu", "current", "want"), [
    ({"quota": 50000}, None, "50000"),
    ({"quota": -1}, None, "max"),
    ({"quota": -1, "period": 100000}, None, "max 100000"),
    ({"period": 200000}, {"cpu": {"quota": 50000}}, "50000 200000"),
    ({"period": 200000}, None, "max 200000"),
])
def test_cpu_v2_cpu_max(v2, cpu, current, want):
    assert v2.apply({"cpu": cpu}, update=current is not None, current=current) == [(v2.rel("cpu", "cpu.max"), want)]


def test_cpu_v2_realtime_is_an_error(v2):
    with pytest.raises(errors.HostError) as e:
        v2.apply({"cpu": {"realtimeRuntime": 1000}})
    assert str(e.value) == ("linux.resources.cpu.realtimeRuntime: cgroup v2 has no realtime CPU bandwidth "
                            "(cpu.rt_* files exist only in the v1 cpu controller)")


def test_cpu_hybrid_uses_v1_and_cpuset_there(hybrid):
    writes = hybrid.apply({"cpu": {"shares": 256, "cpus": "0"}})
    assert writes == [(os.path.relpath(f"{hybrid.base}/cpu/nano-sandbox/web/cpu.shares", hybrid.base), "256"),
                      ("cpuset/nano-sandbox/web/cpuset.cpus", "0")]


# --- block I/O ----------------------------------------------------------------------------------------------

BLKIO = {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
         "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
         "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
         "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
         "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 0}]}


def test_blkio_v1_bfq_files_when_cfq_is_gone(v1):
    b = lambda n: v1.rel("blkio", n)  # noqa: E731
    assert v1.apply({"blockIO": BLKIO}) == [
        (b("blkio.bfq.weight"), "500"), (b("blkio.bfq.weight_device"), "8:0 300"),
        (b("blkio.throttle.read_bps_device"), "8:0 1048576"), (b("blkio.throttle.write_bps_device"), "8:0 2097152"),
        (b("blkio.throttle.read_iops_device"), "8:0 100"), (b("blkio.throttle.write_iops_device"), "8:16 0"),
    ]


def test_blkio_v1_cfq_files_preferred(v1):
    Path(v1.dir("blkio"), "blkio.weight").write_text("500")
    Path(v1.dir("blkio"), "blkio.weight_device").write_text("")
    Path(v1.dir("blkio"), "blkio.leaf_weight").write_text("500")
    writes = v1.apply({"blockIO": {"weight": 700, "leafWeight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}})
    assert writes == [(v1.rel("blkio", "blkio.weight"), "700"), (v1.rel("blkio", "blkio.leaf_weight"), "300"),
                      (v1.rel("blkio", "blkio.weight_device"), "8:0 200")]


def test_blkio_v1_knobs_the_kernel_lacks_name_the_file(tmp_path, monkeypatch, hugepages):
    host = Host(tmp_path, monkeypatch, "v1", drop=("blkio.bfq.weight", "blkio.bfq.weight_device"))
    d = host.dir("blkio")
    with pytest.raises(errors.HostError) as e:
        host.apply({"blockIO": {"weight": 500}})
    assert str(e.value) == (f"linux.resources.blockIO.weight: cannot set 500 in {d}/blkio.weight: the file does not exist, nor "
                            "blkio.bfq.weight (the kernel has neither the CFQ nor the BFQ I/O scheduler)")
    with pytest.raises(errors.HostError) as e:
        host.apply({"blockIO": {"leafWeight": 300}})
    assert str(e.value) == (f"linux.resources.blockIO.leafWeight: cannot set 300 in {d}/blkio.leaf_weight: No such file or directory "
                            "(leaf weights existed only with the CFQ I/O scheduler, removed in Linux 5.0)")


def test_blkio_v1_weight_device_on_a_non_bfq_disk(v1):
    def rule(rel, text):
        if rel.endswith("blkio.bfq.weight_device"):
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    v1.kernel.rules.append(rule)
    with pytest.raises(errors.HostError) as e:
        v1.apply({"blockIO": {"weightDevice": [{"major": 254, "minor": 0, "weight": 300}]}})
    assert str(e.value) == (f"linux.resources.blockIO.weightDevice[0].weight: cannot set 254:0 300 in {v1.dir('blkio')}/"
                            "blkio.bfq.weight_device: Operation not supported (device 254:0 does not use the BFQ I/O scheduler: "
                            "see /sys/dev/block/254:0/queue/scheduler)")


def test_io_v2_without_bfq_converts_weights(v2):
    io = lambda n: v2.rel("io", n)  # noqa: E731
    assert v2.apply({"blockIO": BLKIO}) == [
        (io("io.weight"), "4950"), (io("io.weight"), "8:0 2930"),
        (io("io.max"), "8:0 rbps=1048576"), (io("io.max"), "8:0 wbps=2097152"), (io("io.max"), "8:0 riops=100"),
        (io("io.max"), "8:16 wiops=max"),
    ]
    assert res.blkio_weight_to_io_weight(10) == 1 and res.blkio_weight_to_io_weight(1000) == 10000


def test_io_v2_with_bfq(v2):
    Path(v2.dir("io"), "io.bfq.weight").write_text("default 100")
    assert v2.apply({"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}]}}) == [
        (v2.rel("io", "io.bfq.weight"), "500"), (v2.rel("io", "io.bfq.weight"), "8:0 300")]
    with pytest.raises(errors.HostError, match="linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight"):
        v2.apply({"blockIO": {"leafWeight": 500}})


def test_block_io_without_any_controller(tmp_path, monkeypatch, hugepages):
    host = Host(tmp_path, monkeypatch, "v2", v2_controllers="memory pids")
    with pytest.raises(errors.HostError) as e:
        host.apply({"blockIO": {"weight": 500}})
    assert str(e.value) == "linux.resources.blockIO: no block I/O cgroup controller (v1 blkio or v2 io) is available on this host"


# --- hugetlb --------------------------------------------------------------------------------------------------


def test_host_page_sizes(hugepages):
    (hugepages / "hugepages-64kB").mkdir()
    assert res.host_page_sizes() == ["64KB", "2MB", "1GB"]
    assert res.page_size_name(2048) == "2MB" and res.page_size_name(1048576) == "1GB" and res.page_size_name(16384) == "16MB"


def test_hugetlb_v1_v2_and_hybrid(v1, tmp_path, monkeypatch):
    assert v1.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}, {"pageSize": "1GB", "limit": 1073741824}]}) == [
        (v1.rel("hugetlb", "hugetlb.2MB.limit_in_bytes"), "4194304"), (v1.rel("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes"), "4194304"),
        (v1.rel("hugetlb", "hugetlb.1GB.limit_in_bytes"), "1073741824")]
    for mode in ("v2", "hybrid"):
        host = Host(tmp_path, monkeypatch, mode)
        assert host.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}) == [
            (host.rel("hugetlb", "hugetlb.2MB.max"), "4194304"), (host.rel("hugetlb", "hugetlb.2MB.rsvd.max"), "4194304")]
    assert host.rel("hugetlb", "x").startswith("unified/")


def test_hugetlb_page_size_not_on_this_host(v1, hugepages):
    with pytest.raises(errors.HostError) as e:
        v1.apply({"hugepageLimits": [{"pageSize": "4MB", "limit": 4194304}]})
    assert str(e.value) == (f"linux.resources.hugepageLimits[0].pageSize: 4MB is not a huge page size of this host "
                            f"(it has: 2MB, 1GB; see {hugepages})")


# --- network, rdma --------------------------------------------------------------------------------------------


def test_network_v1(v1):
    assert v1.apply({"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}, {"name": "lo", "priority": 2}]}}) == [
        (v1.rel("net_cls", "net_cls.classid"), "1048577"), (v1.rel("net_prio", "net_prio.ifpriomap"), "eth0 5"),
        (v1.rel("net_prio", "net_prio.ifpriomap"), "lo 2")]


@pytest.mark.parametrize(("mode", "extra"), [("hybrid", " (cgroup v2 has no equivalent)"), ("v2", " (cgroup v2 has no equivalent)")])
def test_network_without_net_cls_is_a_clear_error(tmp_path, monkeypatch, hugepages, mode, extra):
    host = Host(tmp_path, monkeypatch, mode)
    with pytest.raises(errors.HostError) as e:
        host.apply({"network": {"classID": 1}})
    assert str(e.value) == f"linux.resources.network.classID: the net_cls cgroup controller is not mounted on this host (a cgroup v1 controller){extra}"
    with pytest.raises(errors.HostError) as e:
        host.apply({"network": {"priorities": [{"name": "eth0", "priority": 1}]}})
    assert str(e.value) == f"linux.resources.network.priorities: the net_prio cgroup controller is not mounted on this host (a cgroup v1 controller){extra}"


def test_rdma(v1, v2):
    doc = {"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx5_1": {"hcaObjects": 5}}}
    for host in (v1, v2):
        assert host.apply(doc) == [(host.rel("rdma", "rdma.max"), "mlx5_0 hca_handle=3 hca_object=10000"),
                                   (host.rel("rdma", "rdma.max"), "mlx5_1 hca_object=5")]


def test_rdma_not_available(hybrid):
    with pytest.raises(errors.HostError) as e:
        hybrid.apply({"rdma": {"mlx5_0": {"hcaHandles": 3}}})
    assert str(e.value) == 'linux.resources.rdma["mlx5_0"]: the rdma cgroup controller is not available on this host'


# --- unified --------------------------------------------------------------------------------------------------


def test_unified_v2_written_as_given(v2):
    assert v2.apply({"unified": {"memory.max": "1G", "cgroup.max.descendants": "5"}}) == [
        (v2.rel("memory", "memory.max"), "1G"), (v2.rel("memory", "cgroup.max.descendants"), "5")]


def test_unified_on_v1_only_host(v1):
    with pytest.raises(errors.HostError) as e:
        v1.apply({"unified": {"memory.high": "1G"}})
    assert str(e.value) == "linux.resources.unified: needs cgroup v2, which this host has not mounted (its cgroups are v1 only)"


def test_unified_on_hybrid_refuses_v1_controllers(hybrid):
    d = hybrid.mgr.paths[""]
    with pytest.raises(errors.HostError) as e:
        hybrid.apply({"unified": {"memory.high": "1G"}})
    assert str(e.value) == (f'linux.resources.unified["memory.high"]: cannot set 1G in {d}/memory.high: the memory controller is '
                            "bound to cgroup v1 on this host (hybrid layout; cgroup v2 here has: hugetlb)")
    with pytest.raises(errors.HostError) as e:
        hybrid.apply({"unified": {"io.max": "8:0 rbps=1"}})
    assert str(e.value) == (f'linux.resources.unified["io.max"]: cannot set 8:0 rbps=1 in {d}/io.max: the io controller is '
                            "bound to cgroup v1 (as blkio) on this host (hybrid layout; cgroup v2 here has: hugetlb)")
    assert hybrid.apply({"unified": {"cgroup.max.descendants": "5"}}) == [("unified/nano-sandbox/web/cgroup.max.descendants", "5")]


def test_unified_missing_file(v2):
    with pytest.raises(errors.HostError) as e:
        v2.apply({"unified": {"memory.nope": "1"}})
    assert str(e.value) == (f'linux.resources.unified["memory.nope"]: cannot set 1 in {v2.mgr.paths[""]}/memory.nope: '
                            "No such file or directory (the kernel has no such cgroup file)")


# --- devices ----------------------------------------------------------------------------------------------------


def test_devices_v1_runc_order(v1):
    writes = v1.apply({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"},
                                   {"allow": False, "type": "c", "major": 1, "minor": -1}]})
    d = lambda n: v1.rel("devices", n)  # noqa: E731
    assert writes == [
        (d("devices.deny"), "a *:* rwm"), (d("devices.deny"), "a *:* rwm"), (d("devices.allow"), "b 7:0 r"),
        (d("devices.deny"), "c 1:* rwm"),
    ] + [(d("devices.allow"), r) for r in res.DEFAULT_ALLOWED]


def test_devices_not_changed_by_update(v1):
    assert v1.apply({"devices": [{"allow": True, "access": "rwm"}]}, update=True) == []
    assert v1.warnings == ["linux.resources.devices: not changed by update (device rules are set at create, as runc does)"]


def test_devices_v2_through_bpf(v2):
    v2.apply({"devices": [{"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}]})
    assert v2.bpf_calls == [(v2.mgr.paths[""], [(False, "a *:* rwm"), (True, "c 10:200 rw")] + [(True, r) for r in res.DEFAULT_ALLOWED])]


def test_devices_v2_without_bpf_warns_never_silently(v2, monkeypatch):
    monkeypatch.setattr(bpf, "v2_devices_supported", lambda: False)
    v2.apply({"devices": []})
    assert v2.warnings == ["linux.resources.devices: not enforced: cgroup v2 needs a BPF device program, which this host does not let "
                           "nano-sandbox load"]


def test_devices_v2_attach_failure_is_an_error(v2, monkeypatch):
    def fail(d, rules):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(bpf, "v2_devices_supported", lambda: True)
    monkeypatch.setattr(bpf, "apply", fail)
    with pytest.raises(errors.HostError) as e:
        v2.apply({})
    assert str(e.value) == f"linux.resources.devices: cannot attach the BPF device program to {v2.mgr.paths['']}: Operation not permitted"


# --- the BPF device program -----------------------------------------------------------------------------------


def rules_of(pairs):
    return [bpf.Rule.parse(a, t) for a, t in pairs]


DEFAULT_RULES = rules_of(res.device_rules([]))


@pytest.mark.parametrize(("dev", "access", "want"), [
    (("c", 1, 3), "rw", True),  # /dev/null
    (("c", 1, 3), "m", True),
    (("c", 136, 4), "rw", True),  # a pts
    (("b", 7, 0), "r", False),  # loop0: not in the defaults
    (("b", 7, 0), "m", True),  # mknod of any block device
    (("c", 10, 200), "rw", False),  # /dev/net/tun
])
def test_default_rules_decide(dev, access, want):
    assert bpf.decide(DEFAULT_RULES, *dev, access) is want


def test_last_matching_rule_wins_per_access_bit():
    rules = rules_of([(False, "a *:* rwm"), (True, "c 1:3 rwm"), (False, "c 1:3 w"), (True, "b 7:* r"), (False, "b 7:1 r")])
    assert bpf.decide(rules, "c", 1, 3, "r")
    assert not bpf.decide(rules, "c", 1, 3, "rw")
    assert bpf.decide(rules, "b", 7, 0, "r")
    assert not bpf.decide(rules, "b", 7, 1, "r")
    assert not bpf.decide(rules, "b", 7, 0, "w")


def test_allow_all_reset_and_denies_after_it():
    rules = rules_of([(False, "a *:* rwm"), (True, "c 1:3 rwm"), (True, "a"), (False, "c 1:5 w")])
    default, rest = bpf.effective(rules)
    assert default is True and [(r.type, r.major, r.minor) for r in rest] == [("c", 1, 5)]
    assert bpf.decide(rules, "b", 8, 0, "rwm")
    assert not bpf.decide(rules, "c", 1, 5, "w")


def test_rule_parse_errors():
    with pytest.raises(ValueError):
        bpf.Rule.parse(True, "x 1:2 r")
    with pytest.raises(ValueError):
        bpf.Rule.parse(True, "c 1:2 q")


def test_compiled_program_shape():
    prog = bpf.compile_rules(DEFAULT_RULES)
    assert len(prog) % 8 == 0
    insns = [prog[i : i + 8] for i in range(0, len(prog), 8)]
    assert insns[-1][0] == 0x95  # exit
    assert insns[-2][0] == 0xB7 and int.from_bytes(insns[-2][4:], "little", signed=True) == 1  # r0 = 1
    # every jump lands inside the program
    for i, ins in enumerate(insns):
        if ins[0] in (0x05, 0x55, 0x45):
            off = int.from_bytes(ins[2:4], "little", signed=True)
            assert 0 <= i + 1 + off < len(insns)


# --- update: merge --------------------------------------------------------------------------------------------


def test_merge_keeps_unchanged_and_overrides_given():
    cur = R({"devices": [{"allow": False, "access": "rwm"}], "memory": {"limit": 100, "swap": 200, "checkBeforeUpdate": True},
             "cpu": {"shares": 512, "cpus": "0"}, "pids": {"limit": 5},
             "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}, {"major": 8, "minor": 16, "rate": 2}]},
             "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}], "unified": {"a.b": "1"}})
    new = R({"memory": {"limit": 150}, "cpu": {"quota": 5000, "cpus": ""}, "pids": {"limit": -1},
             "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 16, "rate": 9}]},
             "hugepageLimits": [{"pageSize": "1GB", "limit": 0}], "unified": {"c.d": "2"}, "devices": [{"allow": True}]})
    out = json.loads(msgspec.json.encode(res.merge(cur, new)))
    assert out == {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 150, "swap": 200, "checkBeforeUpdate": True},
        "cpu": {"shares": 512, "quota": 5000, "cpus": "0"},
        "pids": {"limit": -1},
        "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}, {"major": 8, "minor": 16, "rate": 9}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}, {"pageSize": "1GB", "limit": 0}],
        "unified": {"a.b": "1", "c.d": "2"},
    }


def test_merge_unlimited_memory_makes_swap_unlimited():
    out = res.merge(R({"memory": {"limit": 100, "swap": 200}}), R({"memory": {"limit": -1}}))
    assert (out.memory.limit, out.memory.swap) == (-1, -1)
    assert res.merge(None, R({"cpu": {"shares": 2}})).cpu.shares == 2


# --- statistics -------------------------------------------------------------------------------------------------


def test_stats_v1(v1, monkeypatch):
    d = v1.dir
    Path(d("memory"), "memory.usage_in_bytes").write_text("4096\n")
    Path(d("memory"), "memory.max_usage_in_bytes").write_text("8192\n")
    Path(d("memory"), "memory.failcnt").write_text("3\n")
    Path(d("memory"), "memory.limit_in_bytes").write_text("33554432\n")
    Path(d("memory"), "memory.stat").write_text("cache 12288\nrss 4096\n")
    Path(d("memory"), "memory.memsw.usage_in_bytes").write_text("8192\n")
    Path(d("cpuacct"), "cpuacct.usage").write_text("3000\n")
    Path(d("cpuacct"), "cpuacct.usage_percpu").write_text("1000 2000 \n")
    Path(d("cpuacct"), "cpuacct.usage_all").write_text("cpu user system\n0 600 400\n1 1500 500\n")
    Path(d("cpuacct"), "cpuacct.stat").write_text("user 2\nsystem 1\n")
    Path(d("cpu"), "cpu.stat").write_text("nr_periods 10\nnr_throttled 2\nthrottled_time 5000\n")
    Path(d("pids"), "pids.current").write_text("4\n")
    Path(d("pids"), "pids.max").write_text("20\n")
    Path(d("blkio"), "blkio.bfq.io_service_bytes_recursive").write_text("Total 0\n")
    Path(d("blkio"), "blkio.throttle.io_service_bytes_recursive").write_text("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n")
    Path(d("blkio"), "blkio.throttle.io_serviced_recursive").write_text("8:0 Read 1\n8:0 Write 0\nTotal 1\n")
    Path(d("cpuset"), "cpuset.cpus").write_text("0-1,3\n")
    Path(d("cpuset"), "cpuset.mems").write_text("0\n")
    Path(d("hugetlb"), "hugetlb.2MB.usage_in_bytes").write_text("0\n")
    Path(d("hugetlb"), "hugetlb.2MB.failcnt").write_text("1\n")
    monkeypatch.setattr(os, "sysconf", lambda name: 100)
    s = st.collect(v1.mgr)
    assert s["cpu"] == {"usage": {"total": 3000, "percpu": [1000, 2000], "percpu_kernel": [400, 500], "percpu_user": [600, 1500],
                                  "kernel": 10_000_000, "user": 20_000_000},
                        "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 5000}}
    assert s["memory"]["usage"] == {"limit": 33554432, "usage": 4096, "max": 8192, "failcnt": 3}
    assert s["memory"]["cache"] == 12288 and s["memory"]["raw"] == {"cache": 12288, "rss": 4096}
    assert s["memory"]["swap"] == {"limit": int(UNLIMITED_V1), "usage": 8192, "failcnt": 0}
    assert s["memory"]["kernel"] == {"limit": 0, "failcnt": 0}  # no memory.kmem.usage_in_bytes in this fake
    assert s["pids"] == {"current": 4, "limit": 20}
    assert s["blkio"] == {"ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096}, {"major": 8, "op": "Write"}],
                          "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1}, {"major": 8, "op": "Write"}]}
    assert s["cpuset"]["cpus"] == [0, 1, 3] and s["cpuset"]["mems"] == [0]
    assert s["hugetlb"] == {"2MB": {"failcnt": 1}, "1GB": {"failcnt": 0}}
    assert s["intel_rdt"] == {} and s["network_interfaces"] is None


def test_stats_v2(v2):
    d = Path(v2.mgr.paths[""])
    (d / "cpu.stat").write_text("usage_usec 30\nuser_usec 20\nsystem_usec 10\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n")
    (d / "memory.current").write_text("4096\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.peak").write_text("8192\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n")
    (d / "memory.swap.current").write_text("100\n")
    (d / "memory.stat").write_text("anon 4096\nfile 512\n")
    (d / "pids.current").write_text("2\n")
    (d / "io.stat").write_text("8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")
    (d / "hugetlb.2MB.current").write_text("2097152\n")
    (d / "hugetlb.2MB.events").write_text("max 3\n")
    s = st.collect(v2.mgr)
    assert s["cpu"] == {"usage": {"total": 30000, "kernel": 10000, "user": 20000},
                        "throttling": {"periods": 4, "throttledPeriods": 1, "throttledTime": 7000}}
    assert s["memory"]["usage"] == {"limit": st.MAX_UINT64, "usage": 4096, "max": 8192, "failcnt": 2}
    assert s["memory"]["swap"] == {"limit": st.MAX_UINT64, "usage": 4196, "failcnt": 0}
    assert s["memory"]["cache"] == 512
    assert s["pids"] == {"current": 2}  # pids.max "max": limit omitted, as runc
    assert s["blkio"] == {"ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096}, {"major": 8, "op": "Write"}],
                          "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1}, {"major": 8, "op": "Write"}]}
    assert s["hugetlb"]["2MB"] == {"usage": 2097152, "failcnt": 3}


def test_parse_cpuset_list():
    assert st.parse_list("0-2,5,7-8\n") == [0, 1, 2, 5, 7, 8]
    assert st.parse_list("") == []


def test_oom_watcher_v2_counts_oom_kills(v2):
    d = Path(v2.mgr.paths[""])
    (d / "memory.events").write_text("oom 0\noom_kill 1\n")
    w = st.OomWatcher(v2.mgr)
    try:
        assert w.wait(0) == (0, False)
        (d / "memory.events").write_text("oom 2\noom_kill 3\n")
        assert w.wait(0) == (2, False)
        assert w.wait(0) == (0, False)
    finally:
        w.close()


# --- CLI helpers: update flags, durations, ps -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "want"), [
    ("64m", 64 << 20), ("64M", 64 << 20), ("1g", 1 << 30), ("1GiB", 1 << 30), ("512k", 512 << 10), ("512KB", 512 << 10),
    ("100", 100), ("1.5g", 3 << 29), ("2 MB", 2 << 20), ("1t", 1 << 40),
])
def test_ram_in_bytes(text, want):
    from nano_sandbox.cli.update import ram_in_bytes

    assert ram_in_bytes(text) == want


@pytest.mark.parametrize("text", ["", "m", "-1m", "1x", "1.2.3m", "1 m b"])
def test_ram_in_bytes_errors(text):
    from nano_sandbox.cli.update import ram_in_bytes

    with pytest.raises(ValueError, match="invalid size"):
        ram_in_bytes(text)


def test_resources_from_flags():
    from nano_sandbox.cli.update import resources_from_flags

    r = resources_from_flags({"--memory": "64m", "--memory-swap": "-1", "--cpu-quota": "-1", "--cpu-share": "512",
                              "--cpuset-cpus": "0", "--pids-limit": "0", "--blkio-weight": "300", "--kernel-memory-tcp": "1m"})
    assert json.loads(msgspec.json.encode(r)) == {
        "memory": {"limit": 67108864, "swap": -1, "kernelTCP": 1048576},
        "cpu": {"shares": 512, "quota": -1, "cpus": "0"},
        "pids": {"limit": 0},
        "blockIO": {"weight": 300},
    }


@pytest.mark.parametrize(("flags", "msg"), [
    ({"--memory": "lots"}, "invalid value for --memory: invalid size: 'lots'"),
    ({"--cpu-share": "-5"}, "invalid value for --cpu-share: '-5' is not an unsigned integer"),
    ({"--pids-limit": "x"}, "invalid value for --pids-limit: 'x' is not an integer"),
    ({"--memory": "64m", "--memory-swap": "32m"}, "--memory-swap: must be >= memory.limit (swap counts memory + swap), got 33554432 < 67108864"),
    ({"--cpu-quota": "-2"}, "--cpu-quota: must be -1 (unlimited) or >= 0, got -2"),
])
def test_resources_from_flags_errors(flags, msg):
    from nano_sandbox.cli.update import resources_from_flags

    with pytest.raises(errors.InvalidArgument) as e:
        resources_from_flags(flags)
    assert str(e.value) == msg


@pytest.mark.parametrize(("text", "want"), [("5s", 5.0), ("100ms", 0.1), ("1m30s", 90.0), ("1.5h", 5400.0), ("250us", 0.00025),
                                            ("0", 0.0), ("2µs", 0.000002)])
def test_parse_duration(text, want):
    from nano_sandbox.cli.events import parse_duration

    assert parse_duration(text) == pytest.approx(want)


@pytest.mark.parametrize("text", ["5", "s", "5x", "", "1s2"])
def test_parse_duration_errors(text):
    from nano_sandbox.cli.events import parse_duration

    with pytest.raises(errors.InvalidArgument) as e:
        parse_duration(text)
    assert str(e.value) == f'time: invalid duration "{text}"'


def test_ps_filter_table():
    from nano_sandbox.cli.ps import filter_table, pid_column

    out = "UID   PID  PPID CMD\nroot    1     0 init\nroot   42     1 sleep 1000\nroot   43    42 sh -c x\n"
    assert filter_table(out, [42, 43]) == "UID   PID  PPID CMD\nroot   42     1 sleep 1000\nroot   43    42 sh -c x\n"
    assert pid_column("  PID TTY          TIME CMD") == 0
    with pytest.raises(errors.NkError, match="couldn't find PID field in ps output"):
        pid_column("USER COMMAND")
