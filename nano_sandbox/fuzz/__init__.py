"""Fuzzing runc-compatible runtimes (nk-runtime, runc, crun) with hypothesis.

Two fuzzers live here, both driving a runtime *binary* through its command line, exactly as an
engine would:

* :mod:`nano_sandbox.fuzz.lifecycle`: a ``RuleBasedStateMachine`` that runs random sequences of
  ``create``/``start``/``state``/``kill``/``delete``/``pause``/``resume``/``exec``/``run`` on a few
  container ids at once and checks every step against a model of the OCI lifecycle
  (runtime-spec ``runtime.md``), plus host invariants (no process, cgroup, state directory or
  mount of a deleted container left behind).
* :mod:`nano_sandbox.fuzz.configs`: hypothesis strategies for the lifecycle's container configs
  and for ``config.json`` documents, valid and subtly invalid, fed to ``create``.

``python -m nano_sandbox.fuzz --runtime PATH`` runs the lifecycle fuzzer (see
:mod:`nano_sandbox.fuzz.__main__`); ``docs/conformance.md`` records what it found.

This module holds what both fuzzers share and does not import hypothesis: :class:`Runtime` (one
binary with a private ``--root``, run in the host's or a private mount namespace),
:class:`Workdir` (the run's temporary directory, bundles and rootfs copies), the OCI state
validator and the host probes (:func:`process_alive`, :func:`cgroup_dirs_of_pid`,
:func:`cgroup_dirs_named`, :func:`mounts_mentioning`). nk-runtime itself never imports this
package, so hypothesis stays out of its start-up.
"""

from __future__ import annotations

import copy
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

#: The message printed when hypothesis (or jsonschema) is missing.
HYPOTHESIS_MISSING = (
    "the nano-sandbox fuzzers need hypothesis and jsonschema, which come with the test extra: "
    "pip install -e '.[test]' (or: pip install hypothesis jsonschema)"
)

REPO = Path(__file__).resolve().parents[2]
BUSYBOX_BUNDLE = REPO / "bundles" / "busybox"
SCHEMA_DIR = REPO.parent / "shared" / "oci-runtime-spec" / "schema"

#: ociVersion written into every generated config: crun 1.8.1 refuses "1.2.0" and later
#: ("unknown version specified"), and every runtime fuzzed accepts 1.0.2.
FUZZ_OCI_VERSION = "1.0.2"

#: Words in a runtime's stderr that mean it crashed rather than refused.
CRASH_MARKERS = ("Traceback (most recent call last)", "internal error", "panic:", "SIGSEGV")


class FuzzSetupError(Exception):
    """The fuzzer cannot run here (missing dependency, runtime unusable on this host...)."""


class Skip(FuzzSetupError):
    """The runtime cannot run containers on this host; ``str()`` is the reason."""


def require_hypothesis() -> None:
    """Import hypothesis and jsonschema or raise :class:`FuzzSetupError` saying how to install them."""
    try:
        import hypothesis  # noqa: F401
        import jsonschema  # noqa: F401
    except ImportError as e:
        raise FuzzSetupError(f"{HYPOTHESIS_MISSING} ({e})") from None


# ==================================================================================================
# Running a runtime binary


@dataclass
class Result:
    """One finished runtime call: argv (after the runtime prefix), exit status and output."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the call exited 0."""
        return self.returncode == 0 and not self.timed_out

    def summary(self) -> str:
        """One line: exit status and the first lines of stderr."""
        err = " | ".join(line for line in self.stderr.strip().splitlines()[:3])
        rc = "timed out" if self.timed_out else f"exit {self.returncode}"
        return f"{rc}{': ' + err if err else ''}"


def _detect_kind(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FuzzSetupError(f"cannot run {path} --version: {e}") from None
    first = out.strip().splitlines()[0] if out.strip() else ""
    for kind in ("nk-runtime", "runc", "crun", "youki"):
        if first.startswith(kind):
            return kind
    return "other"


def hybrid_cgroup2_with_controllers() -> str | None:
    """The cgroup2 mount point when the host is hybrid (v1 controllers at /sys/fs/cgroup/*, a
    cgroup2 at /sys/fs/cgroup/unified) and that cgroup2 hierarchy holds controllers (crun refuses
    this layout: "cgroups in hybrid mode not supported, drop all controllers from cgroupv2")."""
    mnt = "/sys/fs/cgroup/unified"
    try:
        with open(os.path.join(mnt, "cgroup.controllers")) as f:
            controllers = f.read().split()
    except OSError:
        return None
    return mnt if controllers and os.path.ismount(mnt) else None


class Runtime:
    """A runc-compatible runtime binary with a private ``--root``.

    ``mountns`` says where each call runs:

    * ``host``: directly, in the fuzzer's mount namespace (mount leaks would show on the host).
    * ``private``: in a new private mount namespace per call (``unshare -m --propagation
      private``); a container made there keeps that namespace, nothing reaches the host.
    * ``private-no-cgroup2``: the same, and the hybrid cgroup2 mount
      (``/sys/fs/cgroup/unified``) is unmounted inside that namespace only, so a runtime that
      refuses hybrid layouts (crun) sees a pure cgroup v1 host. The host's mounts and cgroup
      hierarchies are untouched.
    * ``auto``: ``host`` for nk-runtime, ``private-no-cgroup2`` for crun on a hybrid host with
      controllers in cgroup2, ``private`` for every other runtime.

    ``cgroups_parent``: when not None, generated configs set ``linux.cgroupsPath`` to
    ``<cgroups_parent>/<id>``. ``auto`` leaves nk-runtime at its default (``/nano-sandbox/<id>``)
    and gives other runtimes a parent unique to this run, so no runtime ever makes a cgroup under
    the fuzzer's own (runc, given no cgroupsPath, nests the container in the caller's cgroup).
    """

    def __init__(self, path: str, root: str, mountns: str = "auto", cgroups_parent: str | None = "auto",
                 token: str | None = None) -> None:
        resolved = shutil.which(path) or path
        if not os.path.exists(resolved):
            raise FuzzSetupError(f"runtime not found: {path}")
        self.path = os.path.abspath(resolved)
        self.root = os.path.abspath(root)
        self.kind = _detect_kind(self.path)
        self.token = token or uuid.uuid4().hex[:6]
        if mountns == "auto":
            if self.kind == "nk-runtime":
                mountns = "host"
            elif self.kind == "crun" and hybrid_cgroup2_with_controllers():
                mountns = "private-no-cgroup2"
            else:
                mountns = "private"
        if mountns not in ("host", "private", "private-no-cgroup2"):
            raise FuzzSetupError(f"--mountns: unknown value {mountns!r} (host, private, private-no-cgroup2, auto)")
        if mountns != "host" and not shutil.which("unshare"):
            raise FuzzSetupError("unshare (util-linux) is needed to run the runtime in a private mount namespace")
        self.mountns = mountns
        if cgroups_parent == "auto":
            cgroups_parent = None if self.kind == "nk-runtime" else f"/nk-fuzz-{self.token}"
        self.cgroups_parent = cgroups_parent
        self.version = self._version()

    def _version(self) -> str:
        try:
            out = subprocess.run([self.path, "--version"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        return " ".join(out.strip().splitlines()[:1])

    def __repr__(self) -> str:
        return f"Runtime({self.path!r}, kind={self.kind}, mountns={self.mountns})"

    # -- argv --------------------------------------------------------------------------------
    _NO_CGROUP2 = "umount /sys/fs/cgroup/unified && exec \"$0\" \"$@\""

    def prefix(self) -> list[str]:
        """The argv every call starts with (the wrapper, the binary, ``--root``)."""
        base = [self.path, "--root", self.root]
        if self.mountns == "host":
            return base
        if self.mountns == "private":
            return ["unshare", "-m", "--propagation", "private", *base]
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", self._NO_CGROUP2, *base]

    def shell_function(self) -> str:
        """The ``rt`` shell function that a reproducer script uses for this runtime (it expects
        ``$T`` to hold the script's temporary directory)."""
        binary = shlex.quote(self.path)
        base = f'{binary} --root "$T/root" "$@"'
        if self.mountns == "host":
            body = base
        elif self.mountns == "private":
            body = f"unshare -m --propagation private {base}"
        else:
            body = f"unshare -m --propagation private sh -c {shlex.quote(self._NO_CGROUP2)} {base}"
        return f"rt() {{ {body}; }}"

    def cgroups_path(self, cid: str) -> str | None:
        """``linux.cgroupsPath`` for container ``cid`` (None: the runtime's default)."""
        return None if self.cgroups_parent is None else f"{self.cgroups_parent}/{cid}"

    def __call__(self, *args: str, timeout: float = 60, cwd: str | None = None) -> Result:
        """Run one call. Output goes through files, not pipes: a container started here inherits
        stdout/stderr and may outlive the call."""
        args = tuple(str(a) for a in args)
        t0 = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                p = subprocess.run([*self.prefix(), *args], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   timeout=timeout, cwd=cwd)
                rc, timed_out = p.returncode, False
            except subprocess.TimeoutExpired:
                rc, timed_out = -9, True
            out.seek(0)
            err.seek(0)
            return Result(args, rc, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                          time.monotonic() - t0, timed_out)

    def container_dirs(self) -> list[str]:
        """Names under the state root that are container state directories (dot-files, lock
        directories and the like are skipped)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if not n.startswith(".") and os.path.isdir(os.path.join(self.root, n)))

    def remove_cgroup_parents(self) -> list[str]:
        """rmdir this run's own cgroup parent (``/nk-fuzz-<token>``) in every hierarchy once it
        is empty. Returns the parents that could not be removed (still holding children)."""
        if self.cgroups_parent is None:
            return []
        left = []
        for mnt in cgroup_mounts().values():
            d = mnt + self.cgroups_parent
            if os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError:
                    left.append(d)
        return left

    def preflight(self, work: "Workdir") -> None:
        """Create, start, wait for and delete one ``true`` container; raise :class:`Skip` with
        the runtime's own words when that fails (the runtime cannot run containers here)."""
        cid = f"fz{self.token}-probe"
        bundle = work.bundle(cid, make_config(base_config(), ["true"], cgroups_path=self.cgroups_path(cid)))
        r = self("create", "--bundle", bundle, cid)
        if not r.ok:
            self("delete", "--force", cid)
            raise Skip(f"{self.kind} cannot create a container on this host ({r.summary()})")
        self("start", cid)
        self("delete", "--force", cid)


# ==================================================================================================
# Bundles


def ensure_busybox_rootfs() -> Path:
    """The example busybox rootfs (``bundles/busybox/rootfs``), built on first use."""
    rootfs = BUSYBOX_BUNDLE / "rootfs"
    if not (rootfs / "bin" / "busybox").exists():
        from nano_sandbox import errors
        from nano_sandbox.bundle.build import build_rootfs

        try:
            build_rootfs(str(rootfs))
        except errors.NkError as e:
            raise FuzzSetupError(f"cannot build the busybox rootfs (nk-runtime bundle build busybox): {e}") from None
    return rootfs


def base_config() -> dict:
    """The example busybox bundle's config (``runc spec``-like), with :data:`FUZZ_OCI_VERSION`."""
    path = BUSYBOX_BUNDLE / "config.json"
    if path.exists():
        cfg = json.loads(path.read_text())
    else:  # an installed package without the repository's bundles
        from nano_sandbox.spec.defaults import default_spec

        cfg = default_spec()
    cfg["ociVersion"] = FUZZ_OCI_VERSION
    cfg["root"] = {"path": "rootfs", "readonly": True}
    return cfg


def make_config(base: dict, args: list[str], *, memory: int | None = None, pids: int | None = None,
                cgroups_path: str | None = None) -> dict:
    """``base`` with ``process.args``, terminal off, optional memory/pids limits and cgroupsPath."""
    cfg = copy.deepcopy(base)
    cfg["process"]["args"] = list(args)
    cfg["process"]["terminal"] = False
    res = cfg.setdefault("linux", {}).setdefault("resources", {})
    if memory is not None:
        res["memory"] = {"limit": memory}
    if pids is not None:
        res["pids"] = {"limit": pids}
    if cgroups_path is not None:
        cfg["linux"]["cgroupsPath"] = cgroups_path
    return cfg


class Workdir:
    """The run's temporary directory: ``root/`` (the runtime's ``--root``), ``rootfs/`` (a copy
    of the busybox rootfs) and one bundle per ``create`` (``bundles/<name>/config.json`` and
    ``rootfs``, hard links to the copy), so every container has paths of its own."""

    def __init__(self, base: str | None = None, keep: bool = False) -> None:
        self.path = tempfile.mkdtemp(prefix="nk-fuzz-", dir=base)
        self.keep = keep
        self.rootfs = os.path.join(self.path, "rootfs")
        self.rootfs_source = ensure_busybox_rootfs()
        shutil.copytree(self.rootfs_source, self.rootfs, symlinks=True)
        self.counter = 0

    @property
    def root(self) -> str:
        """The runtime's state root."""
        return os.path.join(self.path, "root")

    def bundle(self, name: str, config: dict) -> str:
        """Write a new bundle for ``config``; returns its directory."""
        self.counter += 1
        d = os.path.join(self.path, "bundles", f"{name}.{self.counter}")
        os.makedirs(d)
        shutil.copytree(self.rootfs, os.path.join(d, "rootfs"), symlinks=True, copy_function=os.link)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        return d

    def bundle_raw(self, name: str, data: bytes) -> str:
        """Write a new bundle whose config.json holds exactly ``data``."""
        self.counter += 1
        d = os.path.join(self.path, "bundles", f"{name}.{self.counter}")
        os.makedirs(d)
        shutil.copytree(self.rootfs, os.path.join(d, "rootfs"), symlinks=True, copy_function=os.link)
        with open(os.path.join(d, "config.json"), "wb") as f:
            f.write(data)
        return d

    def remove_bundle(self, d: str) -> None:
        """Remove a bundle unless something is mounted under it (a leak: left for inspection)."""
        if not mounts_mentioning(d):
            shutil.rmtree(d, ignore_errors=True)

    def close(self) -> None:
        """Remove the whole directory (unless ``keep`` or a mount still points into it)."""
        if not self.keep and not mounts_mentioning(self.path):
            shutil.rmtree(self.path, ignore_errors=True)


# ==================================================================================================
# Host probes


def process_alive(pid: int) -> bool:
    """True when ``pid`` exists and is neither a zombie nor dead."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return data[data.rfind(")") + 2] not in "ZXx"


def cgroup_mounts() -> dict[str, str]:
    """The host's cgroup hierarchies: controller (or ``name=systemd``; ``""`` for cgroup2) ->
    mount point, read from this process's mountinfo."""
    out: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _src, opts = (right.split() + ["", "", ""])[:3]
            mnt = left.split()[4]
            if fstype == "cgroup2":
                out.setdefault("", mnt)
            elif fstype == "cgroup":
                for o in opts.split(","):
                    if o not in ("rw", "ro") and not o.startswith(("relatime", "noatime", "nosuid", "nodev", "noexec")):
                        out.setdefault(o, mnt)
    return out


def _own_cgroups() -> set[str]:
    with open("/proc/self/cgroup") as f:
        return {line.strip() for line in f}


def cgroup_dirs_of_pid(pid: int) -> list[str]:
    """The cgroup directories (host paths) that process ``pid`` is in, except the hierarchy roots
    and the cgroups the fuzzer itself sits in (never ours to judge, nor to touch)."""
    mounts = cgroup_mounts()
    own = _own_cgroups()
    dirs: list[str] = []
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = [line.strip() for line in f]
    except OSError:
        return []
    for line in lines:
        if line in own:
            continue
        _hid, ctrls, path = line.split(":", 2)
        if path in ("/", ""):
            continue
        key = "" if ctrls == "" else ctrls.split(",")[0]
        mnt = mounts.get(key)
        if mnt is not None:
            dirs.append(mnt + path)
    return sorted(set(dirs))


def cgroup_dirs_named(cid: str) -> list[str]:
    """Every cgroup directory named ``cid`` up to three levels under a hierarchy root
    (``<h>/<id>``, ``<h>/nano-sandbox/<id>``, ``<h>/nk-fuzz-xxxx/<id>``, ...)."""
    found: set[str] = set()
    for mnt in set(cgroup_mounts().values()):
        for pattern in ("{m}/{c}", "{m}/*/{c}", "{m}/*/*/{c}"):
            found.update(glob.glob(pattern.format(m=glob.escape(mnt), c=glob.escape(cid))))
    return sorted(d for d in found if os.path.isdir(d))


def mounts_mentioning(path: str) -> list[str]:
    """Lines of this process's mountinfo whose mount point or root lies under ``path``."""
    path = path.rstrip("/")
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if any(x == path or x.startswith(path + "/") for x in fields[3:5]):
                out.append(line.strip())
    return out


def pids_with_token(token: str) -> list[int]:
    """Live processes whose command line mentions ``token`` (a container id unique to this run):
    a runtime's forked init keeps the argv of the ``create`` that made it until it execs."""
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if token.encode() in cmd and process_alive(int(d)):
            out.append(int(d))
    return out


def crash_marker(stderr: str) -> str | None:
    """The crash marker (traceback, internal error, Go panic) found in ``stderr``, if any."""
    for m in CRASH_MARKERS:
        if m in stderr:
            return m
    return None


# ==================================================================================================
# OCI state validation

#: The state schema used when ../shared/oci-runtime-spec is absent (a user's clone): the same
#: properties and required fields as runtime-spec's schema/state-schema.json.
_FALLBACK_STATE_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "properties": {
        "ociVersion": {"type": "string"},
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["creating", "created", "running", "stopped"]},
        "pid": {"type": "integer", "minimum": 0},
        "bundle": {"type": "string"},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["ociVersion", "id", "status", "bundle"],
}

#: Runtime-defined statuses accepted besides the schema's enum. runtime.md "State": "Additional
#: values MAY be defined by the runtime, however, they MUST be used to represent new runtime
#: states not defined above." runc, crun and nk-runtime all report "paused" for a frozen
#: container; the schema's enum does not list it.
EXTRA_STATUSES = ("paused",)


@dataclass
class StateValidator:
    """Validates ``state`` output against runtime-spec's ``state-schema.json`` (from
    ``../shared/oci-runtime-spec/schema`` when present, else an equivalent built-in copy), with
    :data:`EXTRA_STATUSES` added to the status enum."""

    source: str = ""
    _validator: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import jsonschema

        if (SCHEMA_DIR / "state-schema.json").exists():
            import referencing
            from referencing.jsonschema import DRAFT4

            base = SCHEMA_DIR.resolve().as_uri() + "/"
            resources = [
                (base + p.name, referencing.Resource.from_contents(json.loads(p.read_text()), default_specification=DRAFT4))
                for p in SCHEMA_DIR.glob("*.json")
            ]
            schema = json.loads((SCHEMA_DIR / "state-schema.json").read_text())
            schema["id"] = base + "state-schema.json"
            registry = referencing.Registry().with_resources(resources)
            self.source = str(SCHEMA_DIR / "state-schema.json")
        else:
            schema = copy.deepcopy(_FALLBACK_STATE_SCHEMA)
            registry = None
            self.source = "built-in copy of state-schema.json"
        schema["properties"]["status"]["enum"] = list(schema["properties"]["status"]["enum"]) + list(EXTRA_STATUSES)
        cls = jsonschema.validators.validator_for(schema)
        self._validator = cls(schema, registry=registry) if registry is not None else cls(schema)

    def problems(self, doc: object) -> list[str]:
        """Every schema violation of ``doc`` as ``<json path>: <message>``."""
        out = []
        for e in self._validator.iter_errors(doc):  # type: ignore[attr-defined]
            where = ".".join(str(p) for p in e.absolute_path) or "(document)"
            out.append(f"{where}: {e.message}")
        return out


_PATH_RE = re.compile(r"config\.json: (?P<path>\S+?): ")


def error_paths(stderr: str) -> list[str]:
    """The JSON paths named by ``config.json: <path>: <message>`` lines in ``stderr``; ``""``
    for a ``config.json: <message>`` about the document as a whole."""
    out = [m.group("path") for m in _PATH_RE.finditer(stderr)]
    if "config.json: " in stderr and not out:
        out.append("")
    return out
