"""The config.json model and its decoder (nano_sandbox.spec, nano_sandbox.spec.config).

Uses the official runtime-spec schema files and examples from the ``shared`` folder beside the
repository (``../shared/oci-runtime-spec/schema``); those tests skip when it is absent.
"""

from __future__ import annotations

import copy
import json
import typing
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nano_sandbox.errors import ConfigError
from nano_sandbox.spec import config as C
from nano_sandbox.spec import (
    decode_config,
    decode_process,
    decode_resources,
    encode,
    load_bundle,
)
from nano_sandbox.spec.validate import warnings

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "oci-runtime-spec"
SCHEMA = SHARED / "schema"
EXAMPLES = SCHEMA / "test" / "config"
needs_shared = pytest.mark.skipif(
    not SCHEMA.is_dir(), reason=f"runtime-spec schema files not found at {SCHEMA} (the shared folder beside the repo)"
)


def _names(sub: str) -> list[str]:
    d = EXAMPLES / sub
    return sorted(p.name for p in d.glob("*.json")) if d.is_dir() else []


# -- official examples ---------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("name", _names("good") or ["<none>"])
def test_every_good_example_fits_the_model(name):
    """All good examples, FreeBSD and z/OS ones included, fit the model: unknown fields (their
    ``freebsd``/``zos`` sections) are ignored, as config.md requires."""
    data = (EXAMPLES / "good" / name).read_bytes()
    spec = msgspec.json.decode(data, type=C.Spec)
    assert spec.oci_version


# The Linux and generic examples pass decode_config entirely. freebsd-example and zos-example set
# "hostname" without any linux.namespaces: on Linux that would change the runtime's (the host's)
# hostname, which decode_config refuses as runc does; the other FreeBSD/z/OS examples decode.
GOOD_REJECTED = {
    "freebsd-example.json": "config.json: hostname: requires a uts namespace in linux.namespaces",
    "zos-example.json": "config.json: hostname: requires a uts namespace in linux.namespaces",
}


@needs_shared
@pytest.mark.parametrize("name", _names("good") or ["<none>"])
def test_good_examples_decode_config(name):
    data = (EXAMPLES / "good" / name).read_bytes()
    if name in GOOD_REJECTED:
        with pytest.raises(ConfigError) as ei:
            decode_config(data)
        assert str(ei.value) == GOOD_REJECTED[name]
        assert ei.value.path == "hostname"
    else:
        spec = decode_config(data)
        assert decode_config(encode(spec)) == spec


BAD_EXPECTED = {
    "invalid-json.json": ("", "invalid JSON: object keys must be strings at line 1, column 2 (byte 1)"),
    "linux-hugepage.json": (
        "linux.resources.hugepageLimits[0].pageSize",
        'expected a string matching ^[1-9][0-9]*[KMG]B$, got "64kB"',
    ),
    "linux-netdevice.json": ('linux.netDevices["eth0"].name', "expected str, got int"),
    "linux-rdma.json": ('linux.resources.rdma["mlx5_1"].hcaHandles', "expected int, got str"),
}


@needs_shared
@pytest.mark.parametrize("name", _names("bad") or ["<none>"])
def test_bad_examples_are_rejected_at_the_exact_path(name):
    if name.startswith("freebsd-"):
        pytest.skip("FreeBSD-only rule (freebsd.jail.vnet enum): the freebsd section is ignored on Linux")
    data = (EXAMPLES / "bad" / name).read_bytes()
    with pytest.raises(ConfigError) as ei:
        decode_config(data)
    assert (ei.value.path, ei.value.message) == BAD_EXPECTED[name]
    assert ei.value.source == "config.json"


def test_spec_example_fields(tmp_path):
    data = json.dumps(
        {
            "ociVersion": "1.3.0",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 1, "gid": 2}, "execCPUAffinity": {"initial": "0-3"}, "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4}},
            "linux": {
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
                "resources": {
                    "memory": {"kernelTCP": -1, "disableOOMKiller": True},
                    "blockIO": {"throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]},
                    "network": {"classID": 7},
                },
                "intelRdt": {"closID": "c1", "enableMonitoring": True},
            },
        }
    ).encode()
    spec = decode_config(data)
    lx = spec.linux
    assert lx.uid_mappings[0].host_id == 1000 and lx.uid_mappings[0].container_id == 0
    assert lx.resources.memory.kernel_tcp == -1 and lx.resources.memory.disable_oom_killer is True
    assert lx.resources.block_io.throttle_read_iops_device[0].rate == 10
    assert lx.resources.network.class_id == 7
    assert lx.intel_rdt.clos_id == "c1" and lx.intel_rdt.enable_monitoring
    assert spec.process.exec_cpu_affinity.initial == "0-3"
    assert spec.process.io_priority.class_ == "IOPRIO_CLASS_BE"
    # encoding gives back the spec's JSON names
    assert json.loads(encode(spec)) == json.loads(data)


# -- JSON names agree with the schema -----------------------------------------------------------


def _load_schema_files() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in SCHEMA.glob("*.json")}


def _deref(node: dict, files: dict, current: str) -> tuple[dict, str]:
    while "$ref" in node:
        ref = node["$ref"]
        fname, _, pointer = ref.partition("#")
        fname = fname or current
        target = files[fname]
        for part in pointer.strip("/").split("/"):
            if part:
                target = target[part]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node, current = {**target, **extra}, fname
    return node, current


def _properties(node: dict, files: dict, current: str) -> dict[str, tuple[dict, str]]:
    node, current = _deref(node, files, current)
    props = {k: (v, current) for k, v in node.get("properties", {}).items()}
    for sub in node.get("allOf", []) + node.get("anyOf", []):
        props.update(_properties(sub, files, current))
    return props


def _strip(tp):
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, __import__("types").UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0]
        else:
            return tp


# schema properties deliberately not modelled (not Linux)
NOT_MODELLED = {("Spec", "solaris"), ("Spec", "windows"), ("Spec", "vm"), ("Spec", "zos"), ("Spec", "freebsd"), ("Process", "commandLine")}


@needs_shared
def test_json_names_match_the_schema():
    """Every model field is a schema property at the same place, and every Linux/generic schema
    property is modelled (walks config-schema.json through its $refs)."""
    files = _load_schema_files()
    seen: set[type] = set()

    def walk(tp, node, current, where):
        tp = _strip(tp)
        node, current = _deref(node, files, current)
        origin = typing.get_origin(tp)
        if origin is list:
            items = node.get("items", {})
            if "anyOf" in items:
                items = items["anyOf"][0]
            walk(typing.get_args(tp)[0], items, current, where + "[]")
            return
        if origin is dict:
            if "properties" in node:  # linux.timeOffsets: a map in Go and here, fixed keys in the schema
                for key, sub in node["properties"].items():
                    seen.discard(_strip(typing.get_args(tp)[1]))
                    walk(typing.get_args(tp)[1], sub, current, f"{where}.{key}")
                return
            sub = node.get("additionalProperties") or next(iter(node.get("patternProperties", {}).values()), {})
            walk(typing.get_args(tp)[1], sub, current, where + "{}")
            return
        if not (isinstance(tp, type) and issubclass(tp, msgspec.Struct)) or tp in seen:
            return
        seen.add(tp)
        props = _properties(node, files, current)
        hints = typing.get_type_hints(tp, include_extras=True)
        encoded = dict(zip(tp.__struct_encode_fields__, tp.__struct_fields__))
        extra = set(encoded) - set(props)
        assert not extra, f"{where} ({tp.__name__}): fields not in the schema: {sorted(extra)}"
        missing = {p for p in props if p not in encoded and (tp.__name__, p) not in NOT_MODELLED}
        assert not missing, f"{where} ({tp.__name__}): schema properties not modelled: {sorted(missing)}"
        for enc, attr in encoded.items():
            sub, cur = props[enc]
            walk(hints[attr], sub, cur, f"{where}.{enc}" if where else enc)

    walk(C.Spec, files["config-schema.json"], "config-schema.json", "")
    models = {v for v in vars(C).values() if isinstance(v, type) and issubclass(v, msgspec.Struct) and v.__module__ == C.__name__}
    assert models - seen == {C._Obj}, "every model class is reached from Spec"


@needs_shared
def test_enums_match_the_schema():
    defs = json.loads((SCHEMA / "defs-linux.json").read_text())["definitions"]
    assert set(C.NAMESPACE_TYPES) == set(defs["NamespaceType"]["enum"])
    assert set(C.SECCOMP_ACTIONS) == set(defs["SeccompAction"]["enum"])
    assert set(C.SECCOMP_ARCHES) == set(defs["SeccompArch"]["enum"])
    assert set(C.SECCOMP_OPERATORS) == set(defs["SeccompOperators"]["enum"])
    assert set(C.SECCOMP_FLAGS) == set(defs["SeccompFlag"]["enum"])
    assert set(C.SCHEDULER_POLICIES) == set(defs["SchedulerPolicy"]["enum"])
    assert set(C.SCHEDULER_FLAGS) == set(defs["SchedulerFlag"]["enum"])
    assert set(C.MEMORY_POLICY_MODES) == set(defs["MemoryPolicyMode"]["enum"])
    assert set(C.MEMORY_POLICY_FLAGS) == set(defs["MemoryPolicyFlag"]["enum"])
    assert set(C.PERSONALITY_DOMAINS) == set(defs["PersonalityDomain"]["enum"])
    # superset on purpose: runc's recursive spellings (Docker writes "rslave")
    assert set(defs["RootfsPropagation"]["enum"]) < set(C.ROOTFS_PROPAGATIONS)


# -- bad inputs: exact errors ---------------------------------------------------------------------

BASE = {
    "ociVersion": "1.3.0",
    "root": {"path": "rootfs"},
    "process": {"cwd": "/", "args": ["sh"]},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]},
}
_DELETE = object()


def doc(**changes) -> bytes:
    """BASE with changes; keys are paths with ``__`` between levels (``process__user``); _DELETE removes the key."""
    d = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        parts = dotted.split("__")
        cur = d
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        if value is _DELETE:
            cur.pop(parts[-1], None)
        else:
            cur[parts[-1]] = value
    return json.dumps(d).encode()


NS4 = [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "pid"}]
RL = lambda *items: [{"type": t, "soft": s, "hard": h} for t, s, h in items]

BAD_INPUTS = [
    ("wrong-type", doc(linux__resources={"memory": {"limit": "1g"}}), "linux.resources.memory.limit: expected int, got str"),
    ("uint64-overflow", doc(process__rlimits=RL(("RLIMIT_CORE", 2**64, 2**64))), "process.rlimits[0].soft: expected int <= 18446744073709551615, got 18446744073709551616"),
    ("uint32-negative", doc(process__user={"uid": -1}), "process.user.uid: expected int >= 0, got -1"),
    ("uint32-too-big", doc(process__user={"uid": 0, "gid": 2**32}), "process.user.gid: expected int <= 4294967295, got 4294967296"),
    ("uint16-too-big", doc(linux__resources={"blockIO": {"weight": 70000}}), "linux.resources.blockIO.weight: expected int <= 65535, got 70000"),
    ("float-for-int", doc(linux__resources={"pids": {"limit": 1.5}}), "linux.resources.pids.limit: expected int, got float"),
    ("bool-for-bool", doc(process__terminal="yes"), "process.terminal: expected bool, got str"),
    ("array-expected", doc(mounts={"destination": "/x"}), "mounts: expected array, got object"),
    ("unknown-namespace", doc(linux__namespaces=[{"type": "pid"}, {"type": "net"}]), 'linux.namespaces[1].type: invalid value "net" (expected one of "mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time")'),
    ("duplicate-namespace", doc(linux__namespaces=NS4), 'linux.namespaces[3].type: duplicate namespace "pid"'),
    ("relative-ns-path", doc(linux__namespaces=[{"type": "uts"}, {"type": "network", "path": "proc/1/ns/net"}]), 'linux.namespaces[1].path: must be an absolute path, got "proc/1/ns/net"'),
    ("duplicate-rlimit", doc(process__rlimits=RL(("RLIMIT_NOFILE", 1, 2), ("RLIMIT_CORE", 0, 0), ("RLIMIT_NOFILE", 1, 2))), 'process.rlimits[2].type: duplicate rlimit "RLIMIT_NOFILE"'),
    ("unknown-rlimit", doc(process__rlimits=RL(("RLIMIT_CORE", 0, 0), ("RLIMIT_FOO", 1, 1))), 'process.rlimits[1].type: unknown rlimit "RLIMIT_FOO"'),
    ("soft-above-hard", doc(process__rlimits=RL(("RLIMIT_NOFILE", 2048, 1024))), "process.rlimits[0].soft: soft limit 2048 is above the hard limit 1024"),
    ("rlimit-missing-hard", doc(process__rlimits=[{"type": "RLIMIT_CORE", "soft": 1}]), "process.rlimits[0].hard: required field is missing"),
    ("hostname-without-uts", doc(hostname="web", linux__namespaces=[{"type": "pid"}]), "hostname: requires a uts namespace in linux.namespaces"),
    ("domainname-without-linux", doc(domainname="example.org", linux=_DELETE), "domainname: requires a uts namespace in linux.namespaces"),
    ("missing-root", doc(root=_DELETE), "root: required field is missing"),
    ("missing-root-path", doc(root={"readonly": True}), "root.path: required field is missing"),
    ("empty-root-path", doc(root={"path": ""}), "root.path: must not be empty"),
    ("missing-ociVersion", doc(ociVersion=_DELETE), "ociVersion: required field is missing"),
    ("ociVersion-null", doc(ociVersion=None), "ociVersion: expected str, got null"),
    ("malformed-json", b'{"ociVersion": "1.3.0",\n  "root": {"path": "rootfs"]}', "invalid JSON: expected ',' or '}' at line 2, column 28 (byte 51)"),
    ("truncated-json", b'{"ociVersion": "1.3.0",\n  "root": {', "invalid JSON: unexpected end of data at line 2, column 12 (byte 35)"),
    ("empty-document", b"  \n", "invalid JSON: the document is empty"),
    ("not-an-object", b"[]", "expected object, got array"),
    ("bad-seccomp-action", doc(linux__seccomp={"defaultAction": "SCMP_ACT_DENY"}), 'linux.seccomp.defaultAction: invalid value "SCMP_ACT_DENY" (expected one of "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY")'),
    ("bad-seccomp-op", doc(linux__seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 9, "op": "=="}]}]}), 'linux.seccomp.syscalls[0].args[0].op: invalid value "==" (expected one of "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")'),
    ("bad-seccomp-arch", doc(linux__seccomp={"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "x86_64"]}), 'linux.seccomp.architectures[1]: invalid value "x86_64" (expected one of ' + ", ".join(f'"{a}"' for a in C.SECCOMP_ARCHES) + ")"),
    ("seccomp-empty-names", doc(linux__seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}), "linux.seccomp.syscalls[0].names: expected array of length >= 1"),
    ("bad-device-type", doc(linux__devices=[{"type": "x", "path": "/dev/x"}]), 'linux.devices[0].type: invalid value "x" (expected one of "c", "b", "u", "p")'),
    ("device-file-mode", doc(linux__devices=[{"type": "c", "path": "/dev/x", "major": 1, "minor": 3, "fileMode": 512}]), "linux.devices[0].fileMode: expected int <= 511, got 512"),
    ("bad-rootfs-propagation", doc(linux__rootfsPropagation="recursive"), 'linux.rootfsPropagation: invalid value "recursive" (expected one of "private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable")'),
    ("empty-args", doc(process__args=[]), "process.args: at least one entry is required"),
    ("relative-cwd", doc(process__cwd="home"), 'process.cwd: must be an absolute path, got "home"'),
    ("missing-cwd", doc(process__cwd=_DELETE), "process.cwd: required field is missing"),
    ("empty-mount-destination", doc(mounts=[{"destination": "/a"}, {"destination": ""}]), "mounts[1].destination: must not be empty"),
    ("missing-mount-destination", doc(mounts=[{"type": "tmpfs"}]), "mounts[0].destination: required field is missing"),
    ("hugepage-size", doc(linux__resources={"hugepageLimits": [{"pageSize": "2mb", "limit": 1}]}), 'linux.resources.hugepageLimits[0].pageSize: expected a string matching ^[1-9][0-9]*[KMG]B$, got "2mb"'),
    ("annotation-value", doc(annotations={"a": "b", "org.example.n": 5}), 'annotations["org.example.n"]: expected str, got int'),
    ("sysctl-value", doc(linux__sysctl={"net.ipv4.ip_forward": 1}), 'linux.sysctl["net.ipv4.ip_forward"]: expected str, got int'),
    ("hook-timeout", doc(hooks={"poststart": [{"path": "/bin/true", "timeout": 0}]}), "hooks.poststart[0].timeout: expected int >= 1, got 0"),
    ("hook-missing-path", doc(hooks={"createRuntime": [{"args": ["x"]}]}), "hooks.createRuntime[0].path: required field is missing"),
    ("ioprio-class", doc(process__ioPriority={"class": "IOPRIO_CLASS_NONE"}), 'process.ioPriority.class: invalid value "IOPRIO_CLASS_NONE" (expected one of "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")'),
    ("scheduler-policy-missing", doc(process__scheduler={"nice": 1}), "process.scheduler.policy: required field is missing"),
    ("idmapping-hostID-missing", doc(linux__uidMappings=[{"containerID": 0, "size": 1}]), "linux.uidMappings[0].hostID: required field is missing"),
    ("time-offset-type", doc(linux__timeOffsets={"monotonic": {"secs": "1"}}), 'linux.timeOffsets["monotonic"].secs: expected int, got str'),
    ("cpu-affinity-pattern", doc(process__execCPUAffinity={"final": "all"}), 'process.execCPUAffinity.final: expected a string matching ^[0-9, -]*$, got "all"'),
]


@pytest.mark.parametrize("data, expected", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gives_exact_error(data, expected):
    with pytest.raises(ConfigError) as ei:
        decode_config(data)
    assert str(ei.value) == f"config.json: {expected}"
    path, _, message = expected.partition(": ") if not expected.startswith(("invalid JSON", "expected object")) else ("", "", expected)
    assert ei.value.path == path
    assert ei.value.message == message


def test_table_is_large_enough():
    assert len(BAD_INPUTS) >= 25


# -- accepted edge values --------------------------------------------------------------------------


def test_uint64_max_and_int64_min_are_accepted():
    spec = decode_config(doc(process__rlimits=RL(("RLIMIT_NOFILE", 2**64 - 1, 2**64 - 1)), linux__timeOffsets={"boottime": {"secs": -(2**63)}}))
    assert spec.process.rlimits[0].hard == 2**64 - 1
    assert spec.linux.time_offsets["boottime"].secs == -(2**63)


def test_unknown_fields_and_options_are_kept_or_ignored():
    spec = decode_config(doc(futureField={"x": 1}, mounts=[{"destination": "/m", "type": "tmpfs", "options": ["nosuid", "x-custom=1", "idmap"]}]))
    assert spec.mounts[0].options == ["nosuid", "x-custom=1", "idmap"]
    assert b"futureField" not in encode(spec)


def test_hostname_with_joined_uts_namespace_is_accepted():
    spec = decode_config(doc(hostname="web", linux__namespaces=[{"type": "uts", "path": "/proc/1/ns/uts"}]))
    assert spec.hostname == "web"


def test_relative_mount_destination_is_refused():
    """runtime-spec >= 1.1 tolerates a relative destination (deprecated); this runtime refuses it."""
    data = doc(mounts=[{"destination": "/proc", "type": "proc"}, {"destination": "/dev"}, {"destination": "tmp", "type": "tmpfs"}])
    with pytest.raises(ConfigError) as e:
        decode_config(data)
    assert str(e.value) == 'config.json: mounts[2].destination: must be an absolute path, got "tmp"'


def test_empty_namespace_path_means_new():
    spec = decode_config(doc(linux__namespaces=[{"type": "uts", "path": ""}]))
    assert spec.linux.namespaces[0].path is None


def test_defaults_of_absent_fields():
    spec = decode_config(doc())
    p = spec.process
    assert (p.terminal, p.user.uid, p.user.gid, p.env, p.rlimits, p.capabilities, p.oom_score_adj) == (False, 0, 0, [], [], None, None)
    assert spec.mounts == [] and spec.annotations == {} and spec.hooks is None
    assert spec.linux.resources is None and spec.linux.sysctl == {}


# -- process.json, resources.json, bundles ----------------------------------------------------------


def test_decode_process_paths_are_relative_to_the_document():
    p = decode_process(b'{"cwd": "/", "args": ["ls", "-l"], "env": ["A=1"], "user": {"uid": 5}}')
    assert p.args == ["ls", "-l"] and p.user.uid == 5
    with pytest.raises(ConfigError) as ei:
        decode_process(b'{"cwd": "/", "args": []}')
    assert str(ei.value) == "process.json: args: at least one entry is required"
    with pytest.raises(ConfigError) as ei:
        decode_process(b'{"cwd": "/", "args": ["x"], "rlimits": [{"type": "RLIMIT_NOFILE", "soft": "1", "hard": 1}]}')
    assert str(ei.value) == "process.json: rlimits[0].soft: expected int, got str"


def test_decode_resources():
    r = decode_resources(b'{"memory": {"limit": 1048576, "swap": -1}, "pids": {"limit": 10}}')
    assert r.memory.limit == 1048576 and r.pids.limit == 10
    with pytest.raises(ConfigError) as ei:
        decode_resources(b'{"memory": {"limit": -2}}')
    assert str(ei.value) == "resources.json: memory.limit: must be -1 (unlimited) or >= 0, got -2"
    with pytest.raises(ConfigError) as ei:
        decode_resources(b'{"cpu": {"shares": -5}}')
    assert str(ei.value) == "resources.json: cpu.shares: expected int >= 0, got -5"


def test_load_bundle(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load_bundle(str(tmp_path))
    assert str(ei.value) == f"config.json: no config.json in bundle {tmp_path}: No such file or directory"
    assert ei.value.path == ""
    (tmp_path / "config.json").write_bytes(doc())
    assert load_bundle(str(tmp_path)).root.path == "rootfs"


def test_encode_round_trip():
    spec = decode_config(doc(linux__resources={"memory": {"limit": 10}}, annotations={"k": "v"}))
    assert decode_config(encode(spec)) == spec
    assert json.loads(encode(spec))["linux"]["resources"] == {"memory": {"limit": 10}}


@given(soft=st.integers(min_value=-(2**65), max_value=2**65), hard=st.integers(min_value=0, max_value=2**64 - 1))
def test_rlimit_bounds_property(soft, hard):
    data = doc(process__rlimits=RL(("RLIMIT_NOFILE", soft, hard)))
    if 0 <= soft <= hard:
        assert decode_config(data).process.rlimits[0].soft == soft
    else:
        with pytest.raises(ConfigError) as ei:
            decode_config(data)
        assert ei.value.path == "process.rlimits[0].soft"
