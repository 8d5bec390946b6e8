"""Which cgroup hierarchies this host has mounted, and where: v1, v2 (unified) or hybrid.

Read from ``/proc/self/mountinfo`` (proc(5)); the functions take the file's text so unit tests can
feed the mountinfo of any layout.

* **v1**: one ``cgroup`` mount per hierarchy, its super options naming the controllers
  (``memory``; ``cpu,cpuacct``; or a named hierarchy such as ``name=systemd``).
* **v2**: a single ``cgroup2`` mount (usually ``/sys/fs/cgroup``); its controllers are listed in
  ``cgroup.controllers``.
* **hybrid**: both; controllers bound to a v1 hierarchy are used there, the cgroup2 mount (often
  ``/sys/fs/cgroup/unified``) holds what no v1 hierarchy has (on this project's CI: ``hugetlb``).
"""

from __future__ import annotations

import os

#: v1 super options that are not controllers.
_NOT_CONTROLLERS = {
    "rw", "ro", "none", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods", "nosuid", "nodev", "noexec",
}


class Hierarchy:
    """One mounted cgroup hierarchy.

    Attributes:
        version: 1 or 2.
        mountpoint: where it is mounted (``/sys/fs/cgroup/memory``).
        root: the hierarchy path that the mount shows at its mountpoint (``/`` on a host).
        controllers: the controllers it carries; a v1 named hierarchy gives ``("name=systemd",)``.
    """

    __slots__ = ("version", "mountpoint", "root", "controllers")

    def __init__(self, version: int, mountpoint: str, root: str, controllers: tuple[str, ...]) -> None:
        self.version = version
        self.mountpoint = mountpoint
        self.root = root
        self.controllers = controllers

    @property
    def key(self) -> str:
        """The name ``/proc/<pid>/cgroup`` uses for this hierarchy: ``"memory"``,
        ``"cpu,cpuacct"``, ``"name=systemd"``, or ``""`` for v2."""
        return "" if self.version == 2 else ",".join(self.controllers)

    def path_of(self, cgroup: str) -> str:
        """Return the directory of hierarchy path ``cgroup`` (absolute, e.g. ``/nano-sandbox/web``)."""
        rel = cgroup
        if self.root != "/" and (cgroup == self.root or cgroup.startswith(self.root + "/")):
            rel = cgroup[len(self.root) :]
        return self.mountpoint + "/" + rel.strip("/") if rel.strip("/") else self.mountpoint

    def __repr__(self) -> str:
        return f"Hierarchy(v{self.version}, {self.mountpoint!r}, root={self.root!r}, {self.controllers!r})"


class Layout:
    """The host's cgroup layout.

    Attributes:
        mode: ``"v1"``, ``"v2"`` or ``"hybrid"`` (``"none"`` when nothing is mounted).
        v1: the v1 hierarchies, one per mount (named hierarchies included).
        v2: the cgroup2 hierarchy or None.
        v2_controllers: controllers available in the v2 hierarchy (its ``cgroup.controllers``).
    """

    def __init__(self, v1: list[Hierarchy], v2: Hierarchy | None, v2_controllers: tuple[str, ...]) -> None:
        self.v1 = v1
        self.v2 = v2
        self.v2_controllers = v2_controllers
        has_v1 = any(not c.startswith("name=") for h in v1 for c in h.controllers)
        if has_v1 and v2 is not None:
            self.mode = "hybrid"
        elif has_v1:
            self.mode = "v1"
        elif v2 is not None:
            self.mode = "v2"
        else:
            self.mode = "none"

    def v1_controllers(self) -> set[str]:
        """Controllers bound to a v1 hierarchy (named hierarchies excluded)."""
        return {c for h in self.v1 for c in h.controllers if not c.startswith("name=")}

    def controllers(self) -> set[str]:
        """Every controller usable on this host, through either version."""
        return self.v1_controllers() | set(self.v2_controllers)

    def v1_hierarchy(self, controller: str) -> Hierarchy | None:
        """The v1 hierarchy carrying ``controller``, or None."""
        for h in self.v1:
            if controller in h.controllers:
                return h
        return None

    def uses_v2_for(self, controller: str) -> bool:
        """True when ``controller`` is managed through the cgroup2 hierarchy on this host."""
        return controller not in self.v1_controllers() and controller in self.v2_controllers

    def dirs_of(self, proc_cgroup: str) -> dict[str, str]:
        """Map each mounted hierarchy's key to the directory of the cgroup a process is in.

        Args:
            proc_cgroup: the text of ``/proc/<pid>/cgroup`` (cgroups(7)).

        Returns:
            ``{"memory": "/sys/fs/cgroup/memory/nano-sandbox/web", "": "/sys/fs/cgroup/unified/...", ...}``
            for the hierarchies both mounted and listed (a v1 key such as ``"cpu,cpuacct"``,
            ``"name=systemd"``; ``""`` for v2).
        """
        where = parse_proc_cgroup(proc_cgroup)
        out = {}
        for h in self.v1:
            if h.key in where:
                out[h.key] = h.path_of(where[h.key])
        if self.v2 is not None and "" in where:
            out[""] = self.v2.path_of(where[""])
        return out

    def __repr__(self) -> str:
        return f"Layout(mode={self.mode!r}, v1={self.v1!r}, v2={self.v2!r}, v2_controllers={self.v2_controllers!r})"


def parse_mountinfo(text: str) -> list[tuple[str, str, str, str]]:
    """Parse mountinfo text into ``(mountpoint, root, fstype, super_options)`` tuples.

    Octal escapes (``\\040`` for a space) in paths are decoded.
    """
    out = []
    for line in text.splitlines():
        if not line:
            continue
        left, _, right = line.partition(" - ")
        lf = left.split(" ")
        rf = right.split(" ")
        if len(lf) < 5 or len(rf) < 3:
            continue
        out.append((_unescape(lf[4]), _unescape(lf[3]), rf[0], rf[2]))
    return out


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def detect(mountinfo: str | None = None, read_v2_controllers=None) -> Layout:
    """Return the host's :class:`Layout`.

    Args:
        mountinfo: text of ``/proc/self/mountinfo`` (read when None).
        read_v2_controllers: callable taking the cgroup2 mountpoint and returning the text of its
            ``cgroup.controllers`` (reads the file when None).
    """
    if mountinfo is None:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    v1: list[Hierarchy] = []
    v2: Hierarchy | None = None
    seen: set[tuple[str, ...]] = set()
    for mountpoint, root, fstype, opts in parse_mountinfo(mountinfo):
        if fstype == "cgroup":
            ctrls = tuple(o for o in opts.split(",") if o not in _NOT_CONTROLLERS and not o.startswith("release_agent="))
            if not ctrls:
                continue
            if ctrls in seen:
                # The same hierarchy mounted again: keep the mount showing its root ("/"), which
                # can reach every cgroup, over a bind mount of a subdirectory.
                old = next(h for h in v1 if h.controllers == ctrls)
                if old.root != "/" and root == "/":
                    old.mountpoint, old.root = mountpoint, root
                continue
            seen.add(ctrls)
            v1.append(Hierarchy(1, mountpoint, root, ctrls))
        elif fstype == "cgroup2" and (v2 is None or (v2.root != "/" and root == "/")):
            v2 = Hierarchy(2, mountpoint, root, ())
    v2_ctrls: tuple[str, ...] = ()
    if v2 is not None:
        try:
            if read_v2_controllers is None:
                with open(v2.mountpoint + "/cgroup.controllers") as f:
                    text = f.read()
            else:
                text = read_v2_controllers(v2.mountpoint)
            v2_ctrls = tuple(text.split())
        except OSError:
            v2_ctrls = ()
        v2.controllers = v2_ctrls
    return Layout(v1, v2, v2_ctrls)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Parse ``/proc/<pid>/cgroup`` (cgroups(7)) into ``{hierarchy key: path}``.

    The key is the controller list of a v1 line (``"cpu,cpuacct"``, ``"name=systemd"``) or ``""``
    for the v2 line ``0::/path``.
    """
    out = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    return out


def systemd_available() -> bool:
    """True when systemd is the host's init (sd_booted(3): ``/run/systemd/system`` exists)."""
    return os.path.isdir("/run/systemd/system")
