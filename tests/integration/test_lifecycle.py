"""The lifecycle on real containers: every verb's success path, every forbidden-state error with
its exact message and exit code, pid files, exit statuses, signal forwarding, status derived from
kernel facts, the isolation a container sees, limits, concurrency and cleanup after failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import cgroup_dirs_of, process_alive, unique_id

pytestmark = pytest.mark.root

SLEEP = ["sleep", "1000"]


def test_create_start_kill_delete(nk, make_bundle, tmp_path):
    b = make_bundle(SLEEP)
    cid = unique_id("life")
    pidfile = tmp_path / "init.pid"
    assert nk.ok("create", "--bundle", b, "--pid-file", pidfile, cid) == ""
    st = nk.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid
    assert st["bundle"] == str(b)
    assert pidfile.read_text() == str(st["pid"])  # decimal, no newline
    assert process_alive(st["pid"])
    assert cgroup_dirs_of(cid)  # in its cgroups
    nk.ok("start", cid)
    assert nk.status(cid) == "running"
    nk.ok("kill", cid, "KILL")
    nk.wait_status(cid, "stopped")
    assert "pid" not in nk.state(cid)
    nk.ok("delete", cid)
    assert not (nk.root / cid).exists()
    assert cgroup_dirs_of(cid) == []
    r = nk("state", cid)
    assert r.returncode == 1
    assert r.stderr.strip() == f'nk-runtime: container "{cid}" does not exist'


def test_forbidden_operations_name_the_status(nk, make_bundle):
    b = make_bundle(SLEEP)
    cid = unique_id("forbid")
    nk.ok("create", "-b", b, cid)
    r = nk("create", "-b", b, cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: container "{cid}" already exists')
    r = nk("delete", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot delete container "{cid}": container is created (delete needs stopped)')
    nk.ok("start", cid)
    r = nk("start", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot start container "{cid}": container is running (start needs created)')
    r = nk("delete", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot delete container "{cid}": container is running (delete needs stopped)')
    nk.ok("kill", cid, "9")
    nk.wait_status(cid, "stopped")
    r = nk("kill", cid)
    assert r.returncode == 1 and "container not running" in r.stderr
    r = nk("start", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot start container "{cid}": container is stopped (start needs created)')
    r = nk("resume", cid)
    assert (r.returncode, r.stderr.strip()) == (1, f'nk-runtime: cannot resume container "{cid}": container is stopped (resume needs paused)')
    nk.ok("delete", cid)


def test_delete_force_of_unknown_id_succeeds(nk):
    r = nk("delete", "--force", "no-such-container")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = nk("delete", "no-such-container")
    assert (r.returncode, r.stderr.strip()) == (1, 'nk-runtime: container "no-such-container" does not exist')


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "-x", "has space", "x" * 1025, "é"])
def test_invalid_ids_are_refused_before_anything(nk, make_bundle, bad):
    r = nk("create", "-b", make_bundle(SLEEP), "--", bad)
    assert r.returncode in (1, 2)
    assert "container id" in r.stderr
    assert not nk.root.exists() or nk.ids() == []


@pytest.mark.parametrize(("args", "code"), [(["true"], 0), (["sh", "-c", "exit 42"], 42), (["false"], 1)])
def test_run_exit_codes(nk, make_bundle, args, code):
    cid = unique_id("run")
    r = nk("run", "-b", make_bundle(args), cid)
    assert r.returncode == code, r.stderr
    assert not (nk.root / cid).exists()  # run deletes the container afterwards


def test_run_exit_code_after_sigkill_is_137(nk, make_bundle):
    cid = unique_id("run137")
    b = make_bundle(SLEEP)
    p = subprocess.Popen([*nk.binary, "--root", str(nk.root), "run", "-b", str(b), cid], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    nk.created.add(cid)
    try:
        nk.wait_status(cid, "running")
        nk.ok("kill", cid, "SIGKILL")
        assert p.wait(timeout=30) == 137
    finally:
        p.kill()
        p.wait()


def test_run_forwards_sigterm(nk, make_bundle):
    cid = unique_id("fwd")
    # PID 1 of a pid namespace ignores signals it has no handler for, so the shell traps TERM.
    b = make_bundle(["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.05; done"])
    p = subprocess.Popen([*nk.binary, "--root", str(nk.root), "run", "-b", str(b), cid], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    nk.created.add(cid)
    try:
        nk.wait_status(cid, "running")
        time.sleep(0.2)  # let the shell install its trap
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 7
    finally:
        p.kill()
        p.wait()


def test_run_detach_returns_while_the_container_runs(nk, make_bundle):
    cid = unique_id("detach")
    r = nk("run", "--detach", "-b", make_bundle(SLEEP), cid)
    assert r.returncode == 0, r.stderr
    assert nk.status(cid) == "running"
    nk.ok("delete", "--force", cid)


def test_state_follows_the_kernel_when_the_init_dies(nk, make_bundle):
    cid = unique_id("died")
    nk.ok("create", "-b", make_bundle(SLEEP), cid)
    nk.ok("start", cid)
    pid = nk.state(cid)["pid"]
    os.kill(pid, signal.SIGKILL)
    nk.wait_status(cid, "stopped")
    with open(nk.root / cid / "state.json") as f:
        saved = json.load(f)
    assert saved["status"] == "running"  # state only derives; a locked operation records it
    nk.ok("delete", cid)


def test_a_reused_pid_does_not_look_alive(nk, make_bundle):
    cid = unique_id("reuse")
    nk.ok("create", "-b", make_bundle(SLEEP), cid)
    nk.ok("start", cid)
    path = nk.root / cid / "state.json"
    saved = json.loads(path.read_text())
    real_pid = saved["pid"]
    # Pretend the recorded init started at another time: the pid now belongs to "another" process.
    saved["initStartTime"] = saved["initStartTime"] + 12345
    path.write_text(json.dumps(saved))
    assert nk.status(cid) == "stopped"
    r = nk("kill", cid, "KILL")
    assert r.returncode == 1 and "container not running" in r.stderr
    assert process_alive(real_pid)  # never signalled: it is not "ours" any more
    os.kill(real_pid, signal.SIGKILL)


def test_missing_binary_fails_create_with_runc_text(nk, make_bundle):
    # runc looks the executable up before the init waits, so create fails; podman maps this
    # exact text to exit status 127.
    cid = unique_id("nobin")
    r = nk("create", "-b", make_bundle(["no-such-binary", "x"]), cid)
    assert r.returncode == 1
    assert r.stderr.strip() == 'nk-runtime: create: exec: "no-such-binary": executable file not found in $PATH (ENOENT)'
    assert not (nk.root / cid).exists() and cgroup_dirs_of(cid) == []


def test_binary_gone_by_start_fails_start_with_runc_text(nk, make_bundle, tmp_path, busybox_rootfs):
    import shutil

    rootfs = tmp_path / "rootfs-copy"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    shutil.copy2(rootfs / "bin" / "busybox", rootfs / "bin" / "vanishing")
    b = make_bundle(["vanishing", "true"])
    os.unlink(b / "rootfs")
    os.symlink(rootfs, b / "rootfs")
    cid = unique_id("gone")
    nk.ok("create", "-b", b, cid)
    os.unlink(rootfs / "bin" / "vanishing")
    r = nk("start", cid)
    assert r.returncode == 1
    assert r.stderr.strip() == 'nk-runtime: exec: "vanishing": executable file not found in $PATH'
    nk.wait_status(cid, "stopped")
    nk.ok("delete", cid)


def test_config_without_process_creates_but_does_not_start(nk, make_bundle):
    cid = unique_id("noproc")
    nk.ok("create", "-b", make_bundle(mutate=lambda c: c.pop("process")), cid)
    assert nk.status(cid) == "created"
    r = nk("start", cid)
    assert r.returncode == 1
    assert r.stderr.strip() == f'nk-runtime: cannot start container "{cid}": the config has no process to run (runtime-spec: start fails when process is absent)'
    nk.ok("delete", "--force", cid)


def test_isolation_seen_from_inside(nk, make_bundle):
    cid = unique_id("iso")
    script = "hostname; echo $$; grep -E ' /(proc|dev/pts|dev/shm|sys) ' /proc/self/mounts | cut -d' ' -f2,3,4; ls /sys/class/net; id -u"
    r = nk("run", "-b", make_bundle(["sh", "-c", script]), cid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "nano-sandbox"
    assert lines[1] == "1"
    mounts = {line.split()[0]: line.split()[1:] for line in lines[2:6]}
    assert mounts["/proc"][0] == "proc"
    assert mounts["/dev/pts"][0] == "devpts"
    assert mounts["/dev/shm"][0] == "tmpfs"
    assert mounts["/sys"][0] == "sysfs" and mounts["/sys"][1].startswith("ro,")
    assert lines[6:] == ["lo", "0"]


def test_relative_root_path_resolves_against_the_bundle_not_the_cwd(nk, make_bundle, tmp_path):
    cid = unique_id("cwd")
    b = make_bundle(["true"])
    other = tmp_path / "elsewhere"
    other.mkdir()
    r = nk("run", "--bundle", b, cid, cwd=other)
    assert r.returncode == 0, r.stderr


def test_memory_limit_is_enforced(nk, make_bundle):
    cid = unique_id("oom")
    limit = 32 * 1024 * 1024

    def mutate(c):
        c["linux"]["resources"]["memory"] = {"limit": limit}

    # awk doubles a string until the cgroup's limit OOM-kills it.
    b = make_bundle(["awk", "BEGIN { s = \"x\"; while (1) s = s s }"], mutate)
    nk.ok("create", "-b", b, cid)
    mem = [d for d in cgroup_dirs_of(cid) if "/memory/" in d or d.endswith("/memory")]
    if mem:
        with open(mem[0] + "/memory.limit_in_bytes") as f:
            assert int(f.read()) == limit
    nk.ok("start", cid)
    nk.wait_status(cid, "stopped", timeout=30)
    if mem:
        with open(mem[0] + "/memory.oom_control") as f:
            fields = dict(line.split() for line in f)
        assert int(fields["oom_kill"]) >= 1
    nk.ok("delete", cid)


def test_pids_limit_is_enforced(nk, make_bundle):
    cid = unique_id("pids")

    def mutate(c):
        c["linux"]["resources"]["pids"] = {"limit": 5}

    script = "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>/dev/null; sleep 0.2; ps -o pid | grep -c ."
    r = nk("run", "-b", make_bundle(["sh", "-c", script], mutate), cid)
    # sh (1) + 4 sleeps fit in 5 tasks; ps itself then cannot be forked, or the count stays under the limit.
    assert "can't fork" in r.stderr or int(r.stdout.strip() or 0) <= 6


def test_list_formats(nk, make_bundle):
    a, b = unique_id("la"), unique_id("lb")
    nk.ok("create", "-b", make_bundle(SLEEP), a)
    nk.ok("create", "-b", make_bundle(SLEEP), b)
    nk.ok("start", b)
    assert nk.ok("list", "-q").split() == sorted([a, b])
    docs = {d["id"]: d for d in json.loads(nk.ok("list", "--format", "json"))}
    assert docs[a]["status"] == "created" and docs[b]["status"] == "running"
    table = nk.ok("list").splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert len(table) == 3


def test_failed_create_leaves_nothing_behind(nk, make_bundle, tmp_path):
    cid = unique_id("fail")

    def mutate(c):
        c["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path / "missing"), "options": ["rbind"]})

    r = nk("create", "-b", make_bundle(SLEEP, mutate), cid)
    assert r.returncode == 1
    assert r.stderr.strip() == f"nk-runtime: create: mount {tmp_path / 'missing'} on /data: source {tmp_path / 'missing'}: No such file or directory (ENOENT)"
    assert not (nk.root / cid).exists()
    assert cgroup_dirs_of(cid) == []


def test_log_file_gets_json_error_lines(nk, make_bundle, tmp_path):
    log = tmp_path / "log.json"
    r = nk("--log", log, "--log-format=json", "start", "nope")
    assert r.returncode == 1
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["level"] == "error"
    assert lines[0]["msg"] == 'container "nope" does not exist'
    assert set(lines[0]) == {"level", "msg", "time"}
    assert json.loads(r.stderr) == lines[0]  # the same JSON line on stderr, as engines read it


def test_parallel_creates_of_distinct_ids(nk, make_bundle):
    b = make_bundle(SLEEP)
    ids = [unique_id(f"par{i}") for i in range(20)]
    results = {}

    def create(cid):
        results[cid] = nk("create", "-b", b, cid)

    threads = [threading.Thread(target=create, args=(cid,)) for cid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for cid in ids:
        assert results[cid].returncode == 0, results[cid].stderr
        assert "Traceback" not in results[cid].stderr
    assert sorted(nk.ok("list", "-q").split()) == sorted(ids)
    for cid in ids:
        assert nk.status(cid) == "created"


def test_parallel_creates_of_one_id(nk, make_bundle):
    b = make_bundle(SLEEP)
    cid = unique_id("same")
    results = []

    def create():
        results.append(nk("create", "-b", b, cid))

    threads = [threading.Thread(target=create) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.returncode == 0]
    assert len(ok) == 1
    for r in results:
        if r.returncode != 0:
            assert r.stderr.strip() == f'nk-runtime: container "{cid}" already exists'
    assert nk.status(cid) == "created"


def test_state_while_delete_runs(nk, make_bundle):
    b = make_bundle(SLEEP)
    cid = unique_id("race")
    nk.ok("create", "-b", b, cid)
    nk.ok("start", cid)
    outputs = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            outputs.append(nk("state", cid))

    threads = [threading.Thread(target=poll) for _ in range(3)]
    for t in threads:
        t.start()
    r = nk("delete", "--force", cid)
    stop.set()
    for t in threads:
        t.join()
    assert r.returncode == 0, r.stderr
    assert outputs
    for o in outputs:
        assert "Traceback" not in o.stderr
        if o.returncode == 0:
            assert json.loads(o.stdout)["status"] in ("running", "stopped")
        else:
            assert o.stderr.strip() == f'nk-runtime: container "{cid}" does not exist'


def test_lock_files_do_not_pile_up(nk, make_bundle):
    b = make_bundle(["true"])
    for i in range(3):
        r = nk("run", "-b", b, unique_id(f"lockfile{i}"))
        assert r.returncode == 0, r.stderr
    nk("start", "no-such-container")
    r = nk("create", "-b", make_bundle(["no-such-binary"]), unique_id("failed"))
    assert r.returncode == 1
    assert sorted(os.listdir(nk.root / ".locks")) == []


def test_operations_waiting_on_a_deleted_containers_lock(nk, make_bundle):
    # Many operations queue on one container's lock while it is deleted and its lock file
    # removed: each still gets a lock of its own (none acts on a stale file), none crashes.
    b = make_bundle(SLEEP)
    cid = unique_id("lockrace")
    nk.ok("run", "-d", "-b", b, cid)
    results = []

    def op(args):
        results.append((args, nk(*args)))

    jobs = [("delete", "--force", cid)] + [("kill", cid, "SIGCONT")] * 4 + [("create", "-b", b, cid)] * 3
    threads = [threading.Thread(target=op, args=(a,)) for a in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for args, r in results:
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, (args, r.stderr)
    creates = [r for args, r in results if args[0] == "create"]
    assert sum(r.returncode == 0 for r in creates) <= 1  # only one create can win the id
    for r in creates:
        assert r.returncode == 0 or r.stderr.strip() == f'nk-runtime: container "{cid}" already exists'
    for args, r in results:
        if args[0] == "kill":
            assert r.returncode == 0 or "does not exist" in r.stderr or "not running" in r.stderr, r.stderr
    nk("delete", "--force", cid)
    assert sorted(os.listdir(nk.root / ".locks")) == []


def test_a_16_mib_memory_limit_is_plenty_for_the_init(nk, make_bundle):
    # The init is forked before the runtime imports anything heavy and only its own pages are
    # charged to the container: it reaches execve far under a 16 MiB limit.
    def mutate(c):
        c["linux"]["namespaces"].append({"type": "cgroup"})
        c["linux"]["resources"]["memory"] = {"limit": 16 * 1024 * 1024}

    r = nk("run", "-b", make_bundle(["cat", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes"], mutate), unique_id("mem16"))
    assert r.returncode == 0, r.stderr
    if r.stdout.strip():  # a v1 memory hierarchy
        assert int(r.stdout) < 8 * 1024 * 1024


def test_kill_with_signal_0_checks_the_container_is_alive(nk, make_bundle):
    cid = unique_id("sig0")
    nk.ok("run", "-d", "-b", make_bundle(SLEEP), cid)
    assert nk("kill", cid, "0").returncode == 0
    assert nk.status(cid) == "running"
    nk.ok("kill", cid, "KILL")
    nk.wait_status(cid, "stopped")
    r = nk("kill", cid, "0")
    assert r.returncode == 1 and "container not running" in r.stderr
    r = nk("kill", cid, "65")
    assert r.returncode == 1 and r.stderr.strip() == "nk-runtime: signal '65': out of range (0..64)"


def test_run_without_process_fails_and_cleans_up(nk, make_bundle):
    cid = unique_id("runnoproc")
    r = nk("run", "-b", make_bundle(mutate=lambda c: c.pop("process")), cid, timeout=30)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == "nk-runtime: warning: process: not set; the container can be created but not started"
    assert r.stderr.splitlines()[-1] == f'nk-runtime: cannot start container "{cid}": the config has no process to run (runtime-spec: start fails when process is absent)'
    assert not (nk.root / cid).exists() and cgroup_dirs_of(cid) == []


def test_a_cgroup_in_use_is_not_shared(nk, make_bundle, tmp_path):
    from conftest import Runtime

    b = make_bundle(SLEEP)
    cid = unique_id("shared")
    nk.ok("run", "-d", "-b", b, cid)
    other = Runtime(tmp_path / "other-root")
    r = other("create", "-b", b, cid)  # same id, another root: the same default cgroup
    try:
        assert r.returncode == 1
        assert "already holds processes" in r.stderr and "refusing to share it" in r.stderr
        assert nk.status(cid) == "running"  # untouched
        assert not (other.root / cid).exists()
    finally:
        other("delete", "--force", cid)
    assert nk.status(cid) == "running"


def test_a_create_killed_half_way_is_cleaned_up_by_delete(nk, make_bundle):
    import subprocess

    cid = unique_id("killed")
    # A preserve-fds count that makes the init take a moment, so the runtime can be killed mid-way.
    p = subprocess.Popen([*nk.binary, "--root", str(nk.root), "create", "-b", str(make_bundle(SLEEP)), cid],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nk.created.add(cid)
    deadline = time.monotonic() + 10
    while not cgroup_dirs_of(cid) and time.monotonic() < deadline:
        time.sleep(0.001)
    p.kill()
    p.wait()
    r = nk("state", cid)
    if r.returncode == 0:
        assert json.loads(r.stdout)["status"] in ("stopped", "created")
    nk.ok("delete", "--force", cid)
    deadline = time.monotonic() + 5
    while cgroup_dirs_of(cid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cgroup_dirs_of(cid) == []
