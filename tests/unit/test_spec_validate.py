"""Semantic and host checks of a decoded config (nano_sandbox.spec.validate) and ``nk-runtime check``."""

from __future__ import annotations

import copy
import json

import pytest

from nano_sandbox.cli import main
from nano_sandbox.errors import ConfigError
from nano_sandbox.spec import config as C
from nano_sandbox.spec import decode_config
from nano_sandbox.spec.validate import Host, check, structural_problems, warnings

BASE = {
    "ociVersion": "1.3.0",
    "root": {"path": "rootfs"},
    "process": {"cwd": "/", "args": ["sh"]},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}]},
}

#: a host with everything the BASE config needs, nothing more
SMALL_HOST = Host(
    namespaces={"pid", "mount", "uts", "ipc", "network", "user"},
    controllers={"memory", "pids", "cpu"},
    last_cap=37,
    lsms=set(),
    cgroup_mode="v2",
)


def cfg(**top) -> dict:
    d = copy.deepcopy(BASE)
    d.update(top)
    return d


def linux(**fields) -> dict:
    d = copy.deepcopy(BASE)
    d["linux"].update(fields)
    return d


def problems(d: dict, tmp_path, host: Host = SMALL_HOST) -> list[str]:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    spec = decode_config(json.dumps(d).encode())
    return [f"{e.path}: {e.message}" for e in check(spec, str(tmp_path), host)]


def test_clean_config_has_no_problem(tmp_path):
    assert problems(BASE, tmp_path) == []
    assert warnings(decode_config(json.dumps(BASE).encode()), SMALL_HOST) == []


def test_check_reports_every_problem_at_once(tmp_path):
    d = {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {
            "cwd": "/",
            "args": ["sh"],
            "env": ["PATH=/bin", "NOEQUALS"],
            "apparmorProfile": "docker-default",
            "capabilities": {"bounding": ["CAP_CHOWN", "CAP_FOO", "CAP_BPF"]},
        },
        "mounts": [{"destination": "/tmp", "type": "tmpfs"}],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "mount"}, {"type": "time"}, {"type": "user"}],
            "sysctl": {"kernel.shmmax": "1", "net.core.somaxconn": "256", "vm.swappiness": "10"},
            "resources": {"memory": {"limit": 100, "swap": 50}, "hugepageLimits": [{"pageSize": "2MB", "limit": 0}]},
            "maskedPaths": ["/proc/kcore", "proc/keys"],
            "devices": [{"type": "c", "path": "dev/null", "major": 1, "minor": 3}],
        },
    }
    spec = decode_config(json.dumps(d).encode(), normalize=False)
    got = [str(e) for e in check(spec, str(tmp_path), SMALL_HOST)]  # no rootfs directory created
    assert got == [
        'config.json: process.env[1]: must have the form KEY=value, got "NOEQUALS"',
        "config.json: linux.resources.memory.swap: must be >= memory.limit (swap counts memory + swap), got 50 < 100",
        "config.json: linux.uidMappings: required by the new user namespace (linux.namespaces[4])",
        "config.json: linux.gidMappings: required by the new user namespace (linux.namespaces[4])",
        'config.json: linux.devices[0].path: must be an absolute path, got "dev/null"',
        'config.json: linux.maskedPaths[1]: must be an absolute path, got "proc/keys"',
        "config.json: linux.sysctl[\"kernel.shmmax\"]: requires an ipc namespace in linux.namespaces (it would change the host's value)",
        "config.json: linux.sysctl[\"vm.swappiness\"]: is not namespaced (it would change the host's value)",
        f"config.json: root.path: rootfs directory {tmp_path}/rootfs does not exist",
        "config.json: process.apparmorProfile: AppArmor is not enabled on this host",
        "config.json: linux.namespaces[3].type: the time namespace is not available on this host",
        "config.json: linux.resources.hugepageLimits: the hugetlb cgroup controller is not available",
    ]
    assert all(isinstance(e, ConfigError) for e in check(spec, str(tmp_path), SMALL_HOST))
    assert warnings(spec, SMALL_HOST) == [
        'process.capabilities.bounding[1]: unknown capability "CAP_FOO" (ignored)',
        'process.capabilities.bounding[2]: capability "CAP_BPF" is not supported by the running kernel (ignored)',
    ]


def test_check_includes_structural_problems(tmp_path):
    spec = C.Spec(oci_version="1.3.0", process=C.Process(cwd="rel", args=[]), hostname="h")
    got = [str(e) for e in check(spec, str(tmp_path), SMALL_HOST)]
    assert got == [
        "config.json: root: required field is missing",
        "config.json: process.args: at least one entry is required",
        'config.json: process.cwd: must be an absolute path, got "rel"',
        "config.json: hostname: requires a uts namespace in linux.namespaces",
    ]
    assert [str(e) for e in structural_problems(spec)] == got


def test_check_catches_uint64_overflow_in_python_built_specs(tmp_path):
    spec = decode_config(json.dumps(BASE).encode())
    spec.process.rlimits = [C.POSIXRlimit(type="RLIMIT_CORE", soft=2**64, hard=2**64)]
    assert "process.rlimits[0].hard: expected int <= 18446744073709551615, got 18446744073709551616" in [
        f"{e.path}: {e.message}" for e in check(spec, str(tmp_path), SMALL_HOST)
    ]


# -- sysctl (runc's rules) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "namespaces, key, expected",
    [
        (["ipc"], "kernel.shmmax", None),
        (["ipc"], "kernel.msgmnb", None),
        (["ipc"], "fs.mqueue.msg_max", None),
        ([], "fs.mqueue.msg_max", "requires an ipc namespace in linux.namespaces (it would change the host's value)"),
        (["network"], "net.ipv4.ip_forward", None),
        (["network"], "net/ipv4/ip_forward", None),
        ([], "net.ipv4.ip_forward", "requires a network namespace in linux.namespaces (it would change the host's value)"),
        (["uts"], "kernel.domainname", None),
        (["uts"], "kernel.hostname", 'conflicts with the "hostname" field: set the hostname there'),
        ([], "kernel.domainname", "is not namespaced (it would change the host's value)"),
        (["ipc", "network", "uts"], "kernel.pid_max", "is not namespaced (it would change the host's value)"),
    ],
)
def test_sysctl_namespacing(tmp_path, namespaces, key, expected):
    d = cfg(linux={"namespaces": [{"type": t} for t in ["mount", *namespaces]], "sysctl": {key: "1"}})
    got = problems(d, tmp_path)
    assert got == ([] if expected is None else [f'linux.sysctl["{key}"]: {expected}'])


# -- namespaces, mappings, offsets ------------------------------------------------------------------


def test_user_namespace_and_mappings(tmp_path):
    m = [{"containerID": 0, "hostID": 1000, "size": 65536}]
    ns = BASE["linux"]["namespaces"]
    assert problems(linux(namespaces=ns + [{"type": "user"}], uidMappings=m, gidMappings=m), tmp_path) == []
    assert problems(linux(uidMappings=m), tmp_path) == ["linux.uidMappings: requires a user namespace in linux.namespaces"]
    joined = ns + [{"type": "user", "path": "/proc/self/ns/user"}]
    assert problems(linux(namespaces=joined), tmp_path) == []
    zero = [{"containerID": 0, "hostID": 1000, "size": 0}]
    assert problems(linux(namespaces=ns + [{"type": "user"}], uidMappings=zero, gidMappings=m), tmp_path) == ["linux.uidMappings[0].size: must be >= 1"]


def test_time_offsets(tmp_path):
    host = Host(namespaces=SMALL_HOST.namespaces | {"time"})
    ns = BASE["linux"]["namespaces"]
    off = {"monotonic": {"secs": 10}, "boottime": {"secs": 1, "nanosecs": 5}}
    assert problems(linux(namespaces=ns + [{"type": "time"}], timeOffsets=off), tmp_path, host) == []
    assert problems(linux(timeOffsets=off), tmp_path, host) == ["linux.timeOffsets: requires a new time namespace in linux.namespaces"]
    joined = ns + [{"type": "time", "path": "/proc/self/ns/time"}]
    assert problems(linux(namespaces=joined, timeOffsets=off), tmp_path, host) == [
        "linux.timeOffsets: can only be set for a new time namespace, not a joined one (linux.namespaces[5].path)"
    ]
    bad = {"realtime": {"secs": 1}, "monotonic": {"nanosecs": 1_000_000_000}}
    assert problems(linux(namespaces=ns + [{"type": "time"}], timeOffsets=bad), tmp_path, host) == [
        'linux.timeOffsets["realtime"]: unknown clock (expected "monotonic" or "boottime")',
        'linux.timeOffsets["monotonic"].nanosecs: must be < 1000000000, got 1000000000',
    ]


def test_namespace_not_on_host_and_missing_path(tmp_path):
    host = Host(namespaces={"pid", "mount", "uts", "ipc"})
    assert problems(BASE, tmp_path, host) == ["linux.namespaces[4].type: the network namespace is not available on this host"]
    d = linux(namespaces=[{"type": "pid"}, {"type": "mount", "path": "/nonexistent/ns/mnt"}])
    assert problems(d, tmp_path) == ["linux.namespaces[1].path: /nonexistent/ns/mnt does not exist"]


def test_masked_paths_need_a_mount_namespace(tmp_path):
    d = linux(namespaces=[{"type": "pid"}], readonlyPaths=["/proc/sys"])
    assert problems(d, tmp_path) == ["linux.readonlyPaths: requires a mount namespace in linux.namespaces"]


def test_net_devices_need_a_new_network_namespace(tmp_path):
    assert problems(linux(netDevices={"eth1": {}}), tmp_path) == []
    d = linux(namespaces=[{"type": "mount"}], netDevices={"eth1": {"name": "eth0"}})
    assert problems(d, tmp_path) == ["linux.netDevices: requires a new network namespace in linux.namespaces"]


# -- resources ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "resources, expected",
    [
        ({"memory": {"limit": -1, "swap": -1, "reservation": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}, []),
        ({"memory": {"limit": -2}}, ["linux.resources.memory.limit: must be -1 (unlimited) or >= 0, got -2"]),
        ({"memory": {"reservation": -7}}, ["linux.resources.memory.reservation: must be -1 (unlimited) or >= 0, got -7"]),
        ({"memory": {"limit": 100, "swap": 100}}, []),
        ({"memory": {"limit": 100, "swap": -1}}, []),
        ({"memory": {"swappiness": 101}}, ["linux.resources.memory.swappiness: must be 0..100, got 101"]),
        ({"pids": {"limit": -5}}, ["linux.resources.pids.limit: must be -1 (unlimited) or >= 0, got -5"]),
        ({"cpu": {"quota": -3, "period": 100000}}, ["linux.resources.cpu.quota: must be -1 (unlimited) or >= 0, got -3"]),
        ({"cpu": {"idle": 2}}, ["linux.resources.cpu.idle: must be 0 or 1, got 2"]),
        ({"devices": [{"allow": True, "type": "x", "access": "rwx"}]}, [
            'linux.resources.devices[0].type: invalid value "x" (expected one of "a", "c", "b")',
            'linux.resources.devices[0].access: invalid access "rwx" (expected letters from "rwm")',
        ]),
        ({"blockIO": {"weight": 5}}, [
            "linux.resources.blockIO.weight: must be 10..1000, got 5",
            "linux.resources.blockIO: no block I/O cgroup controller (io or blkio) is available",
        ]),
    ],
)
def test_resource_values(tmp_path, resources, expected):
    assert problems(linux(resources=resources), tmp_path) == expected


@pytest.mark.parametrize(
    "resources, expected",
    [
        ({"memory": {"limit": 1}}, []),
        ({"memory": {}}, []),
        ({"cpu": {"cpus": "0-1"}}, ["linux.resources.cpu.cpus: the cpuset cgroup controller is not available"]),
        ({"blockIO": {"weight": 100}}, ["linux.resources.blockIO: no block I/O cgroup controller (io or blkio) is available"]),
        ({"network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 1}]}}, [
            "linux.resources.network.classID: the net_cls cgroup controller is not available",
            "linux.resources.network.priorities: the net_prio cgroup controller is not available",
        ]),
        ({"rdma": {"mlx5_1": {"hcaHandles": 1}}}, ["linux.resources.rdma: the rdma cgroup controller is not available"]),
        ({"unified": {"memory.high": "1G", "io.weight": "100", "cgroup.freeze": "0"}}, [
            'linux.resources.unified["io.weight"]: the io cgroup controller is not available'
        ]),
        ({"devices": [{"allow": False, "access": "rwm"}]}, []),
    ],
)
def test_controllers_the_host_lacks(tmp_path, resources, expected):
    assert problems(linux(resources=resources), tmp_path) == expected


def test_unified_needs_cgroup2(tmp_path):
    host = Host(controllers={"memory"}, cgroup_mode="v1")
    assert problems(linux(resources={"unified": {"memory.high": "1"}}), tmp_path, host) == [
        "linux.resources.unified: requires a cgroup v2 hierarchy (this host's cgroups are v1)"
    ]


# -- process, hooks, devices, seccomp, LSMs ----------------------------------------------------------


def test_process_values(tmp_path):
    d = cfg(
        process={
            "cwd": "/",
            "args": ["sh"],
            "env": ["=x", "A=1"],
            "oomScoreAdj": 1001,
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8},
            "scheduler": {"policy": "SCHED_FIFO", "nice": 20},
        }
    )
    assert problems(d, tmp_path) == [
        'process.env[0]: variable name is empty in "=x"',
        "process.oomScoreAdj: must be -1000..1000, got 1001",
        "process.ioPriority.priority: must be 0..7, got 8",
        "process.scheduler.nice: must be -20..19, got 20",
        "process.scheduler.priority: must be 1..99 for SCHED_FIFO, got None",
    ]


def test_hooks_and_idmapped_mounts(tmp_path):
    d = cfg(
        hooks={"createRuntime": [{"path": "/bin/ok"}, {"path": "hook.sh"}], "poststop": [{"path": "/x", "env": ["BAD"]}]},
        mounts=[{"destination": "/data", "type": "bind", "source": "/srv", "options": ["bind", "idmap"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}],
    )
    assert problems(d, tmp_path) == [
        "mounts[0].gidMappings: required with uidMappings (an idmapped mount needs both)",
        'hooks.createRuntime[1].path: must be an absolute path, got "hook.sh"',
        'hooks.poststop[0].env[0]: must have the form KEY=value, got "BAD"',
    ]


def test_devices(tmp_path):
    d = linux(devices=[{"type": "p", "path": "/dev/fifo"}, {"type": "c", "path": "/dev/x", "major": -1}])
    assert problems(d, tmp_path) == ["linux.devices[1].major: must be >= 0, got -1", 'linux.devices[1].minor: required for a "c" device']


def test_seccomp_consistency(tmp_path):
    sc = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "defaultErrnoRet": 1,
        "syscalls": [
            {"names": ["mount"], "action": "SCMP_ACT_NOTIFY", "errnoRet": 1},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]},
        ],
    }
    assert problems(linux(seccomp=sc), tmp_path) == [
        "linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW",
        "linux.seccomp.syscalls[0].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_NOTIFY",
        "linux.seccomp.syscalls[1].args[0].index: must be 0..5 (a syscall has at most 6 arguments), got 6",
        "linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used",
    ]


def test_lsm_labels(tmp_path):
    d = cfg(process={"cwd": "/", "args": ["sh"], "apparmorProfile": "p", "selinuxLabel": "l"})
    d["linux"]["mountLabel"] = "m"
    assert problems(d, tmp_path, Host(lsms={"apparmor", "selinux"})) == []
    assert problems(d, tmp_path, Host(lsms={"apparmor"})) == [
        "process.selinuxLabel: SELinux is not enabled on this host",
        "linux.mountLabel: SELinux is not enabled on this host",
    ]


def test_rootfs_checks(tmp_path):
    spec = decode_config(json.dumps(cfg(root={"path": "missing"})).encode())
    assert [e.message for e in check(spec, str(tmp_path), Host())] == [f"rootfs directory {tmp_path}/missing does not exist"]
    (tmp_path / "file").write_text("")
    spec = decode_config(json.dumps(cfg(root={"path": str(tmp_path / "file")})).encode())
    assert [e.message for e in check(spec, None, Host())] == [f"rootfs {tmp_path}/file is not a directory"]
    # relative root.path without a bundle directory: not checked
    assert check(decode_config(json.dumps(cfg(root={"path": "missing"})).encode()), None, Host()) == []


# -- warnings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, expected",
    [
        ("1.3.0", []),
        ("1.0.0", []),
        ("1.2.1-dev", []),
        ("0.5.0-dev", ["ociVersion: 0.5.0-dev is older than 1.0.0, the oldest version this runtime supports"]),
        ("1.4.0", ["ociVersion: 1.4.0 is newer than 1.3.0, the version this runtime implements; unknown fields are ignored"]),
        ("2.0.0", ["ociVersion: 2.0.0 is newer than 1.3.0, the version this runtime implements; unknown fields are ignored"]),
        ("1.0", ['ociVersion: "1.0" is not a SemVer 2.0.0 version']),
    ],
)
def test_version_warnings(version, expected):
    assert warnings(decode_config(json.dumps(cfg(ociVersion=version)).encode())) == expected


def test_other_warnings():
    d = cfg(hooks={"prestart": [{"path": "/bin/true"}]})
    del d["process"]
    assert warnings(decode_config(json.dumps(d).encode())) == [
        "process: not set; the container can be created but not started",
        "hooks.prestart: deprecated by the runtime-spec; use createRuntime, createContainer or startContainer",
    ]


# -- Host ------------------------------------------------------------------------------------------


def test_host_probe_reads_this_system():
    h = Host.probe()
    assert isinstance(h.namespaces, frozenset) and h.namespaces <= {"mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time"}
    assert "mount" in h.namespaces  # every Linux since 2.4.19
    assert isinstance(h.controllers, frozenset) and isinstance(h.lsms, frozenset)
    assert h.lsms <= {"apparmor", "selinux"}
    assert h.last_cap >= 30
    assert h.cgroup_mode in ("v1", "v2", "hybrid", "none")
    assert "Host(" in repr(h)


# -- nk-runtime check --------------------------------------------------------------------------------


def test_check_verb_clean_bundle(tmp_path, capsys):
    (tmp_path / "rootfs").mkdir()
    d = cfg()
    d["process"]["capabilities"] = {"bounding": ["CAP_NOPE"]}
    (tmp_path / "config.json").write_text(json.dumps(d))
    assert main(["check", "--bundle", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        'warning: process.capabilities.bounding[0]: unknown capability "CAP_NOPE" (ignored)',
        f"{tmp_path}/config.json: valid (0 problems, 1 warning)",
    ]


def test_check_verb_reports_problems(tmp_path, capsys):
    d = linux(sysctl={"vm.overcommit_memory": "1"})
    (tmp_path / "config.json").write_text(json.dumps(d))
    assert main(["check", "-b", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "config.json: linux.sysctl[\"vm.overcommit_memory\"]: is not namespaced (it would change the host's value)",
        f"config.json: root.path: rootfs directory {tmp_path}/rootfs does not exist",
        f"{tmp_path}/config.json: invalid (2 problems, 0 warnings)",
    ]


def test_check_verb_decode_error_is_the_single_problem(tmp_path, capsys, monkeypatch):
    (tmp_path / "config.json").write_text('{"ociVersion": "1.3.0", "root": {"path": 5}}')
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "config.json: root.path: expected str, got int",
        f"{tmp_path}/config.json: invalid (1 problem, 0 warnings)",
    ]


def test_check_verb_missing_config(tmp_path, capsys):
    assert main(["check", "--bundle", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == f"config.json: no config.json in bundle {tmp_path}: No such file or directory"
