"""What a break-it session found: bad arguments get one clear line (never a Python exception's
name), and broken leftovers can always be cleaned up."""

from __future__ import annotations

import os

import pytest

from conftest import cgroup_dirs_of, process_alive, unique_id

pytestmark = pytest.mark.root

SLEEP = ["sleep", "1000"]


@pytest.fixture
def running(nk, make_bundle):
    cid = unique_id("robust")
    nk.ok("run", "--detach", "-b", make_bundle(SLEEP), cid)
    return cid


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "-1"], "--user '-1': expected UID[:GID], numbers from 0 to 4294967294"),
        (["--user", "5:-1"], "--user '5:-1': expected UID[:GID], numbers from 0 to 4294967294"),
        (["--user", "4294967296"], "--user '4294967296': expected UID[:GID], numbers from 0 to 4294967294"),
        (["-e", "=x"], "--env '=x': expected KEY=VALUE"),
        (["--additional-gids", "4294967295"], "--additional-gids 4294967295: expected a number from 0 to 4294967294"),
    ],
)
def test_bad_exec_arguments(nk, running, args, message):
    r = nk("exec", *args, running, "id")
    assert (r.returncode, r.stderr.strip()) == (255, f"nk-runtime: {message}")


def test_exec_pid_file_that_cannot_be_written_kills_the_process(nk, running, tmp_path):
    r = nk("exec", "-d", "--pid-file", tmp_path / "missing" / "x.pid", running, "sleep", "555")
    assert r.returncode == 255
    assert "--pid-file" in r.stderr and "No such file or directory (the process was killed)" in r.stderr
    out = nk.ok("exec", running, "ps", "-o", "args")
    assert "sleep 555" not in out
    assert not list((tmp_path).glob(".x.pid*"))


@pytest.mark.parametrize("verb", ["create", "run"])
def test_preserve_fds_beyond_the_fd_limit(nk, make_bundle, verb):
    cid = unique_id("pfds")
    r = nk(verb, "--preserve-fds", "2147483647", "-b", make_bundle(SLEEP), cid)
    assert r.returncode == 1
    assert "--preserve-fds 2147483647: fds 3..2147483649 exceed this process's open-files limit" in r.stderr
    assert not (nk.root / cid).exists()


def test_log_that_cannot_be_opened_is_refused(nk, tmp_path):
    r = nk("--log", tmp_path / "no" / "such" / "dir" / "log.json", "list")
    assert (r.returncode, r.stderr.strip()) == (1, f"nk-runtime: --log {tmp_path}/no/such/dir/log.json: No such file or directory")


def test_log_that_cannot_be_written_is_a_warning(nk):
    r = nk("--log", "/dev/full", "state", "nope")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "warning: cannot write to the log /dev/full: No space left on device" in r.stderr


def test_root_that_is_empty_or_a_file(nk, tmp_path):
    r = nk("--root", "", "list")
    assert r.returncode == 2 and "--root: must not be empty" in r.stderr
    f = tmp_path / "a-file"
    f.write_text("")
    r = nk("--root", f, "list")
    assert (r.returncode, r.stderr.strip()) == (1, f"nk-runtime: --root {f}: Not a directory")


@pytest.mark.parametrize(
    ("sig", "message"),
    [
        ("RTMIN+40", "out of range (SIGRTMIN..SIGRTMAX is 34..64)"),
        ("RTMAX+1", "out of range (SIGRTMIN..SIGRTMAX is 34..64)"),
        ("²", "unknown signal"),
        ("٣", "unknown signal"),
    ],
)
def test_odd_signal_names(nk, running, sig, message):
    r = nk("kill", running, sig)
    assert r.returncode == 1 and message in r.stderr and "internal error" not in r.stderr
    assert nk.status(running) == "running"


def test_rtmin_signals_reach_the_container(nk, running):
    assert nk("kill", running, "RTMIN+3").returncode == 0


def test_corrupt_state_can_still_be_force_deleted(nk, running):
    pid = nk.state(running)["pid"]
    (nk.root / running / "state.json").write_text("{not json")
    r = nk("state", running)
    assert r.returncode == 1 and "corrupt state file" in r.stderr
    r = nk("delete", "--force", running)
    assert r.returncode == 0
    assert "removing the state directory" in r.stderr
    assert not (nk.root / running).exists()
    os.kill(pid, 9)  # its process and cgroups are unknown to the runtime now: the test cleans up
    import time

    time.sleep(0.2)
    for d in cgroup_dirs_of(running):
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except OSError:
                time.sleep(0.05)


def test_a_state_dir_without_state_json(nk, make_bundle):
    cid = unique_id("nostate")
    (nk.root / cid).mkdir(parents=True)
    assert nk("delete", "--force", cid).returncode == 0
    assert not (nk.root / cid).exists()
    nk.ok("run", "-b", make_bundle(["true"]), cid)  # the id is usable again


def test_ids_up_to_1024_characters(nk, make_bundle):
    cid = "x" * 1024
    nk.ok("run", "-d", "-b", make_bundle(SLEEP), cid)
    assert nk.state(cid)["id"] == cid
    assert nk.ok("list", "-q").split() == [cid]
    nk.ok("delete", "--force", cid)
    assert nk.ids() == []
    r = nk("state", "x" * 1025)
    assert r.returncode in (1, 2) and "longer than 1024" in r.stderr


def test_the_waiting_init_shows_no_host_paths(nk, make_bundle):
    cid = unique_id("title")
    nk.ok("create", "-b", make_bundle(SLEEP), cid)
    pid = nk.state(cid)["pid"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().rstrip(b"\0") == b"nk-runtime init"
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "nk-runtime init"
    assert process_alive(pid)
