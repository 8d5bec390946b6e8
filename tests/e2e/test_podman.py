"""podman (with conmon) driving the runtime under test: ``podman --runtime <nk-runtime> ...``.

Every scenario runs a real container through podman's whole path: podman writes the bundle
(``tmpcopyup`` mounts, file bind mounts, its full seccomp profile, ``memory.swap``), conmon runs
``create``/``start``/``exec``/``kill``/``delete`` and waits as the subreaper, podman calls
``pause``/``resume``/``update``/``kill``/``delete`` itself. The rootfs is a private copy of the
example busybox rootfs given with ``--rootfs`` (no registry, no network); one test imports it as
an image. ``NK_E2E_RUNTIME=/usr/sbin/runc`` runs the same scenarios against runc.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from .conftest import MEMORY_LIMIT_INSIDE, PIDS_LIMIT_INSIDE, comm, read_proc_status, run_in_pty

pytestmark = [pytest.mark.root, pytest.mark.e2e]

#: A container process that keeps running and exits 0 at once on SIGTERM (PID 1 has no default
#: action for SIGTERM: without the trap, ``podman stop`` would wait for its timeout).
SERVER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"]


@pytest.fixture
def detached(podman, rootfs):
    """Start a detached container (extra ``podman run`` options as arguments); force-removed after."""
    made = []

    def start(*opts) -> str:
        cid = podman.ok("run", "-d", *opts, "--rootfs", rootfs, *SERVER).strip()
        made.append(cid)
        podman.wait_state(cid, "running")
        return cid

    yield start
    for cid in made:
        podman("rm", "--force", "--time", "0", cid)


def _ps(podman, cid: str) -> list[tuple[int, str]]:
    """(host pid, command line) of every process in the container's cgroup."""
    out = []
    for pid in podman.cgroup(cid).procs():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as c:
                out.append((pid, c.read().replace(b"\0", b" ").decode().strip()))
        except OSError:
            pass
    return out


def test_run_prints_the_output_and_removes_the_container(podman, rootfs):
    r = podman("run", "--rm", "--rootfs", rootfs, "echo", "hello")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr


@pytest.mark.parametrize(("args", "code"), [(["sh", "-c", "exit 3"], 3), (["true"], 0), (["false"], 1),
                                            (["sh", "-c", "exit 255"], 255)])
def test_exit_status_propagates(podman, rootfs, args, code):
    r = podman("run", "--rm", "--rootfs", rootfs, *args)
    assert r.returncode == code, r.stderr


@pytest.mark.parametrize("binary", ["no-such-binary", "/no/such/binary"])
def test_missing_binary_exits_127(podman, rootfs, binary):
    # podman maps the runtime's create error text (runc's) to 127, as a shell does.
    r = podman("run", "--rm", "--rootfs", rootfs, binary)
    assert r.returncode == 127, r.stderr
    assert "executable file not found in $PATH" in r.stderr or "no such file or directory" in r.stderr


def test_standard_input_reaches_the_container(podman, rootfs):
    r = podman("run", "--rm", "-i", "--rootfs", rootfs, "tr", "a-z", "A-Z", input="piped in\n")
    assert (r.returncode, r.stdout) == (0, "PIPED IN\n"), r.stderr


def test_detached_container_exec_stop_rm(podman, rootfs):
    cid = podman.ok("run", "-d", "--rootfs", rootfs, *SERVER).strip()
    try:
        podman.wait_state(cid, "running")
        # After create, the init was re-parented to conmon, podman's subreaper.
        pid = int(podman.inspect(cid, "{{.State.Pid}}"))
        assert comm(int(read_proc_status(pid, "PPid"))) == "conmon"

        r = podman("exec", cid, "sh", "-c", "echo in-exec; echo to-stderr >&2; exit 4")
        assert (r.returncode, r.stdout, r.stderr) == (4, "in-exec\n", "to-stderr\n")
        r = podman("exec", cid, "no-such-binary")
        assert r.returncode == 127, r.stderr
        assert podman.ok("exec", "-e", "X=1", "-w", "/etc", cid, "sh", "-c", "echo $X; pwd") == "1\n/etc\n"

        # exec --detach: the process is left to conmon too, and runs in the container.
        podman.ok("exec", "-d", cid, "sleep", "777")
        deadline = time.monotonic() + 10
        while not (found := [p for p, cmd in _ps(podman, cid) if cmd == "sleep 777"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert found, _ps(podman, cid)
        assert comm(int(read_proc_status(found[0], "PPid"))) == "conmon"

        t0 = time.monotonic()
        podman.ok("stop", "--time", "10", cid)
        assert time.monotonic() - t0 < 8, "SIGTERM did not reach the container's init"
        assert podman.inspect(cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    finally:
        podman("rm", "--force", "--time", "0", cid)
    assert podman("inspect", cid).returncode != 0


def test_kill_and_wait_report_the_signal(podman, detached):
    cid = detached()
    podman.ok("kill", "--signal", "KILL", cid)
    assert podman.ok("wait", cid).strip() == "137"
    podman.ok("rm", cid)


def test_memory_limit_is_in_the_containers_cgroup(podman, detached):
    cid = detached("--memory", "64m")
    host = podman.cgroup(cid)
    assert host.memory_limit() == str(64 << 20)
    # podman asks for memory.swap = twice the memory (limit + swap) when swap accounting is on.
    assert host.memory_and_swap_limit() in (None, 128 << 20)
    assert podman.ok("exec", cid, "sh", "-c", MEMORY_LIMIT_INSIDE).strip() == str(64 << 20)


def test_pids_limit(podman, rootfs):
    out = podman.ok("run", "--rm", "--pids-limit", "42", "--rootfs", rootfs, "sh", "-c", PIDS_LIMIT_INSIDE)
    assert out.strip() == "42"


def test_terminal(podman, rootfs):
    code, out = run_in_pty(podman.argv("run", "--rm", "-t", "--rootfs", rootfs, "sh", "-c", "tty; stty size; exit 5"),
                           env=podman.env, rows=30, cols=100)
    assert code == 5, out
    assert "/dev/pts/0\n" in out and "30 100\n" in out, out


def test_interactive_terminal(podman, rootfs):
    # What the user types reaches the container's shell through conmon and the container's pty.
    code, out = run_in_pty(podman.argv("run", "--rm", "-it", "--rootfs", rootfs, "sh"), env=podman.env,
                           typed=b"echo typed-$((6*7)); exit 7\n")
    assert code == 7, out
    assert "typed-42\n" in out, out


def test_exec_with_a_terminal(podman, detached):
    cid = detached()
    # (no size check: podman sends exec's terminal size after the process started, a race)
    code, out = run_in_pty(podman.argv("exec", "-t", cid, "sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; exit 9"),
                           env=podman.env)
    assert code == 9, out
    assert "/dev/pts/" in out and "stdio-is-a-tty\n" in out, out


def test_read_only_root(podman, rootfs):
    r = podman("run", "--rm", "--read-only", "--rootfs", rootfs, "sh", "-c",
               "touch /x 2>&1; echo rc=$?; touch /tmp/y && echo tmp-writable")
    assert r.returncode == 0, r.stderr
    assert "Read-only file system" in r.stdout and "rc=1" in r.stdout and "tmp-writable" in r.stdout
    assert not (rootfs / "x").exists()


def test_user(podman, rootfs):
    out = podman.ok("run", "--rm", "--user", "1000:1000", "--rootfs", rootfs, "sh", "-c", "id -u; id -g; id -G")
    assert out.split() == ["1000", "1000", "1000"]


def test_env_and_workdir(podman, rootfs):
    out = podman.ok("run", "--rm", "-e", "FOO=bar baz", "--workdir", "/etc", "--rootfs", rootfs, "sh", "-c", 'echo "$FOO"; pwd')
    assert out == "bar baz\n/etc\n"


def test_pause_and_unpause(podman, detached):
    cid = detached()
    podman.ok("pause", cid)
    assert podman.inspect(cid, "{{.State.Status}}") == "paused"
    assert podman.cgroup(cid).frozen()
    podman.ok("unpause", cid)
    assert podman.inspect(cid, "{{.State.Status}}") == "running"
    assert not podman.cgroup(cid).frozen()
    assert podman.ok("exec", cid, "echo", "alive") == "alive\n"


def test_update_memory(podman, detached):
    # podman 4.3 has `podman update`: it writes a LinuxResources file and calls `update --resources`.
    cid = detached("--memory", "64m")
    podman.ok("update", "--memory", "128m", cid)
    assert podman.cgroup(cid).memory_limit() == str(128 << 20)
    assert podman.ok("exec", cid, "sh", "-c", MEMORY_LIMIT_INSIDE).strip() == str(128 << 20)
    # (podman 4.3's inspect keeps showing the old HostConfig.Memory, with runc too.)


def test_image_imported_from_a_local_archive(podman, rootfs):
    tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True).stdout
    ref = f"localhost/nk-e2e-busybox-{os.getpid()}"
    r = subprocess.run(podman.argv("import", "-", ref), input=tar, capture_output=True, env=podman.env, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    try:
        out = podman.ok("run", "--rm", ref, "sh", "-c", "echo from-image; head -n 1 /proc/self/mountinfo")
        # the root is the container's layer in podman's store (vfs: a directory the runtime binds)
        first, root = out.splitlines()
        assert first == "from-image" and root.split()[3].startswith(str(podman.dir / "root" / "vfs" / "dir")), out
    finally:
        podman("rmi", "--force", ref)
