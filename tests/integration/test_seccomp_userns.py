"""Seccomp profiles and user namespaces on real containers."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import cgroup_dirs_of, unique_id

pytestmark = pytest.mark.root

CONTAINERS_PROFILE = Path("/usr/share/containers/seccomp.json")


def podman_profile(caps: list[str]) -> dict:
    """The OCI ``linux.seccomp`` podman would send, made from containers-common's profile (the
    same conversion podman does: archMap → architectures, rules kept when their ``includes``
    match the container's capabilities and architecture and no ``excludes`` apply)."""
    if not CONTAINERS_PROFILE.exists():
        pytest.skip(f"{CONTAINERS_PROFILE} not found (Debian package golang-github-containers-common)")
    src = json.loads(CONTAINERS_PROFILE.read_text())
    arches = []
    for m in src.get("archMap") or []:
        if m["architecture"] == "SCMP_ARCH_X86_64":
            arches = [m["architecture"], *m.get("subArchitectures", [])]
    syscalls = []
    for rule in src["syscalls"]:
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("caps") and not set(inc["caps"]) <= set(caps):
            continue
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        if exc.get("caps") and set(exc["caps"]) & set(caps):
            continue
        out = {"names": rule["names"], "action": rule["action"]}
        for k in ("args", "errnoRet"):
            if rule.get(k) is not None:
                out[k] = rule[k]
        syscalls.append(out)
    return {"defaultAction": src["defaultAction"], "defaultErrnoRet": src.get("defaultErrnoRet", 38),
            "architectures": arches, "syscalls": syscalls}


@pytest.mark.parametrize("nnp", [True, False])
def test_podman_default_profile_runs_a_normal_container(nk, make_bundle, nnp):
    def mutate(c):
        c["process"]["noNewPrivileges"] = nnp
        caps = c["process"]["capabilities"]
        c["linux"]["seccomp"] = podman_profile(caps["bounding"])
        # The process may set its hostname (CAP_SYS_ADMIN in its own uts namespace), but the
        # profile was made for a container without that capability: only seccomp refuses it.
        for k in ("bounding", "effective", "permitted"):
            caps[k] = caps[k] + ["CAP_SYS_ADMIN"]

    cid = unique_id("podprof")
    script = "grep Seccomp: /proc/self/status; ls / >/dev/null && echo ls-ok; hostname other 2>&1; hostname"
    r = nk("run", "-b", make_bundle(["sh", "-c", script], mutate), cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["Seccomp:\t2", "ls-ok", "hostname: sethostname: Operation not permitted", "nano-sandbox"]


def test_without_the_profile_the_same_call_succeeds(nk, make_bundle):
    def mutate(c):
        for k in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][k].append("CAP_SYS_ADMIN")

    r = nk("run", "-b", make_bundle(["sh", "-c", "hostname other; hostname"], mutate), unique_id("noprof"))
    assert (r.returncode, r.stdout) == (0, "other\n"), r.stderr


def test_errno_rule_and_args(nk, make_bundle):
    def mutate(c):
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                # chmod/fchmodat only when the mode is exactly 0777
                {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 2, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
                {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
                {"names": ["a_syscall_that_does_not_exist"], "action": "SCMP_ACT_ERRNO"},
            ],
        }

    cid = unique_id("secrule")
    script = "mkdir /tmp/d 2>&1; touch /tmp/f; chmod 777 /tmp/f 2>&1; chmod 755 /tmp/f && echo chmod-755-ok"
    r = nk("run", "-b", make_bundle(["sh", "-c", script], mutate), cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "mkdir: can't create directory '/tmp/d': Operation not permitted",
        "chmod: /tmp/f: Permission denied",
        "chmod-755-ok",
    ]


def test_seccomp_blocking_execve_fails_start_cleanly(nk, make_bundle):
    def mutate(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ERRNO"}]}

    cid = unique_id("noexec")
    nk.ok("create", "-b", make_bundle(["true"], mutate), cid)
    r = nk("start", cid)
    assert r.returncode == 1
    assert r.stderr.strip() == 'nk-runtime: exec: "true": operation not permitted'
    nk.wait_status(cid, "stopped")


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"defaultAction": "SCMP_ACT_SOMETIMES"}, "linux.seccomp.defaultAction"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/notify.sock", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
         "linux.seccomp.syscalls[0].action"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}, "linux.seccomp.listenerPath"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}, "linux.seccomp.architectures[0]"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
         "linux.seccomp.syscalls[0].args[0].index"),
    ],
)
def test_bad_seccomp_profiles_name_the_field(nk, make_bundle, profile, message):
    cid = unique_id("badsec")
    r = nk("create", "-b", make_bundle(["true"], lambda c: c["linux"].update(seccomp=profile)), cid)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (nk.root / cid).exists() and cgroup_dirs_of(cid) == []


# ---- user namespaces -----------------------------------------------------------------------------------
@pytest.fixture
def mapped_rootfs(busybox_rootfs):
    """A copy of the busybox rootfs owned by host uid/gid 100000 (container root), in a directory
    the mapped root can traverse (pytest's own tmp dirs are 0700)."""
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="nk-userns-", dir="/tmp"))
    top.chmod(0o711)
    r = top / "rootfs"
    shutil.copytree(busybox_rootfs, r, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(r):
        for name in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), 100000, 100000)
    os.lchown(r, 100000, 100000)
    yield r
    shutil.rmtree(top)


def userns(c, ro: bool = True):
    c["linux"]["namespaces"] += [{"type": "user"}, {"type": "cgroup"}]
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["root"]["readonly"] = ro


@pytest.fixture
def userns_bundle(make_bundle, mapped_rootfs):
    """``make(script) -> bundle``: ``sh -c script`` in a user namespace (root mapped to host
    100000), a read-only root, and ``/data`` bound read-only from a nosuid,nodev directory of the
    host: its locked flags must survive the remount."""
    shared = mapped_rootfs.parent / "shared"
    shared.mkdir()
    (shared / "f").write_text("host data\n")

    def mutate(c):
        userns(c)
        c["mounts"].append({"destination": "/data", "type": "bind", "source": str(shared), "options": ["rbind", "ro", "nosuid", "nodev"]})

    def make(script: str):
        b = make_bundle(["sh", "-c", script], mutate)
        os.unlink(b / "rootfs")
        os.symlink(mapped_rootfs, b / "rootfs")
        return b

    return make


def test_user_namespace_maps_root(nk, userns_bundle):
    b = userns_bundle("id -u")
    cid = unique_id("userns")
    nk.ok("create", "-b", b, cid)
    pid = nk.state(cid)["pid"]
    with open(f"/proc/{pid}/status") as f:
        uid_line = next(line for line in f if line.startswith("Uid:"))
    assert uid_line.split()[1:] == ["100000"] * 4  # host view: mapped root
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    nk.ok("start", cid)
    nk.wait_status(cid, "stopped")
    nk.ok("delete", cid)


def test_user_namespace_container_output(nk, userns_bundle):
    b = userns_bundle("id -u; cat /proc/self/uid_map; stat -c '%u' /bin/busybox; cat /data/f; touch /x 2>&1; test -c /dev/null && echo dev-null-ok")
    r = nk("run", "-b", b, unique_id("userns"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2] == "0"  # owned by host 100000 = container root
    assert lines[3] == "host data"
    assert lines[4] == "touch: /x: Read-only file system"
    assert lines[5] == "dev-null-ok"
