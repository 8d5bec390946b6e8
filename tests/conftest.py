"""Shared test fixtures.

* ``nk``: runs ``nk-runtime`` as a subprocess (the real CLI, as an engine would) with a private
  ``--root``; after the test it force-deletes every container left under that root and fails
  the test if anything of them survives (state dir, cgroup, process, host mount).
* ``make_bundle``: a bundle in the test's tmp dir: the example busybox config with the test's
  ``args`` and changes, its rootfs a symlink to the built ``bundles/busybox/rootfs``.
* Hypothesis profiles: ``ci`` (default: few examples, derandomized) and ``long``
  (``NK_HYPOTHESIS_PROFILE=long``).

Tests that need root and a real kernel are marked ``root``; they skip with a reason when not
root. As root they must run: a missing prerequisite (busybox-static) is an error, not a skip,
so CI can never pass without really running them.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "oci-runtime-spec"
SCHEMA_DIR = SHARED / "schema"
BUSYBOX_BUNDLE = REPO / "bundles" / "busybox"
IS_ROOT = os.geteuid() == 0

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci", max_examples=15, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
    )
    settings.register_profile("random", max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("long", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("NK_HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover
    pass


def pytest_collection_modifyitems(config, items):
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root and a real kernel (namespaces, cgroups, mounts): run as root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def schema_validator(name: str):
    """A jsonschema validator for one of the runtime-spec schemas in ../shared (``config-schema.json``,
    ``state-schema.json``, ``features-schema.json``) whose ``$ref``s to the defs files beside it
    resolve. Skips the calling test, with the reason, when ../shared is absent (a user's clone)."""
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"runtime-spec schemas not found at {SCHEMA_DIR} (the shared folder beside the repository)")
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT4

    base = SCHEMA_DIR.resolve().as_uri() + "/"
    resources = [
        (base + p.name, referencing.Resource.from_contents(json.loads(p.read_text()), default_specification=DRAFT4))
        for p in SCHEMA_DIR.glob("*.json")
    ]
    schema = json.loads((SCHEMA_DIR / name).read_text())
    schema["id"] = base + name  # draft-04 base URI for the relative $refs
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=referencing.Registry().with_resources(resources))


def unique_id(prefix: str = "t") -> str:
    """A container id unique across concurrent test runs (cgroups are host-wide)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def busybox_rootfs() -> Path:
    """The built example rootfs (built on first use)."""
    rootfs = BUSYBOX_BUNDLE / "rootfs"
    if not (rootfs / "bin" / "busybox").exists():
        from nano_sandbox import errors
        from nano_sandbox.bundle.build import build_rootfs

        try:
            build_rootfs(str(rootfs))
        except errors.NkError as e:
            if IS_ROOT:
                pytest.fail(f"cannot build the busybox rootfs: {e}")
            pytest.skip(f"cannot build the busybox rootfs: {e}")
    return rootfs


def base_config() -> dict:
    with open(BUSYBOX_BUNDLE / "config.json") as f:
        return json.load(f)


@pytest.fixture
def make_bundle(tmp_path, busybox_rootfs):
    """Return ``make(args=None, mutate=None, name=None, config=None) -> Path`` making a bundle."""
    counter = [0]

    def make(args=None, mutate=None, name=None, config=None) -> Path:
        counter[0] += 1
        d = tmp_path / (name or f"bundle{counter[0]}")
        d.mkdir()
        cfg = copy.deepcopy(config if config is not None else base_config())
        if args is not None:
            cfg["process"]["args"] = list(args)
        if mutate is not None:
            mutate(cfg)
        (d / "config.json").write_text(json.dumps(cfg, indent=1))
        os.symlink(busybox_rootfs, d / "rootfs")
        return d

    return make


class Runtime:
    """Runs ``nk-runtime`` (``python -m nano_sandbox``) with a private ``--root``."""

    def __init__(self, root: Path, binary: list[str] | None = None) -> None:
        self.root = root
        self.binary = binary or [sys.executable, "-m", "nano_sandbox"]
        self.created: set[str] = set()

    def __call__(self, *args, timeout: float = 60, input=None, env=None, **kw) -> subprocess.CompletedProcess:
        """Run ``nk-runtime --root ROOT ARGS...``; stdout/stderr are captured through files, not
        pipes: a container created here inherits them and may outlive the call."""
        import tempfile

        cmd = [*self.binary, "--root", str(self.root), *map(str, args)]
        if args and args[0] in ("create", "run"):
            self.created.add(str(args[-1]))
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            r = subprocess.run(cmd, stdout=out, stderr=err, timeout=timeout, input=input.encode() if isinstance(input, str) else input,
                               env=env, **kw)
            out.seek(0)
            err.seek(0)
            r.stdout = out.read().decode(errors="replace")
            r.stderr = err.read().decode(errors="replace")
        return r

    def ok(self, *args, **kw) -> str:
        """Run and assert success; returns stdout."""
        r = self(*args, **kw)
        assert r.returncode == 0, f"nk-runtime {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}"
        return r.stdout

    def state(self, cid: str) -> dict:
        return json.loads(self.ok("state", cid))

    def status(self, cid: str) -> str:
        return self.state(cid)["status"]

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        st = ""
        while time.monotonic() < deadline:
            r = self("state", cid)
            if r.returncode == 0:
                st = json.loads(r.stdout)["status"]
                if st == want:
                    return st
            else:
                st = r.stderr.strip()
            time.sleep(0.02)
        raise AssertionError(f"container {cid} is {st}, not {want}, after {timeout}s")

    def ids(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root) if not n.startswith("."))
        except FileNotFoundError:
            return []


def cgroup_dirs_of(cid: str) -> list[str]:
    """Every cgroup directory of ``cid`` (by its file-system name) under a ``nano-sandbox``
    parent on this host."""
    from nano_sandbox.state.store import fs_name

    cid = fs_name(cid)
    out = []
    base = Path("/sys/fs/cgroup")
    candidates = [base] + [p for p in base.iterdir() if p.is_dir()] if base.exists() else []
    for h in candidates:
        d = h / "nano-sandbox" / cid
        if d.exists():
            out.append(str(d))
    return out


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    return data[data.rfind(")") + 2] not in "ZX"


def leftovers(root: Path, ids: list[str], pids: list[int], tmp: Path) -> list[str]:
    """What containers of a test left behind on the host."""
    from nano_sandbox.state.store import state_dir

    problems = []
    for cid in ids:
        if os.path.exists(state_dir(str(root), cid)):
            problems.append(f"state dir {state_dir(str(root), cid)}")
        problems += [f"cgroup {d}" for d in cgroup_dirs_of(cid)]
    for pid in pids:
        if process_alive(pid):
            problems.append(f"process {pid}")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if str(tmp) in line:
                problems.append(f"host mount: {line.strip()}")
    return problems


@pytest.fixture
def nk(tmp_path):
    """A :class:`Runtime` with a private root; every container is gone after the test."""
    root = tmp_path / "state"
    rt = Runtime(root)
    yield rt
    from nano_sandbox import errors as _errors
    from nano_sandbox.state.store import validate_id

    def _valid(cid):
        try:
            validate_id(cid)
        except _errors.InvalidArgument:
            return False
        return True

    from nano_sandbox.state.store import state_dir

    ids = sorted(cid for cid in set(rt.ids()) | rt.created if _valid(cid))
    pids = []
    for cid in ids:
        d = state_dir(str(root), cid)
        try:
            with open(os.path.join(d, "state.json")) as f:
                pids.append(json.load(f).get("pid", 0))
        except (OSError, ValueError):
            pass
        if os.path.exists(d):
            rt("delete", "--force", cid)
    deadline = time.monotonic() + 5
    while True:
        problems = leftovers(root, ids, [p for p in pids if p], tmp_path)
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not problems, f"the test left behind: {problems}"
