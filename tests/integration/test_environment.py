"""The container environment config.json asks for, observed from inside real containers
(/proc/self/status, /proc/self/limits, the mount table, ls -l /dev ...), plus the bad inputs
for each field that can be wrong."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import cgroup_dirs_of, unique_id

pytestmark = pytest.mark.root


def run_in(nk, make_bundle, script: str, mutate=None, cid_prefix="env"):
    """Run ``sh -c script`` in a fresh container; return (returncode, stdout, stderr)."""
    cid = unique_id(cid_prefix)
    r = nk("run", "-b", make_bundle(["sh", "-c", script], mutate), cid)
    return r.returncode, r.stdout, r.stderr


def status_fields(text: str) -> dict:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines() if ":" in line)}


def caps_mask(names):
    from nano_sandbox.linux.caps import CAP_NUMBERS

    m = 0
    for n in names:
        m |= 1 << CAP_NUMBERS[n]
    return f"{m:016x}"


# ---- process settings -------------------------------------------------------------------------------
def test_all_five_capability_sets_are_applied_exactly(nk, make_bundle):
    sets = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETPCAP"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "ambient": ["CAP_KILL"],
    }

    def mutate(c):
        c["process"]["capabilities"] = sets
        c["process"]["user"] = {"uid": 1000, "gid": 1000}

    code, out, err = run_in(nk, make_bundle, "grep Cap /proc/self/status", mutate)
    assert code == 0, err
    f = status_fields(out)
    # A non-root execve keeps what the ambient set carries (capabilities(7)).
    assert f["CapBnd"] == caps_mask(sets["bounding"])
    assert f["CapInh"] == caps_mask(sets["inheritable"])
    assert f["CapAmb"] == caps_mask(["CAP_KILL"])
    assert f["CapPrm"] == caps_mask(["CAP_KILL"])
    assert f["CapEff"] == caps_mask(["CAP_KILL"])


def test_root_keeps_exactly_its_capabilities(nk, make_bundle):
    caps = ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"]

    def mutate(c):
        c["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}

    code, out, err = run_in(nk, make_bundle, "grep Cap /proc/self/status", mutate)
    assert code == 0, err
    f = status_fields(out)
    assert f["CapBnd"] == f["CapPrm"] == f["CapEff"] == caps_mask(caps)
    assert f["CapInh"] == f["CapAmb"] == "0" * 16


def test_unknown_and_ungrantable_capabilities_are_warnings(nk, make_bundle):
    with open("/proc/self/status") as f:
        bnd = int(status_fields(f.read())["CapBnd"], 16)
    from nano_sandbox.linux.caps import CAP_NUMBERS

    missing = [n for n, i in CAP_NUMBERS.items() if not bnd >> i & 1 and i <= 40]

    def mutate(c):
        c["process"]["capabilities"]["bounding"] += ["CAP_FROM_THE_FUTURE"] + missing[:1]

    code, out, err = run_in(nk, make_bundle, "grep CapBnd /proc/self/status", mutate)
    assert code == 0, err
    assert 'warning: process.capabilities.bounding[3]: unknown capability "CAP_FROM_THE_FUTURE" (ignored)' in err
    if missing:  # this machine's bounding set lacks CAP_SYS_RESOURCE
        assert f"process.capabilities.bounding[4]: {missing[0]} is not in the runtime's bounding set and cannot be granted (ignored)" in err
    assert status_fields(out)["CapBnd"] == caps_mask(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(nk, make_bundle, nnp):
    code, out, err = run_in(nk, make_bundle, "grep NoNewPrivs /proc/self/status", lambda c: c["process"].update(noNewPrivileges=nnp))
    assert code == 0, err
    assert status_fields(out)["NoNewPrivs"] == ("1" if nnp else "0")


def test_user_groups_umask_oom_score_and_env(nk, make_bundle):
    def mutate(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 100], "umask": 0o027}
        c["process"]["oomScoreAdj"] = 321
        c["process"]["env"] = ["PATH=/bin:/usr/bin", "DUP=first", "KEEP=1", "DUP=last"]

    code, out, err = run_in(nk, make_bundle, "id; umask; cat /proc/self/oom_score_adj; env | sort", mutate)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "uid=1000(user) gid=1000(user) groups=5(tty),100(users)"
    assert lines[1] == "0027"
    assert lines[2] == "321"
    env = dict(line.split("=", 1) for line in lines[3:])
    assert env["DUP"] == "last"
    assert env["HOME"] == "/home/user"  # from the container's /etc/passwd
    assert env["KEEP"] == "1"


def test_home_defaults_to_slash_for_an_unknown_user(nk, make_bundle):
    code, out, err = run_in(nk, make_bundle, "echo $HOME", lambda c: c["process"].update(user={"uid": 4242, "gid": 4242}))
    assert (code, out) == (0, "/\n"), err


def test_home_from_config_wins(nk, make_bundle):
    code, out, _ = run_in(nk, make_bundle, "echo $HOME", lambda c: c["process"]["env"].append("HOME=/elsewhere"))
    assert out == "/elsewhere\n"


def test_rlimits_apply_and_unlimited(nk, make_bundle):
    def mutate(c):
        c["process"]["rlimits"] = [
            {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
            {"type": "RLIMIT_CORE", "soft": 18446744073709551615, "hard": 18446744073709551615},
            {"type": "RLIMIT_LOCKS", "soft": 7, "hard": 9},
        ]

    code, out, err = run_in(nk, make_bundle, "grep -E 'open files|core file|file locks' /proc/self/limits", mutate)
    assert code == 0, err
    rows = {" ".join(line.split()[:-3]): line.split()[-3:-1] for line in out.splitlines()}
    assert rows["Max open files"] == ["100", "200"]
    assert rows["Max core file size"] == ["unlimited", "unlimited"]
    assert rows["Max file locks"] == ["7", "9"]


def test_raising_a_hard_limit_above_the_hosts_fails_clearly(nk, make_bundle):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    cid = unique_id("rl")
    b = make_bundle(["true"], lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1000}]))
    r = nk("create", "-b", b, cid)
    if r.returncode == 0:
        pytest.skip("this runtime may raise hard limits here (has CAP_SYS_RESOURCE)")
    assert r.stderr.strip() == (
        f"nk-runtime: create: set rlimit RLIMIT_NOFILE: cannot set hard limit {hard + 1000} (current hard limit {hard}): "
        "raising a hard limit needs CAP_SYS_RESOURCE (EPERM)"
    )
    assert not (nk.root / cid).exists()


def test_scheduler_and_io_priority(nk, make_bundle):
    def mutate(c):
        c["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
        c["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}

    # /proc/self/stat: field 19 is nice, field 41 the policy (3 = SCHED_BATCH).
    code, out, err = run_in(nk, make_bundle, "cut -d' ' -f19,41 /proc/self/stat; ionice -p $$", mutate)
    assert code == 0, err
    stat, io = out.splitlines()
    assert stat.split() == ["7", "3"]
    assert io == "best-effort: prio 6"


def test_cwd_is_created_inside_the_container(nk, make_bundle):
    code, out, err = run_in(nk, make_bundle, "pwd; ls -d /tmp/work/../work/deep", lambda c: c["process"].update(cwd="/tmp/work/deep"))
    assert (code, out) == (0, "/tmp/work/deep\n/tmp/work/../work/deep\n"), err


def test_cwd_cannot_escape_the_rootfs(nk, make_bundle):
    code, out, err = run_in(nk, make_bundle, "pwd; ls /", lambda c: c["process"].update(cwd="/../../../../tmp"))
    assert code == 0, err
    assert out.splitlines()[0] == "/tmp"
    assert "bin" in out.split()  # the container's own root


# ---- filesystem settings ------------------------------------------------------------------------------
def mountinfo(out: str) -> dict:
    """mount point -> (options, fstype, root) from /proc/self/mountinfo lines (last one wins)."""
    res = {}
    for line in out.splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        if len(f) >= 6:
            res[f[4]] = (f[5], right.split()[0], f[3], f[6:])
    return res


def test_masked_and_readonly_paths(nk, make_bundle):
    def mutate(c):
        c["linux"]["maskedPaths"] = ["/proc/kcore", "/proc/keys", "/sys/firmware", "/does/not/exist"]
        c["linux"]["readonlyPaths"] = ["/proc/sys", "/proc/cmdline", "/tmp/ro", "/not/there"]
        c["mounts"].append({"destination": "/tmp/ro", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec"]})

    code, out, err = run_in(nk, make_bundle, "cat /proc/self/mountinfo; echo ---; cat /proc/keys | wc -c; ls /sys/firmware | wc -l; touch /tmp/ro/x 2>&1; exit 0", mutate)
    assert code == 0, err
    info, rest = out.split("---\n")
    mi = mountinfo(info)
    assert mi["/proc/keys"][2] == "/null"  # bind of /dev/null
    assert mi["/sys/firmware"][1] == "tmpfs" and mi["/sys/firmware"][0].startswith("ro")
    assert mi["/proc/sys"][0].startswith("ro")
    assert mi["/proc/cmdline"][0].startswith("ro")  # a file
    opts = mi["/tmp/ro"][0].split(",")
    assert opts[0] == "ro" and {"nosuid", "nodev", "noexec"} <= set(opts)  # flags of the original kept
    lines = rest.splitlines()
    assert lines[0:2] == ["0", "0"]
    assert lines[2] == "touch: /tmp/ro/x: Read-only file system"


def test_devices_and_default_devices(nk, make_bundle):
    def mutate(c):
        c["linux"]["devices"] = [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 1000, "gid": 5},
            {"path": "/dev/loop-test", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
            {"path": "/dev/pipe-test", "type": "p", "fileMode": 0o620},
            {"path": "/dev/sub/dir/null2", "type": "c", "major": 1, "minor": 3},
        ]

    code, out, err = run_in(nk, make_bundle, "stat -c '%n %F %t:%T %a %u %g' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/fuse /dev/loop-test /dev/pipe-test /dev/sub/dir/null2; for l in /dev/fd /dev/stdin /dev/stdout /dev/stderr /dev/ptmx; do readlink $l; done", mutate)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:10] == [
        "/dev/null character special file 1:3 666 0 0",
        "/dev/zero character special file 1:5 666 0 0",
        "/dev/full character special file 1:7 666 0 0",
        "/dev/random character special file 1:8 666 0 0",
        "/dev/urandom character special file 1:9 666 0 0",
        "/dev/tty character special file 5:0 666 0 0",
        "/dev/fuse character special file a:e5 640 1000 5",
        "/dev/loop-test block special file 7:c8 600 0 0",
        "/dev/pipe-test fifo 0:0 620 0 0",
        "/dev/sub/dir/null2 character special file 1:3 666 0 0",
    ]
    assert lines[10:] == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2", "pts/ptmx"]


def test_device_cgroup_denies_what_is_not_allowed(nk, make_bundle):
    def mutate(c):
        c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}]

    code, out, err = run_in(nk, make_bundle, "echo x > /dev/null && echo null-ok; cat /dev/fuse 2>&1 | head -1", mutate)
    assert code == 0, err
    assert out.splitlines() == ["null-ok", "cat: can't open '/dev/fuse': Operation not permitted"]


def test_readonly_root(nk, make_bundle):
    code, out, _ = run_in(nk, make_bundle, "touch /newfile 2>&1; touch /tmp/ok && echo tmp-writable")
    assert out.splitlines() == ["touch: /newfile: Read-only file system", "tmp-writable"]


@pytest.mark.parametrize(("prop", "tag"), [("shared", "shared:"), ("slave", None), ("private", None), ("unbindable", "unbindable")])
def test_rootfs_propagation(nk, make_bundle, prop, tag):
    code, out, err = run_in(nk, make_bundle, "awk '$5 == \"/\"' /proc/self/mountinfo", lambda c: c["linux"].update(rootfsPropagation=prop))
    assert code == 0, err
    fields = out.split(" - ")[0].split()[6:]
    if tag:
        assert any(f.startswith(tag) for f in fields), out
    else:
        assert not any(f.startswith(("shared:", "unbindable")) for f in fields), out


def test_namespaced_sysctls_apply(nk, make_bundle):
    def mutate(c):
        c["linux"]["sysctl"] = {"kernel.shmmax": "123456789", "net.ipv4.ip_forward": "1", "fs.mqueue.msg_max": "20"}

    code, out, err = run_in(nk, make_bundle, "cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward /proc/sys/fs/mqueue/msg_max", mutate)
    assert (code, out.split()) == (0, ["123456789", "1", "20"]), err
    with open("/proc/sys/kernel/shmmax") as f:
        assert f.read().strip() != "123456789"  # the host's value is untouched


def test_host_sysctls_are_refused(nk, make_bundle):
    cid = unique_id("sysctl")
    r = nk("create", "-b", make_bundle(["true"], lambda c: c["linux"].update(sysctl={"vm.swappiness": "10"})), cid)
    assert r.returncode == 1
    assert 'config.json: linux.sysctl["vm.swappiness"]: is not namespaced' in r.stderr
    assert not (nk.root / cid).exists()


def test_personality(nk, make_bundle):
    code, out, _ = run_in(nk, make_bundle, "uname -m", lambda c: c["linux"].update(personality={"domain": "LINUX32"}))
    assert out.strip() in ("i686", "armv8l", "ppc", "s390")


def test_time_namespace_offsets(nk, make_bundle):
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("the kernel has no time namespaces")

    def mutate(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0}, "monotonic": {"secs": 1000}}

    code, out, err = run_in(nk, make_bundle, "cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets", mutate)
    assert code == 0, err
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    lines = out.splitlines()
    assert float(lines[0]) >= host_uptime + 86400 * 365 - 5
    assert sorted(line.split() for line in lines[1:]) == [["boottime", "31536000", "0"], ["monotonic", "1000", "0"]]


# ---- mount destinations inside the rootfs ---------------------------------------------------------------
@pytest.fixture
def private_rootfs(tmp_path, busybox_rootfs):
    """A copy of the busybox rootfs a test may plant symlinks in."""
    r = tmp_path / "own-rootfs"
    shutil.copytree(busybox_rootfs, r, symlinks=True)
    return r


def bundle_with_rootfs(make_bundle, rootfs, args, mutate=None):
    b = make_bundle(args, mutate)
    os.unlink(b / "rootfs")
    os.symlink(rootfs, b / "rootfs")
    return b


@pytest.mark.parametrize("target", ["/etc", "../../../../../../etc", "/no/such/place", "../../../../tmp/outside"])
def test_symlinked_mount_destination_stays_inside_the_rootfs(nk, make_bundle, private_rootfs, tmp_path, target):
    (private_rootfs / "evil").symlink_to(target)
    host_etc_before = sorted(os.listdir("/etc"))

    def mutate(c):
        c["mounts"].append({"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})
        c["root"]["readonly"] = False

    cid = unique_id("sym")
    b = bundle_with_rootfs(make_bundle, private_rootfs, ["sh", "-c", "grep tmpfs /proc/self/mountinfo | grep -c /sub"], mutate)
    r = nk("run", "-b", b, cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"
    assert sorted(os.listdir("/etc")) == host_etc_before  # nothing appeared on the host
    with open("/proc/self/mountinfo") as f:
        assert "/sub " not in f.read()
    assert not os.path.exists("/no/such/place")


@pytest.mark.parametrize("dest", ["/proc", "/sys"])
def test_proc_or_sys_as_a_symlink_is_refused(nk, make_bundle, private_rootfs, dest):
    os.rmdir(private_rootfs / dest.lstrip("/"))
    (private_rootfs / dest.lstrip("/")).symlink_to("/tmp")
    cid = unique_id("procsym")
    r = nk("create", "-b", bundle_with_rootfs(make_bundle, private_rootfs, ["true"]), cid)
    assert r.returncode == 1
    assert f"{dest} is a symlink in the rootfs: refused" in r.stderr
    assert not (nk.root / cid).exists() and cgroup_dirs_of(cid) == []


def test_file_bind_mount_and_tmpcopyup(nk, make_bundle, tmp_path):
    src = tmp_path / "hostfile"
    src.write_text("from the host\n")

    def mutate(c):
        c["mounts"].append({"destination": "/etc/injected", "type": "bind", "source": str(src), "options": ["rbind", "ro"]})
        c["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "size=1m"]})
        c["mounts"].append({"destination": "/etc/injected2", "type": "bind", "source": str(src), "options": ["bind", "ro"]})

    code, out, err = run_in(nk, make_bundle, "cat /etc/injected2; head -1 /etc/passwd; echo x > /etc/injected2 2>&1 || echo ro-bind", mutate)
    assert code == 0, err
    assert out.splitlines()[:2] == ["from the host", "root:x:0:0:root:/root:/bin/sh"]
    assert "ro-bind" in out or "Read-only" in out


# ---- bad inputs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]), 'process.rlimits[0].type: unknown rlimit "RLIMIT_FOO"'),
        (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]), "process.rlimits[0]"),
        (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2), 'process.rlimits[1].type: duplicate rlimit "RLIMIT_NOFILE"'),
        (lambda c: c["process"].update(apparmorProfile="docker-default"), "process.apparmorProfile"),
        (lambda c: c["process"].update(selinuxLabel="system_u:system_r:container_t:s0"), "process.selinuxLabel"),
        (lambda c: c["linux"].update(mountLabel="system_u:object_r:container_file_t:s0"), "linux.mountLabel"),
        (lambda c: c["linux"].update(rootfsPropagation="sideways"), "linux.rootfsPropagation"),
        (lambda c: c["linux"].update(devices=[{"path": "/dev/x", "type": "z", "major": 1, "minor": 1}]), "linux.devices[0].type"),
        (lambda c: c["linux"].update(personality={"domain": "WINDOWS"}), "linux.personality.domain"),
        (lambda c: c["process"].update(cwd="relative"), "process.cwd"),
        (lambda c: c["process"].update(oomScoreAdj="high"), "process.oomScoreAdj: expected int, got str"),
        (lambda c: c["linux"].update(timeOffsets={"monotonic": {"secs": 1}}), "linux.timeOffsets"),
    ],
)
def test_bad_environment_fields_are_refused_with_their_path(nk, make_bundle, mutate, message):
    cid = unique_id("bad")
    r = nk("create", "-b", make_bundle(["true"], mutate), cid)
    assert r.returncode == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert not (nk.root / cid).exists() and cgroup_dirs_of(cid) == []


def test_device_rules_apply_even_without_linux_resources(nk, make_bundle):
    def mutate(c):
        c["linux"].pop("resources", None)
        c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}]

    code, out, err = run_in(nk, make_bundle, "echo x > /dev/null && echo null-ok; cat /dev/fuse 2>&1 | head -1", mutate)
    assert code == 0, err
    assert out.splitlines() == ["null-ok", "cat: can't open '/dev/fuse': Operation not permitted"]


def test_a_pids_limit_of_one_still_lets_the_init_start(nk, make_bundle):
    # Limits are written once the init is ready (as runc does): it has forked already, and only
    # then is the container held to one task.
    code, out, err = run_in(nk, make_bundle, "echo started; /bin/true; echo not-reached",
                            lambda c: c["linux"]["resources"].update(pids={"limit": 1}))
    assert (code, out, err) == (2, "started\n", "sh: can't fork: Resource temporarily unavailable\n")  # ash exits 2
