"""containerd (through ``ctr`` and the ``io.containerd.runc.v2`` shim) driving the runtime under test:
``ctr run --runc-binary <nk-runtime> ...``.

The shim calls the runtime as containerd does in production: ``--root`` (``--runc-root``),
``--log <bundle>/log.json --log-format json`` (it reads the runtime's errors from there), pid files,
``exec --detach --process FILE``, ``ps --format json``, ``kill``, ``pause``/``resume``,
``delete [--force]``; the shim is the subreaper of every container process. Containers run from a
private copy of the example busybox rootfs (``--rootfs``) or from an OCI image archive built from it
and imported with ``ctr images import`` (no registry, no network). ``NK_E2E_RUNTIME=/usr/sbin/runc``
runs the same scenarios against runc.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import subprocess
import tarfile
import time
import uuid

import pytest

from .conftest import PATH_ENV, comm, read_proc_status, run_in_pty

pytestmark = [pytest.mark.root, pytest.mark.e2e]

SERVER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_rootfs(ctr, rootfs, *args, opts=(), **kw):
    """``ctr run --rm [opts] --rootfs ROOTFS ID ARGS...`` (with a PATH: ctr's default spec has none)."""
    return ctr("run", "--rm", "--env", PATH_ENV, *opts, "--rootfs", str(rootfs), new_id("run"), *args, **kw)


@pytest.fixture
def task(ctr, rootfs):
    """Start a detached task (extra ``ctr run`` options as arguments); returns its id. Killed and
    deleted (task and container) after the test."""
    made = []

    def start(*opts) -> str:
        cid = new_id("task")
        made.append(cid)
        ctr.ok("run", "-d", "--env", PATH_ENV, *opts, "--rootfs", str(rootfs), cid, *SERVER)
        ctr.wait_task(cid, "RUNNING")
        return cid

    yield start
    for cid in made:
        ctr("task", "kill", "--signal", "SIGKILL", cid)
        deadline = time.monotonic() + 10
        while ctr.tasks().get(cid, (0, "STOPPED"))[1] != "STOPPED" and time.monotonic() < deadline:
            time.sleep(0.05)
        ctr("task", "delete", cid)
        ctr("container", "delete", cid)


def test_run_prints_the_output(ctr, rootfs):
    r = run_rootfs(ctr, rootfs, "sh", "-c", "echo hello; echo to-stderr >&2")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hello\n", "to-stderr\n")


@pytest.mark.parametrize(("args", "code"), [(["sh", "-c", "exit 3"], 3), (["true"], 0), (["false"], 1)])
def test_exit_status_propagates(ctr, rootfs, args, code):
    r = run_rootfs(ctr, rootfs, *args)
    assert r.returncode == code, r.stderr


def test_missing_binary_fails_with_the_runtimes_error(ctr, rootfs):
    # The shim reads the runtime's error from log.json and containerd passes it on.
    r = run_rootfs(ctr, rootfs, "no-such-binary")
    assert r.returncode != 0
    assert 'exec: "no-such-binary": executable file not found in $PATH' in r.stderr, r.stderr


def test_detached_task_exec_ps_kill_delete(ctr, task):
    cid = task()
    pid, status = ctr.tasks()[cid]
    assert status == "RUNNING"
    # After create, the init was re-parented to the shim, the subreaper.
    shim = int(read_proc_status(pid, "PPid"))
    assert comm(shim).startswith("containerd-shim")

    r = ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo in-exec; echo to-stderr >&2; exit 6")
    assert (r.returncode, r.stdout, r.stderr) == (6, "in-exec\n", "to-stderr\n")
    r = ctr("task", "exec", "--exec-id", "e2", cid, "no-such-binary")
    assert r.returncode != 0 and "executable file not found in $PATH" in r.stderr, r.stderr
    assert ctr.ok("task", "exec", "--exec-id", "e3", "--cwd", "/etc", cid, "pwd") == "/etc\n"

    # exec --detach: the process is left to the shim too; `ctr task ps` (runtime ps --format json) lists it.
    ctr.ok("task", "exec", "--detach", "--exec-id", "sleeper", cid, "sleep", "555")
    deadline = time.monotonic() + 10
    while "ExecID:sleeper" not in (ps := ctr.ok("task", "ps", cid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = [line.split(None, 1) for line in ps.splitlines()[1:]]
    assert str(pid) in [r[0] for r in rows], ps
    sleeper = [int(r[0]) for r in rows if len(r) > 1 and "ExecID:sleeper" in r[1]]
    assert sleeper, ps
    assert int(read_proc_status(sleeper[0], "PPid")) == shim

    ctr.ok("task", "kill", cid)  # SIGTERM: the trap makes the init exit 0
    ctr.wait_task(cid, "STOPPED")
    r = ctr("task", "delete", cid)
    assert r.returncode == 0, r.stderr
    assert cid not in ctr.tasks()
    ctr.ok("container", "delete", cid)


def test_kill_all_signals_every_process(ctr, task):
    cid = task()
    ctr.ok("task", "exec", "--detach", "--exec-id", "sleeper", cid, "sleep", "555")
    ctr.ok("task", "kill", "--all", "--signal", "SIGKILL", cid)
    ctr.wait_task(cid, "STOPPED")
    assert ctr.cgroup(cid).procs() == []


def test_terminal(ctr, rootfs):
    code, out = run_in_pty(ctr.argv("run", "--rm", "-t", "--env", PATH_ENV, "--rootfs", str(rootfs), new_id("tty"),
                                    "sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; exit 5"))
    assert code == 5, out
    assert "/dev/pts/0\n" in out and "stdio-is-a-tty\n" in out, out


def test_interactive_terminal(ctr, rootfs):
    code, out = run_in_pty(ctr.argv("run", "--rm", "-t", "--env", PATH_ENV, "--rootfs", str(rootfs), new_id("tty"), "sh"),
                           typed=b"echo typed-$((6*7)); exit 7\n")
    assert code == 7, out
    assert "typed-42\n" in out, out


def test_exec_with_a_terminal(ctr, task):
    cid = task()
    code, out = run_in_pty(ctr.argv("task", "exec", "-t", "--exec-id", "t1", cid, "sh", "-c", "tty; exit 9"))
    assert code == 9, out
    assert "/dev/pts/" in out, out


def test_memory_limit(ctr, task):
    cid = task("--memory-limit", str(64 << 20))
    assert ctr.cgroup(cid).memory_limit() == str(64 << 20)


def test_pause_and_resume(ctr, task):
    cid = task()
    ctr.ok("task", "pause", cid)
    assert ctr.tasks()[cid][1] == "PAUSED"
    assert ctr.cgroup(cid).frozen()
    ctr.ok("task", "resume", cid)
    assert ctr.tasks()[cid][1] == "RUNNING"
    assert not ctr.cgroup(cid).frozen()
    assert ctr.ok("task", "exec", "--exec-id", "alive", cid, "echo", "alive") == "alive\n"


# ---- an image imported from a local OCI archive ---------------------------------------------------
def oci_archive(rootfs, ref: str) -> bytes:
    """An OCI image layout tar (what ``ctr images import`` reads) of one uncompressed layer: ``rootfs``."""
    out = io.BytesIO()

    def add(tf, name: str, data: bytes) -> None:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))

    def blob(tf, media_type: str, data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        add(tf, f"blobs/sha256/{digest}", data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as lt:
        lt.add(str(rootfs), arcname=".")
    layer = layer_buf.getvalue()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    with tarfile.open(fileobj=out, mode="w") as tf:
        ldesc = blob(tf, "application/vnd.oci.image.layer.v1.tar", layer)
        config = {"architecture": arch, "os": "linux",
                  "config": {"Env": ["PATH=/bin:/sbin", "FROM_IMAGE=yes"], "Cmd": ["sh"], "WorkingDir": "/"},
                  "rootfs": {"type": "layers", "diff_ids": [ldesc["digest"]]}}
        cdesc = blob(tf, "application/vnd.oci.image.config.v1+json", json.dumps(config).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cdesc, "layers": [ldesc]}
        mdesc = blob(tf, "application/vnd.oci.image.manifest.v1+json", json.dumps(manifest).encode())
        mdesc["annotations"] = {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": "latest"}
        add(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add(tf, "index.json", json.dumps({"schemaVersion": 2, "manifests": [mdesc]}).encode())
    return out.getvalue()


def test_image_imported_from_a_local_archive(ctr, rootfs):
    # The native snapshotter: no overlay mount needed (CI machines may not allow one).
    ref = f"localhost/nk-e2e-busybox:{uuid.uuid4().hex[:8]}"
    r = subprocess.run(ctr.argv("images", "import", "--snapshotter", "native", "-"), input=oci_archive(rootfs, ref),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    try:
        # The shim mounts the snapshot on <bundle>/rootfs; config.json's root.path is relative to the bundle.
        r = ctr("run", "--rm", "--snapshotter", "native", ref, new_id("img"), "sh", "-c", "echo $FROM_IMAGE; head -n 1 /proc/self/mountinfo")
        assert r.returncode == 0, r.stderr
        first, root = r.stdout.splitlines()
        assert first == "yes"
        assert "io.containerd.snapshotter.v1.native" in root.split()[3], root
    finally:
        ctr("images", "remove", ref)
