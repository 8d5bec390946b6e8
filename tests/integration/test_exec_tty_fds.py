"""Into the container: exec, terminals and console sockets, inherited fds — on real containers,
with a small console-socket receiver as conmon or containerd-shim would run it."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import time

import pytest

from conftest import cgroup_dirs_of, unique_id

pytestmark = pytest.mark.root

SLEEP = ["sleep", "1000"]


class ConsoleReceiver:
    """A console socket server: accepts one connection and receives the pty master, checking it
    arrives as exactly one message with exactly one SCM_RIGHTS fd."""

    def __init__(self, path) -> None:
        self.path = str(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(1)

    def receive(self, timeout: float = 10) -> tuple[bytes, int]:
        self.srv.settimeout(timeout)
        conn, _ = self.srv.accept()
        with conn:
            msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 8)
            assert len(fds) == 1, f"expected exactly one fd, got {fds}"
            rest = conn.recv(16)  # nothing more follows
            assert rest == b""
        return msg, fds[0]

    def close(self) -> None:
        self.srv.close()


def talk(master: int, text: bytes, until: bytes, timeout: float = 10) -> bytes:
    """Type ``text`` into the pty and read until ``until`` appears (or EOF)."""
    os.write(master, text)
    out = b""
    deadline = time.monotonic() + timeout
    while until not in out and time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def tty_bundle(make_bundle, args=("sh",), size=(33, 101)):
    def mutate(c):
        c["process"]["terminal"] = True
        c["process"]["consoleSize"] = {"height": size[0], "width": size[1]}

    return make_bundle(list(args), mutate)


# ---- terminals ------------------------------------------------------------------------------------
def test_console_socket_receives_the_pty_master(nk, make_bundle, tmp_path):
    rx = ConsoleReceiver(tmp_path / "console.sock")
    cid = unique_id("tty")
    try:
        nk.ok("create", "-b", tty_bundle(make_bundle), "--console-socket", rx.path, cid)
        name, master = rx.receive()
        assert name == b"/dev/ptmx"
        nk.ok("start", cid)
        out = talk(master, b"tty; stty size; echo $((6*7)); stat -c '%t %F' /dev/console\n", b"character special file")
        text = out.decode().replace("\r", "")
        assert "/dev/pts/0\n33 101\n42\n88 character special file" in text  # 0x88 = 136: a pts
        os.write(master, b"exit 7\n")
        nk.wait_status(cid, "stopped")
        os.close(master)
    finally:
        rx.close()


def test_terminal_without_console_socket_is_refused_by_create(nk, make_bundle):
    cid = unique_id("notty")
    r = nk("create", "-b", tty_bundle(make_bundle), cid)
    assert r.returncode == 1
    assert r.stderr.strip() == "nk-runtime: config.json: process.terminal: is true but no --console-socket was given to receive the terminal"
    assert not (nk.root / cid).exists() and cgroup_dirs_of(cid) == []


def test_run_in_the_foreground_uses_the_callers_terminal(nk, make_bundle):
    cid = unique_id("fgtty")
    master, slave = pty.openpty()
    p = subprocess.Popen([*nk.binary, "--root", str(nk.root), "run", "-b", str(tty_bundle(make_bundle)), cid],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    nk.created.add(cid)
    os.close(slave)
    try:
        out = talk(master, b"echo inside-$((40+2)); tty; exit 5\n", b"inside-42")
        assert b"inside-42" in out
        assert p.wait(timeout=30) == 5
    finally:
        p.kill()
        p.wait()
        os.close(master)


def test_without_terminal_stdio_passes_through(nk, make_bundle):
    cid = unique_id("stdio")
    r = nk("run", "-b", make_bundle(["sh", "-c", "cat; echo to-stderr >&2"]), cid, input="piped in\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "piped in\n", "to-stderr\n")


# ---- exec -------------------------------------------------------------------------------------------
@pytest.fixture
def running(nk, make_bundle):
    cid = unique_id("exec")
    nk.ok("run", "--detach", "-b", make_bundle(SLEEP), cid)
    return cid


def test_exec_output_and_exit_codes(nk, running):
    r = nk("exec", running, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    r = nk("exec", running, "sh", "-c", "kill -9 $$")
    assert r.returncode == 137


def test_exec_missing_binary_is_a_runtime_failure(nk, running):
    r = nk("exec", running, "no-such-binary")
    assert r.returncode == 255
    assert r.stderr.strip() == 'nk-runtime: exec: "no-such-binary": executable file not found in $PATH'


def test_exec_flags(nk, running):
    r = nk("exec", "--cwd", "/tmp", "--env", "FOO=bar", "--user", "1000:100", "--additional-gids", "5",
           running, "sh", "-c", "pwd; echo $FOO; id")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["/tmp", "bar", "uid=1000(user) gid=100(users) groups=5(tty)"]


def test_exec_process_json(nk, running, tmp_path):
    proc = {"args": ["sh", "-c", "echo $X; id -u; cat /proc/self/status | grep NoNewPrivs"], "env": ["X=from-json", "PATH=/bin"],
            "cwd": "/", "user": {"uid": 1000, "gid": 1000}, "noNewPrivileges": True}
    f = tmp_path / "process.json"
    f.write_text(json.dumps(proc))
    r = nk("exec", "--process", f, running)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["from-json", "1000", "NoNewPrivs:", "1"]


def test_exec_bad_process_json_names_the_field(nk, running, tmp_path):
    f = tmp_path / "process.json"
    f.write_text(json.dumps({"args": ["true"], "cwd": "/", "user": {"uid": "root"}}))
    r = nk("exec", "--process", f, running)
    assert r.returncode == 255
    assert r.stderr.strip() == "nk-runtime: process.json: user.uid: expected int, got str"


def test_exec_detach_pid_file_namespaces_and_cgroup_equal_the_inits(nk, running, tmp_path):
    pidfile = tmp_path / "exec.pid"
    r = nk("exec", "--detach", "--pid-file", pidfile, running, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    text = pidfile.read_text()
    assert text.isdigit()  # decimal, no newline
    pid, init = int(text), nk.state(running)["pid"]
    for ns in ("ipc", "mnt", "net", "pid", "uts", "cgroup", "user"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/{init}/ns/{ns}"), ns
    with open(f"/proc/{pid}/cgroup") as a, open(f"/proc/{init}/cgroup") as b:
        assert a.read() == b.read()


def test_exec_into_a_created_container(nk, make_bundle):
    cid = unique_id("execcreated")
    nk.ok("create", "-b", make_bundle(SLEEP), cid)
    r = nk("exec", cid, "hostname")
    assert (r.returncode, r.stdout) == (0, "nano-sandbox\n")
    assert nk.status(cid) == "created"


def test_exec_refused_on_stopped_and_paused(nk, make_bundle, running):
    nk.ok("pause", running)
    r = nk("exec", running, "true")
    assert (r.returncode, r.stderr.strip()) == (255, f'nk-runtime: cannot exec container "{running}": container is paused (exec needs created or running)')
    nk.ok("resume", running)
    nk.ok("kill", running, "KILL")
    nk.wait_status(running, "stopped")
    r = nk("exec", running, "true")
    assert (r.returncode, r.stderr.strip()) == (255, f'nk-runtime: cannot exec container "{running}": container is stopped (exec needs created or running)')


def test_exec_with_a_tty_and_console_socket(nk, running, tmp_path):
    rx = ConsoleReceiver(tmp_path / "exec-console.sock")
    try:
        p = subprocess.Popen([*nk.binary, "--root", str(nk.root), "exec", "--tty", "--detach", "--console-socket", rx.path, running, "sh"])
        name, master = rx.receive()
        assert p.wait(timeout=30) == 0
        assert name == b"/dev/ptmx"
        out = talk(master, b"tty; echo $((5*5)); exit\n", b"25")
        assert b"/dev/pts/" in out and b"25" in out
        os.close(master)
    finally:
        rx.close()


def test_exec_with_a_tty_in_the_foreground(nk, running):
    master, slave = pty.openpty()
    p = subprocess.Popen([*nk.binary, "--root", str(nk.root), "exec", "-t", running, "sh"], stdin=slave, stdout=slave, stderr=slave,
                         start_new_session=True)
    os.close(slave)
    try:
        out = talk(master, b"echo exec-$((2+3)); exit 4\n", b"exec-5")
        assert b"exec-5" in out
        assert p.wait(timeout=30) == 4
    finally:
        p.kill()
        p.wait()
        os.close(master)


def test_a_shebang_to_proc_self_exe_is_refused(nk, running):
    nk.ok("exec", running, "sh", "-c", "printf '#!/proc/self/exe\\n' > /tmp/evil; chmod +x /tmp/evil; ln -s /proc/self/exe /tmp/link; printf '#!/tmp/link\\n' > /tmp/evil2; chmod +x /tmp/evil2")
    for script in ("/tmp/evil", "/tmp/evil2"):
        r = nk("exec", running, script)
        assert r.returncode == 255
        assert "refusing interpreter /proc/self/exe" in r.stderr


# ---- file descriptors ---------------------------------------------------------------------------------
def test_preserve_fds_and_listen_pid(nk, make_bundle):
    cid = unique_id("fds")
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    os.write(w1, b"through fd 3\n")
    os.close(w1)
    b = make_bundle(["sh", "-c", "cat <&3; echo back >&4; echo LISTEN_PID=$LISTEN_PID; ls /proc/self/fd | sort -n | tr '\\n' ' '"],
                    lambda c: c["process"]["env"].append("LISTEN_FDS=2"))
    cmd = [*nk.binary, "--root", str(nk.root), "run", "--preserve-fds", "2", "-b", str(b), cid]
    # The pipe ends become fds 3 and 4 of nk-runtime (inheritable, as an engine passes them).
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=False,
                         preexec_fn=lambda: (os.dup2(r1, 3), os.dup2(w2, 4)))
    nk.created.add(cid)
    out, err = p.communicate(timeout=60)
    os.close(w2)
    assert p.returncode == 0, err
    lines = out.decode().splitlines()
    assert lines[0] == "through fd 3"
    assert lines[1] == "LISTEN_PID=1"
    assert lines[2].split() == ["0", "1", "2", "3", "4", "5"]  # 5: ls's own directory fd
    assert os.read(r2, 100) == b"back\n"
    os.close(r1)
    os.close(r2)


def _fd_targets(ls_output: str) -> dict[str, list[tuple[int, str]]]:
    """``ls -l DIR...`` output -> {dir: [(fd, target)]}."""
    res: dict[str, list[tuple[int, str]]] = {}
    cur = ""
    for line in ls_output.splitlines():
        if line.endswith(":"):
            cur = line[:-1]
        elif "->" in line:
            left, target = line.split("->")
            res.setdefault(cur, []).append((int(left.split()[-1]), target.strip()))
    return res


def test_no_runtime_fd_reaches_the_container(nk, make_bundle, running):
    cid = unique_id("fdscan")
    r = nk("run", "-b", make_bundle(["sh", "-c", "ls -l /proc/1/fd /proc/self/fd"]), cid)
    assert r.returncode == 0, r.stderr
    got = _fd_targets(r.stdout)
    assert [fd for fd, _ in got["/proc/1/fd"]] == [0, 1, 2]  # the init (sh): stdio only
    extra = [(fd, t) for fd, t in got["/proc/self/fd"] if fd > 2]
    assert all(t.startswith("/proc/") for _, t in extra), extra  # at most ls's own directory
    r = nk("exec", running, "sh", "-c", "ls -l /proc/self/fd /proc/1/fd")
    got = _fd_targets(r.stdout)
    extra = [(fd, t) for fd, t in got["/proc/self/fd"] if fd > 2]
    assert all(t.startswith("/proc/") for _, t in extra), got
    assert [fd for fd, _ in got["/proc/1/fd"]] == [0, 1, 2]  # sleep, the detached init
