"""Hypothesis strategies for container configurations.

Two families:

* :func:`container_specs`: what the lifecycle fuzzer creates: a :class:`Program` (exits at
  once, exits with a code, sleeps, traps TERM, has a child killed by a signal, ends after a short
  sleep), terminal off, optional memory and pids limits. Each program states how it behaves
  (:attr:`Program.exits`, :attr:`Program.code`, :attr:`Program.fragile`) so the lifecycle model
  can predict statuses.
* :func:`config_cases`: whole ``config.json`` documents fed to ``create``: the example busybox
  config with up to three :class:`Mutation` s, each valid (must be created), invalid (must be
  refused with an error naming the JSON path: wrong types, out-of-range numbers, unknown enum
  values, relative paths, duplicate namespaces/rlimits, missing required fields, bad seccomp
  actions...) or "either" (host- or runtime-dependent: created, or refused cleanly naming the
  path), or a malformed document (refused naming ``config.json``).

Importing this module imports hypothesis (nk-runtime never imports it).
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from hypothesis import strategies as st

from nano_sandbox.fuzz import make_config

# ==================================================================================================
# Lifecycle: programs and container specs


@dataclass(frozen=True)
class Program:
    """A container's ``process.args`` and what the lifecycle model may assume about it.

    Attributes:
        name: short label (used in reproducers and reports).
        args: ``process.args``.
        exits: it ends by itself soon after ``start`` (so ``running`` may turn ``stopped`` at
            any moment, and a ``wait`` must see ``stopped``).
        code: its exit status when it ends by itself (``run`` must return it), else None.
        fragile: a signal other than SIGKILL may end it while it runs (a TERM trap, or children
            whose death ends the shell). A plain ``sleep`` as PID 1 of a pid namespace is not
            fragile: the kernel drops signals that PID 1 has no handler for, when sent from an
            ancestor namespace, except SIGKILL and SIGSTOP.
    """

    name: str
    args: tuple[str, ...]
    exits: bool
    code: int | None
    fragile: bool


TRUE = Program("true", ("true",), True, 0, False)
SLEEP = Program("sleep", ("sleep", "1000"), False, None, False)
TRAP = Program("trap-term", ("sh", "-c", "trap 'exit 7' TERM; sleep 1000 & wait"), False, None, True)
CHILD_KILLED = Program("child-killed", ("sh", "-c", "sleep 1000 & kill -9 $!; wait $!"), True, 137, True)
SHORT = Program("short-sleep", ("sleep", "0.3"), True, 0, False)


def exit_with(n: int) -> Program:
    """``sh -c 'exit N'``."""
    return Program(f"exit-{n}", ("sh", "-c", f"exit {n}"), True, n, True)


def programs(exits_only: bool = False) -> st.SearchStrategy[Program]:
    """Programs for a container; with ``exits_only`` only those that end by themselves."""
    ending = st.one_of(st.just(TRUE), st.integers(0, 255).map(exit_with), st.just(CHILD_KILLED), st.just(SHORT))
    if exits_only:
        return ending
    return st.one_of(st.just(SLEEP), st.just(TRAP), ending)


@dataclass(frozen=True)
class ContainerSpec:
    """What one ``create`` asks for: a program and optional limits (terminal always off)."""

    program: Program
    memory: int | None = None
    pids: int | None = None

    def config(self, base: dict, cgroups_path: str | None) -> dict:
        """The ``config.json`` document for this spec."""
        return make_config(base, list(self.program.args), memory=self.memory, pids=self.pids, cgroups_path=cgroups_path)

    def label(self) -> str:
        """Short human description."""
        extra = []
        if self.memory is not None:
            extra.append(f"memory={self.memory // (1024 * 1024)}MiB")
        if self.pids is not None:
            extra.append(f"pids={self.pids}")
        return self.program.name + (f" ({', '.join(extra)})" if extra else "")


MiB = 1024 * 1024


def container_specs(exits_only: bool = False) -> st.SearchStrategy[ContainerSpec]:
    """Container specs: a program, no limit or a memory limit (32/128 MiB), no limit or a pids
    limit (16/128)."""
    return st.builds(
        ContainerSpec,
        program=programs(exits_only),
        memory=st.sampled_from([None, 32 * MiB, 128 * MiB]),
        pids=st.sampled_from([None, 16, 128]),
    )


# ==================================================================================================
# config.json documents

VALID, INVALID, EITHER = "valid", "invalid", "either"


@dataclass(frozen=True)
class Mutation:
    """One change to the base config.

    Attributes:
        name: what it does, e.g. ``wrong type at process.cwd (int)``.
        kind: :data:`VALID` (the config stays valid: create must succeed), :data:`INVALID`
            (create must refuse naming ``path``) or :data:`EITHER` (runtime- or host-dependent:
            created, or refused naming ``path``; with ``host`` also a clean error that names no
            path, e.g. a mount or setrlimit failing in the container's init).
        path: the JSON path at fault, in nk-runtime's notation (``process.rlimits[0].type``);
            ``""`` for the document as a whole.
        areas: the parts of the document it touches; mutations whose areas nest are not combined.
        host: see ``kind``.
        apply: changes the config in place (for raw documents: ignored, see ``raw``).
        raw: for a malformed document, the exact bytes of config.json.
    """

    name: str
    kind: str
    path: str
    areas: tuple[str, ...]
    apply: Callable[[dict], None] = field(compare=False, repr=False, default=lambda c: None)
    host: bool = False
    raw: bytes | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.name}"


_SEG = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _segments(path: str) -> list[str | int]:
    return [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _SEG.finditer(path)]


def get_path(doc: Any, path: str) -> Any:
    """The value at ``path`` (``a.b[0].c``) in ``doc``; KeyError/IndexError when absent."""
    for s in _segments(path):
        doc = doc[s]
    return doc


def set_path(doc: Any, path: str, value: Any) -> None:
    """Set the value at ``path``, creating missing objects along the way."""
    segs = _segments(path)
    for i, s in enumerate(segs[:-1]):
        if isinstance(s, str) and s not in doc:
            doc[s] = [] if isinstance(segs[i + 1], int) else {}
        doc = doc[s]
    doc[segs[-1]] = value


def del_path(doc: Any, path: str) -> None:
    """Delete the value at ``path``."""
    segs = _segments(path)
    for s in segs[:-1]:
        doc = doc[s]
    del doc[segs[-1]]


def _area(path: str) -> str:
    """The first two segments of ``path`` (``process.rlimits[0].type`` -> ``process.rlimits``)."""
    segs = [s for s in _segments(path) if isinstance(s, str)][:2]
    return ".".join(segs)


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


#: Fields of the base (busybox) config and their JSON types.
TYPED_FIELDS: tuple[tuple[str, type], ...] = (
    ("ociVersion", str),
    ("process", dict),
    ("process.terminal", bool),
    ("process.user", dict),
    ("process.user.uid", int),
    ("process.user.gid", int),
    ("process.args", list),
    ("process.args[0]", str),
    ("process.env", list),
    ("process.env[0]", str),
    ("process.cwd", str),
    ("process.noNewPrivileges", bool),
    ("process.capabilities", dict),
    ("process.capabilities.bounding", list),
    ("process.capabilities.bounding[0]", str),
    ("process.rlimits", list),
    ("process.rlimits[0]", dict),
    ("process.rlimits[0].type", str),
    ("process.rlimits[0].hard", int),
    ("process.rlimits[0].soft", int),
    ("root", dict),
    ("root.path", str),
    ("root.readonly", bool),
    ("hostname", str),
    ("mounts", list),
    ("mounts[0]", dict),
    ("mounts[0].destination", str),
    ("mounts[0].type", str),
    ("mounts[1].options", list),
    ("mounts[1].options[0]", str),
    ("linux", dict),
    ("linux.namespaces", list),
    ("linux.namespaces[0]", dict),
    ("linux.namespaces[0].type", str),
    ("linux.maskedPaths", list),
    ("linux.maskedPaths[0]", str),
    ("linux.readonlyPaths[0]", str),
    ("linux.resources", dict),
    ("linux.resources.devices[0].allow", bool),
    ("linux.resources.devices[0].access", str),
)

_SAMPLES: dict[type, list[Any]] = {
    int: [7, -3, 0],
    float: [1.5, -0.25],
    str: ["x", "", "7"],
    bool: [True, False],
    list: [[], ["x"], [1]],
    dict: [{}, {"x": 1}],
}

#: Required fields (config.md / the schema): missing or null must be refused naming them.
REQUIRED_FIELDS = (
    "ociVersion",
    "root.path",
    "process.cwd",
    "process.rlimits[0].type",
    "process.rlimits[0].soft",
    "process.rlimits[0].hard",
    "mounts[0].destination",
    "linux.namespaces[0].type",
    "linux.resources.devices[0].allow",
)


def _setter(path: str, value: Any) -> Callable[[dict], None]:
    def apply(c: dict) -> None:
        set_path(c, path, copy.deepcopy(value))

    return apply


def _deleter(path: str) -> Callable[[dict], None]:
    return lambda c: del_path(c, path)


@st.composite
def wrong_types(draw) -> Mutation:
    """A field of the base config replaced by a value of another JSON type."""
    path, typ = draw(st.sampled_from(TYPED_FIELDS))
    others = [t for t in _SAMPLES if t is not typ]
    t = draw(st.sampled_from(others))
    value = draw(st.sampled_from(_SAMPLES[t]))
    return Mutation(f"wrong type at {path} ({t.__name__} {json.dumps(value)})", INVALID, path, (_area(path),),
                    _setter(path, value))


@st.composite
def missing_required(draw) -> Mutation:
    """A required field removed, or set to null."""
    path = draw(st.sampled_from(REQUIRED_FIELDS))
    if draw(st.booleans()):
        return Mutation(f"required {path} missing", INVALID, path, (_area(path),), _deleter(path))
    return Mutation(f"required {path} is null", INVALID, path, (_area(path),), _setter(path, None))


#: Required by config.md's text but not by the schema; Go runtimes read a missing one as 0.
LENIENT_REQUIRED = ("process.user.uid", "process.user.gid")


@st.composite
def missing_lenient(draw) -> Mutation:
    """``process.user.uid``/``gid`` removed or null: config.md says REQUIRED, the schema does not,
    runc reads 0: created, or refused naming the field."""
    path = draw(st.sampled_from(LENIENT_REQUIRED))
    if draw(st.booleans()):
        return Mutation(f"{path} missing", EITHER, path, (_area(path),), _deleter(path))
    return Mutation(f"{path} is null", EITHER, path, (_area(path),), _setter(path, None))


@st.composite
def null_optionals(draw) -> Mutation:
    """An optional field set to null (Go's zero value: absent, or refused)."""
    path = draw(st.sampled_from(["hostname", "process.env", "process.terminal", "root.readonly", "linux.maskedPaths",
                                 "process.capabilities", "mounts[1].options", "process.rlimits", "linux.resources"]))
    return Mutation(f"optional {path} is null", EITHER, path, (_area(path),), _setter(path, None))


@st.composite
def out_of_range(draw) -> Mutation:
    """Numbers outside their schema type's range (uint32, int64, uint64)."""
    path, value, kind = draw(st.sampled_from([
        ("process.user.uid", -1, INVALID),
        ("process.user.uid", 2**32, INVALID),
        ("process.user.gid", 2**64, INVALID),
        ("process.rlimits[0].hard", -1, INVALID),
        ("process.rlimits[0].soft", 2**64, INVALID),
        ("linux.resources.memory.limit", 2**63, INVALID),
        ("linux.resources.memory.limit", 2**70, INVALID),
        ("linux.resources.cpu.shares", 2**64, INVALID),
        ("linux.resources.cpu.shares", -1, INVALID),
        ("linux.resources.cpu.quota", 2**63, INVALID),
        ("linux.resources.pids.limit", -5, EITHER),
        ("process.oomScoreAdj", 5000, EITHER),
        ("process.oomScoreAdj", 2**31, INVALID),
        ("process.user.additionalGids", [2**32], INVALID),
    ]))
    if path == "process.user.additionalGids":
        return Mutation(f"{path}[0] = {value[0]}", kind, path, (_area(path),), _setter(path, value))
    return Mutation(f"{path} = {value}", kind, path, (_area(path),), _setter(path, value))


@st.composite
def unknown_enums(draw) -> Mutation:
    """Values outside an enumeration of the schema."""
    bogus = draw(st.sampled_from(["bogus", "", "PID", "SCMP_ACT_BOGUS", "RLIMIT_BOGUS", "Mount"]))
    choice = draw(st.sampled_from(["ns", "rlimit", "seccomp-default", "seccomp-action", "seccomp-arch",
                                   "seccomp-op", "propagation", "device-type", "cgroup-device-type"]))
    if choice == "ns":
        i = draw(st.integers(0, 4))
        path = f"linux.namespaces[{i}].type"
        # dropping the uts entry would also make hostname invalid: keep uts
        return Mutation(f"{path} = {bogus!r}", INVALID, path, ("linux.namespaces", "hostname"), _setter(path, bogus))
    if choice == "rlimit":
        return Mutation(f"process.rlimits[0].type = {bogus!r}", INVALID, "process.rlimits[0].type", ("process.rlimits",),
                        _setter("process.rlimits[0].type", bogus))
    if choice == "seccomp-default":
        return Mutation(f"linux.seccomp.defaultAction = {bogus!r}", INVALID, "linux.seccomp.defaultAction",
                        ("linux.seccomp",), _setter("linux.seccomp", {"defaultAction": bogus}))
    if choice == "seccomp-action":
        doc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["chmod"], "action": bogus}]}
        return Mutation(f"linux.seccomp.syscalls[0].action = {bogus!r}", INVALID, "linux.seccomp.syscalls[0].action",
                        ("linux.seccomp",), _setter("linux.seccomp", doc))
    if choice == "seccomp-arch":
        doc = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [bogus]}
        return Mutation(f"linux.seccomp.architectures[0] = {bogus!r}", INVALID, "linux.seccomp.architectures[0]",
                        ("linux.seccomp",), _setter("linux.seccomp", doc))
    if choice == "seccomp-op":
        doc = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0, "op": bogus}]}]}
        return Mutation(f"linux.seccomp.syscalls[0].args[0].op = {bogus!r}", INVALID, "linux.seccomp.syscalls[0].args[0].op",
                        ("linux.seccomp",), _setter("linux.seccomp", doc))
    if choice == "propagation":
        return Mutation(f"linux.rootfsPropagation = {bogus!r}", INVALID, "linux.rootfsPropagation",
                        ("linux.rootfsPropagation",), _setter("linux.rootfsPropagation", bogus))
    if choice == "device-type":
        dev = {"path": "/dev/fuzz0", "type": bogus[:1] + "z", "major": 1, "minor": 3}
        return Mutation(f"linux.devices[0].type = {dev['type']!r}", INVALID, "linux.devices[0].type",
                        ("linux.devices",), _setter("linux.devices", [dev]))
    return Mutation(f"linux.resources.devices[0].type = {bogus!r}z", INVALID, "linux.resources.devices[0].type",
                    ("linux.resources.devices",), _setter("linux.resources.devices[0].type", bogus + "z"))


@st.composite
def relative_paths(draw) -> Mutation:
    """Relative paths where the spec wants absolute ones."""
    rel = draw(st.sampled_from(["rel", "rel/dir", "./x", "..", "proc/kcore"]))
    choice = draw(st.sampled_from(["cwd", "masked", "readonly", "ns-path", "hook", "mount-dest", "device"]))
    if choice == "cwd":
        return Mutation(f"process.cwd = {rel!r}", INVALID, "process.cwd", ("process.cwd",), _setter("process.cwd", rel))
    if choice in ("masked", "readonly"):
        key = "maskedPaths" if choice == "masked" else "readonlyPaths"
        path = f"linux.{key}"

        def apply(c: dict, key: str = key) -> None:
            c["linux"].setdefault(key, []).append(rel)

        return Mutation(f"{path} += {rel!r}", INVALID, path, (path,), apply)
    if choice == "ns-path":
        def apply_ns(c: dict) -> None:
            for n in c["linux"]["namespaces"]:
                if n["type"] == "network":
                    n["path"] = rel

        return Mutation(f"linux.namespaces[network].path = {rel!r}", INVALID, "linux.namespaces", ("linux.namespaces",), apply_ns)
    if choice == "hook":
        return Mutation(f"hooks.createRuntime[0].path = {rel!r}", INVALID, "hooks.createRuntime[0].path", ("hooks",),
                        _setter("hooks", {"createRuntime": [{"path": rel}]}))
    if choice == "mount-dest":
        # runtime-spec >= 1.1 tolerates (and deprecates) relative mount destinations
        return Mutation(f"mounts[7].destination = {rel!r}", EITHER, "mounts[7].destination", ("mounts",),
                        _setter("mounts[7].destination", rel), host=True)
    dev = {"path": rel, "type": "c", "major": 1, "minor": 3}
    return Mutation(f"linux.devices[0].path = {rel!r}", EITHER, "linux.devices[0].path", ("linux.devices",),
                    _setter("linux.devices", [dev]), host=True)


@st.composite
def duplicates(draw) -> Mutation:
    """Duplicate namespace types or rlimit types (refused), duplicate env/mounts (allowed)."""
    choice = draw(st.sampled_from(["ns", "rlimit", "env", "mount", "masked"]))
    if choice == "ns":
        i = draw(st.integers(0, 4))

        def apply(c: dict) -> None:
            ns = c["linux"]["namespaces"]
            ns.append(copy.deepcopy(ns[i]))

        return Mutation(f"linux.namespaces[{i}] duplicated", INVALID, "linux.namespaces", ("linux.namespaces", "hostname"), apply)
    if choice == "rlimit":
        def apply_r(c: dict) -> None:
            r = c["process"]["rlimits"]
            r.append(dict(r[0], soft=512, hard=512))

        return Mutation("process.rlimits[0] duplicated", INVALID, "process.rlimits", ("process.rlimits",), apply_r)
    if choice == "env":
        return Mutation("process.env: TERM given twice", VALID, "process.env", ("process.env",),
                        lambda c: c["process"]["env"].append("TERM=dumb"))
    if choice == "mount":
        return Mutation("mounts: /tmp mounted twice", VALID, "mounts", ("mounts",),
                        lambda c: c["mounts"].append(copy.deepcopy(c["mounts"][-1])))
    return Mutation("linux.maskedPaths: /proc/kcore twice", VALID, "linux.maskedPaths", ("linux.maskedPaths",),
                    lambda c: c["linux"]["maskedPaths"].append("/proc/kcore"))


@st.composite
def valid_changes(draw) -> Mutation:
    """Changes that keep the config valid: create must succeed."""
    choice = draw(st.sampled_from(["hostname", "env", "annotations", "memory", "pids", "cpu", "tmpfs", "masked",
                                   "unknown-field", "unknown-nested", "cgroupns", "user", "caps-empty", "rlimit",
                                   "seccomp", "no-process", "unknown-cap", "oom", "sysctl"]))
    if choice == "hostname":
        name = draw(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))
        return Mutation(f"hostname = {name!r}", VALID, "hostname", ("hostname",), _setter("hostname", name))
    if choice == "env":
        return Mutation("process.env += FUZZ=1", VALID, "process.env", ("process.env",),
                        lambda c: c["process"]["env"].append("FUZZ=1"))
    if choice == "annotations":
        ann = draw(st.dictionaries(st.from_regex(r"[a-z][a-z.]{0,12}", fullmatch=True), st.text(max_size=8), max_size=3))
        return Mutation(f"annotations = {ann!r}", VALID, "annotations", ("annotations",), _setter("annotations", ann))
    if choice == "memory":
        lim = draw(st.sampled_from([-1, 64 * MiB, 512 * MiB]))
        return Mutation(f"linux.resources.memory.limit = {lim}", VALID, "linux.resources.memory",
                        ("linux.resources.memory",), _setter("linux.resources.memory", {"limit": lim}))
    if choice == "pids":
        lim = draw(st.sampled_from([-1, 32, 1000]))
        return Mutation(f"linux.resources.pids.limit = {lim}", VALID, "linux.resources.pids",
                        ("linux.resources.pids",), _setter("linux.resources.pids", {"limit": lim}))
    if choice == "cpu":
        return Mutation("linux.resources.cpu = shares 512, quota 50000/100000", VALID, "linux.resources.cpu",
                        ("linux.resources.cpu",),
                        _setter("linux.resources.cpu", {"shares": 512, "quota": 50000, "period": 100000}))
    if choice == "tmpfs":
        return Mutation("mounts += tmpfs on /home", VALID, "mounts", ("mounts",),
                        lambda c: c["mounts"].append({"destination": "/home", "type": "tmpfs", "source": "tmpfs",
                                                      "options": ["nosuid", "nodev", "size=1m"]}))
    if choice == "masked":
        return Mutation("linux.maskedPaths += /proc/cpuinfo", VALID, "linux.maskedPaths", ("linux.maskedPaths",),
                        lambda c: c["linux"]["maskedPaths"].append("/proc/cpuinfo"))
    if choice == "unknown-field":
        return Mutation("unknown top-level field", VALID, "", ("fuzzUnknown",), _setter("fuzzUnknown", {"a": [1, 2]}))
    if choice == "unknown-nested":
        return Mutation("unknown field in process.user", VALID, "process.user", ("process.user.fuzz",),
                        _setter("process.user.fuzzUnknown", "x"))
    if choice == "cgroupns":
        return Mutation("linux.namespaces += cgroup", VALID, "linux.namespaces", ("linux.namespaces",),
                        lambda c: c["linux"]["namespaces"].append({"type": "cgroup"}))
    if choice == "user":
        return Mutation("process.user = 1000:1000 + additionalGids [5]", VALID, "process.user", ("process.user",),
                        _setter("process.user", {"uid": 1000, "gid": 1000, "additionalGids": [5]}))
    if choice == "caps-empty":
        return Mutation("process.capabilities all empty", VALID, "process.capabilities", ("process.capabilities",),
                        _setter("process.capabilities", {"bounding": [], "effective": [], "permitted": [], "ambient": []}))
    if choice == "rlimit":
        return Mutation("process.rlimits += RLIMIT_NPROC 100", VALID, "process.rlimits", ("process.rlimits",),
                        lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_NPROC", "soft": 100, "hard": 100}))
    if choice == "seccomp":
        doc = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["chmod", "fchmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
        return Mutation("linux.seccomp: allow all but chmod", VALID, "linux.seccomp", ("linux.seccomp",), _setter("linux.seccomp", doc))
    if choice == "no-process":
        # config.md: process is OPTIONAL ("REQUIRED when start is called"); create must work
        return Mutation("process removed", VALID, "process", ("process",), _deleter("process"))
    if choice == "unknown-cap":
        # config.md: capabilities that cannot be granted are logged as a warning; runtimes SHOULD NOT fail
        return Mutation("process.capabilities.bounding += CAP_FUZZ", VALID, "process.capabilities",
                        ("process.capabilities",), lambda c: c["process"]["capabilities"]["bounding"].append("CAP_FUZZ"))
    if choice == "oom":
        return Mutation("process.oomScoreAdj = 100", VALID, "process.oomScoreAdj", ("process.oomScoreAdj",),
                        _setter("process.oomScoreAdj", 100))
    return Mutation("linux.sysctl kernel.domainname", VALID, "linux.sysctl", ("linux.sysctl",),
                    _setter("linux.sysctl", {"kernel.domainname": "fuzz"}))


@st.composite
def host_dependent(draw) -> Mutation:
    """Values the schema allows that a host may refuse when the container is made."""
    choice = draw(st.sampled_from(["soft>hard", "memory-tiny", "swap<limit", "cpus", "mount-missing-dest",
                                   "no-uts-hostname", "ociVersion-2", "ociVersion-junk", "seccomp-unknown-syscall",
                                   "root-missing", "args-empty", "args-missing"]))
    if choice == "soft>hard":
        return Mutation("process.rlimits[0] soft > hard", EITHER, "process.rlimits[0]", ("process.rlimits",),
                        lambda c: c["process"]["rlimits"][0].update(soft=2048, hard=1024), host=True)
    if choice == "memory-tiny":
        return Mutation("linux.resources.memory.limit = 4096", EITHER, "linux.resources.memory.limit",
                        ("linux.resources.memory",), _setter("linux.resources.memory", {"limit": 4096}), host=True)
    if choice == "swap<limit":
        return Mutation("linux.resources.memory.swap < limit", EITHER, "linux.resources.memory.swap",
                        ("linux.resources.memory",), _setter("linux.resources.memory", {"limit": 64 * MiB, "swap": 32 * MiB}),
                        host=True)
    if choice == "cpus":
        return Mutation("linux.resources.cpu.cpus = 999", EITHER, "linux.resources.cpu.cpus", ("linux.resources.cpu",),
                        _setter("linux.resources.cpu", {"cpus": "999"}), host=True)
    if choice == "mount-missing-dest":
        return Mutation("mounts += tmpfs on /no/such/dir (read-only root)", EITHER, "mounts", ("mounts",),
                        lambda c: c["mounts"].append({"destination": "/no/such/dir", "type": "tmpfs", "source": "tmpfs"}),
                        host=True)
    if choice == "no-uts-hostname":
        # config.md: hostname can only be set with a new UTS namespace
        def apply(c: dict) -> None:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "uts"]

        return Mutation("uts namespace removed, hostname kept", INVALID, "hostname", ("linux.namespaces", "hostname"), apply)
    if choice == "ociVersion-2":
        return Mutation("ociVersion = 2.0.0", EITHER, "ociVersion", ("ociVersion",), _setter("ociVersion", "2.0.0"))
    if choice == "ociVersion-junk":
        return Mutation("ociVersion = 'banana'", EITHER, "ociVersion", ("ociVersion",), _setter("ociVersion", "banana"))
    if choice == "seccomp-unknown-syscall":
        doc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]}
        return Mutation("linux.seccomp: unknown syscall name", EITHER, "linux.seccomp.syscalls[0].names[0]", ("linux.seccomp",),
                        _setter("linux.seccomp", doc), host=True)
    if choice == "root-missing":
        return Mutation("root.path = no-such-dir", INVALID, "root.path", ("root",), _setter("root.path", "no-such-dir"))
    if choice == "args-empty":
        return Mutation("process.args = []", INVALID, "process.args", ("process.args",), _setter("process.args", []))
    return Mutation("process.args missing", INVALID, "process.args", ("process.args",), _deleter("process.args"))


RAW_DOCUMENTS: tuple[tuple[str, bytes], ...] = (
    ("empty file", b""),
    ("truncated JSON", b'{"ociVersion": "1.0.2", "root": {"path": "rootfs"'),
    ("top level is an array", b"[]"),
    ("top level is null", b"null"),
    ("top level is a string", b'"config"'),
    ("trailing garbage", b'{"ociVersion": "1.0.2", "root": {"path": "rootfs"}} x'),
    ("not UTF-8", b'{"ociVersion": "\xff\xfe"}'),
    ("duplicate keys, bad second value", b'{"ociVersion": "1.0.2", "ociVersion": 5, "root": {"path": "rootfs"}}'),
)


def raw_documents() -> st.SearchStrategy[Mutation]:
    """Malformed documents (refused naming config.json)."""
    return st.sampled_from(RAW_DOCUMENTS).map(lambda nd: Mutation(nd[0], INVALID, "", ("document",), raw=nd[1]))


def mutations() -> st.SearchStrategy[Mutation]:
    """Any one mutation of the catalogue."""
    return st.one_of(valid_changes(), wrong_types(), missing_required(), missing_lenient(), null_optionals(), out_of_range(),
                     unknown_enums(), relative_paths(), duplicates(), host_dependent())


@dataclass
class ConfigCase:
    """A config.json document and what ``create`` must do with it.

    Attributes:
        mutations: the mutations applied to the base config (in order).
        config: the document (None for a raw one).
        raw: the exact bytes for a malformed document.
    """

    mutations: list[Mutation]
    config: dict | None
    raw: bytes | None = None

    @property
    def must_refuse(self) -> bool:
        """An invalid mutation is present: create must fail."""
        return any(m.kind == INVALID for m in self.mutations)

    @property
    def must_create(self) -> bool:
        """Only valid mutations: create must succeed."""
        return all(m.kind == VALID for m in self.mutations)

    @property
    def allowed_paths(self) -> list[str]:
        """JSON paths a refusal may name."""
        return [m.path for m in self.mutations if m.kind != VALID]

    @property
    def host_error_allowed(self) -> bool:
        """A refusal may also be a clean host error naming no path."""
        return any(m.host for m in self.mutations) and not self.must_refuse

    def data(self) -> bytes:
        """The bytes written to config.json."""
        return self.raw if self.raw is not None else json.dumps(self.config, indent=1).encode()

    def describe(self) -> str:
        """The mutations, one per line."""
        return "\n".join(f"  - {m}" for m in self.mutations) or "  (base config, unchanged)"


@st.composite
def config_cases(draw, base: dict, max_mutations: int = 3) -> ConfigCase:
    """A :class:`ConfigCase`: ``base`` (a valid config) with up to ``max_mutations``
    mutations whose areas do not nest, or (sometimes) a malformed document."""
    if draw(st.integers(0, 9)) == 0:
        m = draw(raw_documents())
        return ConfigCase([m], None, m.raw)
    drawn = draw(st.lists(mutations(), min_size=0, max_size=max_mutations))
    kept: list[Mutation] = []
    for m in drawn:
        if any(_nested(a, b) for k in kept for a in k.areas for b in m.areas):
            continue
        kept.append(m)
    cfg = copy.deepcopy(base)
    applied = []
    for m in kept:
        try:
            m.apply(cfg)
        except (KeyError, IndexError, TypeError):
            continue  # the field is not in this base config
        applied.append(m)
    return ConfigCase(applied, cfg)


# ==================================================================================================
# Checking create against a ConfigCase


class ConfigViolation(AssertionError):
    """``create`` mishandled a config document. ``str()`` names the problems, the mutations and
    ends with a shell script reproducing the call."""


def _path_matches(named: str, expected: str) -> bool:
    if expected == "":
        return True
    return named == expected or named.startswith(expected + ".") or named.startswith(expected + "[")


def config_script(runtime, case: ConfigCase, cid: str, expect: str, got: str) -> str:
    """A shell script that writes the case's config.json and runs ``create`` on it."""
    import base64
    import shlex

    lines = [
        "#!/bin/sh",
        "# Reproducer written by the nano-sandbox config fuzzer (python -m nano_sandbox.fuzz --mode configs).",
        f"# Runtime: {runtime.version} ({runtime.path}); mount namespace per call: {runtime.mountns}",
        "# Mutations of the busybox example config:",
        *[f"#   {m}" for m in case.mutations],
        "set -u",
        "T=$(mktemp -d /tmp/nk-repro.XXXXXX)",
        f"ROOTFS={shlex.quote(str(_rootfs_source()))}   # built by: nk-runtime bundle build busybox",
        runtime.shell_function(),
        'mkdir -p "$T/b1" && cp -a "$ROOTFS" "$T/b1/rootfs"',
    ]
    if case.raw is not None:
        lines += ["base64 -d > \"$T/b1/config.json\" <<'EOF'", base64.b64encode(case.raw).decode(), "EOF"]
    else:
        lines += ["cat > \"$T/b1/config.json\" <<'EOF'", json.dumps(case.config, indent=1), "EOF"]
    lines += [
        f'rt create --bundle "$T/b1" {shlex.quote(cid)}  # expect: {expect}; got: {got}',
        f"rt delete --force {shlex.quote(cid)}",
        'rm -rf "$T"',
    ]
    return "\n".join(lines) + "\n"


def _rootfs_source():
    from nano_sandbox.fuzz import ensure_busybox_rootfs

    return ensure_busybox_rootfs()


def check_create(runtime, work, case: ConfigCase, n: int, *, strict: bool | None = None, validator=None) -> str:
    """Feed ``case`` to ``runtime create`` and check the outcome.

    Always: no crash (traceback, "internal error", panic); a created container has a valid
    ``created`` state and is deleted by ``delete --force``; after a refusal or the delete nothing
    is left (state dir, cgroup dir named after the id, process whose command line names the id,
    mount under the bundle). With ``strict`` (the default for nk-runtime): a valid case must be
    created, an invalid one refused, and a refusal must name the JSON path at fault
    (``config.json: <path>: ...``) or, for host-dependent cases, be a clean one-line error.

    Returns ``"created"`` or ``"refused"``; raises :class:`ConfigViolation`.
    """
    import time

    from nano_sandbox.fuzz import cgroup_dirs_named, crash_marker, error_paths, mounts_mentioning, pids_with_token

    if strict is None:
        strict = runtime.kind == "nk-runtime"
    cid = f"fz{runtime.token}-cfg{n}"
    bundle = work.bundle_raw(cid, case.data())
    r = runtime("create", "--bundle", bundle, cid, timeout=60)
    problems: list[str] = []
    expect = "created" if case.must_create else "refused, naming " + " or ".join(repr(p) for p in case.allowed_paths) \
        if case.must_refuse else "created, or refused naming " + " or ".join(repr(p) for p in case.allowed_paths)
    m = crash_marker(r.stderr)
    if r.timed_out:
        problems.append("create did not return within 60s")
    if m:
        problems.append(f"create crashed ({m!r})")
    outcome = "created" if r.ok else "refused"
    if r.ok:
        if strict and case.must_refuse:
            problems.append("created a container from an invalid config")
        s = runtime("state", cid)
        if not s.ok:
            problems.append(f"state after a successful create failed: {s.summary()}")
        else:
            try:
                doc = json.loads(s.stdout)
            except ValueError:
                doc = None
                problems.append(f"state printed no JSON: {s.stdout[:200]!r}")
            if doc is not None:
                if validator is not None:
                    problems += [f"state: {p}" for p in validator.problems(doc)]
                if doc.get("status") != "created":
                    problems.append(f"state after create says {doc.get('status')!r}, not 'created'")
        d = runtime("delete", "--force", cid, timeout=60)
        if not d.ok:
            problems.append(f"delete --force failed: {d.summary()}")
        if crash_marker(s.stderr + d.stderr):
            problems.append(f"state/delete crashed: {(s.stderr + d.stderr).strip()[:500]}")
    elif strict and not m and not r.timed_out:
        if case.must_create:
            problems.append("refused a valid config")
        else:
            named = error_paths(r.stderr)
            if not any(_path_matches(p, a) for p in named for a in case.allowed_paths):
                lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
                clean_host_error = case.host_error_allowed and len(lines) >= 1
                if not clean_host_error:
                    problems.append(f"the refusal names {named or 'no JSON path'}, expected one of {case.allowed_paths}")
    deadline = time.monotonic() + 5
    while True:
        left = []
        if os.path.exists(os.path.join(runtime.root, cid)):
            left.append(f"state dir {os.path.join(runtime.root, cid)}")
        left += [f"cgroup {d}" for d in cgroup_dirs_named(cid)]
        left += [f"process {p}" for p in pids_with_token(cid)]
        left += [f"host mount {x}" for x in mounts_mentioning(bundle)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if left:
        problems.append(f"left behind after the {'delete' if r.ok else 'refusal'}: {left}")
        runtime("delete", "--force", cid, timeout=60)
    if problems:
        got = f"{r.summary()}"
        raise ConfigViolation(
            f"create of a fuzzed config.json: {'; '.join(problems)}\n  mutations:\n{case.describe()}\n"
            f"  runtime said: {r.summary()}\n\nreproducer (sh):\n{config_script(runtime, case, cid, expect, got)}")
    work.remove_bundle(bundle)
    return outcome
