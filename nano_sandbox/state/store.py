"""State files, their locks, and the status derived from kernel facts.

Layout under the runtime root (``--root``, default ``/run/nano-sandbox``)::

    <root>/<id>/state.json     the container's state (msgspec JSON, written atomically)
    <root>/<id>/exec.fifo      present while the container is ``created`` (runc's exec fifo)
    <root>/<id>/journal        the trace journal (JSON lines)
    <root>/.locks/<id>.lock    the container's lock file (outside the directory ``delete`` removes)

Every operation that may change a container holds its lock (``filelock``) across
load → transition → save; state.json is written to a temporary file, fsynced and renamed, so a
reader never sees a torn file. ``delete`` removes the lock file too; see :class:`ContainerLock`
for why that is safe for the processes waiting on it.

Status is derived on every load (runtime-spec runtime.md "State"; the stored value is a hint):
the init pid is gone, a zombie, or its start time (field 22 of ``/proc/<pid>/stat``, proc(5))
differs from the recorded one → ``stopped`` (a reused pid never looks alive); the freezer says
frozen → ``paused``; the exec fifo exists → ``created``; otherwise ``running``.
"""

from __future__ import annotations

import os

import msgspec

from nano_sandbox import OCI_VERSION, errors

STATE_FILE = "state.json"
FIFO_NAME = "exec.fifo"
JOURNAL = "journal"
LOCK_DIR = ".locks"

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


class State(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """One container's ``state.json``.

    The first six fields are the OCI state (runtime-spec runtime.md "State"); the rest is what
    the runtime needs to act on the container later.

    Attributes:
        oci_version: runtime-spec version (``ociVersion``).
        id: container id.
        status: ``creating``, ``created``, ``running``, ``paused`` or ``stopped`` (as last saved).
        pid: host pid of the container's init (0 until known).
        bundle: absolute path of the bundle directory.
        annotations: the config's annotations.
        init_start_time: start time of the init in clock ticks since boot (``/proc/<pid>/stat`` field 22).
        created: creation time, RFC 3339 UTC.
        rootfs: absolute path of the root filesystem.
        cgroup_paths: hierarchy key (``"memory"``, ``"cpu,cpuacct"``, ``""`` for v2) → cgroup directory.
        cgroup_created: the cgroup directories this runtime created (only these are removed).
        previous_status: the status before the last transition (diagram highlighting).
        exited_at: when the runtime noticed the init was gone, RFC 3339 (``stopped`` only).
        config: the config as applied (``config.json`` bytes as given, kept undecoded).
    """

    oci_version: str = OCI_VERSION
    id: str
    status: str
    pid: int = 0
    bundle: str
    annotations: dict[str, str] = {}
    init_start_time: int = 0
    created: str = ""
    rootfs: str = ""
    cgroup_paths: dict[str, str] = {}
    cgroup_created: list[str] = []
    previous_status: str = ""
    exited_at: str = ""
    config: msgspec.Raw = msgspec.Raw(b"{}")


class OCIState(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """The state document ``nk-runtime state`` prints (runtime-spec runtime.md "State";
    ``state-schema.json``). ``pid`` is omitted once the container has stopped, as runc does."""

    oci_version: str
    id: str
    status: str
    pid: int | msgspec.UnsetType = msgspec.UNSET
    bundle: str
    rootfs: str = ""
    created: str = ""
    owner: str = ""
    annotations: dict[str, str] | msgspec.UnsetType = msgspec.UNSET


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(State)


def validate_id(cid: str) -> None:
    """Check a container id: ``[A-Za-z0-9][A-Za-z0-9_.-]*``, at most 1024 characters, never
    ``.`` or ``..``, never containing ``/``. Raises :class:`errors.InvalidArgument`."""
    if not cid:
        raise errors.InvalidArgument("container id: must not be empty")
    if len(cid) > 1024:
        raise errors.InvalidArgument(f"container id: longer than 1024 characters ({len(cid)})")
    if cid in (".", ".."):
        raise errors.InvalidArgument(f"container id {cid!r}: not allowed")
    if not cid[0].isascii() or not cid[0].isalnum() or any(c not in _ID_CHARS for c in cid):
        raise errors.InvalidArgument(
            f"container id {cid!r}: invalid (allowed: letters, digits, '_', '.', '-', starting with a letter or digit)"
        )


def fs_name(cid: str) -> str:
    """The name a container id takes in the file system (state directory, lock file, default
    cgroup): the id itself, or for ids longer than 200 characters (ids may have 1024, names at
    most 255 bytes: NAME_MAX) its first 150 characters and a SHA-256 digest of the whole."""
    if len(cid) <= 200:
        return cid
    import hashlib

    return cid[:150] + "-" + hashlib.sha256(cid.encode()).hexdigest()[:40]


def state_dir(root: str, cid: str) -> str:
    """Return ``<root>/<fs_name(cid)>`` (the id must already be valid)."""
    return os.path.join(root, fs_name(cid))


def lock_path(root: str, cid: str) -> str:
    """Return the path of the container's lock file, ``<root>/.locks/<fs_name(cid)>.lock``."""
    return os.path.join(root, LOCK_DIR, fs_name(cid) + ".lock")


class StaleLock(Exception):
    """The lock file was removed (by ``delete``) while we waited on it: take the lock again."""


class ContainerLock:
    """A container's lock: ``filelock.FileLock`` on ``<root>/.locks/<id>.lock``, whose file is
    removed when the container is deleted, so lock files do not pile up (podman never passes
    ``--root``: one would be left per container ever run).

    Removing a lock file others may be waiting on is safe because every acquisition checks,
    while holding the lock, that its open file is still the one at the path (same device and
    inode); if ``delete`` unlinked it meanwhile, the lock is dropped and taken again on the new
    file (filelock's ``on_acquired`` hook; the rollback releases it).

    Args:
        timeout: seconds to wait (``errors.HostError`` after that).
    """

    def __init__(self, root: str, cid: str, timeout: float = 120.0) -> None:
        self.dir = os.path.join(root, LOCK_DIR)
        self.path = lock_path(root, cid)
        self.timeout = timeout
        self._lock = None

    def _check(self, fd: int) -> None:
        st = os.fstat(fd)
        try:
            cur = os.stat(self.path)
        except FileNotFoundError:
            raise StaleLock() from None
        if (st.st_dev, st.st_ino) != (cur.st_dev, cur.st_ino):
            raise StaleLock()

    def acquire(self) -> None:
        """Take the lock (retrying when its file was replaced under us).

        Raises:
            errors.HostError: the lock directory cannot be made, or the wait timed out.
        """
        from filelock import FileLock, Timeout

        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
        except OSError as e:
            raise errors.HostError(f"cannot create lock directory {self.dir}: {e.strerror}") from e
        for _ in range(1000):
            # A short poll interval: filelock waits by retrying a non-blocking flock(2), and its
            # default (50 ms) would dominate concurrent operations on one container.
            lock = FileLock(self.path, timeout=self.timeout, poll_interval=0.002, on_acquired=self._check)
            try:
                lock.acquire()
            except StaleLock:
                continue
            except Timeout:
                raise errors.HostError(f"timed out waiting for the lock {self.path}") from None
            self._lock = lock
            return
        raise errors.HostError(f"cannot take the lock {self.path}: it keeps being replaced")

    def remove(self) -> None:
        """Unlink the lock file (while holding it): the container is gone."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def container_lock(root: str, cid: str, timeout: float = 120.0) -> ContainerLock:
    """Return the :class:`ContainerLock` of a container (not yet acquired). Its fd is
    close-on-exec and the init closes every inherited fd anyway: it never reaches a container."""
    return ContainerLock(root, cid, timeout)


def encode(state: State) -> bytes:
    """Encode a :class:`State` as JSON bytes."""
    return _encoder.encode(state)


def save(root: str, state: State) -> None:
    """Write ``<root>/<id>/state.json`` atomically (write tmp, fsync, rename).

    Raises:
        errors.HostError: the directory is missing or the write fails.
    """
    d = state_dir(root, state.id)
    tmp = os.path.join(d, f".state.json.{os.getpid()}")
    data = _encoder.encode(state)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(d, STATE_FILE))
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise errors.HostError(f"cannot save state of container {state.id!r} in {d}: {e.strerror}") from e


def load(root: str, cid: str) -> State:
    """Read a container's state file.

    Raises:
        errors.ContainerNotFound: no such container (no state dir or no state.json).
        errors.HostError: state.json is unreadable or corrupt.
    """
    path = os.path.join(state_dir(root, cid), STATE_FILE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise errors.ContainerNotFound(cid) from None
    except NotADirectoryError:
        raise errors.ContainerNotFound(cid) from None
    except OSError as e:
        raise errors.HostError(f"cannot read {path}: {e.strerror}") from e
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as e:
        raise errors.HostError(f"corrupt state file {path}: {e}") from e


def list_ids(root: str) -> list[str]:
    """Return the ids of every container under ``root`` (sorted; lock dir and dotfiles excluded)."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise errors.HostError(f"--root {root}: {e.strerror}") from e
    return sorted(n for n in names if not n.startswith(".") and os.path.isfile(os.path.join(root, n, STATE_FILE)))


def lock_held(root: str, cid: str) -> bool:
    """True when some process holds the container's lock (a probe with flock(2) LOCK_NB on the
    lock file; taking it for an instant is harmless: lockers retry)."""
    import fcntl

    try:
        fd = os.open(lock_path(root, cid), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


# --- kernel facts ------------------------------------------------------------------------------------
def proc_stat(pid: int) -> tuple[str, int] | None:
    """Return ``(state letter, start time in clock ticks)`` of ``pid`` from /proc/<pid>/stat, or
    None if there is no such process. The comm field may contain spaces and parentheses, so the
    line is split at the last ``)`` (as psutil does)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    # rest[0] is field 3 (state); field 22 (starttime) is rest[19].
    return rest[0].decode(), int(rest[19])


def init_alive(state: State) -> bool:
    """True when the recorded init still runs: same pid, same start time, not a zombie."""
    if state.pid <= 0:
        return False
    st = proc_stat(state.pid)
    if st is None:
        return False
    letter, start = st
    if letter in ("Z", "X", "x"):
        return False
    return state.init_start_time == 0 or start == state.init_start_time


def is_frozen(state: State) -> bool:
    """True when the container's freezer cgroup reports frozen (v1 ``freezer.state`` FROZEN, v2
    ``cgroup.freeze`` 1)."""
    d = state.cgroup_paths.get("freezer")
    try:
        if d:
            with open(d + "/freezer.state") as f:
                return f.read().strip() == "FROZEN"
        d = state.cgroup_paths.get("")
        if d:
            with open(d + "/cgroup.freeze") as f:
                return f.read().strip() == "1"
    except OSError:
        return False
    return False


def derive_status(root: str, state: State) -> str:
    """Return the status the kernel facts give for ``state`` (see the module docstring).

    ``creating`` is returned as stored while the create is in progress and its init still runs
    (or has not been forked yet).
    """
    if state.status == "stopped":
        return "stopped"
    if state.status == "creating":
        if state.pid and not init_alive(state):
            return "stopped"
        if not lock_held(root, state.id):
            return "stopped"  # the create that made it died half way: nothing will finish it
        return "creating"
    if not init_alive(state):
        return "stopped"
    if os.path.exists(os.path.join(state_dir(root, state.id), FIFO_NAME)):
        return "created"
    if is_frozen(state):
        return "paused"
    return "running"


def oci_state(state: State, status: str) -> OCIState:
    """Return the OCI state document for ``state`` with the derived ``status``."""
    return OCIState(
        oci_version=state.oci_version,
        id=state.id,
        status=status,
        pid=state.pid if status not in ("stopped",) and state.pid else msgspec.UNSET,
        bundle=state.bundle,
        rootfs=state.rootfs,
        created=state.created,
        owner="",
        annotations=state.annotations if state.annotations else msgspec.UNSET,
    )


def now_rfc3339() -> str:
    """Current time as RFC 3339 UTC with nanoseconds (as runc's ``created``)."""
    import time

    t = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1_000_000_000)) + f".{t % 1_000_000_000:09d}Z"
