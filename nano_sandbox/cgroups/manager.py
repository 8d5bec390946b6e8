"""A container's cgroups on v1, v2 or hybrid hosts: create, join, limit, freeze, remove.

One :class:`Manager` per container. It holds the container's cgroup directory in every mounted
hierarchy (``paths``: hierarchy key → directory) and the list of directories it created itself
(``created``): on removal only those are removed, so a pre-existing cgroup that the container
joined survives it (runtime-spec config-linux.md "cgroupsPath").

Paths (runtime-spec "cgroupsPath"): an absolute ``cgroupsPath`` is taken from each hierarchy's
root; a relative one, or none, goes under ``/nano-sandbox/`` (``/nano-sandbox/<id>`` when absent).
The runtime never creates cgroups under its caller's own cgroup.

Resource writes live in :mod:`nano_sandbox.cgroups.resources`; this module decides where.
"""

from __future__ import annotations

import errno
import os
import time

from nano_sandbox import errors
from nano_sandbox.cgroups.layout import Layout, detect

PARENT = "/nano-sandbox"


def _has_procs(d: str) -> bool:
    try:
        with open(d + "/cgroup.procs") as f:
            return bool(f.read().strip())
    except OSError:
        return False


def resolve_path(cgroups_path: str | None, cid: str) -> str:
    """Return the container's cgroup as a path from the hierarchy root (always absolute).

    ``None``/empty → ``/nano-sandbox/<id>``; ``"/a/b"`` → ``/a/b``; ``"a/b"`` → ``/nano-sandbox/a/b``.

    Raises:
        errors.ConfigError: systemd ``slice:prefix:name`` syntax (needs --systemd-cgroup, which
            is not supported), or a path with ``..`` components.
    """
    if not cgroups_path:
        from nano_sandbox.state.store import fs_name

        return f"{PARENT}/{fs_name(cid)}"
    if ":" in cgroups_path and not cgroups_path.startswith("/"):
        raise errors.ConfigError(
            "linux.cgroupsPath",
            f"{cgroups_path!r} is in systemd slice:prefix:name form, which needs the systemd cgroup driver (not supported)",
        )
    parts = [p for p in cgroups_path.split("/") if p]
    if ".." in parts:
        raise errors.ConfigError("linux.cgroupsPath", f"{cgroups_path!r} must not contain '..'")
    if not parts:
        raise errors.ConfigError("linux.cgroupsPath", "must not be the root cgroup")
    if cgroups_path.startswith("/"):
        return "/" + "/".join(parts)
    return PARENT + "/" + "/".join(parts)


class Manager:
    """The cgroups of one container.

    Args:
        paths: hierarchy key (``"memory"``, ``"cpu,cpuacct"``, ``"name=systemd"``, ``""`` for v2)
            → absolute cgroup directory.
        created: directories this runtime created, parents before children.
        layout: the host layout (detected when None).
    """

    def __init__(self, paths: dict[str, str], created: list[str] | None = None, layout: Layout | None = None) -> None:
        self.paths = dict(paths)
        self.created = list(created or [])
        self._layout = layout

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = detect()
        return self._layout

    @classmethod
    def for_container(cls, cid: str, cgroups_path: str | None, layout: Layout | None = None) -> "Manager":
        """Compute the directories of a new container's cgroups (nothing is created yet)."""
        layout = layout or detect()
        cg = resolve_path(cgroups_path, cid)
        paths = {}
        for h in layout.v1:
            paths[h.key] = h.path_of(cg)
        if layout.v2 is not None:
            paths[""] = layout.v2.path_of(cg)
        return cls(paths, [], layout)

    # --- where ------------------------------------------------------------------------------------
    def dir_for(self, controller: str) -> str | None:
        """The directory holding ``controller``'s files (v1 hierarchy or v2), or None."""
        lay = self.layout
        h = lay.v1_hierarchy(controller)
        if h is not None:
            return self.paths.get(h.key)
        if controller in lay.v2_controllers or controller in ("freezer", "devices") and lay.v2 is not None:
            # cgroup v2: every controller in the one directory; freezing (cgroup.freeze) and device
            # filtering (a BPF program) are core features, not controllers.
            return self.paths.get("")
        return None

    def is_v2(self, controller: str) -> bool:
        """True when ``controller`` is driven through cgroup v2 files on this host."""
        return self.layout.v1_hierarchy(controller) is None and "" in self.paths

    # --- lifecycle ----------------------------------------------------------------------------------
    def create(self) -> None:
        """Create every missing directory (recording them in ``created``), prepare v1 cpuset
        parents and enable v2 controllers down the tree.

        Another container's delete may remove a shared, empty parent (``/nano-sandbox``) between
        our mkdirs; a vanished parent is simply made again.

        Raises:
            errors.HostError: a mkdir or controller write failed (names the path).
        """
        for key, d in self.paths.items():
            for attempt in range(20):
                try:
                    self._create_one(key, d)
                    break
                except FileNotFoundError:
                    if attempt == 19:
                        raise errors.HostError(f"cannot create cgroup {d}: a parent keeps disappearing") from None

    def _create_one(self, key: str, d: str) -> None:
        mount = self._mountpoint(key)
        rel = d[len(mount) :].strip("/")
        cur = mount
        for part in rel.split("/") if rel else []:
            parent, cur = cur, cur + "/" + part
            if key == "":
                self._enable_v2(parent)
            try:
                os.mkdir(cur, 0o755)
                if cur not in self.created:
                    self.created.append(cur)
            except FileExistsError:
                # A leftover leaf in the runtime's own /nano-sandbox tree (its container's
                # runtime was killed before it could clean up) is ours: adopt it, so delete
                # removes it. (If it still holds processes, create refuses to share it.)
                if (cur == d and ("/" + rel).startswith(PARENT + "/") and cur not in self.created
                        and not _has_procs(cur)):
                    self.created.append(cur)
            except FileNotFoundError:
                raise
            except OSError as e:
                raise errors.HostError(f"cannot create cgroup {cur}: {e.strerror}") from e
        if "cpuset" in key.split(",") and rel:
            # Every level, also a parent another create made a moment ago and has not filled yet.
            self._ensure_cpuset(mount, d)

    def _mountpoint(self, key: str) -> str:
        lay = self.layout
        if key == "":
            assert lay.v2 is not None
            return lay.v2.mountpoint
        for h in lay.v1:
            if h.key == key:
                return h.mountpoint
        raise errors.HostError(f"cgroup hierarchy {key!r} is not mounted")

    def _enable_v2(self, parent: str) -> None:
        # cgroup v2 "no internal processes" and top-down rules: a controller must be enabled in
        # every ancestor's cgroup.subtree_control (cgroups(7), "Enabling and disabling controllers").
        try:
            with open(parent + "/cgroup.controllers") as f:
                available = f.read().split()
            with open(parent + "/cgroup.subtree_control") as f:
                enabled = set(f.read().split())
        except OSError:
            return
        want = [c for c in available if c not in enabled]
        if not want:
            return
        try:
            with open(parent + "/cgroup.subtree_control", "w") as f:
                f.write(" ".join("+" + c for c in want))
        except OSError:
            # One at a time: a controller may be refused (e.g. cpu with realtime tasks).
            for c in want:
                try:
                    with open(parent + "/cgroup.subtree_control", "w") as f:
                        f.write("+" + c)
                except OSError:
                    pass

    @staticmethod
    def _ensure_cpuset(mount: str, leaf: str) -> None:
        """v1 cpuset: a cgroup with empty ``cpuset.cpus``/``cpuset.mems`` refuses tasks
        (cpusets(7)). From the top down to ``leaf``, fill each empty one from its parent (runc's
        ``ensureParent``); a non-empty value, set by the admin or another runtime, is kept."""
        chain = []
        cur = leaf
        while len(cur) > len(mount):
            chain.append(cur)
            cur = os.path.dirname(cur)
        for child in reversed(chain):
            parent = os.path.dirname(child)
            for name in ("cpuset.cpus", "cpuset.mems"):
                try:
                    with open(f"{child}/{name}") as f:
                        if f.read().strip():
                            continue
                    with open(f"{parent}/{name}") as f:
                        value = f.read().strip()
                    with open(f"{child}/{name}", "w") as f:
                        f.write(value)
                except OSError:
                    pass

    def add(self, pid: int) -> None:
        """Move ``pid`` into the container's cgroup in every hierarchy (write ``cgroup.procs``).

        Raises:
            errors.HostError: naming the ``cgroup.procs`` file and errno.
        """
        from nano_sandbox.linux.syscalls import record

        for d in self.paths.values():
            path = d + "/cgroup.procs"
            record(f'write("{path}", "{pid}")')
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, str(pid).encode())
                finally:
                    os.close(fd)
            except OSError as e:
                raise errors.HostError(f"cannot move pid {pid} into cgroup {d}: {e.strerror}") from e

    def pids(self) -> list[int]:
        """Every pid in the container's cgroup (and its descendants), sorted."""
        d = None
        for ctrl in ("pids", "freezer", "memory", "cpu"):
            d = self.dir_for(ctrl)
            if d:
                break
        if d is None:
            d = self.paths.get("") or next(iter(self.paths.values()), None)
        if d is None:
            return []
        out: set[int] = set()
        for dirpath, _dirs, _files in os.walk(d):
            try:
                with open(dirpath + "/cgroup.procs") as f:
                    out.update(int(x) for x in f.read().split())
            except OSError:
                pass
        return sorted(out)

    def busy_leaves(self) -> list[str]:
        """The container's cgroup directories that exist already and hold processes."""
        return [d for d in self.paths.values() if _has_procs(d)]

    def planned(self) -> list[str]:
        """The directories :meth:`create` will count as its own: those that do not exist yet,
        and leaves in the runtime's own ``/nano-sandbox`` tree (left over by a runtime killed
        before it cleaned up). Recorded before creating them."""
        out = []
        for key, d in self.paths.items():
            try:
                mount = self._mountpoint(key)
            except errors.HostError:
                continue
            rel = "/" + d[len(mount):].strip("/")
            cur = mount
            for part in rel.strip("/").split("/"):
                cur = cur + "/" + part
                if not os.path.isdir(cur) or (cur == d and rel.startswith(PARENT + "/")):
                    out.append(cur)
        return out

    def owns_leaves(self) -> bool:
        """True when this runtime created the container's cgroup directories (rather than the
        container joining existing ones, which may hold other processes)."""
        created = set(self.created)
        return bool(self.paths) and all(d in created for d in self.paths.values())

    def apply(self, resources, update: bool = False, current=None) -> None:
        """Write ``resources`` (a ``LinuxResources``) into the cgroup files (see
        :func:`nano_sandbox.cgroups.resources.apply` for ``update`` and ``current``).

        Raises:
            errors.HostError: naming the JSON path of the limit and the file, e.g.
                ``linux.resources.memory.limit: cannot set 4096 in .../memory.limit_in_bytes: ...``.
        """
        from nano_sandbox.cgroups import resources as res

        res.apply(self, resources, update=update, current=current)

    def stats(self) -> dict:
        """The container's resource statistics in runc's ``types.Stats`` JSON shape (see
        :func:`nano_sandbox.cgroups.stats.collect`)."""
        from nano_sandbox.cgroups import stats

        return stats.collect(self)

    # --- freezer ------------------------------------------------------------------------------------
    def freeze(self) -> None:
        """Freeze every process (v1 ``freezer.state`` = FROZEN, v2 ``cgroup.freeze`` = 1) and wait
        until the kernel reports it frozen."""
        self._set_frozen(True)

    def thaw(self) -> None:
        """Thaw the container (v1 ``freezer.state`` = THAWED, v2 ``cgroup.freeze`` = 0)."""
        self._set_frozen(False)

    def frozen(self) -> bool:
        d = self.layout.v1_hierarchy("freezer")
        try:
            if d is not None:
                with open(self.paths[d.key] + "/freezer.state") as f:
                    return f.read().strip() == "FROZEN"
            if "" in self.paths:
                with open(self.paths[""] + "/cgroup.freeze") as f:
                    return f.read().strip() == "1"
        except OSError:
            return False
        return False

    def _set_frozen(self, frozen: bool) -> None:
        from nano_sandbox.linux.syscalls import record

        h = self.layout.v1_hierarchy("freezer")
        if h is not None:
            path, value, done = self.paths[h.key] + "/freezer.state", ("FROZEN" if frozen else "THAWED"), None
        elif "" in self.paths:
            path, value = self.paths[""] + "/cgroup.freeze", ("1" if frozen else "0")
        else:
            raise errors.HostError("no freezer: neither a v1 freezer hierarchy nor cgroup v2 is mounted")
        for attempt in range(2000):
            record(f'write("{path}", "{value}")')
            try:
                with open(path, "w") as f:
                    f.write(value)
            except OSError as e:
                raise errors.HostError(f"cannot write {value} to {path}: {e.strerror}") from e
            if h is not None:
                with open(path) as f:
                    state = f.read().strip()
                if state == value:
                    return
            else:
                with open(self.paths[""] + "/cgroup.events") as f:
                    events = dict(line.split() for line in f if line.strip())
                if events.get("frozen") == ("1" if frozen else "0"):
                    return
            time.sleep(0.001 if attempt < 100 else 0.01)
        raise errors.HostError(f"timed out waiting for {path} to become {value}")

    # --- removal --------------------------------------------------------------------------------------
    def kill_all(self, sig: int) -> list[int]:
        """Send ``sig`` to every process in the cgroup; returns the pids signalled."""
        sent = []
        for pid in self.pids():
            try:
                os.kill(pid, sig)
                sent.append(pid)
            except ProcessLookupError:
                pass
        return sent

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove the container's cgroup directories that this runtime created, then any empty
        parent it created or that lies under ``/nano-sandbox``. A cgroup whose last processes
        are still exiting answers EBUSY for a moment: the leaf is retried until ``timeout`` seconds.

        Raises:
            errors.HostError: a leaf directory could not be removed in time.
        """
        from nano_sandbox.linux.syscalls import record

        deadline = time.monotonic() + timeout
        created = set(self.created)
        leaves = [d for d in self.paths.values() if d in created]
        for d in leaves:
            while True:
                try:
                    record(f'rmdir("{d}")')
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno == errno.EBUSY and time.monotonic() < deadline:
                        time.sleep(0.005)
                        continue
                    raise errors.HostError(f"cannot remove cgroup {d}: {e.strerror}") from e
        parents: set[str] = {d for d in created if d not in leaves}
        for key, leaf in self.paths.items():
            try:
                mount = self._mountpoint(key)
            except errors.HostError:
                continue
            rel = leaf[len(mount):]
            if rel == PARENT or rel.startswith(PARENT + "/"):
                cur = leaf
                while True:
                    cur = os.path.dirname(cur)
                    if len(cur) < len(mount + PARENT):
                        break
                    parents.add(cur)
        for d in sorted(parents, key=lambda p: p.count("/"), reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass  # still used by another container, or not ours to remove
        self.created = []
