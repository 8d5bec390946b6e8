"""``pause``/``resume``, ``events`` and ``ps`` on real containers.

* pause/resume through the v1 freezer (``freezer.state``) and, on this hybrid host, the cgroup v2
  freezer (``cgroup.freeze`` of the container's cgroup2 directory) driven directly; delete of a
  paused container without ``--force`` is refused, with ``--force`` it works.
* events: ``--stats`` prints one runc-shaped stats object with the container's real numbers; the
  stream prints stats every ``--interval``, an ``oom`` event when the OOM killer acts, and ends
  with exit status 0 when the container stops.
* ps: JSON pids as containerd parses them, the host ``ps`` table filtered to the container.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from conftest import unique_id
from nano_sandbox.cgroups.layout import Layout, detect
from nano_sandbox.cgroups.manager import Manager

pytestmark = pytest.mark.root

LAYOUT = detect()
SLEEP = ["sleep", "1000"]
MiB = 1 << 20
#: a shell that spins as fast as it can without forking, to see whether it runs
SPIN = ["sh", "-c", "while true; do :; done"]


def manager(nk, cid: str, layout: Layout = LAYOUT) -> Manager:
    st = json.loads((nk.root / cid / "state.json").read_text())
    return Manager(st["cgroupPaths"], st.get("cgroupCreated", []), layout)


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` (proc(5) fields 14 and 15): a frozen process gains none."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def with_resources(res: dict):
    def mutate(c):
        c["linux"].setdefault("resources", {}).update(res)

    return mutate


# --- pause / resume --------------------------------------------------------------------------------------


def test_pause_resume_v1_freezer(nk, make_bundle):
    if LAYOUT.v1_hierarchy("freezer") is None:
        pytest.skip(f"needs the v1 freezer; this host ({LAYOUT.mode}) has cgroup.freeze only (see the v2 test)")
    cid = unique_id("pause")
    nk.ok("create", "-b", make_bundle(SPIN), cid)
    r = nk("pause", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot pause container "{cid}": container is created (pause needs running)')
    nk.ok("start", cid)
    pid = nk.state(cid)["pid"]
    time.sleep(0.2)
    assert nk.ok("pause", cid) == ""
    st = nk.state(cid)
    assert st["status"] == "paused" and st["pid"] == pid
    freezer = manager(nk, cid).dir_for("freezer")
    assert open(f"{freezer}/freezer.state").read().strip() == "FROZEN"
    a = cpu_ticks(pid)
    time.sleep(0.3)
    assert cpu_ticks(pid) == a  # frozen: not one more tick of CPU
    r = nk("pause", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot pause container "{cid}": container is paused (pause needs running)')
    r = nk("delete", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot delete container "{cid}": container is paused (delete needs stopped)')
    assert nk.ok("resume", cid) == ""
    assert nk.status(cid) == "running"
    assert open(f"{freezer}/freezer.state").read().strip() == "THAWED"
    b = cpu_ticks(pid)
    time.sleep(0.3)
    assert cpu_ticks(pid) > b
    r = nk("resume", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot resume container "{cid}": container is running (resume needs paused)')


def test_delete_force_of_a_paused_container(nk, make_bundle):
    cid = unique_id("pdel")
    nk.ok("create", "-b", make_bundle(SPIN), cid)
    nk.ok("start", cid)
    pid = nk.state(cid)["pid"]
    nk.ok("pause", cid)
    assert nk.status(cid) == "paused"
    nk.ok("delete", "--force", cid)
    assert not (nk.root / cid).exists()
    assert not os.path.exists(f"/proc/{pid}/status") or "zombie" in open(f"/proc/{pid}/status").read()
    # the fixture checks that no cgroup, process or mount is left


def test_kill_of_a_paused_container(nk, make_bundle):
    cid = unique_id("pkill")
    nk.ok("create", "-b", make_bundle(SLEEP), cid)
    nk.ok("start", cid)
    nk.ok("pause", cid)
    nk.ok("kill", cid, "KILL")  # thaws so the signal is delivered
    nk.wait_status(cid, "stopped")
    nk.ok("delete", cid)


def test_v2_freezer_on_the_containers_cgroup2_directory(nk, make_bundle):
    """cgroup.freeze in the container's cgroup2 directory, through Manager with a v2-only view of
    this host (a hybrid host has both freezers; nk-runtime uses v1's there)."""
    if LAYOUT.v2 is None:
        pytest.skip(f"needs a cgroup2 hierarchy; this host is {LAYOUT.mode}")
    cid = unique_id("v2frz")
    nk.ok("create", "-b", make_bundle(SPIN), cid)
    nk.ok("start", cid)
    pid = nk.state(cid)["pid"]
    v2_only = Layout([h for h in LAYOUT.v1 if "freezer" not in h.controllers], LAYOUT.v2, LAYOUT.v2_controllers)
    m = manager(nk, cid, v2_only)
    d = m.paths[""]
    assert str(pid) in open(f"{d}/cgroup.procs").read().split()
    m.freeze()
    assert open(f"{d}/cgroup.freeze").read().strip() == "1"
    assert "frozen 1" in open(f"{d}/cgroup.events").read()
    assert m.frozen()
    a = cpu_ticks(pid)
    time.sleep(0.3)
    assert cpu_ticks(pid) == a
    m.thaw()
    assert open(f"{d}/cgroup.freeze").read().strip() == "0"
    assert "frozen 0" in open(f"{d}/cgroup.events").read()
    b = cpu_ticks(pid)
    time.sleep(0.3)
    assert cpu_ticks(pid) > b


# --- events -------------------------------------------------------------------------------------------------


def test_events_stats_once(nk, make_bundle):
    cid = unique_id("stats")
    res = {"memory": {"limit": 48 * MiB}, "pids": {"limit": 20}}
    busy = ["sh", "-c", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; exec sleep 1000"]
    nk.ok("create", "-b", make_bundle(busy, with_resources(res)), cid)
    nk.ok("start", cid)
    time.sleep(0.5)
    out = nk.ok("events", "--stats", cid)
    assert out.endswith("\n") and out.count("\n") == 1
    ev = json.loads(out)
    assert (ev["type"], ev["id"]) == ("stats", cid)
    data = ev["data"]
    assert set(data) == {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"}
    assert data["pids"] == {"current": 1, "limit": 20}
    mem = data["memory"]
    assert mem["usage"]["limit"] == 48 * MiB
    assert 0 < mem["usage"]["usage"] <= 48 * MiB
    assert set(mem) >= {"usage", "swap", "kernel", "kernelTCP", "raw"}
    assert isinstance(mem["raw"], dict) and mem["raw"]
    cpu = data["cpu"]["usage"]
    assert cpu["total"] > 0 and "kernel" in cpu and "user" in cpu
    if "percpu" in cpu:
        assert len(cpu["percpu"]) == os.cpu_count() and sum(cpu["percpu"]) == cpu["total"]
    from nano_sandbox.cgroups.resources import host_page_sizes

    if "hugetlb" in LAYOUT.controllers():
        assert sorted(data["hugetlb"]) == sorted(host_page_sizes())
        assert all(v == {"failcnt": 0} for v in data["hugetlb"].values())
    assert data["intel_rdt"] == {} and data["network_interfaces"] is None


def test_events_stream_stats_oom_and_end(nk, make_bundle):
    cid = unique_id("ev")
    # waits for /tmp/go, then allocates until the OOM killer takes awk; sh then exits: the container stops
    script = 'while [ ! -e /tmp/go ]; do sleep 0.05; done; awk "BEGIN { s = \\"x\\"; while (1) s = s s }"; exit 3'
    nk.ok("create", "-b", make_bundle(["sh", "-c", script], with_resources({"memory": {"limit": 24 * MiB}})), cid)
    nk.ok("start", cid)
    pid = nk.state(cid)["pid"]
    p = subprocess.Popen([*nk.binary, "--root", str(nk.root), "events", "--interval", "100ms", cid],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [json.loads(p.stdout.readline()) for _ in range(3)]
        assert [(e["type"], e["id"]) for e in lines] == [("stats", cid)] * 3
        assert all(e["data"]["memory"]["usage"]["limit"] == 24 * MiB for e in lines)
        with open(f"/proc/{pid}/root/tmp/go", "w"):
            pass
        rc = p.wait(timeout=30)
        rest = [json.loads(x) for x in p.stdout.read().splitlines()]
        assert rc == 0, p.stderr.read()
    finally:
        p.kill()
        p.wait()
    kinds = [e["type"] for e in rest]
    assert kinds.count("oom") == 1, kinds
    assert {"type": "oom", "id": cid} in rest
    assert set(kinds) <= {"stats", "oom"}
    nk.wait_status(cid, "stopped")
    nk.ok("delete", cid)


def test_events_errors(nk, make_bundle):
    cid = unique_id("everr")
    nk.ok("create", "-b", make_bundle(["true"]), cid)
    r = nk("events", "--interval", "0s", cid)
    assert (r.returncode, r.stderr.strip()) == (1, "nk-runtime: duration interval must be greater than 0")
    r = nk("events", "--interval", "5", cid)
    assert (r.returncode, r.stderr.strip()) == (1, 'nk-runtime: time: invalid duration "5"')
    nk.ok("start", cid)
    nk.wait_status(cid, "stopped")
    r = nk("events", "--stats", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot read events of container "{cid}": container is stopped '
                                                   "(events needs created or running or paused)")
    r = nk("events", "nope")
    assert (r.returncode, r.stderr.strip()) == (1, 'nk-runtime: container "nope" does not exist')
    nk.ok("delete", cid)


# --- ps -------------------------------------------------------------------------------------------------------


def test_ps_json_and_table(nk, make_bundle):
    cid = unique_id("ps")
    nk.ok("create", "-b", make_bundle(["sh", "-c", "sleep 1000 & exec sleep 999"]), cid)
    init = nk.state(cid)["pid"]
    assert json.loads(nk.ok("ps", "--format", "json", cid)) == [init]  # created: the init waits on the fifo
    nk.ok("start", cid)
    deadline = time.monotonic() + 10
    pids = []
    while len(pids) < 2 and time.monotonic() < deadline:
        pids = json.loads(nk.ok("ps", "-f", "json", cid))
    assert init in pids and len(pids) == 2
    assert sorted(pids) == manager(nk, cid).pids()
    table = nk.ok("ps", cid).splitlines()
    assert table[0].split()[:3] == ["UID", "PID", "PPID"]
    rows = {int(line.split()[1]): line for line in table[1:]}
    assert sorted(rows) == sorted(pids)
    assert rows[init].endswith("sleep 999")
    custom = nk.ok("ps", cid, "-o", "pid,comm").splitlines()
    assert custom[0].split() == ["PID", "COMMAND"]
    assert sorted(int(line.split()[0]) for line in custom[1:]) == sorted(pids)
    assert {line.split()[1] for line in custom[1:]} == {"sleep"}
    r = nk("ps", cid, "-o", "comm")
    assert (r.returncode, r.stderr.strip()) == (1, "nk-runtime: couldn't find PID field in ps output")
    r = nk("ps", "--format", "yaml", cid)
    assert (r.returncode, r.stderr.strip()) == (1, "nk-runtime: invalid format option")


def test_ps_of_a_stopped_container(nk, make_bundle):
    cid = unique_id("psstop")
    nk.ok("create", "-b", make_bundle(["true"]), cid)
    nk.ok("start", cid)
    nk.wait_status(cid, "stopped")
    for args in (["ps", cid], ["ps", "--format", "json", cid]):
        r = nk(*args)
        assert (r.returncode, r.stdout, r.stderr.strip()) == (1, "", f'nk-runtime: cannot ps container "{cid}": container is stopped '
                                                                     "(ps needs created or running or paused)")
    nk.ok("delete", cid)
