"""``linux.resources`` on real containers: every knob is written at create (or by ``update``) and
read back from the container's cgroup file with its exact value; memory and pids limits are hit;
knobs the host lacks fail with the error naming the limit and the file.

The host's layout decides which tests run: v1 knobs need the controller on a v1 hierarchy, v2
knobs need it in cgroup v2; a test that cannot run here skips saying what it needs and what this
host has. (This project's CI host is hybrid: v1 controllers, a cgroup2 mount with hugetlb only.)
The same writers are unit-tested for all three layouts in tests/unit/test_cgroups_resources.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from conftest import cgroup_dirs_of, unique_id
from nano_sandbox.cgroups.layout import detect
from nano_sandbox.cgroups.manager import Manager

pytestmark = pytest.mark.root

LAYOUT = detect()
SLEEP = ["sleep", "1000"]
MiB = 1 << 20


def where(ctrl: str) -> str:
    if LAYOUT.v1_hierarchy(ctrl) is not None:
        return "on cgroup v1"
    if ctrl in LAYOUT.v2_controllers:
        return "on cgroup v2"
    return "nowhere"


def need_v1(*ctrls: str) -> None:
    for c in ctrls:
        if LAYOUT.v1_hierarchy(c) is None:
            pytest.skip(f"needs the {c} controller on cgroup v1; this host ({LAYOUT.mode}) has it {where(c)}")


def need_v2(*ctrls: str) -> None:
    if LAYOUT.v2 is None:
        pytest.skip(f"needs cgroup v2; this host ({LAYOUT.mode}) has no cgroup2 mount")
    for c in ctrls:
        if not LAYOUT.uses_v2_for(c):
            pytest.skip(f"needs the {c} controller on cgroup v2; this host ({LAYOUT.mode}) has it {where(c)}")


def need(ctrl: str) -> None:
    if ctrl not in LAYOUT.controllers():
        pytest.skip(f"needs the {ctrl} controller; this host ({LAYOUT.mode}) has none")


def manager(nk, cid: str) -> Manager:
    st = json.loads((nk.root / cid / "state.json").read_text())
    return Manager(st["cgroupPaths"], st.get("cgroupCreated", []), LAYOUT)


def cgdir(nk, cid: str, ctrl: str) -> str:
    d = manager(nk, cid).dir_for(ctrl)
    assert d is not None, f"no {ctrl} cgroup for {cid}"
    return d


def cgread(nk, cid: str, ctrl: str, name: str) -> str:
    with open(f"{cgdir(nk, cid, ctrl)}/{name}") as f:
        return f.read().strip()


def stored_resources(nk, cid: str) -> dict:
    return json.loads((nk.root / cid / "state.json").read_text())["config"]["linux"]["resources"]


def with_resources(res: dict, linux: dict | None = None):
    def mutate(c):
        c["linux"].setdefault("resources", {}).update(res)
        c["linux"].update(linux or {})

    return mutate


def v1_unlimited() -> str:
    """What an unlimited v1 memory file reads (PAGE_COUNTER_MAX pages): the root's limit."""
    with open(LAYOUT.v1_hierarchy("memory").mountpoint + "/memory.limit_in_bytes") as f:
        return f.read().strip()


def a_disk() -> str | None:
    """major:minor of a real whole disk (not loop/ram/zram), or None."""
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("loop", "ram", "zram", "nbd", "dm-")):
            continue
        try:
            with open(f"/sys/block/{name}/dev") as f:
                return f.read().strip()
        except OSError:
            continue
    return None


def create(nk, make_bundle, res: dict, args=SLEEP, linux=None, prefix="res") -> tuple[str, str]:
    cid = unique_id(prefix)
    r = nk("create", "-b", make_bundle(args, with_resources(res, linux)), cid)
    assert r.returncode == 0, r.stderr
    return cid, r.stderr


def create_fails(nk, make_bundle, res: dict, linux=None) -> str:
    cid = unique_id("bad")
    r = nk("create", "-b", make_bundle(SLEEP, with_resources(res, linux)), cid)
    assert r.returncode == 1, r.stdout
    assert not (nk.root / cid).exists()
    assert cgroup_dirs_of(cid) == []
    return r.stderr.strip()


# --- memory -----------------------------------------------------------------------------------------------


def test_memory_v1_knobs_read_back(nk, make_bundle):
    need_v1("memory")
    cid, err = create(nk, make_bundle, {"memory": {"limit": 32 * MiB, "reservation": 16 * MiB, "swap": 64 * MiB, "kernelTCP": 8 * MiB,
                                                   "kernel": 16 * MiB, "swappiness": 20, "useHierarchy": True}})
    rd = lambda n: cgread(nk, cid, "memory", n)  # noqa: E731
    assert rd("memory.limit_in_bytes") == str(32 * MiB)
    assert rd("memory.soft_limit_in_bytes") == str(16 * MiB)
    if os.path.exists(f"{cgdir(nk, cid, 'memory')}/memory.memsw.limit_in_bytes"):
        assert rd("memory.memsw.limit_in_bytes") == str(64 * MiB)
    assert rd("memory.swappiness") == "20"
    assert rd("memory.use_hierarchy") == "1"
    assert dict(line.split() for line in rd("memory.oom_control").splitlines())["oom_kill_disable"] == "0"
    kmem = f"{cgdir(nk, cid, 'memory')}/memory.kmem.limit_in_bytes"
    if os.path.exists(kmem) and rd("memory.kmem.limit_in_bytes") == str(16 * MiB):
        assert "memory.kernel" not in err
    else:  # Linux >= 5.16 accepts the write and ignores it, >= 6.1 may lack the file: a warning, not silence
        assert "linux.resources.memory.kernel: ignored: " in err
    if os.path.exists(f"{cgdir(nk, cid, 'memory')}/memory.kmem.tcp.limit_in_bytes"):
        assert rd("memory.kmem.tcp.limit_in_bytes") == str(8 * MiB)
    else:
        assert "linux.resources.memory.kernelTCP: ignored: " in err


def test_memory_v1_unlimited_and_oom_killer_disabled(nk, make_bundle):
    need_v1("memory")
    cid, _ = create(nk, make_bundle, {"memory": {"limit": -1, "swap": -1, "reservation": -1, "kernelTCP": -1, "disableOOMKiller": True}})
    assert cgread(nk, cid, "memory", "memory.limit_in_bytes") == v1_unlimited()
    assert cgread(nk, cid, "memory", "memory.soft_limit_in_bytes") == v1_unlimited()
    if os.path.exists(f"{cgdir(nk, cid, 'memory')}/memory.kmem.tcp.limit_in_bytes"):
        assert cgread(nk, cid, "memory", "memory.kmem.tcp.limit_in_bytes") == v1_unlimited()
    if os.path.exists(f"{cgdir(nk, cid, 'memory')}/memory.memsw.limit_in_bytes"):
        assert cgread(nk, cid, "memory", "memory.memsw.limit_in_bytes") == v1_unlimited()
    fields = dict(line.split() for line in cgread(nk, cid, "memory", "memory.oom_control").splitlines())
    assert fields["oom_kill_disable"] == "1"


def test_memory_v2_knobs_read_back(nk, make_bundle):
    need_v2("memory")
    cid, err = create(nk, make_bundle, {"memory": {"limit": 32 * MiB, "reservation": 16 * MiB, "swap": 48 * MiB, "swappiness": 10}})
    assert cgread(nk, cid, "memory", "memory.max") == str(32 * MiB)
    assert cgread(nk, cid, "memory", "memory.low") == str(16 * MiB)
    if os.path.exists(f"{cgdir(nk, cid, 'memory')}/memory.swap.max"):
        assert cgread(nk, cid, "memory", "memory.swap.max") == str(16 * MiB)
    assert "linux.resources.memory.swappiness: ignored: cgroup v2 has no per-cgroup swappiness" in err


def test_memory_limit_is_hit(nk, make_bundle):
    need("memory")
    cid, _ = create(nk, make_bundle, {"memory": {"limit": 24 * MiB}}, args=["awk", 'BEGIN { s = "x"; while (1) s = s s }'])
    nk.ok("start", cid)
    nk.wait_status(cid, "stopped", timeout=30)
    if LAYOUT.v1_hierarchy("memory") is not None:
        assert int(cgread(nk, cid, "memory", "memory.failcnt")) > 0
        fields = dict(line.split() for line in cgread(nk, cid, "memory", "memory.oom_control").splitlines())
        assert fields["oom_kill"] == "1"
    else:
        fields = dict(line.split() for line in cgread(nk, cid, "memory", "memory.events").splitlines())
        assert fields["oom_kill"] == "1"
    nk.ok("delete", cid)


HOLD_16M = ["awk", 'BEGIN { s = "x"; for (i = 0; i < 24; i++) s = s s; system("sleep 1000") }']


def test_update_memory_below_usage_is_refused_with_the_file_named(nk, make_bundle):
    need_v1("memory")
    cid, _ = create(nk, make_bundle, {"memory": {"limit": 96 * MiB}}, args=HOLD_16M)
    nk.ok("start", cid)
    d = cgdir(nk, cid, "memory")
    deadline = time.monotonic() + 20
    while int(cgread(nk, cid, "memory", "memory.usage_in_bytes")) < 16 * MiB and time.monotonic() < deadline:
        time.sleep(0.05)
    r = nk("update", "--memory", "4m", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f"nk-runtime: linux.resources.memory.limit: cannot set 4194304 in {d}/"
                                                   "memory.limit_in_bytes: Device or resource busy (the container already uses more)")
    assert cgread(nk, cid, "memory", "memory.limit_in_bytes") == str(96 * MiB)
    assert stored_resources(nk, cid)["memory"] == {"limit": 96 * MiB}
    # checkBeforeUpdate refuses before writing (runc semantics)
    r = nk("update", "--resources", "-", cid, input=json.dumps({"memory": {"limit": 8 * MiB, "checkBeforeUpdate": True}}))
    assert r.returncode == 1
    msg = r.stderr.strip()
    prefix = f"nk-runtime: linux.resources.memory.limit: cannot set {8 * MiB} in {d}/memory.limit_in_bytes: the container already uses "
    assert msg.startswith(prefix), msg
    used = int(msg[len(prefix):].split()[0])
    assert used >= 16 * MiB
    assert msg.endswith(f"bytes ({d}/memory.usage_in_bytes; memory.checkBeforeUpdate refuses a limit at or below the current usage)")
    assert cgread(nk, cid, "memory", "memory.limit_in_bytes") == str(96 * MiB)


def test_update_memory_and_swap_ordering(nk, make_bundle):
    need_v1("memory")
    cid, _ = create(nk, make_bundle, {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    d = cgdir(nk, cid, "memory")
    if not os.path.exists(f"{d}/memory.memsw.limit_in_bytes"):
        pytest.skip("needs swap accounting (memory.memsw.* files); this kernel has none")
    rd = lambda: (cgread(nk, cid, "memory", "memory.limit_in_bytes"), cgread(nk, cid, "memory", "memory.memsw.limit_in_bytes"))  # noqa: E731
    nk.ok("update", "--memory", "64m", "--memory-swap", "128m", cid)  # raising: memsw first
    assert rd() == (str(64 * MiB), str(128 * MiB))
    nk.ok("update", "--memory", "16m", "--memory-swap", "16m", cid)  # lowering: the limit first
    assert rd() == (str(16 * MiB), str(16 * MiB))
    assert stored_resources(nk, cid)["memory"] == {"limit": 16 * MiB, "swap": 16 * MiB}
    r = nk("update", "--memory-swap", "8m", cid)  # memory+swap below the memory limit
    assert (r.returncode, r.stderr.strip()) == (1, f"nk-runtime: linux.resources.memory.swap: cannot set {8 * MiB} in {d}/"
                                                   f"memory.memsw.limit_in_bytes: Invalid argument (memory + swap must be at least "
                                                   f"{d}/memory.limit_in_bytes)")
    r = nk("update", "--memory", "64m", cid)  # above memsw without raising swap
    assert (r.returncode, r.stderr.strip()) == (1, f"nk-runtime: linux.resources.memory.limit: cannot set {64 * MiB} in {d}/"
                                                   f"memory.limit_in_bytes: Invalid argument ({d}/memory.memsw.limit_in_bytes is lower: "
                                                   "raise linux.resources.memory.swap too)")
    r = nk("update", "--memory", "64m", "--memory-swap", "32m", cid)
    assert (r.returncode, r.stderr.strip()) == (1, "nk-runtime: --memory-swap: must be >= memory.limit (swap counts memory + swap), "
                                                   f"got {32 * MiB} < {64 * MiB}")
    nk.ok("update", "--memory", "-1", cid)  # unlimited memory: unlimited memory+swap too (runc)
    assert rd() == (v1_unlimited(), v1_unlimited())
    assert stored_resources(nk, cid)["memory"] == {"limit": -1, "swap": -1}


# --- cpu --------------------------------------------------------------------------------------------------


def test_cpu_v1_knobs_read_back(nk, make_bundle):
    need_v1("cpu", "cpuset")
    cid, _ = create(nk, make_bundle, {"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000, "cpus": "0", "mems": "0"}})
    rd = lambda c, n: cgread(nk, cid, c, n)  # noqa: E731
    assert rd("cpu", "cpu.shares") == "512"
    assert rd("cpu", "cpu.cfs_quota_us") == "50000"
    assert rd("cpu", "cpu.cfs_period_us") == "100000"
    if os.path.exists(f"{cgdir(nk, cid, 'cpu')}/cpu.cfs_burst_us"):
        assert rd("cpu", "cpu.cfs_burst_us") == "10000"
    assert rd("cpuset", "cpuset.cpus") == "0"
    assert rd("cpuset", "cpuset.mems") == "0"
    # the container's processes really are bound to CPU 0
    pid = nk.state(cid)["pid"]
    with open(f"/proc/{pid}/status") as f:
        assert dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)["Cpus_allowed_list"].strip() == "0"
    nk.ok("update", "--cpu-share", "256", "--cpu-quota", "-1", "--cpu-period", "200000", cid)
    assert (rd("cpu", "cpu.shares"), rd("cpu", "cpu.cfs_quota_us"), rd("cpu", "cpu.cfs_period_us")) == ("256", "-1", "200000")
    assert stored_resources(nk, cid)["cpu"] == {"shares": 256, "quota": -1, "burst": 10000, "period": 200000, "cpus": "0", "mems": "0"}


def test_cpu_v1_idle(nk, make_bundle):
    need_v1("cpu")
    cid, _ = create(nk, make_bundle, {"cpu": {"idle": 1}})
    if not os.path.exists(f"{cgdir(nk, cid, 'cpu')}/cpu.idle"):
        pytest.skip("needs cpu.idle (Linux >= 5.15)")
    assert cgread(nk, cid, "cpu", "cpu.idle") == "1"
    nk.ok("update", "--cpu-idle", "0", cid)
    assert cgread(nk, cid, "cpu", "cpu.idle") == "0"


def test_cpu_shares_out_of_range_names_the_kernels_bound(nk, make_bundle):
    need_v1("cpu")
    cid = unique_id("shares")
    r = nk("create", "-b", make_bundle(SLEEP, with_resources({"cpu": {"shares": 300000}})), cid)
    d = LAYOUT.v1_hierarchy("cpu").path_of(f"/nano-sandbox/{cid}")
    assert (r.returncode, r.stderr.strip()) == (1, f"nk-runtime: linux.resources.cpu.shares: cannot set 300000 in {d}/cpu.shares: "
                                                   "the maximum allowed cpu shares is 262144")


def test_cpu_v1_realtime(nk, make_bundle):
    need_v1("cpu")
    root = LAYOUT.v1_hierarchy("cpu").mountpoint
    if not os.path.exists(f"{root}/cpu.rt_runtime_us"):
        pytest.skip("needs RT group scheduling (CONFIG_RT_GROUP_SCHED): no cpu.rt_runtime_us")
    rt = {"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}}
    # Directly under the root (which grants 950000us/s by default): an absolute cgroupsPath.
    path = f"/nk-rt-{uuid.uuid4().hex[:8]}"
    cid, _ = create(nk, make_bundle, rt, linux={"cgroupsPath": path})
    d = cgdir(nk, cid, "cpu")
    assert d == f"{root}{path}"
    assert cgread(nk, cid, "cpu", "cpu.rt_runtime_us") == "10000"
    assert cgread(nk, cid, "cpu", "cpu.rt_period_us") == "1000000"
    nk.ok("delete", "--force", cid)
    assert not os.path.exists(d)  # created by nk-runtime: removed
    # Under /nano-sandbox, whose parent grants none unless an admin set it: the error says where.
    parent = f"{root}/nano-sandbox"
    if os.path.exists(parent) and int(open(f"{parent}/cpu.rt_runtime_us").read()) > 0:
        return
    cid = unique_id("rt")
    r = nk("create", "-b", make_bundle(SLEEP, with_resources(rt)), cid)
    assert (r.returncode, r.stderr.strip()) == (1, f"nk-runtime: linux.resources.cpu.realtimeRuntime: cannot set 10000 in {parent}/{cid}/"
                                                   f"cpu.rt_runtime_us: Invalid argument (more than the parent cgroup grants: see "
                                                   f"{parent}/cpu.rt_runtime_us and its other children)")


def test_cpu_v2_knobs_read_back(nk, make_bundle):
    need_v2("cpu")
    cid, _ = create(nk, make_bundle, {"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "idle": 0}})
    assert cgread(nk, cid, "cpu", "cpu.weight") == "100"
    assert cgread(nk, cid, "cpu", "cpu.max") == "50000 100000"
    assert cgread(nk, cid, "cpu", "cpu.max.burst") == "1000"
    nk.ok("update", "--cpu-period", "200000", cid)
    assert cgread(nk, cid, "cpu", "cpu.max") == "50000 200000"


# --- pids -------------------------------------------------------------------------------------------------


def test_pids_limit_read_back_and_unlimited(nk, make_bundle):
    need("pids")
    cid, _ = create(nk, make_bundle, {"pids": {"limit": 20}})
    assert cgread(nk, cid, "pids", "pids.max") == "20"
    nk.ok("update", "--pids-limit", "-1", cid)
    assert cgread(nk, cid, "pids", "pids.max") == "max"
    assert stored_resources(nk, cid)["pids"] == {"limit": -1}


def test_pids_limit_is_hit(nk, make_bundle):
    need("pids")
    # sh + a subshell + 3 sleeps fill 5 tasks; the 4th sleep cannot be forked and the subshell gives up.
    script = "(for i in 1 2 3 4 5 6; do sleep 1000 & done) 2>/dev/null; exec sleep 1000"
    cid, _ = create(nk, make_bundle, {"pids": {"limit": 5}}, args=["sh", "-c", script])
    nk.ok("start", cid)
    deadline = time.monotonic() + 10
    while cgread(nk, cid, "pids", "pids.current") != "4" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cgread(nk, cid, "pids", "pids.current") == "4"  # the init and 3 sleeps
    assert int(dict([cgread(nk, cid, "pids", "pids.events").split()])["max"]) >= 1
    assert len(json.loads(nk.ok("ps", "--format", "json", cid))) == 4


def test_pids_limit_zero_is_a_real_limit(nk, make_bundle):
    need("pids")
    # runtime-spec 1.3: 0 means zero new tasks. A shell that forks a subshell every 50ms dies on it.
    cid, _ = create(nk, make_bundle, {"pids": {"limit": 10}}, args=["sh", "-c", "while true; do (true); sleep 0.05; done"])
    nk.ok("start", cid)
    time.sleep(0.3)
    assert nk.status(cid) == "running"
    nk.ok("update", "--pids-limit", "0", cid)
    assert cgread(nk, cid, "pids", "pids.max") == "0"
    nk.wait_status(cid, "stopped", timeout=10)
    assert int(dict([cgread(nk, cid, "pids", "pids.events").split()])["max"]) >= 1
    nk.ok("delete", cid)


# --- block I/O --------------------------------------------------------------------------------------------


def test_blkio_v1_knobs_read_back(nk, make_bundle):
    need_v1("blkio")
    disk = a_disk()
    if disk is None:
        pytest.skip("needs a block device (none in /sys/block besides loop/ram)")
    major, minor = map(int, disk.split(":"))
    dev = {"major": major, "minor": minor}
    cid, _ = create(nk, make_bundle, {"blockIO": {
        "weight": 300,
        "throttleReadBpsDevice": [{**dev, "rate": 1048576}], "throttleWriteBpsDevice": [{**dev, "rate": 2097152}],
        "throttleReadIOPSDevice": [{**dev, "rate": 100}], "throttleWriteIOPSDevice": [{**dev, "rate": 200}]}})
    d = cgdir(nk, cid, "blkio")
    wfile = "blkio.weight" if os.path.exists(f"{d}/blkio.weight") else "blkio.bfq.weight"
    assert cgread(nk, cid, "blkio", wfile) in ("300", "default 300")
    assert cgread(nk, cid, "blkio", "blkio.throttle.read_bps_device") == f"{disk} 1048576"
    assert cgread(nk, cid, "blkio", "blkio.throttle.write_bps_device") == f"{disk} 2097152"
    assert cgread(nk, cid, "blkio", "blkio.throttle.read_iops_device") == f"{disk} 100"
    assert cgread(nk, cid, "blkio", "blkio.throttle.write_iops_device") == f"{disk} 200"
    nk.ok("update", "--blkio-weight", "500", cid)
    assert cgread(nk, cid, "blkio", wfile) in ("500", "default 500")
    # rate 0 removes a throttle rule
    nk.ok("update", "-r", "-", cid, input=json.dumps({"blockIO": {"throttleReadBpsDevice": [{**dev, "rate": 0}]}}))
    assert cgread(nk, cid, "blkio", "blkio.throttle.read_bps_device") == ""


def test_blkio_v1_knobs_the_kernel_lacks(nk, make_bundle):
    need_v1("blkio")
    blkio_root = LAYOUT.v1_hierarchy("blkio").mountpoint
    cid = unique_id("leaf")
    r = nk("create", "-b", make_bundle(SLEEP, with_resources({"blockIO": {"leafWeight": 300}})), cid)
    path = f"{blkio_root}/nano-sandbox/{cid}/blkio.leaf_weight"
    if r.returncode == 0:
        assert open(path).read().strip() == "300"  # a CFQ kernel (< 5.0)
        return
    assert r.stderr.strip() == (f"nk-runtime: linux.resources.blockIO.leafWeight: cannot set 300 in {path}: No such file or directory "
                                "(leaf weights existed only with the CFQ I/O scheduler, removed in Linux 5.0)")
    assert cgroup_dirs_of(cid) == []


def test_blkio_v1_weight_device_on_a_disk_without_bfq(nk, make_bundle):
    need_v1("blkio")
    disk = a_disk()
    if disk is None:
        pytest.skip("needs a block device")
    with open(f"/sys/dev/block/{disk}/queue/scheduler") as f:
        sched = f.read()
    if "[bfq]" in sched:
        pytest.skip(f"the disk {disk} uses BFQ: the weight would be accepted")
    major, minor = map(int, disk.split(":"))
    cid = unique_id("wdev")
    r = nk("create", "-b", make_bundle(SLEEP, with_resources({"blockIO": {"weightDevice": [{"major": major, "minor": minor, "weight": 300}]}})), cid)
    root = LAYOUT.v1_hierarchy("blkio").mountpoint
    if os.path.exists(f"{root}/blkio.weight_device"):
        pytest.skip("a CFQ kernel takes blkio.weight_device for any disk")
    assert (r.returncode, r.stderr.strip()) == (1, f"nk-runtime: linux.resources.blockIO.weightDevice[0].weight: cannot set {disk} 300 in "
                                                   f"{root}/nano-sandbox/{cid}/blkio.bfq.weight_device: Operation not supported (device {disk} "
                                                   f"does not use the BFQ I/O scheduler: see /sys/dev/block/{disk}/queue/scheduler)")


def test_io_v2_knobs_read_back(nk, make_bundle):
    need_v2("io")
    disk = a_disk()
    if disk is None:
        pytest.skip("needs a block device")
    major, minor = map(int, disk.split(":"))
    cid, _ = create(nk, make_bundle, {"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}]}})
    assert cgread(nk, cid, "io", "io.max") == f"{disk} rbps=1048576 wbps=max riops=max wiops=max"


# --- hugetlb, network, rdma, unified ------------------------------------------------------------------------


def test_hugetlb_limits_read_back(nk, make_bundle):
    need("hugetlb")
    from nano_sandbox.cgroups.resources import host_page_sizes

    sizes = host_page_sizes()
    if "2MB" not in sizes:
        pytest.skip(f"needs 2MB huge pages; this host has {sizes}")
    cid, _ = create(nk, make_bundle, {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
    v2 = manager(nk, cid).is_v2("hugetlb")
    name = "hugetlb.2MB.max" if v2 else "hugetlb.2MB.limit_in_bytes"
    assert cgread(nk, cid, "hugetlb", name) == str(4 * MiB)
    rsvd = "hugetlb.2MB.rsvd.max" if v2 else "hugetlb.2MB.rsvd.limit_in_bytes"
    if os.path.exists(f"{cgdir(nk, cid, 'hugetlb')}/{rsvd}"):
        assert cgread(nk, cid, "hugetlb", rsvd) == str(4 * MiB)
    nk.ok("update", "-r", "-", cid, input=json.dumps({"hugepageLimits": [{"pageSize": "2MB", "limit": 8 * MiB}]}))
    assert cgread(nk, cid, "hugetlb", name) == str(8 * MiB)


def test_hugetlb_page_size_the_host_lacks(nk, make_bundle):
    need("hugetlb")
    from nano_sandbox.cgroups.resources import host_page_sizes

    err = create_fails(nk, make_bundle, {"hugepageLimits": [{"pageSize": "4MB", "limit": 4 * MiB}]})
    assert err == (f"nk-runtime: linux.resources.hugepageLimits[0].pageSize: 4MB is not a huge page size of this host "
                   f"(it has: {', '.join(host_page_sizes())}; see /sys/kernel/mm/hugepages)")


def test_network_needs_net_cls(nk, make_bundle):
    if LAYOUT.v1_hierarchy("net_cls") is not None:
        cid, _ = create(nk, make_bundle, {"network": {"classID": 1048577}})
        assert cgread(nk, cid, "net_cls", "net_cls.classid") == "1048577"
        return
    # not mounted here: refused at create (the config check) and by update (the writer)
    err = create_fails(nk, make_bundle, {"network": {"classID": 1048577}})
    assert err == "nk-runtime: config.json: linux.resources.network.classID: the net_cls cgroup controller is not available"
    cid, _ = create(nk, make_bundle, {})
    r = nk("update", "-r", "-", cid, input=json.dumps({"network": {"classID": 1048577}}))
    extra = " (cgroup v2 has no equivalent)" if LAYOUT.v2 is not None else ""
    assert (r.returncode, r.stderr.strip()) == (1, "nk-runtime: linux.resources.network.classID: the net_cls cgroup controller is not mounted "
                                                   f"on this host (a cgroup v1 controller){extra}")


def test_rdma_needs_the_controller(nk, make_bundle):
    if "rdma" in LAYOUT.controllers():
        pytest.skip("this host has the rdma controller (no RDMA device to limit in a test)")
    err = create_fails(nk, make_bundle, {"rdma": {"mlx5_0": {"hcaHandles": 2}}})
    assert err == "nk-runtime: config.json: linux.resources.rdma: the rdma cgroup controller is not available"
    cid, _ = create(nk, make_bundle, {})
    r = nk("update", "-r", "-", cid, input=json.dumps({"rdma": {"mlx5_0": {"hcaHandles": 2}}}))
    assert (r.returncode, r.stderr.strip()) == (1, 'nk-runtime: linux.resources.rdma["mlx5_0"]: the rdma cgroup controller is not available on this host')


def test_unified_written_as_given(nk, make_bundle):
    if LAYOUT.v2 is None:
        pytest.skip(f"needs a cgroup2 hierarchy; this host is {LAYOUT.mode}")
    cid, _ = create(nk, make_bundle, {"unified": {"cgroup.max.descendants": "5"}})
    with open(manager(nk, cid).paths[""] + "/cgroup.max.descendants") as f:
        assert f.read().strip() == "5"


def test_unified_key_of_a_v1_controller_on_hybrid(nk, make_bundle):
    if LAYOUT.mode != "hybrid" or LAYOUT.v1_hierarchy("memory") is None:
        pytest.skip(f"needs a hybrid host with memory on v1; this host is {LAYOUT.mode}")
    cid = unique_id("uni")
    r = nk("create", "-b", make_bundle(SLEEP, with_resources({"unified": {"memory.high": "1000000"}})), cid)
    d = LAYOUT.v2.path_of(f"/nano-sandbox/{cid}")
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: linux.resources.unified["memory.high"]: cannot set 1000000 in {d}/memory.high: '
                                                   f"the memory controller is bound to cgroup v1 on this host (hybrid layout; cgroup v2 here "
                                                   f"has: {' '.join(LAYOUT.v2_controllers)})")


def test_unified_on_a_v1_only_host(nk, make_bundle):
    if LAYOUT.v2 is not None:
        pytest.skip(f"needs a v1-only host; this host is {LAYOUT.mode} (it has a cgroup2 mount)")
    err = create_fails(nk, make_bundle, {"unified": {"memory.high": "1000000"}})
    assert err == "nk-runtime: config.json: linux.resources.unified: requires a cgroup v2 hierarchy (this host's cgroups are v1)"


# --- devices ----------------------------------------------------------------------------------------------

LOOP0 = {"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0}
OPEN_LOOP0 = ["sh", "-c", "head -c1 /dev/loop0 >/dev/null 2>/tmp/err; echo rc=$?; cat /tmp/err; head -c1 /dev/zero | wc -c"]


def test_devices_v1_list_is_deny_all_plus_defaults(nk, make_bundle):
    need_v1("devices")
    from nano_sandbox.cgroups.resources import DEFAULT_ALLOWED

    cid, _ = create(nk, make_bundle, {})  # the example config: deny all
    assert cgread(nk, cid, "devices", "devices.list").splitlines() == DEFAULT_ALLOWED


def test_devices_are_enforced(nk, make_bundle):
    if LAYOUT.v1_hierarchy("devices") is None:
        from nano_sandbox.cgroups import devices_bpf

        if LAYOUT.v2 is None or not devices_bpf.v2_devices_supported():
            pytest.skip(f"needs the v1 devices controller or cgroup v2 BPF device programs; this host ({LAYOUT.mode}) has neither")
    r = nk("run", "-b", make_bundle(OPEN_LOOP0, with_resources({}, {"devices": [LOOP0]})), unique_id("dev"))
    assert r.stdout.splitlines() == ["rc=1", "head: /dev/loop0: Operation not permitted", "1"], r.stderr
    allow = {"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]}
    r = nk("run", "-b", make_bundle(OPEN_LOOP0, with_resources(allow, {"devices": [LOOP0]})), unique_id("dev"))
    assert r.stdout.splitlines() == ["rc=0", "1"], r.stderr


def test_v2_bpf_device_program_on_a_real_cgroup2_directory(tmp_path):
    """The BPF device program, loaded with bpf(2) and attached to a cgroup2 directory this test
    makes, decides for a real process moved into it (on a hybrid host the container path uses the
    v1 devices controller, so this is where the v2 program is exercised for real)."""
    if LAYOUT.v2 is None:
        pytest.skip(f"needs a cgroup2 hierarchy; this host is {LAYOUT.mode}")
    from nano_sandbox.cgroups import devices_bpf
    from nano_sandbox.cgroups.resources import device_rules

    if not devices_bpf.v2_devices_supported():
        pytest.skip("the kernel refuses BPF_PROG_TYPE_CGROUP_DEVICE programs here")
    if not os.path.exists("/dev/loop0"):
        pytest.skip("needs /dev/loop0 on the host")

    class Rule:
        def __init__(self, **kw):
            self.allow, self.type, self.major, self.minor, self.access = kw["allow"], kw.get("type"), kw.get("major"), kw.get("minor"), kw.get("access")

    d = f"{LAYOUT.v2.mountpoint}/nk-bpf-{uuid.uuid4().hex[:8]}"
    os.mkdir(d)
    try:
        devices_bpf.apply(d, device_rules([Rule(allow=False, access="rwm"), Rule(allow=True, type="c", major=1, minor=5, access="r")]))
        devices_bpf.apply(d, device_rules([Rule(allow=False, access="rwm")]))  # replaces, not stacks
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert len(devices_bpf.attached(fd)) == 1
        finally:
            os.close(fd)
        script = (f"echo $$ > {d}/cgroup.procs; head -c1 /dev/null; echo null=$?; head -c1 /dev/zero >/dev/null; echo zero=$?; "
                  "if (: > /dev/zero) 2>/dev/null; then echo zero-w=ok; else echo zero-w=denied; fi; head -c1 /dev/loop0 >/dev/null 2>&1; echo loop0=$?")
        r = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
        assert r.stdout.splitlines() == ["null=0", "zero=0", "zero-w=ok", "loop0=1"], r.stderr
        devices_bpf.apply(d, [(False, "a *:* rwm"), (True, "c 1:3 rw")])
        r = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
        assert r.stdout.splitlines() == ["null=0", "zero=1", "zero-w=denied", "loop0=1"], r.stderr
    finally:
        deadline = time.monotonic() + 5
        while True:
            try:
                os.rmdir(d)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)


# --- cgroupsPath ------------------------------------------------------------------------------------------


def test_absolute_cgroups_path_joined_pre_existing_is_kept(nk, make_bundle):
    path = f"/nk-pre-{uuid.uuid4().hex[:8]}"
    m = Manager.for_container("x", path, LAYOUT)
    made = []
    try:
        for d in m.paths.values():
            os.mkdir(d)
            made.append(d)
        cid, _ = create(nk, make_bundle, {"pids": {"limit": 7}}, linux={"cgroupsPath": path})
        pid = nk.state(cid)["pid"]
        with open(f"/proc/{pid}/cgroup") as f:
            dirs = LAYOUT.dirs_of(f.read())
        assert {k: dirs[k] for k in m.paths} == m.paths
        assert json.loads((nk.root / cid / "state.json").read_text()).get("cgroupCreated", []) == []
        assert open(m.dir_for("pids") + "/pids.max").read().strip() == "7"
        nk.ok("delete", "--force", cid)
        for d in m.paths.values():
            assert os.path.isdir(d), f"{d} was joined, not created: it must survive delete"
    finally:
        for d in made:
            os.rmdir(d)


def test_relative_cgroups_path_goes_under_nano_sandbox_and_is_removed(nk, make_bundle):
    sub = f"nk-rel-{uuid.uuid4().hex[:8]}"
    cid, _ = create(nk, make_bundle, {}, linux={"cgroupsPath": f"{sub}/inner"})
    m = manager(nk, cid)
    for key, d in m.paths.items():
        h = LAYOUT.v2 if key == "" else next(h for h in LAYOUT.v1 if h.key == key)
        assert d == f"{h.mountpoint}/nano-sandbox/{sub}/inner"
    nk.ok("delete", "--force", cid)
    for d in m.paths.values():
        assert not os.path.exists(d) and not os.path.exists(os.path.dirname(d))


# --- update: the operation ---------------------------------------------------------------------------------


def test_update_resources_file_like_podman(nk, make_bundle, tmp_path):
    need("pids")
    cid, _ = create(nk, make_bundle, {"pids": {"limit": 10}})
    nk.ok("start", cid)
    f = tmp_path / "res.json"
    f.write_text(json.dumps({"pids": {"limit": 33}}))
    nk.ok("update", f"--resources={f}", cid)
    assert cgread(nk, cid, "pids", "pids.max") == "33"
    assert stored_resources(nk, cid)["pids"] == {"limit": 33}
    nk.ok("pause", cid)
    nk.ok("update", "--pids-limit", "34", cid)  # a paused container may be updated
    assert cgread(nk, cid, "pids", "pids.max") == "34"
    assert nk.status(cid) == "paused"
    nk.ok("resume", cid)


def test_update_errors(nk, make_bundle, tmp_path):
    cid, _ = create(nk, make_bundle, {})
    r = nk("update", "--memory", "lots", cid)
    assert (r.returncode, r.stderr.strip()) == (1, "nk-runtime: invalid value for --memory: invalid size: 'lots'")
    r = nk("update", "-r", str(tmp_path / "missing.json"), cid)
    assert (r.returncode, r.stderr.strip()) == (1, f"nk-runtime: --resources {tmp_path / 'missing.json'}: No such file or directory")
    r = nk("update", "-r", "-", cid, input='{"memory": {"limit": "1g"}}')
    assert r.returncode == 1 and r.stderr.strip().startswith("nk-runtime: resources (stdin): memory.limit: expected int")
    r = nk("update", "--l3-cache-schema", "L3:0=f", cid)
    if not os.path.exists("/sys/fs/resctrl/schemata"):
        assert (r.returncode, r.stderr.strip()) == (1, "nk-runtime: Intel RDT/CAT: l3 cache schema is not enabled (resctrl is not mounted at /sys/fs/resctrl)")
    r = nk("update", "--pids-limit", "3", "no-such-ctr")
    assert (r.returncode, r.stderr.strip()) == (1, 'nk-runtime: container "no-such-ctr" does not exist')
    nk.ok("kill", cid, "KILL")
    nk.wait_status(cid, "stopped")
    r = nk("update", "--pids-limit", "3", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot update container "{cid}": container is stopped '
                                                   "(update needs created or running or paused)")
