"""Cgroup layout detection and path logic against fake hosts of all three layouts (v1, v2 and
hybrid): fake ``/proc/self/mountinfo`` and ``/proc/self/cgroup`` texts, and a tmp directory
standing in for ``/sys/fs/cgroup``. No root needed.

``fake_host`` and ``FakeKernel`` are shared with test_cgroups_resources.py.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from nano_sandbox import errors
from nano_sandbox.cgroups import layout as L
from nano_sandbox.cgroups import resources as res
from nano_sandbox.cgroups.manager import Manager, resolve_path

# --- fake hosts -----------------------------------------------------------------------------------------

#: v1 hierarchies of a typical v1-only host (Debian 10, CentOS 7): mount dir -> super options.
V1_MOUNTS = {
    "systemd": "rw,xattr,name=systemd",
    "cpu,cpuacct": "rw,cpu,cpuacct",
    "cpuset": "rw,cpuset",
    "memory": "rw,memory",
    "devices": "rw,devices",
    "freezer": "rw,freezer",
    "blkio": "rw,blkio",
    "pids": "rw,pids",
    "net_cls,net_prio": "rw,net_cls,net_prio",
    "hugetlb": "rw,hugetlb",
    "perf_event": "rw,perf_event",
    "rdma": "rw,rdma",
}

#: this project's CI host: hybrid, cpu and cpuacct apart, no net_cls/net_prio/perf_event/rdma,
#: a cgroup2 mount at unified/ with hugetlb only.
HYBRID_MOUNTS = {
    "cpu": "rw,cpu",
    "cpuacct": "rw,cpuacct",
    "cpuset": "rw,cpuset",
    "memory": "rw,memory",
    "devices": "rw,devices",
    "freezer": "rw,freezer",
    "blkio": "rw,blkio",
    "pids": "rw,pids",
    "systemd": "rw,name=systemd",
}

V2_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc"


def mountinfo(mode: str, base: str) -> str:
    """A fake /proc/self/mountinfo of ``mode`` ("v1", "v2", "hybrid") with cgroups under ``base``."""
    lines = [
        "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
        "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
        f"31 23 0:28 / {base} rw,nosuid,nodev,noexec shared:9 - tmpfs tmpfs rw,mode=755",
    ]
    n = 40
    if mode in ("v1", "hybrid"):
        for name, opts in (V1_MOUNTS if mode == "v1" else HYBRID_MOUNTS).items():
            lines.append(f"{n} 31 0:{n} / {base}/{name} rw,nosuid,nodev,noexec,relatime shared:{n} - cgroup cgroup {opts}")
            n += 1
    if mode == "v2":
        lines[2] = f"31 23 0:28 / {base} rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot"
    if mode == "hybrid":
        lines.append(f"{n} 31 0:{n} / {base}/unified rw,nosuid,nodev,noexec,relatime shared:{n} - cgroup2 cgroup2 rw")
    return "\n".join(lines) + "\n"


def fake_host(tmp_path: Path, mode: str, v2_controllers: str | None = None) -> tuple[L.Layout, Path]:
    """Build a fake cgroup tree of ``mode`` under tmp_path/cgroup-<mode>; return its detected layout.

    Root files: v1 cpuset.cpus "0-3" / cpuset.mems "0"; v2 cgroup.controllers (``V2_CONTROLLERS``,
    or "hugetlb" on hybrid) and an empty cgroup.subtree_control.
    """
    base = tmp_path / f"cgroup-{mode}"
    base.mkdir()
    text = mountinfo(mode, str(base))
    for mp, _root, fstype, _opts in L.parse_mountinfo(text):
        if not mp.startswith(str(base)):
            continue
        Path(mp).mkdir(exist_ok=True)
        if fstype == "cgroup2":
            ctrls = v2_controllers if v2_controllers is not None else ("hugetlb" if mode == "hybrid" else V2_CONTROLLERS)
            (Path(mp) / "cgroup.controllers").write_text(ctrls + "\n")
            (Path(mp) / "cgroup.subtree_control").write_text("")
            (Path(mp) / "cgroup.procs").write_text("")
        elif fstype == "cgroup" and "cpuset" in mp.rsplit("/", 1)[1].split(","):
            (Path(mp) / "cpuset.cpus").write_text("0-3\n")
            (Path(mp) / "cpuset.mems").write_text("0\n")
    lay = L.detect(text, read_v2_controllers=lambda mp: (Path(mp) / "cgroup.controllers").read_text())
    return lay, base


class FakeKernel:
    """Replaces ``resources._write_file``: records every write as ``(path relative to base, text)``,
    refuses a missing file with ENOENT like cgroupfs, runs ``rules`` (callables
    ``(relpath, text) -> None`` raising OSError to refuse, or returning a string to store instead
    of ``text``) and stores the text in the file so reads see it."""

    def __init__(self, monkeypatch, base: Path) -> None:
        self.base = base
        self.writes: list[tuple[str, str]] = []
        self.rules: list = []
        monkeypatch.setattr(res, "_write_file", self.write_file)

    def write_file(self, path: str, data: bytes) -> None:
        rel = os.path.relpath(path, self.base)
        text = data.decode()
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        stored = text
        for rule in self.rules:
            out = rule(rel, text)
            if out is not None:
                stored = out
        self.writes.append((rel, text))
        Path(path).write_text(stored)


# --- mountinfo parsing and detection ----------------------------------------------------------------


def test_parse_mountinfo_decodes_octal_escapes():
    text = r"36 35 98:0 /mnt1 /mnt/with\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
    assert L.parse_mountinfo(text) == [("/mnt/with space", "/mnt1", "ext3", "rw,errors=continue")]


def test_parse_mountinfo_keeps_optional_fields_apart():
    text = "40 31 0:40 / /sys/fs/cgroup/memory rw,nosuid shared:20 master:3 - cgroup cgroup rw,memory\n\n"
    assert L.parse_mountinfo(text) == [("/sys/fs/cgroup/memory", "/", "cgroup", "rw,memory")]


def test_detect_v1(tmp_path):
    lay, base = fake_host(tmp_path, "v1")
    assert lay.mode == "v1"
    assert lay.v2 is None and lay.v2_controllers == ()
    assert [h.key for h in lay.v1] == list(
        ["name=systemd", "cpu,cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "net_cls,net_prio", "hugetlb",
         "perf_event", "rdma"]
    )
    assert lay.v1_controllers() == {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "net_cls",
                                    "net_prio", "hugetlb", "perf_event", "rdma"}
    h = lay.v1_hierarchy("cpuacct")
    assert (h.mountpoint, h.root, h.key) == (f"{base}/cpu,cpuacct", "/", "cpu,cpuacct")
    assert lay.v1_hierarchy("io") is None
    assert not lay.uses_v2_for("memory")


def test_detect_v2(tmp_path):
    lay, base = fake_host(tmp_path, "v2")
    assert lay.mode == "v2"
    assert lay.v1 == []
    assert (lay.v2.mountpoint, lay.v2.root, lay.v2.key) == (str(base), "/", "")
    assert lay.v2_controllers == ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")
    assert lay.controllers() == set(V2_CONTROLLERS.split())
    assert lay.uses_v2_for("memory") and lay.uses_v2_for("io")
    assert not lay.uses_v2_for("blkio")


def test_detect_hybrid_like_this_projects_ci(tmp_path):
    lay, base = fake_host(tmp_path, "hybrid")
    assert lay.mode == "hybrid"
    assert lay.v2.mountpoint == f"{base}/unified"
    assert lay.v2_controllers == ("hugetlb",)
    assert lay.v1_hierarchy("cpu").key == "cpu" and lay.v1_hierarchy("cpuacct").key == "cpuacct"
    assert lay.uses_v2_for("hugetlb")
    assert not lay.uses_v2_for("memory")
    assert lay.v1_hierarchy("net_cls") is None
    assert "hugetlb" in lay.controllers() and "net_cls" not in lay.controllers()


def test_detect_only_named_v1_and_v2_is_v2(tmp_path):
    # systemd hosts in "unified" mode with a leftover name=systemd v1 mount are v2 for controllers.
    text = mountinfo("v2", "/sys/fs/cgroup") + "60 31 0:60 / /run/systemd/cg rw - cgroup cgroup rw,name=systemd\n"
    lay = L.detect(text, read_v2_controllers=lambda mp: "memory pids")
    assert lay.mode == "v2"
    assert lay.v1_controllers() == set()


def test_detect_nothing_mounted():
    lay = L.detect("22 1 253:1 / / rw - ext4 /dev/vda1 rw\n", read_v2_controllers=lambda mp: "")
    assert lay.mode == "none"


def test_v2_controllers_unreadable_reads_as_none():
    def boom(mp):
        raise PermissionError(13, "Permission denied")

    lay = L.detect(mountinfo("v2", "/sys/fs/cgroup"), read_v2_controllers=boom)
    assert lay.mode == "v2" and lay.v2_controllers == ()


def test_mount_options_that_are_not_controllers():
    text = ("40 31 0:40 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset,noprefix,clone_children,cpuset_v2_mode,"
            "release_agent=/sbin/agent,favordynmods\n")
    lay = L.detect(text, read_v2_controllers=lambda mp: "")
    assert [h.controllers for h in lay.v1] == [("cpuset",)]


def test_a_hierarchy_mounted_twice_prefers_the_mount_of_its_root():
    text = ("40 31 0:40 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
            "41 31 0:40 / /mnt/memory rw - cgroup cgroup rw,memory\n"
            "42 31 0:41 /sub /a rw - cgroup2 cgroup2 rw\n"
            "43 31 0:41 / /b rw - cgroup2 cgroup2 rw\n")
    lay = L.detect(text, read_v2_controllers=lambda mp: "")
    assert len(lay.v1) == 1
    assert (lay.v1[0].mountpoint, lay.v1[0].root) == ("/mnt/memory", "/")
    assert (lay.v2.mountpoint, lay.v2.root) == ("/b", "/")


# --- /proc/<pid>/cgroup ------------------------------------------------------------------------------

PROC_CGROUP = {
    "v1": "12:rdma:/\n11:hugetlb:/web\n10:net_cls,net_prio:/web\n9:pids:/web\n8:blkio:/web\n7:freezer:/web\n"
          "6:devices:/web\n5:memory:/web\n4:cpuset:/web\n3:cpu,cpuacct:/web\n2:perf_event:/\n1:name=systemd:/user.slice\n",
    "v2": "0::/nano-sandbox/web\n",
    "hybrid": "9:name=systemd:/\n8:pids:/nano-sandbox/web\n7:blkio:/nano-sandbox/web\n6:freezer:/nano-sandbox/web\n"
              "5:devices:/nano-sandbox/web\n4:memory:/process_api/x\n3:cpuset:/nano-sandbox/web\n2:cpuacct:/nano-sandbox/web\n"
              "1:cpu:/nano-sandbox/web\n0::/nano-sandbox/web\n",
}


def test_parse_proc_cgroup_all_layouts():
    v1 = L.parse_proc_cgroup(PROC_CGROUP["v1"])
    assert v1["cpu,cpuacct"] == "/web" and v1["name=systemd"] == "/user.slice" and "" not in v1
    assert L.parse_proc_cgroup(PROC_CGROUP["v2"]) == {"": "/nano-sandbox/web"}
    hy = L.parse_proc_cgroup(PROC_CGROUP["hybrid"])
    assert hy[""] == "/nano-sandbox/web" and hy["memory"] == "/process_api/x" and hy["cpu"] == "/nano-sandbox/web"
    # a path may contain ':' (only the first two separate fields)
    assert L.parse_proc_cgroup("0::/a:b\n") == {"": "/a:b"}


@pytest.mark.parametrize("mode", ["v1", "v2", "hybrid"])
def test_dirs_of_maps_each_mounted_hierarchy(tmp_path, mode):
    lay, base = fake_host(tmp_path, mode)
    dirs = lay.dirs_of(PROC_CGROUP[mode])
    if mode == "v1":
        assert dirs["memory"] == f"{base}/memory/web"
        assert dirs["cpu,cpuacct"] == f"{base}/cpu,cpuacct/web"
        assert dirs["perf_event"] == f"{base}/perf_event"
        assert dirs["name=systemd"] == f"{base}/systemd/user.slice"
        assert "" not in dirs
    elif mode == "v2":
        assert dirs == {"": f"{base}/nano-sandbox/web"}
    else:
        assert dirs[""] == f"{base}/unified/nano-sandbox/web"
        assert dirs["memory"] == f"{base}/memory/process_api/x"
        assert dirs["cpuacct"] == f"{base}/cpuacct/nano-sandbox/web"
        assert dirs["name=systemd"] == f"{base}/systemd"


def test_path_of_inside_a_cgroup_namespace_mount():
    # A hierarchy mounted showing /docker/abc at its mountpoint (a container's view).
    h = L.Hierarchy(1, "/sys/fs/cgroup/memory", "/docker/abc", ("memory",))
    assert h.path_of("/docker/abc/nano-sandbox/web") == "/sys/fs/cgroup/memory/nano-sandbox/web"
    assert h.path_of("/docker/abc") == "/sys/fs/cgroup/memory"
    assert h.path_of("/nano-sandbox/web") == "/sys/fs/cgroup/memory/nano-sandbox/web"
    assert h.path_of("/docker/abcdef") == "/sys/fs/cgroup/memory/docker/abcdef"  # not under the root: kept


# --- cgroupsPath -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "want"), [
    (None, "/nano-sandbox/web"),
    ("", "/nano-sandbox/web"),
    ("/kubepods/pod1/web", "/kubepods/pod1/web"),
    ("//a//b/", "/a/b"),
    ("custom/web", "/nano-sandbox/custom/web"),
])
def test_resolve_path(given, want):
    assert resolve_path(given, "web") == want


@pytest.mark.parametrize(("given", "msg"), [
    ("system.slice:docker:web", "systemd slice:prefix:name form"),
    ("/a/../b", "must not contain '..'"),
    ("/", "must not be the root cgroup"),
])
def test_resolve_path_refusals(given, msg):
    with pytest.raises(errors.ConfigError) as e:
        resolve_path(given, "web")
    assert e.value.path == "linux.cgroupsPath"
    assert msg in str(e.value)


@pytest.mark.parametrize("mode", ["v1", "v2", "hybrid"])
def test_for_container_paths(tmp_path, mode):
    lay, base = fake_host(tmp_path, mode)
    rel = Manager.for_container("web", None, lay)
    absolute = Manager.for_container("web", "/kubepods/web", lay)
    if mode == "v1":
        assert rel.paths["memory"] == f"{base}/memory/nano-sandbox/web"
        assert rel.paths["cpu,cpuacct"] == f"{base}/cpu,cpuacct/nano-sandbox/web"
        assert rel.paths["name=systemd"] == f"{base}/systemd/nano-sandbox/web"
        assert "" not in rel.paths
        assert len(rel.paths) == len(V1_MOUNTS)
        assert absolute.paths["pids"] == f"{base}/pids/kubepods/web"
    elif mode == "v2":
        assert rel.paths == {"": f"{base}/nano-sandbox/web"}
        assert absolute.paths == {"": f"{base}/kubepods/web"}
    else:
        assert rel.paths[""] == f"{base}/unified/nano-sandbox/web"
        assert rel.paths["cpu"] == f"{base}/cpu/nano-sandbox/web"
        assert rel.paths["cpuacct"] == f"{base}/cpuacct/nano-sandbox/web"
        assert len(rel.paths) == len(HYBRID_MOUNTS) + 1
        assert absolute.paths["memory"] == f"{base}/memory/kubepods/web"
    assert rel.created == []


@pytest.mark.parametrize("mode", ["v1", "v2", "hybrid"])
def test_dir_for_and_is_v2(tmp_path, mode):
    lay, base = fake_host(tmp_path, mode)
    m = Manager.for_container("web", None, lay)
    if mode == "v1":
        assert m.dir_for("memory") == f"{base}/memory/nano-sandbox/web"
        assert m.dir_for("cpuacct") == f"{base}/cpu,cpuacct/nano-sandbox/web"
        assert m.dir_for("net_prio") == f"{base}/net_cls,net_prio/nano-sandbox/web"
        assert m.dir_for("io") is None
        assert not m.is_v2("memory")
    elif mode == "v2":
        d = f"{base}/nano-sandbox/web"
        assert m.dir_for("memory") == m.dir_for("io") == m.dir_for("freezer") == m.dir_for("devices") == d
        assert m.dir_for("net_cls") is None
        assert m.is_v2("memory") and m.is_v2("cpu")
    else:
        assert m.dir_for("memory") == f"{base}/memory/nano-sandbox/web"
        assert m.dir_for("hugetlb") == f"{base}/unified/nano-sandbox/web"
        assert m.dir_for("freezer") == f"{base}/freezer/nano-sandbox/web"
        assert m.dir_for("devices") == f"{base}/devices/nano-sandbox/web"
        assert m.dir_for("rdma") is None and m.dir_for("net_cls") is None
        assert m.is_v2("hugetlb") and not m.is_v2("memory")


# --- creating and removing ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["v1", "v2", "hybrid"])
def test_create_records_what_it_made_and_destroy_removes_only_that(tmp_path, mode):
    lay, base = fake_host(tmp_path, mode)
    m = Manager.for_container("web", None, lay)
    m.create()
    for d in m.paths.values():
        assert os.path.isdir(d)
    # Every directory it made, parents before children.
    parents = [os.path.dirname(d) for d in m.paths.values()]
    assert sorted(m.created) == sorted(parents + list(m.paths.values()))
    for p in parents:
        assert m.created.index(p) < m.created.index(p + "/web")
    # A second container shares the parent: it creates only its leaf.
    other = Manager.for_container("db", None, lay)
    other.create()
    assert sorted(other.created) == sorted(other.paths.values())
    m.destroy(timeout=0)
    for d in m.paths.values():
        assert not os.path.exists(d)
    for p in parents:
        assert os.path.isdir(p)  # still holds db
    other.destroy(timeout=0)
    for p in parents:
        assert not os.path.exists(p)  # empty /nano-sandbox parents go too
    for h in lay.v1:
        assert os.path.isdir(h.mountpoint)


@pytest.mark.parametrize("mode", ["v1", "v2", "hybrid"])
def test_a_joined_pre_existing_cgroup_survives_destroy(tmp_path, mode):
    lay, base = fake_host(tmp_path, mode)
    m = Manager.for_container("web", "/kubepods/pod1", lay)
    for d in m.paths.values():
        os.makedirs(d)
    m.create()
    assert m.created == []
    m.destroy(timeout=0)
    for d in m.paths.values():
        assert os.path.isdir(d)


def test_create_half_pre_existing_path_removes_only_the_new_part(tmp_path):
    lay, base = fake_host(tmp_path, "v2")
    os.makedirs(base / "kubepods")
    m = Manager.for_container("web", "/kubepods/pod1/web", lay)
    m.create()
    assert m.created == [f"{base}/kubepods/pod1", f"{base}/kubepods/pod1/web"]
    m.destroy(timeout=0)
    assert not (base / "kubepods/pod1").exists()
    assert (base / "kubepods").is_dir()


def test_v2_create_enables_controllers_down_the_tree(tmp_path, monkeypatch):
    lay, base = fake_host(tmp_path, "v2")
    m = Manager.for_container("web", None, lay)
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777):
        # a fake kernel: a new v2 cgroup offers the controllers its parent enabled
        real_mkdir(path, mode)
        enabled = Path(os.path.dirname(path), "cgroup.subtree_control").read_text()
        Path(path, "cgroup.controllers").write_text(enabled.replace("+", ""))
        Path(path, "cgroup.subtree_control").write_text("")

    monkeypatch.setattr(os, "mkdir", mkdir)
    m.create()
    monkeypatch.undo()
    want = " ".join("+" + c for c in V2_CONTROLLERS.split())
    assert (base / "cgroup.subtree_control").read_text() == want
    assert (base / "nano-sandbox" / "cgroup.subtree_control").read_text() == want
    assert (base / "nano-sandbox" / "web" / "cgroup.subtree_control").read_text() == ""  # the leaf holds processes


def test_v1_cpuset_chain_is_filled_from_the_top(tmp_path):
    lay, base = fake_host(tmp_path, "v1")
    mount = base / "cpuset"
    # a pre-existing empty parent (made by someone else and never filled), a set one, and our leaf
    for d, cpus in ((mount / "a", ""), (mount / "a/b", "1"), (mount / "a/b/web", "")):
        d.mkdir()
        (d / "cpuset.cpus").write_text(cpus)
        (d / "cpuset.mems").write_text("")
    Manager._ensure_cpuset(str(mount), str(mount / "a/b/web"))
    assert (mount / "a/cpuset.cpus").read_text() == "0-3"
    assert (mount / "a/cpuset.mems").read_text() == "0"
    assert (mount / "a/b/cpuset.cpus").read_text() == "1"  # kept
    assert (mount / "a/b/web/cpuset.cpus").read_text() == "1"  # from its parent, not the root
    assert (mount / "a/b/web/cpuset.mems").read_text() == "0"


def test_pids_walks_descendants(tmp_path):
    lay, base = fake_host(tmp_path, "hybrid")
    m = Manager.for_container("web", None, lay)
    m.create()
    d = Path(m.dir_for("pids"))
    (d / "cgroup.procs").write_text("12\n7\n")
    (d / "sub").mkdir()
    (d / "sub" / "cgroup.procs").write_text("30\n")
    assert m.pids() == [7, 12, 30]


@pytest.mark.parametrize("mode", ["v1", "v2"])
def test_freeze_and_thaw_write_the_right_file(tmp_path, mode):
    lay, base = fake_host(tmp_path, mode)
    m = Manager.for_container("web", None, lay)
    m.create()
    if mode == "v1":
        state = Path(m.paths["freezer"]) / "freezer.state"
        state.write_text("THAWED\n")
        m.freeze()
        assert state.read_text() == "FROZEN" and m.frozen()
        m.thaw()
        assert state.read_text() == "THAWED" and not m.frozen()
    else:
        d = Path(m.paths[""])
        (d / "cgroup.freeze").write_text("0\n")
        (d / "cgroup.events").write_text("populated 1\nfrozen 1\n")  # the kernel's answer
        m.freeze()
        assert (d / "cgroup.freeze").read_text() == "1" and m.frozen()
        (d / "cgroup.events").write_text("populated 1\nfrozen 0\n")
        m.thaw()
        assert (d / "cgroup.freeze").read_text() == "0" and not m.frozen()


def test_freeze_without_any_freezer_is_a_clear_error(tmp_path):
    lay, _base = fake_host(tmp_path, "v1")
    lay.v1 = [h for h in lay.v1 if "freezer" not in h.controllers]
    m = Manager.for_container("web", None, lay)
    with pytest.raises(errors.HostError, match="no freezer: neither a v1 freezer hierarchy nor cgroup v2 is mounted"):
        m.freeze()
