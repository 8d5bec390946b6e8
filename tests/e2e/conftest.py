"""Fixtures for the end-to-end tests: podman and containerd driving nk-runtime as their OCI runtime.

Both engines run with private configuration, everything under one session directory (made with
``tempfile``, mode 0755: pytest's own tmp dirs are 0700) that is removed at the end:

* ``podman``: a :class:`Podman` running ``podman --runtime <runtime> --root/--runroot/--tmpdir
  <session dir>/podman/... --storage-driver vfs --cgroup-manager cgroupfs --events-backend file``
  with a private ``containers.conf`` (``CONTAINERS_CONF``): no network (``netns = "none"``, the CNI
  backend with an empty plugin dir), ``default_ulimits`` under this machine's hard limits, and
  ``nk-runtime`` in ``runtime_supports_json`` so conmon passes ``--log-format json --log FILE``.
  Its containers go under a cgroup parent of this session (``/nk-e2e-<hex>``). podman passes no
  ``--root``: nk-runtime keeps their state under its default root.
* ``containerd``: a containerd started for the session on a unix socket in the session dir (its
  own root, state, ``opt`` dir; CRI disabled), stopped by PID at the end; a :class:`Ctr` drives it
  in a namespace of this session (so ``ctr``'s default cgroup path, ``/<namespace>/<id>``, is the
  session's too), always with ``--runc-binary <runtime> --runc-root <session dir>/runc``.
* ``rootfs``: a private copy of the example busybox rootfs for one test.

After each test, no container of the engine may be left (the test's own cleanup failed
otherwise); the engine's containers are then force-removed so the next test starts clean.

Environment:

* ``NK_E2E_RUNTIME=PATH``: the runtime under test (default: ``nk-runtime`` beside the running
  Python). ``NK_E2E_RUNTIME=/usr/sbin/runc`` runs the same scenarios against runc, to tell an
  engine or environment problem from an nk-runtime bug.
* ``NK_E2E_TRACE=FILE``: the engines call the runtime through ``tests/e2e/nk-trace``, which
  appends each call (argv, exit status, time, stderr, the tail of its ``--log``) to FILE.
* ``NK_E2E_KEEP=1``: keep the session directory (engine logs, configs) for inspection.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NK_TRACE = HERE / "nk-trace"
#: Hard limits of this kind of machine (no CAP_SYS_RESOURCE, RLIMIT_NOFILE capped at 20000):
#: podman's default ulimits (nofile 1048576, nproc 4194304) fail with every runtime.
ULIMITS = ["nofile=1024:1024", "nproc=1024:1024"]
#: Host directories the engines create outside their configured roots (hardcoded in them); the
#: session removes those it created, when they are empty.
ENGINE_HOST_DIRS = ["/run/containers/networks", "/run/containers", "/run/containerd/s", "/run/containerd"]
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _need(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if path is None:
        pytest.fail(f"{binary} is not installed: install the test dependencies with `bash .ci/install --test`")
    return path


def runtime_under_test() -> str:
    """The runtime binary the engines are given (``NK_E2E_RUNTIME`` or this venv's nk-runtime)."""
    env = os.environ.get("NK_E2E_RUNTIME")
    if env:
        return env
    for cand in (Path(sys.executable).parent / "nk-runtime", REPO / ".venv" / "bin" / "nk-runtime"):
        if cand.exists():
            return str(cand)
    pytest.fail("nk-runtime is not installed: run `bash .ci/install` (it makes .venv with nk-runtime)")


def is_nk(binary: str) -> bool:
    """Whether ``binary`` is nk-runtime (not runc or crun given for comparison)."""
    return os.path.basename(binary) == "nk-runtime"


class Session:
    """The session's private directory and names."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nk-e2e-"))
        os.chmod(self.dir, 0o755)
        self.name = f"nk-e2e-{uuid.uuid4().hex[:10]}"
        self.real_runtime = runtime_under_test()
        self.runtime = self._runtime_binary()

    def _runtime_binary(self) -> str:
        """The path given to the engines: the runtime itself, or with ``NK_E2E_TRACE`` a wrapper
        named like it (podman decides from the basename whether the runtime speaks JSON logs)."""
        trace = os.environ.get("NK_E2E_TRACE")
        if not trace:
            return self.real_runtime
        d = self.dir / "trace-bin"
        d.mkdir()
        wrapper = d / os.path.basename(self.real_runtime)
        wrapper.write_text(
            "#!/bin/sh\n"
            f"NK_TRACE_LOG={os.path.abspath(trace)} NK_TRACE_RUNTIME={self.real_runtime} exec {NK_TRACE} \"$@\"\n"
        )
        wrapper.chmod(0o755)
        return str(wrapper)


CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_V2 = (CGROUP_ROOT / "cgroup.controllers").exists()
#: Shell commands printing the container's own memory and pids limits, from inside (v1 or v2).
MEMORY_LIMIT_INSIDE = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"
PIDS_LIMIT_INSIDE = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"


def _cgroup_dirs(name: str) -> list[Path]:
    """Every directory ``name`` at the top of this host's cgroup hierarchies (v1, v2, hybrid)."""
    return [h / name for h in [CGROUP_ROOT, *CGROUP_ROOT.iterdir()] if h.is_dir() and (h / name).is_dir()]


class HostCgroup:
    """A container's cgroup (``rel``: its path below the hierarchies' roots) as the host sees it,
    read from the v1 controller hierarchies or the v2 unified one (only v1 and hybrid hosts were
    available to test this)."""

    def __init__(self, rel: str) -> None:
        self.rel = rel.strip("/")

    def _file(self, controller: str, v1: str, v2: str) -> Path:
        return CGROUP_ROOT / self.rel / v2 if CGROUP_V2 else CGROUP_ROOT / controller / self.rel / v1

    def _read(self, controller: str, v1: str, v2: str) -> str:
        return self._file(controller, v1, v2).read_text().strip()

    def memory_limit(self) -> str:
        return self._read("memory", "memory.limit_in_bytes", "memory.max")

    def memory_and_swap_limit(self) -> int | None:
        """memory+swap limit in bytes (v1 ``memsw``; v2 ``memory.max`` + ``memory.swap.max``),
        None without swap accounting."""
        f = self._file("memory", "memory.memsw.limit_in_bytes", "memory.swap.max")
        if not f.exists():
            return None
        if CGROUP_V2:
            return int(f.read_text()) + int(self.memory_limit())
        return int(f.read_text())

    def frozen(self) -> bool:
        if CGROUP_V2:
            return self._read("", "", "cgroup.freeze") == "1"
        return self._read("freezer", "freezer.state", "") == "FROZEN"

    def procs(self) -> list[int]:
        return [int(p) for p in self._read("pids", "cgroup.procs", "cgroup.procs").split()]


def _rmdir_tree(d: Path) -> list[str]:
    """rmdir a cgroup directory and its children, deepest first; returns what could not go."""
    problems = []
    for sub, _dirs, _files in os.walk(d, topdown=False):
        try:
            os.rmdir(sub)
        except OSError as e:
            problems.append(f"{sub}: {e.strerror}")
    return problems


def _mounts_under(d: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(d) + "/")]


@pytest.fixture(scope="session")
def e2e_session():
    existed = {p: os.path.exists(p) for p in ENGINE_HOST_DIRS}
    s = Session()
    yield s
    problems = []
    for m in sorted(_mounts_under(s.dir), key=len, reverse=True):  # an engine's own, never a host's
        subprocess.run(["umount", "-l", m], check=False)
        problems.append(f"mount left under the session dir: {m}")
    for d in _cgroup_dirs(s.name):
        problems += _rmdir_tree(d)
    for p in ENGINE_HOST_DIRS:
        if not existed[p]:
            try:
                os.rmdir(p)
            except OSError:
                pass
    if os.environ.get("NK_E2E_KEEP"):
        sys.stderr.write(f"\nnk-e2e: session directory kept: {s.dir}\n")
    else:
        shutil.rmtree(s.dir, ignore_errors=True)
    assert not problems, f"the e2e session left behind: {problems}"


@pytest.fixture
def rootfs(e2e_session, busybox_rootfs):
    """A private copy of the example busybox rootfs (the engines may write into it)."""
    d = Path(tempfile.mkdtemp(prefix="rootfs-", dir=e2e_session.dir))
    os.chmod(d, 0o755)
    subprocess.run(["cp", "-a", f"{busybox_rootfs}/.", str(d)], check=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_in_pty(argv: list[str], env=None, rows: int = 30, cols: int = 100, timeout: float = 60,
               typed: bytes = b"") -> tuple[int, str]:
    """Run ``argv`` with a new pseudo-terminal (``rows`` x ``cols``) as its controlling terminal
    and stdio, as a user at a terminal would, ``typed`` being what the user types; return its exit
    status and everything it printed (carriage returns dropped: each terminal on the way turns LF
    into CRLF)."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def ctty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, preexec_fn=ctty)
    os.close(slave)
    if typed:
        os.write(master, typed)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed
                    break
                if not data:
                    break
                out += data
            elif p.poll() is not None:
                break
        else:
            p.kill()
            raise AssertionError(f"{argv} did not finish in {timeout}s; output so far: {bytes(out)!r}")
        code = p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
    return code, out.decode(errors="replace").replace("\r", "")


def read_proc_status(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    raise KeyError(field)


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


# ==================================================================================================
# podman
# ==================================================================================================
CONTAINERS_CONF = """\
# containers.conf(5) of the e2e tests: everything private to the session, no network.
[containers]
default_ulimits = {ulimits}
netns = "none"
log_driver = "k8s-file"

[network]
network_backend = "cni"
network_config_dir = "{d}/cni-config"
cni_plugin_dirs = ["{d}/cni-plugins"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
static_dir = "{d}/root/libpod"
volume_path = "{d}/root/volumes"
tmp_dir = "{d}/tmp"
image_copy_tmp_dir = "{d}/tmp"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "nk-runtime"]
"""


class Podman:
    """Runs podman with the session's private configuration and runtime."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.binary = _need("podman")
        _need("conmon")
        self.dir = session.dir / "podman"
        for sub in ("root", "runroot", "tmp", "cni-config", "cni-plugins"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        conf = self.dir / "containers.conf"
        conf.write_text(CONTAINERS_CONF.format(d=self.dir, ulimits=json.dumps(ULIMITS)))
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "TMPDIR": str(self.dir / "tmp")}
        self.env.pop("CONTAINERS_STORAGE_CONF", None)
        self.cgroup_parent = f"/{session.name}"
        self.runtime = session.runtime

    def argv(self, *args) -> list[str]:
        """The full podman command line; ``run`` and ``create`` get the session's cgroup parent."""
        args = [str(a) for a in args]
        if args and args[0] in ("run", "create"):
            args = [args[0], "--cgroup-parent", self.cgroup_parent, *args[1:]]
        return [self.binary, "--runtime", self.runtime, "--root", str(self.dir / "root"),
                "--runroot", str(self.dir / "runroot"), "--tmpdir", str(self.dir / "tmp"), "--storage-driver", "vfs",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args]

    def __call__(self, *args, input=None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), input=input, capture_output=True, text=True, timeout=timeout, env=self.env)

    def ok(self, *args, **kw) -> str:
        r = self(*args, **kw)
        assert r.returncode == 0, f"podman {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}"
        return r.stdout

    def inspect(self, cid: str, fmt: str) -> str:
        return self.ok("inspect", "--format", fmt, cid).strip()

    def wait_state(self, cid: str, want: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        st = ""
        while time.monotonic() < deadline:
            st = self.inspect(cid, "{{.State.Status}}")
            if st == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"container {cid} is {st!r}, not {want!r}, after {timeout}s")

    def cgroup(self, cid: str) -> HostCgroup:
        """A container's cgroup (podman's cgroupfs layout: ``<parent>/libpod-<id>``)."""
        return HostCgroup(f"{self.cgroup_parent}/libpod-{cid}")

    def container_ids_seen(self) -> set[str]:
        """Every container id podman's event log mentions (the session's containers)."""
        ids = set()
        try:
            with open(self.dir / "events.log") as f:
                for line in f:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if ev.get("Type") == "container" and ev.get("ID"):
                        ids.add(ev["ID"])
        except FileNotFoundError:
            pass
        return ids

    def leftovers(self) -> list[str]:
        """What the session's containers left behind: podman containers, runtime state, cgroups."""
        problems = []
        r = self("ps", "-a", "--format", "{{.ID}} {{.Status}}")
        problems += [f"podman container {line}" for line in r.stdout.splitlines() if line.strip()]
        if is_nk(self.session.real_runtime):
            from nano_sandbox.cli import DEFAULT_ROOT

            problems += [f"nk-runtime state {DEFAULT_ROOT}/{cid}" for cid in self.container_ids_seen()
                         if os.path.exists(os.path.join(DEFAULT_ROOT, cid))]
        for h in _cgroup_dirs(self.session.name):
            problems += [f"cgroup {c}" for c in h.iterdir() if c.is_dir() and c.name.startswith("libpod-")]
        return problems


@pytest.fixture(scope="session")
def podman_engine(e2e_session):
    pm = Podman(e2e_session)
    yield pm
    pm("rm", "--all", "--force", "--time", "0")
    pm("rmi", "--all", "--force")


@pytest.fixture
def podman(podman_engine):
    """The session's :class:`Podman`; fails the test if it left a container or its traces."""
    yield podman_engine
    problems = podman_engine.leftovers()
    if problems:
        podman_engine("rm", "--all", "--force", "--time", "0")
    assert not problems, f"the test left behind: {problems}"


# ==================================================================================================
# containerd
# ==================================================================================================
CONTAINERD_TOML = """\
# containerd config of the e2e tests: everything under the session dir; no CRI (so no CNI).
version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"
  level = "debug"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"
"""


class Ctr:
    """Runs ``ctr`` against the session's containerd, in the session's namespace."""

    def __init__(self, session: Session, d: Path, pid: int) -> None:
        self.session = session
        self.dir = d
        self.pid = pid
        self.address = str(d / "containerd.sock")
        self.namespace = session.name
        self.binary = _need("ctr")
        self.runtime = session.runtime
        self.runc_root = d / "runc"
        self.fifo_dir = d / "fifo"

    def argv(self, *args) -> list[str]:
        """The full ctr command line. ``run`` gets ``--runc-binary``, ``--runc-root`` and
        ``--fifo-dir``; ``task exec`` gets ``--fifo-dir``."""
        args = [str(a) for a in args]
        if args and args[0] == "run":
            args = ["run", "--runc-binary", self.runtime, "--runc-root", str(self.runc_root), "--fifo-dir", str(self.fifo_dir), *args[1:]]
        elif args[:2] in (["task", "exec"], ["t", "exec"]):
            args = [*args[:2], "--fifo-dir", str(self.fifo_dir), *args[2:]]
        return [self.binary, "--address", self.address, "--namespace", self.namespace, *args]

    def __call__(self, *args, input=None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), input=input, capture_output=True, text=True, timeout=timeout)

    def ok(self, *args, **kw) -> str:
        r = self(*args, **kw)
        assert r.returncode == 0, f"ctr {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}"
        return r.stdout

    def tasks(self) -> dict[str, tuple[int, str]]:
        """``ctr task ls``: {id: (pid, status)}."""
        out = {}
        for line in self.ok("task", "ls").splitlines()[1:]:
            f = line.split()
            if len(f) >= 3:
                out[f[0]] = (int(f[1]), f[2])
        return out

    def wait_task(self, cid: str, want: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.tasks().get(cid)
            if st and st[1] == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"task {cid} is {st}, not {want}, after {timeout}s")

    def cgroup(self, cid: str) -> HostCgroup:
        """A task's cgroup (ctr's default cgroup path: ``/<namespace>/<id>``)."""
        return HostCgroup(f"{self.namespace}/{cid}")

    def remove_all(self) -> list[str]:
        """Kill and delete every task and container of the namespace; returns what was there."""
        found = []
        for cid in self.tasks():
            found.append(f"task {cid}")
            self("task", "kill", "--signal", "SIGKILL", cid)
            for _ in range(100):
                if self.tasks().get(cid, (0, "STOPPED"))[1] == "STOPPED":
                    break
                time.sleep(0.05)
            self("task", "delete", "--force", cid)
        for cid in self.ok("container", "ls", "--quiet").split():
            found.append(f"container {cid}")
            self("container", "delete", cid)
        return found

    def leftovers(self) -> list[str]:
        problems = self.remove_all()
        root = self.runc_root / self.namespace
        if root.is_dir():
            problems += [f"runtime state {root / n}" for n in os.listdir(root) if not n.startswith(".")]
        for h in _cgroup_dirs(self.namespace):
            problems += [f"cgroup {c}" for c in h.iterdir() if c.is_dir()]
        return problems


def _shims_of(address: str) -> list[int]:
    """Pids of the containerd-shim processes serving the containerd at ``address``."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
            pids.append(int(p))
    return pids


@pytest.fixture(scope="session")
def containerd_engine(e2e_session):
    """A containerd of this session, on a socket in the session dir; stopped by PID at the end."""
    binary = _need("containerd")
    _need("containerd-shim-runc-v2")
    d = e2e_session.dir / "containerd"
    d.mkdir()
    (d / "config.toml").write_text(CONTAINERD_TOML.format(d=d))
    log = open(d / "containerd.log", "wb")
    proc = subprocess.Popen([binary, "--config", str(d / "config.toml")], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    ctr = Ctr(e2e_session, d, proc.pid)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            pytest.fail(f"containerd exited ({proc.returncode}): {(d / 'containerd.log').read_text()[-3000:]}")
        if os.path.exists(ctr.address) and ctr("version", timeout=10).returncode == 0:
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"containerd did not answer on {ctr.address} in 20s: {(d / 'containerd.log').read_text()[-3000:]}")
        time.sleep(0.1)
    try:
        yield ctr
    finally:
        ctr.remove_all()
        for _ in range(50):  # shims exit once their task is deleted
            shims = _shims_of(ctr.address)
            if not shims:
                break
            time.sleep(0.1)
        for pid in _shims_of(ctr.address):
            os.kill(pid, signal.SIGKILL)
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def ctr(containerd_engine):
    """The session's :class:`Ctr`; fails the test if it left a task, container or cgroup."""
    yield containerd_engine
    problems = containerd_engine.leftovers()
    assert not problems, f"the test left behind: {problems}"
