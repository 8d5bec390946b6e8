"""Speed and footprint: nk-runtime measured against runc and crun on the same machine, in one run.

``python -m nano_sandbox.bench`` (as root) drives every runtime it finds through the same CLI
calls an engine makes, on the same busybox root filesystem, the same ``config.json`` and the same
cgroup parent, interleaving the runtimes call by call (run 1 of A, run 1 of B, run 1 of C, run 2
of A, ...) so that a noisy moment of the machine hits all of them alike. It reports the median
and the spread (p10/p90, min) of:

1. ``run`` of ``/bin/true`` (create + start + wait + delete in one call);
2. ``create``, ``start``, ``state``, ``kill`` and ``delete`` of a ``sleep`` container, each on
   its own (after ``kill KILL`` the bench polls ``state`` until ``stopped``, untimed);
3. ``exec`` of ``/bin/true`` into a running container;
4. RSS and PSS (``/proc/PID/smaps_rollup``) of a created, not started container's waiting init,
   read right after ``create`` returns;
5. throughput: ``--throughput`` containers ``run`` by ``--workers`` parallel workers,
   containers per second, with every failed call counted;
6. ``list`` and ``state`` with 1 container present, then with ``--many`` present: the ratio
   says whether their cost grows with the number of containers;

prints them as a table, each figure also as a ratio to runc's and to crun's, and writes them as
JSON (``--json FILE``).

Every wall time is measured around the whole call as an engine sees it: fork and exec of the
runtime, its work, its exit. Every runtime is started the same way (``subprocess`` from a
dedicated driver thread, stdio on ``/dev/null``, ``--root`` private to the run and ``--log`` to a
file of the bench, which is how errors are read back), so the harness's own cost is the same for
all; it is printed once (spawning ``/bin/true``).

What the bench makes, it removes: every container it created is deleted with ``--force`` at the
end, also after an error or Ctrl-C; then it checks that no state directory, cgroup (under its
own parent ``/nk-bench/<run token>/`` in every hierarchy, and ``/nano-sandbox/<id>``) or process
of its containers is left, removes what is and reports it.

Cgroups: ``linux.cgroupsPath`` is set to ``/nk-bench/<token>/<id>`` for every runtime, so all
of them put their containers in the same place. (An absent or relative ``cgroupsPath`` is not
a fair choice: runc resolves it against its *own* cgroup in each v1 hierarchy, i.e. the caller's.)

crun and hybrid hosts: crun refuses a hybrid layout (v1 controllers plus a cgroup2 mount at
``/sys/fs/cgroup/unified``) as soon as any controller is bound to cgroup2 ("cgroups in hybrid
mode not supported, drop all controllers from cgroupv2"), whatever its ``--cgroup-manager``
(the check comes before the manager is chosen). When a runtime's first call fails that way, the
bench creates a private mount namespace (its mounts made private first, so nothing propagates
to the host), hides the cgroup2 mount there under an empty tmpfs, and drives that runtime from
threads that joined the namespace. crun then sees a v1-only host and uses every v1 controller
(the cgroup2-bound ones, e.g. hugetlb, it cannot use: a controller bound to cgroup2 cannot be
mounted as v1). Its figures are labelled with a dagger (``crun†``) and the note says why. The
host's mounts and cgroups are not changed.

Nothing here is imported by the runtime's CLI.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = "nano-sandbox-bench/1"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUNDLE = REPO / "bundles" / "busybox"
CGROUP_PARENT = "/nk-bench"
# crun 1.8.1 refuses ociVersion 1.3.0 ("unknown version specified"); every runtime gets 1.0.2.
OCI_VERSION = "1.0.2"
SLEEP_ARGS = ["sleep", "3600"]  # ends by itself within the hour if the bench is SIGKILLed
TRUE_ARGS = ["/bin/true"]

# Which phase measures what: --only accepts a phase or any metric it measures.
PHASES = ("run", "lifecycle", "exec", "memory", "throughput", "many")
ONLY_ALIASES = {
    "run": "run",
    "lifecycle": "lifecycle",
    "create": "lifecycle",
    "start": "lifecycle",
    "state": "lifecycle",
    "kill": "lifecycle",
    "delete": "lifecycle",
    "exec": "exec",
    "memory": "memory",
    "rss": "memory",
    "pss": "memory",
    "throughput": "throughput",
    "many": "many",
    "list": "many",
}

# metric key -> (description, unit, "lower"/"higher" is better); in print order.
METRICS: dict[str, tuple[str, str, str]] = {
    "run": ("run of /bin/true (create+start+wait+delete)", "ms", "lower"),
    "create": ("create (sleep container)", "ms", "lower"),
    "start": ("start", "ms", "lower"),
    "state": ("state", "ms", "lower"),
    "kill": ("kill KILL", "ms", "lower"),
    "delete": ("delete (stopped)", "ms", "lower"),
    "exec": ("exec of /bin/true into a running container", "ms", "lower"),
    "init_rss": ("waiting init of a created container: RSS", "MiB", "lower"),
    "init_pss": ("waiting init of a created container: PSS", "MiB", "lower"),
    "throughput": ("throughput: parallel run of /bin/true", "containers/s", "higher"),
    "list@1": ("list, 1 container present", "ms", "lower"),
    "list@N": ("list, N containers present", "ms", "lower"),
    "state@1": ("state, 1 container present", "ms", "lower"),
    "state@N": ("state, N containers present", "ms", "lower"),
}

_CLONE_FS = 0x00000200
_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8
_MS_REC, _MS_PRIVATE = 0x4000, 1 << 18
_HIDE_SOURCE = "nk-bench-hide-cgroup2"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


class BenchError(Exception):
    """The bench cannot run (not root, no bundle, no runtime, ...)."""


# --- statistics ---------------------------------------------------------------------------------
def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, linearly interpolated."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(samples: list[float]) -> dict:
    """Median, p10, p25, p75, p90, min, max, mean and the samples themselves (``n`` may be 0)."""
    s = sorted(samples)
    if not s:
        return {"n": 0, "samples": []}
    return {
        "n": len(s),
        "median": percentile(s, 0.5),
        "p10": percentile(s, 0.1),
        "p25": percentile(s, 0.25),
        "p75": percentile(s, 0.75),
        "p90": percentile(s, 0.9),
        "min": s[0],
        "max": s[-1],
        "mean": sum(s) / len(s),
        "samples": [round(v, 4) for v in samples],
    }


# --- the host ------------------------------------------------------------------------------------
def cgroup_mounts() -> list[tuple[str, str]]:
    """Every cgroup mount of this process's mount namespace: ``(mount point, "cgroup"|"cgroup2")``."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0] if right else ""
            if fstype in ("cgroup", "cgroup2"):
                out.append((left.split()[4].replace("\\040", " "), fstype))
    return out


def cgroup_layout() -> str:
    """``"v2"``, ``"v1"``, ``"hybrid"`` (v1 controllers plus a cgroup2 mount) or ``"none"``."""
    kinds = {k for _, k in cgroup_mounts()}
    if kinds == {"cgroup", "cgroup2"}:
        return "hybrid"
    return "v2" if kinds == {"cgroup2"} else "v1" if kinds == {"cgroup"} else "none"


def meminfo() -> dict[str, int]:
    """``/proc/meminfo`` in KiB."""
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = int(v.split()[0])
    return out


def smaps_rollup(pid: int) -> dict[str, int]:
    """``Rss`` and ``Pss`` (KiB) of a process from ``/proc/PID/smaps_rollup``."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss"):
                out[k] = int(v.split()[0])
    return out


def machine_info() -> dict:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    u = os.uname()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "kernel": f"{u.sysname} {u.release}",
        "arch": u.machine,
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_total_mib": round(meminfo().get("MemTotal", 0) / 1024),
        "os": _os_release(),
        "python": platform.python_version(),
        "cgroup_layout": cgroup_layout(),
        "loadavg_start": list(os.getloadavg()),
    }


def _os_release() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def hidden_cgroup2_namespace() -> int:
    """Create a private mount namespace in which the cgroup2 mount is hidden under an empty tmpfs,
    and return an fd that pins it (join it with :func:`enter_namespace`).

    The namespace is made in a short-lived thread that unshares its filesystem context and mount
    namespace, marks every mount in it private (so nothing made in it propagates to the host),
    then mounts the tmpfs. The host's mounts are checked afterwards: the tmpfs must not be there.

    Raises:
        OSError: the kernel refused a step.
        BenchError: there is no cgroup2 mount, or the tmpfs leaked into the host namespace.
    """
    v2 = [mp for mp, kind in cgroup_mounts() if kind == "cgroup2"]
    if not v2:
        raise BenchError("no cgroup2 mount to hide")
    result: dict = {}

    def work() -> None:
        try:
            _check(_libc.unshare(_CLONE_FS | _CLONE_NEWNS), "unshare(CLONE_FS|CLONE_NEWNS)")
            _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount(/, MS_REC|MS_PRIVATE)")
            for mp in v2:
                _check(
                    _libc.mount(_HIDE_SOURCE.encode(), mp.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, b"mode=755,size=4m"),
                    f"mount(tmpfs, {mp})",
                )
            result["fd"] = os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            result["error"] = e

    t = threading.Thread(target=work, name="nk-bench-mntns")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    with open("/proc/self/mountinfo") as f:
        if _HIDE_SOURCE in f.read():
            os.close(result["fd"])
            raise BenchError("the private tmpfs is visible in the host mount namespace: refusing to go on")
    return result["fd"]


def enter_namespace(fd: int) -> None:
    """Move the calling thread (only it) into the mount namespace ``fd``."""
    _check(_libc.unshare(_CLONE_FS), "unshare(CLONE_FS)")
    _check(_libc.setns(fd, _CLONE_NEWNS), "setns(CLONE_NEWNS)")


# --- calling a runtime --------------------------------------------------------------------------
@dataclass
class Result:
    """One runtime call: exit code, wall time in ms, stdout (when captured), error text."""

    rc: int
    ms: float
    out: str = ""
    err: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0


class Watchdog:
    """Kills (by pid) a runtime process that outlives its timeout. One thread for the whole
    bench, so that every call can wait with a plain blocking ``waitpid`` (``Popen.wait`` with a
    timeout polls with growing sleeps, which would blur the figures)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, tuple[float, subprocess.Popen]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nk-bench-watchdog", daemon=True)
        self._thread.start()

    def add(self, p: subprocess.Popen, timeout: float) -> None:
        """Watch ``p`` until :meth:`remove`."""
        with self._lock:
            self._procs[p.pid] = (time.monotonic() + timeout, p)

    def remove(self, p: subprocess.Popen) -> None:
        """Stop watching ``p``."""
        with self._lock:
            self._procs.pop(p.pid, None)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            now = time.monotonic()
            with self._lock:
                late = [p for deadline, p in self._procs.values() if deadline < now]
            for p in late:
                if p.poll() is None:
                    p.kill()

    def close(self) -> None:
        """End the watchdog thread."""
        self._stop.set()


@dataclass
class Runtime:
    """A runtime under test, its private state root, and everything the bench made with it."""

    name: str
    path: str
    root: str = ""
    logdir: str = ""
    label: str = ""
    version: str = ""
    available: bool = True
    reason: str = ""
    note: str = ""
    cgroups: str = "host layout"
    ns_fd: int | None = None
    created: set[str] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    serial: ThreadPoolExecutor | None = None
    pool: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        self.label = self.label or self.name
        self.slug = re.sub(r"[^a-z0-9]", "", self.name.lower())[:8] or "rt"

    # threads --------------------------------------------------------------------------------------
    def enter(self) -> None:
        """Thread initializer: join the runtime's private mount namespace, if it has one."""
        if self.ns_fd is not None:
            enter_namespace(self.ns_fd)

    def executor(self, workers: int) -> ThreadPoolExecutor:
        """A thread pool whose threads are set up to drive this runtime."""
        return ThreadPoolExecutor(max_workers=workers, initializer=self.enter, thread_name_prefix=f"nkb-{self.slug}")

    # calls -------------------------------------------------------------------------------------------
    def call(self, args: list[str], *, capture: bool = False, timeout: float = 60.0) -> Result:
        """Run ``RUNTIME --root ROOT --log LOG ARGS...`` with stdio on /dev/null (stdout on a pipe
        when ``capture``: never for verbs whose container inherits it) and time it."""
        log = os.path.join(self.logdir, f"{threading.get_native_id()}.log")
        argv = [self.path, "--root", self.root, "--log", log, *args]
        wd = watchdog()
        t0 = time.perf_counter_ns()
        try:
            p = subprocess.Popen(argv, stdin=_DEVNULL, stdout=subprocess.PIPE if capture else _DEVNULL, stderr=_DEVNULL)
        except OSError as e:
            return Result(127, 0.0, err=f"cannot execute {self.path}: {e.strerror}")
        wd.add(p, timeout)
        try:
            if capture:
                out_b, _ = p.communicate()
            else:
                out_b = b""
                p.wait()
        finally:
            wd.remove(p)
        ms = (time.perf_counter_ns() - t0) / 1e6
        res = Result(p.returncode, ms, out_b.decode(errors="replace"))
        try:
            size = os.path.getsize(log)
        except OSError:
            size = 0
        if not res.ok:
            res.err = _tail(log) or f"exit status {p.returncode}, nothing logged"
            if p.returncode < 0:
                res.err = f"killed by signal {-p.returncode} (timeout {timeout:g}s?); {res.err}"
        if size and (not res.ok or size > 1 << 16):
            os.truncate(log, 0)
        return res

    def fail(self, phase: str, what: str, res: Result | str) -> None:
        """Count an error of ``phase`` and keep a few samples of its message."""
        msg = res if isinstance(res, str) else res.err
        with self.lock:
            self.errors[phase] = self.errors.get(phase, 0) + 1
            if len(self.error_samples) < 20:
                self.error_samples.append(f"{phase}: {what}: {msg}")

    def status(self, cid: str) -> str:
        """The container's status from ``state`` (untimed), or ``""``."""
        r = self.call(["state", cid], capture=True)
        if not r.ok:
            return ""
        try:
            return json.loads(r.out).get("status", "")
        except ValueError:
            return ""

    def wait_status(self, cid: str, want: str, timeout: float = 10.0) -> bool:
        """Poll ``state`` until the status is ``want`` (untimed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(cid) == want:
                return True
            time.sleep(0.005)
        return False

    def force_delete(self, cid: str) -> Result:
        """``delete --force`` (untimed); forgets the id when it worked."""
        r = self.call(["delete", "--force", cid])
        if r.ok:
            with self.lock:
                self.created.discard(cid)
        return r

    def listed_ids(self) -> list[str]:
        """Container directories in the runtime's state root."""
        try:
            return sorted(n for n in os.listdir(self.root) if not n.startswith(".") and os.path.isdir(os.path.join(self.root, n)))
        except FileNotFoundError:
            return []


def _tail(path: str, limit: int = 600) -> str:
    try:
        with open(path, errors="replace") as f:
            text = f.read().strip()
    except OSError:
        return ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[-limit:]


_DEVNULL = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
_WATCHDOG: Watchdog | None = None
_WATCHDOG_LOCK = threading.Lock()


def watchdog() -> Watchdog:
    """The bench's one :class:`Watchdog` (started on first use)."""
    global _WATCHDOG
    with _WATCHDOG_LOCK:
        if _WATCHDOG is None:
            _WATCHDOG = Watchdog()
        return _WATCHDOG


def _close_watchdog() -> None:
    global _WATCHDOG
    with _WATCHDOG_LOCK:
        if _WATCHDOG is not None:
            _WATCHDOG.close()
            _WATCHDOG = None


def _version(path: str) -> str:
    try:
        p = subprocess.run([path, "--version"], stdin=_DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"? ({e})"
    text = (p.stdout or p.stderr).decode(errors="replace").strip()
    return " ".join(text.splitlines()[:1])


# --- the bench -----------------------------------------------------------------------------------
@dataclass
class Settings:
    """What to measure and how much."""

    runs: int = 20
    quick: bool = False
    phases: tuple[str, ...] = PHASES
    many: int = 500
    many_created: bool = False
    throughput: int = 50
    workers: int = 8
    rounds: int = 3
    timeout: float = 60.0
    bundle: Path = DEFAULT_BUNDLE


class Bench:
    """One benchmark run: its temp dir, cgroup parent, runtimes, samples and clean-up."""

    def __init__(self, runtimes: list[Runtime], settings: Settings) -> None:
        self.runtimes = runtimes
        self.s = settings
        self.token = uuid.uuid4().hex[:6]
        self.dir = Path(tempfile.mkdtemp(prefix=f"nk-bench-{self.token}-"))
        self.cg_rel = f"{CGROUP_PARENT}/{self.token}"
        self.samples: dict[str, dict[str, list[float]]] = {}
        self.all_ids: set[str] = set()
        self._ids = itertools.count()
        self._id_lock = threading.Lock()
        self.ns_fd: int | None = None
        self.made_cgroups: list[str] = []
        self.extra: dict = {}
        self.rootfs = ""
        self.template = ""

    # setup --------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Prepare the bundle template, state roots, log dirs and the shared cgroup parent."""
        bundle = self.s.bundle.resolve()
        cfg_path = bundle / "config.json"
        rootfs = (bundle / "rootfs").resolve()
        if not cfg_path.is_file():
            raise BenchError(f"no config.json in {bundle}")
        if not (rootfs / "bin" / "busybox").exists():
            _log(f"building the busybox rootfs at {rootfs} ...")
            try:
                from nano_sandbox.bundle.build import build_rootfs

                build_rootfs(str(bundle / "rootfs"))
            except Exception as e:  # noqa: BLE001 - report any failure the same way
                raise BenchError(f"no busybox rootfs at {rootfs} and building it failed: {e} (run: nk-runtime bundle build)") from e
        self.rootfs = str(rootfs)
        cfg = json.loads(cfg_path.read_text())
        cfg["ociVersion"] = OCI_VERSION
        cfg["root"] = {"path": self.rootfs, "readonly": bool(cfg.get("root", {}).get("readonly", True))}
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["@ARGS@"]
        cfg.setdefault("linux", {})["cgroupsPath"] = "@CGROUP@"
        self.template = json.dumps(cfg, indent=1)
        (self.dir / "bundles").mkdir()
        (self.dir / "pids").mkdir()
        for rt in self.runtimes:
            rt.root = str(self.dir / "roots" / rt.slug)
            rt.logdir = str(self.dir / "logs" / rt.slug)
            os.makedirs(rt.root, mode=0o700)
            os.makedirs(rt.logdir)
        self._make_cgroup_parent()

    def _make_cgroup_parent(self) -> None:
        """Create ``/nk-bench/<token>`` in every hierarchy (cpuset filled from its parent), so no
        runtime creates, or removes, the parent its containers share."""
        for mp, kind in cgroup_mounts():
            for rel in (CGROUP_PARENT, self.cg_rel):
                d = mp + rel
                for _ in range(20):
                    try:
                        os.mkdir(d, 0o755)
                        self.made_cgroups.append(d)
                    except FileExistsError:
                        pass
                    except FileNotFoundError:  # another bench removed /nk-bench just now
                        continue
                    break
                if kind == "cgroup" and d in self.made_cgroups and os.path.exists(d + "/cpuset.cpus"):
                    for fname in ("cpuset.cpus", "cpuset.mems"):
                        with open(d + "/" + fname) as f:
                            if f.read().strip():
                                continue
                        with open(os.path.dirname(d) + "/" + fname) as f:
                            value = f.read().strip()
                        with open(d + "/" + fname, "w") as f:
                            f.write(value)

    def new_container(self, rt: Runtime, tag: str, args: list[str]) -> tuple[str, str]:
        """A new unique id and its bundle directory (``config.json`` only; the rootfs is the
        shared absolute path), tracked for clean-up before any runtime sees it."""
        with self._id_lock:
            n = next(self._ids)
        cid = f"nkb{self.token}-{rt.slug}-{tag}{n}"
        bdir = self.dir / "bundles" / cid
        bdir.mkdir()
        text = self.template.replace('"@ARGS@"', ", ".join(json.dumps(a) for a in args))
        text = text.replace("@CGROUP@", f"{self.cg_rel}/{cid}")
        (bdir / "config.json").write_text(text)
        with rt.lock:
            rt.created.add(cid)
        with self._id_lock:
            self.all_ids.add(cid)
        return cid, str(bdir)

    def record(self, metric: str, rt: Runtime, value: float) -> None:
        """Keep one sample."""
        with self._id_lock:
            self.samples.setdefault(metric, {}).setdefault(rt.name, []).append(value)

    def active(self) -> list[Runtime]:
        """The runtimes that passed the preflight."""
        return [rt for rt in self.runtimes if rt.available]

    def interleave(self, n: int, fn, label: str) -> None:
        """Call ``fn(rt, i)`` for i in range(n), runtime after runtime (round-robin), each call on
        that runtime's own driver thread."""
        t0 = time.monotonic()
        for i in range(n):
            for rt in self.active():
                rt.serial.submit(fn, rt, i).result()
        _log(f"{label}: {n} x {len(self.active())} runtimes in {time.monotonic() - t0:.1f}s")

    # preflight ------------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Check each runtime with one ``run`` of /bin/true (untimed, also a warm-up). A runtime
        that refuses a hybrid cgroup layout is retried in a private mount namespace with cgroup2
        hidden; one that still fails is reported unavailable with its error."""
        layout = cgroup_layout()
        for rt in self.runtimes:
            rt.version = _version(rt.path)
            err = self._try_run(rt)
            if err and layout == "hybrid" and "hybrid" in err:
                try:
                    if self.ns_fd is None:
                        self.ns_fd = hidden_cgroup2_namespace()
                    rt.ns_fd = self.ns_fd
                    err2 = self._try_run(rt)
                except (OSError, BenchError) as e:
                    err2 = f"cannot make a private mount namespace: {e}"
                if err2:
                    err = f"{err}; in a private mount namespace with cgroup2 hidden: {err2}"
                    rt.ns_fd = None
                else:
                    refusal, err = _first_line(err), ""
                    rt.label = f"{rt.name}\u2020"
                    rt.cgroups = "v1 controllers only (cgroup2 hidden in a private mount namespace)"
                    rt.note = (
                        f"{rt.name} refuses this host's hybrid cgroup layout (\"{refusal}\"), with any "
                        "--cgroup-manager. It runs in a private mount namespace of the bench in which the cgroup2 mount "
                        "is hidden under an empty tmpfs: it puts its containers in every v1 hierarchy (not in the "
                        "cgroup2 one, which the other runtimes also join, nor under the controllers bound to cgroup2, "
                        "which cannot be mounted as v1). Nothing of the host is changed."
                    )
            if err:
                rt.available = False
                rt.reason = err
                _log(f"{rt.name}: unavailable: {err}")
            else:
                _log(f"{rt.label}: {rt.version} ({rt.path}){' -- ' + rt.cgroups if rt.ns_fd is not None else ''}")
        if not self.active():
            raise BenchError("no runtime could run a container: " + "; ".join(f"{r.name}: {r.reason}" for r in self.runtimes))
        for rt in self.active():
            rt.serial = rt.executor(1)
            rt.pool = rt.executor(self.s.workers)
            barrier = threading.Barrier(self.s.workers)
            for f in [rt.pool.submit(barrier.wait, 30) for _ in range(self.s.workers)]:
                f.result()
        self.extra["harness_spawn_ms"] = self._spawn_baseline()

    def _try_run(self, rt: Runtime) -> str:
        cid, bdir = self.new_container(rt, "pre", TRUE_ARGS)
        with rt.executor(1) as ex:
            r = ex.submit(rt.call, ["run", "-b", bdir, cid], timeout=self.s.timeout).result()
            if r.ok:
                with rt.lock:
                    rt.created.discard(cid)
                return ""
            ex.submit(rt.force_delete, cid).result()
        return r.err or f"exit status {r.rc}"

    def _spawn_baseline(self) -> dict:
        """Wall time of spawning /bin/true the way every runtime is spawned (the harness's share
        of every figure)."""
        true = shutil.which("true") or "/bin/true"
        vals = []
        for _ in range(max(5, min(self.s.runs, 20))):
            t0 = time.perf_counter_ns()
            p = subprocess.Popen([true], stdin=_DEVNULL, stdout=_DEVNULL, stderr=_DEVNULL)
            p.wait()
            vals.append((time.perf_counter_ns() - t0) / 1e6)
        return summarize(vals)

    # phases ---------------------------------------------------------------------------------------
    def phase_run(self) -> None:
        """1. ``run`` of /bin/true."""

        def one(rt: Runtime, i: int) -> None:
            cid, bdir = self.new_container(rt, "run", TRUE_ARGS)
            r = rt.call(["run", "-b", bdir, cid], timeout=self.s.timeout)
            if r.ok:
                self.record("run", rt, r.ms)
                with rt.lock:
                    rt.created.discard(cid)
            else:
                rt.fail("run", cid, r)
                rt.force_delete(cid)

        self.interleave(self.s.runs, one, "run")

    def phase_lifecycle(self) -> None:
        """2. create, start, state, kill KILL, (wait for stopped), delete of a sleep container."""

        def one(rt: Runtime, i: int) -> None:
            cid, bdir = self.new_container(rt, "lc", SLEEP_ARGS)
            steps = [("create", ["create", "-b", bdir, cid]), ("start", ["start", cid]), ("state", ["state", cid]), ("kill", ["kill", cid, "KILL"])]
            for metric, args in steps:
                r = rt.call(args, timeout=self.s.timeout)
                if not r.ok:
                    rt.fail("lifecycle", f"{metric} {cid}", r)
                    rt.force_delete(cid)
                    return
                self.record(metric, rt, r.ms)
            if not rt.wait_status(cid, "stopped"):
                rt.fail("lifecycle", f"kill {cid}", "not stopped 10s after kill KILL")
                rt.force_delete(cid)
                return
            r = rt.call(["delete", cid], timeout=self.s.timeout)
            if r.ok:
                self.record("delete", rt, r.ms)
                with rt.lock:
                    rt.created.discard(cid)
            else:
                rt.fail("lifecycle", f"delete {cid}", r)
                rt.force_delete(cid)

        self.interleave(self.s.runs, one, "create/start/state/kill/delete")

    def phase_exec(self) -> None:
        """3. ``exec`` of /bin/true into one running container per runtime."""
        targets: dict[str, str] = {}

        def setup(rt: Runtime) -> None:
            cid, bdir = self.new_container(rt, "ex", SLEEP_ARGS)
            for args in (["create", "-b", bdir, cid], ["start", cid]):
                r = rt.call(args, timeout=self.s.timeout)
                if not r.ok:
                    rt.fail("exec", f"{args[0]} {cid}", r)
                    rt.force_delete(cid)
                    return
            targets[rt.name] = cid

        for rt in self.active():
            rt.serial.submit(setup, rt).result()

        def one(rt: Runtime, i: int) -> None:
            cid = targets.get(rt.name)
            if cid is None:
                return
            r = rt.call(["exec", cid, *TRUE_ARGS], timeout=self.s.timeout)
            if r.ok:
                self.record("exec", rt, r.ms)
            else:
                rt.fail("exec", cid, r)

        try:
            self.interleave(self.s.runs, one, "exec")
        finally:
            for rt in self.active():
                if rt.name in targets:
                    rt.serial.submit(rt.force_delete, targets[rt.name]).result()

    def phase_memory(self) -> None:
        """4. RSS and PSS of a created container's waiting init, right after ``create``."""

        def one(rt: Runtime, i: int) -> None:
            cid, bdir = self.new_container(rt, "mem", SLEEP_ARGS)
            pidfile = str(self.dir / "pids" / cid)
            r = rt.call(["create", "-b", bdir, "--pid-file", pidfile, cid], timeout=self.s.timeout)
            try:
                if not r.ok:
                    rt.fail("memory", f"create {cid}", r)
                    return
                try:
                    with open(pidfile) as f:
                        pid = int(f.read().strip())
                    m = smaps_rollup(pid)
                except (OSError, ValueError) as e:
                    rt.fail("memory", cid, f"cannot read the init's memory: {e}")
                    return
                self.record("init_rss", rt, m["Rss"] / 1024)
                self.record("init_pss", rt, m["Pss"] / 1024)
            finally:
                r2 = rt.force_delete(cid)
                if not r2.ok:
                    rt.fail("memory", f"delete --force {cid}", r2)

        self.interleave(self.s.runs, one, "memory")

    def phase_throughput(self) -> None:
        """5. ``--throughput`` containers ``run`` by ``--workers`` threads, per round and runtime."""
        detail: dict[str, dict] = {}
        n, w = self.s.throughput, self.s.workers
        for rnd in range(self.s.rounds):
            for rt in self.active():
                items = [self.new_container(rt, "tp", TRUE_ARGS) for _ in range(n)]

                def one(cid: str, bdir: str, rt: Runtime = rt) -> bool:
                    r = rt.call(["run", "-b", bdir, cid], timeout=self.s.timeout)
                    if r.ok:
                        with rt.lock:
                            rt.created.discard(cid)
                        return True
                    rt.fail("throughput", cid, r)
                    return False

                t0 = time.perf_counter()
                futs = [rt.pool.submit(one, cid, bdir) for cid, bdir in items]
                oks = sum(1 for f in futs if f.result())
                dt = time.perf_counter() - t0
                d = detail.setdefault(rt.name, {"containers": n, "workers": w, "rounds": [], "errors": 0})
                d["rounds"].append({"seconds": round(dt, 4), "ok": oks, "errors": n - oks, "containers_per_s": round(oks / dt, 3)})
                d["errors"] += n - oks
                self.record("throughput", rt, oks / dt)
                # what failed may have left a container behind: remove it before the next round
                for cid, _ in items:
                    if cid in rt.created:
                        rt.serial.submit(rt.force_delete, cid).result()
            _log(f"throughput round {rnd + 1}/{self.s.rounds}: " + ", ".join(
                f"{rt.label} {detail[rt.name]['rounds'][-1]['containers_per_s']:.1f}/s" for rt in self.active()))
        self.extra["throughput"] = detail

    def phase_many(self) -> None:
        """6. ``list`` and ``state`` with 1, then N, containers present (running ``sleep``s)."""
        runs = self.s.runs
        base: dict[str, str] = {}
        info: dict[str, dict] = {}

        def make_base(rt: Runtime) -> None:
            cid, bdir = self.new_container(rt, "base", SLEEP_ARGS)
            r = rt.call([*self._many_verb(), "-b", bdir, cid], timeout=self.s.timeout)
            if r.ok:
                base[rt.name] = cid
            else:
                rt.fail("many", f"{' '.join(self._many_verb())} {cid}", r)
                rt.force_delete(cid)

        for rt in self.active():
            rt.serial.submit(make_base, rt).result()

        def timed(suffix: str):
            def one(rt: Runtime, i: int) -> None:
                cid = base.get(rt.name)
                if cid is None:
                    return
                for metric, args in (("list", ["list"]), ("state", ["state", cid])):
                    r = rt.call(args, timeout=self.s.timeout)
                    if r.ok:
                        self.record(f"{metric}@{suffix}", rt, r.ms)
                    else:
                        rt.fail("many", f"{metric} with {suffix} present", r)

            return one

        try:
            self.interleave(runs, timed("1"), "list/state with 1 container")
            for rt in self.active():
                if rt.name in base:
                    info[rt.name] = self._fill_and_measure(rt, timed("N"))
        finally:
            for rt in self.active():
                if rt.name in base:
                    rt.serial.submit(rt.force_delete, base[rt.name]).result()
        self.extra["many"] = info

    def _many_verb(self) -> list[str]:
        return ["create"] if self.s.many_created else ["run", "--detach"]

    def _fill_and_measure(self, rt: Runtime, measure) -> dict:
        want = self.s.many
        total_kib = meminfo()["MemTotal"]
        before = meminfo()["MemAvailable"]
        # never take more than half of what was available, nor leave less than 2 GiB / 15 %
        floor_kib = max(2 << 20, total_kib * 15 // 100, before // 2)
        filled: list[str] = []
        pids: list[int] = []
        reason = ""
        t0 = time.monotonic()

        def make(rt: Runtime = rt) -> str | None:
            cid, bdir = self.new_container(rt, "many", SLEEP_ARGS)
            pidfile = str(self.dir / "pids" / cid)
            r = rt.call([*self._many_verb(), "-b", bdir, "--pid-file", pidfile, cid], timeout=self.s.timeout)
            if not r.ok:
                rt.fail("many", f"{' '.join(self._many_verb())} {cid}", r)
                rt.force_delete(cid)
                return None
            filled.append(cid)
            try:
                with open(pidfile) as f:
                    pids.append(int(f.read().strip()))
            except (OSError, ValueError):
                pass
            return cid

        result: dict = {"requested": want}
        try:
            chunk = self.s.workers * 4
            while 1 + len(filled) < want:
                avail = meminfo()["MemAvailable"]
                if avail < floor_kib:
                    reason = f"stopped at {1 + len(filled)}: MemAvailable {avail // 1024} MiB under the floor of {floor_kib // 1024} MiB"
                    _log(f"{rt.label}: {reason}")
                    break
                k = min(chunk, want - 1 - len(filled))
                futs = [rt.pool.submit(make) for _ in range(k)]
                results = [f.result() for f in futs]
                if not any(results):
                    reason = f"stopped at {1 + len(filled)}: every call of a chunk failed"
                    break
            fill_s = time.monotonic() - t0
            count = 1 + len(filled)
            time.sleep(0.5)  # let the inits settle before reading their memory
            after = meminfo()["MemAvailable"]
            rss = pss = 0
            for pid in pids:
                try:
                    m = smaps_rollup(pid)
                except (OSError, KeyError):
                    continue
                rss += m.get("Rss", 0)
                pss += m.get("Pss", 0)
            result.update(
                count=count,
                reason=reason,
                state="created (create of sleep, not started)" if self.s.many_created else "running (run --detach of sleep)",
                fill_seconds=round(fill_s, 2),
                sum_rss_mib=round(rss / 1024, 1),
                sum_pss_mib=round(pss / 1024, 1),
                mem_available_drop_mib=round((before - after) / 1024, 1),
                per_container_kib=round((before - after) / max(1, len(filled)), 1),
                if_created_mib=None,
            )
            init_pss = self.samples.get("init_pss", {}).get(rt.name)
            if init_pss and not self.s.many_created:
                result["if_created_mib"] = round(count * percentile(sorted(init_pss), 0.5), 1)
            _log(f"{rt.label}: {count} containers present (filled in {fill_s:.1f}s; MemAvailable -{(before - after) / 1024:.0f} MiB)")
            for i in range(self.s.runs):
                rt.serial.submit(measure, rt, i).result()
        finally:
            t1 = time.monotonic()
            futs = [rt.pool.submit(rt.force_delete, cid) for cid in list(filled)]
            for f in futs:
                r = f.result()
                if not r.ok:
                    rt.fail("many", "delete --force", r)
            result["teardown_seconds"] = round(time.monotonic() - t1, 2)
        return result

    # clean-up -----------------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Delete every container the bench made, verify that nothing of them is left (state dirs,
        cgroups, processes), remove what is, and return what was found left over."""
        for rt in self.runtimes:
            for ex in (rt.serial, rt.pool):
                if ex is not None:
                    ex.shutdown(wait=True, cancel_futures=True)
            rt.serial = rt.pool = None
        for rt in self.runtimes:
            ids = sorted(set(rt.created) | set(rt.listed_ids()))
            if not ids:
                continue
            _log(f"{rt.label}: deleting {len(ids)} container(s) left by the run")
            with rt.executor(self.s.workers) as ex:
                list(ex.map(rt.force_delete, ids))
        leftovers: list[str] = []
        deadline = time.monotonic() + 5
        while True:
            leftovers = self._leftovers()
            if not leftovers or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if leftovers:
            _log("left over after delete --force: " + "; ".join(leftovers[:10]) + (" ..." if len(leftovers) > 10 else ""))
            self._repair()
        self._remove_cgroup_parent()
        if self.ns_fd is not None:
            os.close(self.ns_fd)
            self.ns_fd = None
        shutil.rmtree(self.dir, ignore_errors=True)
        return leftovers

    def _our_cgroup_dirs(self) -> list[str]:
        found = []
        prefix = f"nkb{self.token}-"
        for mp, _ in cgroup_mounts():
            for parent in (mp + self.cg_rel, mp + "/nano-sandbox"):
                try:
                    names = os.listdir(parent)
                except OSError:
                    continue
                found += [f"{parent}/{n}" for n in names if n.startswith(prefix) and os.path.isdir(f"{parent}/{n}")]
        return found

    def _our_processes(self) -> list[int]:
        needle = f"{self.cg_rel}/nkb{self.token}-"
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cgroup") as f:
                    if needle in f.read():
                        pids.append(int(d))
            except OSError:
                continue
        return pids

    def _leftovers(self) -> list[str]:
        out = []
        for rt in self.runtimes:
            out += [f"{rt.name} state dir {rt.root}/{c}" for c in rt.listed_ids()]
        out += [f"cgroup {d}" for d in self._our_cgroup_dirs()]
        out += [f"process {p}" for p in self._our_processes()]
        return out

    def _repair(self) -> None:
        for pid in self._our_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
        for d in sorted(self._our_cgroup_dirs(), key=lambda p: p.count("/"), reverse=True):
            for sub, _dirs, _ in sorted(os.walk(d, topdown=False), key=lambda t: t[0].count("/"), reverse=True):
                try:
                    os.rmdir(sub)
                except OSError as e:
                    _log(f"cannot remove cgroup {sub}: {e.strerror}")

    def _remove_cgroup_parent(self) -> None:
        for mp, _ in cgroup_mounts():
            for rel in (self.cg_rel, CGROUP_PARENT):
                try:
                    os.rmdir(mp + rel)
                except OSError:
                    pass  # already gone, or still used (another bench run, or a leftover reported above)


def _first_line(s: str) -> str:
    return s.strip().splitlines()[0][:200] if s.strip() else ""


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --- report --------------------------------------------------------------------------------------
def build_report(bench: Bench, settings: Settings, machine: dict, leftovers: list[str], completed: bool) -> dict:
    """The JSON document: machine, settings, runtimes, metrics (stats per runtime, ratios of
    medians to runc and crun), throughput and many-containers details, errors, leftovers."""
    names = [rt.name for rt in bench.runtimes]
    refs = [r for r in ("runc", "crun") if r in names and next(rt for rt in bench.runtimes if rt.name == r).available]
    metrics = {}
    for key, (desc, unit, better) in METRICS.items():
        per = bench.samples.get(key)
        if not per:
            continue
        stats = {name: summarize(vals) for name, vals in per.items()}
        ratios = {}
        for name, st in stats.items():
            ratios[name] = {}
            for ref in refs:
                ref_st = stats.get(ref)
                if ref_st and ref_st.get("n") and st.get("n") and ref_st["median"]:
                    ratios[name][ref] = round(st["median"] / ref_st["median"], 3)
        metrics[key] = {"description": desc, "unit": unit, "better": better, "runtimes": stats, "ratios": ratios}
    growth = {}
    for name in names:
        g = {}
        for m in ("list", "state"):
            a = metrics.get(f"{m}@1", {}).get("runtimes", {}).get(name, {})
            b = metrics.get(f"{m}@N", {}).get("runtimes", {}).get(name, {})
            if a.get("n") and b.get("n") and a["median"]:
                g[m] = round(b["median"] / a["median"], 3)
        if g:
            growth[name] = g
    machine = dict(machine, loadavg_end=list(os.getloadavg()))
    return {
        "schema": SCHEMA,
        "completed": completed,
        "machine": machine,
        "settings": {
            "runs": settings.runs,
            "quick": settings.quick,
            "phases": list(settings.phases),
            "many": settings.many,
            "many_state": "created" if settings.many_created else "running",
            "throughput": settings.throughput,
            "workers": settings.workers,
            "rounds": settings.rounds,
            "bundle": str(settings.bundle),
            "rootfs": bench.rootfs,
            "oci_version": OCI_VERSION,
            "cgroups_path": f"{CGROUP_PARENT}/<token>/<id>",
            "order": "round-robin: call i of every runtime, then call i+1",
        },
        "runtimes": {
            rt.name: {
                "label": rt.label,
                "path": rt.path,
                "version": rt.version,
                "available": rt.available,
                "reason": rt.reason,
                "cgroups": rt.cgroups,
                "note": rt.note,
            }
            for rt in bench.runtimes
        },
        "harness_spawn_ms": bench.extra.get("harness_spawn_ms", {}),
        "metrics": metrics,
        "growth": growth,
        "throughput": bench.extra.get("throughput", {}),
        "many": bench.extra.get("many", {}),
        "errors": {rt.name: sum(rt.errors.values()) for rt in bench.runtimes},
        "errors_by_phase": {rt.name: dict(rt.errors) for rt in bench.runtimes},
        "error_samples": {rt.name: list(rt.error_samples) for rt in bench.runtimes if rt.error_samples},
        "containers_made": len(bench.all_ids),
        "leftovers": leftovers,
    }


def _fmt(v: float, unit: str) -> str:
    if unit == "ms":
        return f"{v:.2f}" if v < 10 else f"{v:.1f}"
    return f"{v:.1f}" if unit in ("MiB", "containers/s") else f"{v:.3g}"


def format_table(report: dict) -> str:
    """The human-readable report printed on stdout."""
    rts = report["runtimes"]
    m = report["machine"]
    lines = [
        f"nano-sandbox speed and footprint -- {m['date']}",
        f"machine: {m['kernel']} {m['arch']}, {m['cpus']} CPUs ({m['cpu_model'] or '?'}), {m['mem_total_mib']} MiB, "
        f"{m['os']}, cgroups {m['cgroup_layout']}; load {m['loadavg_start'][0]:.2f} -> {m['loadavg_end'][0]:.2f}",
    ]
    for name, r in rts.items():
        state = r["version"] if r["available"] else f"UNAVAILABLE: {r['reason']}"
        lines.append(f"  {r['label']:<12} {state}  [{r['path']}]")
    s = report["settings"]
    hs = report.get("harness_spawn_ms") or {}
    lines.append(
        f"{s['runs']} runs per figure, runtimes interleaved round-robin; median [p10-p90] (min); ratios are of medians"
        + (f"; harness: spawning /bin/true costs {hs['median']:.2f} ms of every call" if hs.get("n") else "")
    )
    refs = [r for r in ("runc", "crun") if r in rts and rts[r]["available"]]
    names = [n for n, r in rts.items() if r["available"]]
    head = f"{'':4}{'runtime':<13}{'median':>9}  {'p10-p90':>17}  {'min':>8}" + "".join(f"  {'x' + rts[r]['label']:>8}" for r in refs)
    for key, met in report["metrics"].items():
        desc = met["description"]
        if key.endswith("@N") and report.get("many"):
            counts = {v.get("count") for v in report["many"].values()}
            desc = desc.replace("N containers", f"{'/'.join(str(c) for c in sorted(counts))} containers")
        lines += ["", f"{desc} ({met['unit']}{', higher is better' if met['better'] == 'higher' else ''})", head]
        for name in names:
            st = met["runtimes"].get(name)
            if not st or not st.get("n"):
                lines.append(f"    {rts[name]['label']:<13}{'-':>9}")
                continue
            u = met["unit"]
            spread = f"{_fmt(st['p10'], u)}-{_fmt(st['p90'], u)}"
            row = f"    {rts[name]['label']:<13}{_fmt(st['median'], u):>9}  {spread:>17}  {_fmt(st['min'], u):>8}"
            for ref in refs:
                r = met["ratios"].get(name, {}).get(ref)
                row += f"  {('%.2f' % r) if r is not None else '-':>8}"
            lines.append(row)
    if report["growth"]:
        lines += ["", "cost with N containers present / with 1 (list, state):"]
        for name, g in report["growth"].items():
            n = report["many"].get(name, {}).get("count", "N")
            lines.append(f"    {rts[name]['label']:<13}N={n:<5} list x{g.get('list', float('nan')):.2f}   state x{g.get('state', float('nan')):.2f}")
    if report["many"]:
        lines += ["", "memory of the many-containers phase:"]
        for name, d in report["many"].items():
            if "count" not in d:
                continue
            lines.append(
                f"    {rts[name]['label']:<13}{d['count']} {d['state'].split(' ')[0]}: inits' PSS {d['sum_pss_mib']} MiB (RSS {d['sum_rss_mib']}), "
                f"MemAvailable {-d['mem_available_drop_mib']:+.1f} MiB (noisy on a busy host); filled in {d['fill_seconds']}s"
                + (f"; {d['reason']}" if d.get("reason") else "")
            )
            if d.get("if_created_mib") is not None:
                lines.append(f"    {'':<13}left created (not started), their waiting inits would take about {d['if_created_mib']:.0f} MiB (PSS)")
    if report["throughput"]:
        lines += ["", "throughput rounds (containers/s, errors):"]
        for name, d in report["throughput"].items():
            rounds = ", ".join(f"{r['containers_per_s']:.1f}/s ({r['errors']} err)" for r in d["rounds"])
            lines.append(f"    {rts[name]['label']:<13}{d['containers']} containers, {d['workers']} workers: {rounds}")
    lines += ["", "errors: " + ", ".join(f"{rts[n]['label']} {c}" for n, c in report["errors"].items())]
    for name, samples in report["error_samples"].items():
        for e in samples[:5]:
            lines.append(f"    {rts[name]['label']}: {e}")
    for name, r in rts.items():
        if r["note"]:
            lines += ["", f"{r['label']}: {r['note']}"]
    lines.append("")
    lines.append("left over: " + ("nothing" if not report["leftovers"] else "; ".join(report["leftovers"])))
    if not report["completed"]:
        lines.append("INTERRUPTED: the figures above are partial")
    return "\n".join(lines)


# --- command line --------------------------------------------------------------------------------
def find_runtimes(overrides: list[str], only: list[str] | None) -> list[Runtime]:
    """nk-runtime (beside ``sys.executable``, else on PATH), runc and crun (PATH), plus or
    replaced by ``NAME=PATH`` overrides; restricted to ``only`` when given.

    Raises:
        BenchError: a malformed override, or an ``only`` name that is not found.
    """
    found: dict[str, str | None] = {}
    nk = Path(sys.executable).parent / "nk-runtime"
    found["nk-runtime"] = str(nk) if os.access(nk, os.X_OK) else shutil.which("nk-runtime")
    found["runc"] = shutil.which("runc")
    found["crun"] = shutil.which("crun")
    for o in overrides:
        name, sep, path = o.partition("=")
        if not sep or not name or not path:
            raise BenchError(f"--runtime {o!r}: expected NAME=PATH")
        resolved = shutil.which(path) if os.sep not in path else path
        if not resolved or not os.access(resolved, os.X_OK):
            raise BenchError(f"--runtime {o!r}: {path} is not an executable")
        found[name] = os.path.abspath(resolved)
    if only:
        missing = [n for n in only if not found.get(n)]
        if missing:
            raise BenchError(f"--runtime-only: not found: {', '.join(missing)}")
        found = {n: found[n] for n in only}
    return [Runtime(name, path) for name, path in found.items() if path]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The bench's command line."""
    p = argparse.ArgumentParser(
        prog="python -m nano_sandbox.bench",
        description="Benchmark nk-runtime against runc and crun (run as root): latency of every verb, "
        "memory of a waiting init, throughput, list/state with many containers.",
    )
    p.add_argument("--runs", type=int, help="samples per figure (default 20; 3 with --quick)")
    p.add_argument("--quick", action="store_true", help="few runs and small counts, for a CI smoke run")
    p.add_argument("--only", help=f"comma-separated phases or metrics: {', '.join(sorted(ONLY_ALIASES))}")
    p.add_argument("--many", type=int, help="containers present for list/state (default 500; 30 with --quick)")
    p.add_argument("--many-created", action="store_true",
                   help="leave the --many containers created, not started (their waiting inits stay in memory)")
    p.add_argument("--throughput", type=int, help="containers per throughput round (default 50; 16 with --quick)")
    p.add_argument("--workers", type=int, default=8, help="parallel workers for throughput and filling (default 8)")
    p.add_argument("--rounds", type=int, help="throughput rounds per runtime (default 3; 1 with --quick)")
    p.add_argument("--runtime", action="append", default=[], metavar="NAME=PATH", help="add or override a runtime")
    p.add_argument("--runtime-only", metavar="NAMES", help="comma-separated runtime names to measure, e.g. nk-runtime")
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="bundle whose config.json and rootfs are used")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a runtime call is killed (default 60)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    return p.parse_args(argv)


def settings_from(ns: argparse.Namespace) -> Settings:
    """Settings from parsed arguments (``--quick`` defaults, ``--only`` resolved to phases).

    Raises:
        BenchError: an unknown ``--only`` name or a count under 1.
    """
    q = ns.quick
    phases: tuple[str, ...] = PHASES
    if ns.only:
        wanted = set()
        for name in (x.strip() for x in ns.only.split(",") if x.strip()):
            if name not in ONLY_ALIASES:
                raise BenchError(f"--only: unknown {name!r} (known: {', '.join(sorted(ONLY_ALIASES))})")
            wanted.add(ONLY_ALIASES[name])
        phases = tuple(ph for ph in PHASES if ph in wanted)
    s = Settings(
        runs=ns.runs if ns.runs is not None else (3 if q else 20),
        quick=q,
        phases=phases,
        many=ns.many if ns.many is not None else (30 if q else 500),
        many_created=ns.many_created,
        throughput=ns.throughput if ns.throughput is not None else (16 if q else 50),
        workers=ns.workers,
        rounds=ns.rounds if ns.rounds is not None else (1 if q else 3),
        timeout=ns.timeout,
        bundle=ns.bundle,
    )
    for name in ("runs", "many", "throughput", "workers", "rounds"):
        if getattr(s, name) < 1:
            raise BenchError(f"--{name} must be at least 1")
    return s


def run_bench(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (0: done without errors or leftovers,
    1: some call failed or something was left over, 2: could not run, 130: interrupted)."""
    ns = parse_args(argv)
    try:
        settings = settings_from(ns)
        if os.geteuid() != 0:
            raise BenchError("needs root (it creates real containers)")
        runtimes = find_runtimes(ns.runtime, [x.strip() for x in ns.runtime_only.split(",")] if ns.runtime_only else None)
        if not runtimes:
            raise BenchError("no runtime found")
    except BenchError as e:
        print(f"nano_sandbox.bench: {e}", file=sys.stderr)
        return 2
    machine = machine_info()
    bench = Bench(runtimes, settings)
    completed = False
    status = 0

    def on_term(signum, frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    # interruptible even when started with SIGINT ignored (a background job of a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    leftovers: list[str] = []
    try:
        bench.setup()
        bench.preflight()
        for phase in settings.phases:
            _log(f"phase {phase}")
            getattr(bench, f"phase_{phase}")()
        completed = True
    except KeyboardInterrupt:
        _log("interrupted: cleaning up (Ctrl-C is ignored until done)")
        status = 130
    except BenchError as e:
        _log(f"error: {e}")
        status = 2
    except Exception:  # noqa: BLE001 - a bug of the bench: still clean up and write what was measured
        import traceback

        _log("bench failed:\n" + traceback.format_exc())
        status = 2
    finally:
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            leftovers = bench.cleanup()
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
            _close_watchdog()
    report = build_report(bench, settings, machine, leftovers, completed)
    if bench.samples or completed:
        print(format_table(report), flush=True)
    if ns.json:
        ns.json.write_text(json.dumps(report, indent=1) + "\n")
        _log(f"JSON written to {ns.json}")
    if status == 0 and (any(report["errors"].values()) or leftovers):
        status = 1
    return status

