"""The default config (nano_sandbox.spec.defaults) and ``nk-runtime spec``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest

from nano_sandbox import OCI_VERSION
from nano_sandbox.cli import main
from nano_sandbox.spec import decode_config
from nano_sandbox.spec.defaults import default_spec
from nano_sandbox.spec.validate import Host, check, warnings

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "oci-runtime-spec"
SCHEMA = SHARED / "schema"
needs_shared = pytest.mark.skipif(
    not SCHEMA.is_dir(), reason=f"runtime-spec schema files not found at {SCHEMA} (the shared folder beside the repo)"
)


def _encode(d: dict) -> bytes:
    return msgspec.json.encode(d)


@pytest.fixture(scope="module")
def config_validator():
    """A jsonschema validator for config-schema.json (see conftest.schema_validator)."""
    from conftest import schema_validator

    return schema_validator("config-schema.json")


@pytest.mark.parametrize("rootless", [False, True])
def test_default_spec_decodes_and_checks_clean(rootless, tmp_path):
    d = default_spec(rootless=rootless)
    spec = decode_config(_encode(d))
    assert spec.oci_version == OCI_VERSION
    assert spec.process.terminal is False and spec.process.args == ["sh"]
    (tmp_path / "rootfs").mkdir()
    assert check(spec, str(tmp_path), Host(lsms=set())) == []
    assert warnings(spec, Host()) == []


@needs_shared
@pytest.mark.parametrize("rootless", [False, True])
def test_default_spec_is_valid_for_the_official_schema(config_validator, rootless):
    errors = sorted(config_validator.iter_errors(default_spec(rootless=rootless)), key=str)
    assert errors == []


@needs_shared
def test_schema_validator_rejects_a_bad_config(config_validator):
    """The fixture really resolves the $refs: a bad namespace type (defs-linux.json) is caught."""
    d = default_spec()
    d["linux"]["namespaces"].append({"type": "bogus"})
    assert not config_validator.is_valid(d)


# What `runc spec` (runc 1.1.5, spec 1.0.2-dev) writes, observed with `cd $(mktemp -d) && runc spec`.
RUNC_TOP_KEYS = {"ociVersion", "process", "root", "hostname", "mounts", "linux"}
RUNC_PROCESS_KEYS = {"terminal", "user", "args", "env", "cwd", "capabilities", "rlimits", "noNewPrivileges"}
RUNC_CAP_SETS = {"bounding", "effective", "permitted", "ambient"}
RUNC_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
RUNC_LINUX_KEYS = {"resources", "namespaces", "maskedPaths", "readonlyPaths"}
RUNC_ROOTLESS_LINUX_KEYS = {"uidMappings", "gidMappings", "namespaces", "maskedPaths", "readonlyPaths"}
RUNC_MOUNTS = ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
RUNC_NAMESPACES = ["pid", "network", "ipc", "uts", "mount"]
RUNC_ROOTLESS_NAMESPACES = ["pid", "ipc", "uts", "mount", "user"]
RUNC_MASKED = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
]
RUNC_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def test_same_shape_as_runc_spec():
    d = default_spec()
    assert set(d) == RUNC_TOP_KEYS
    assert set(d["process"]) == RUNC_PROCESS_KEYS
    assert set(d["process"]["capabilities"]) == RUNC_CAP_SETS
    assert all(d["process"]["capabilities"][s] == RUNC_CAPS for s in RUNC_CAP_SETS)
    assert d["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert d["process"]["noNewPrivileges"] is True
    assert d["root"] == {"path": "rootfs", "readonly": True}
    assert [m["destination"] for m in d["mounts"]] == RUNC_MOUNTS
    assert set(d["linux"]) == RUNC_LINUX_KEYS
    assert [n["type"] for n in d["linux"]["namespaces"]] == RUNC_NAMESPACES
    assert d["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    # runc's masked paths, plus the powercap (RAPL) counters runc 1.2 and containerd mask too
    assert set(d["linux"]["maskedPaths"]) - set(RUNC_MASKED) == {"/sys/devices/virtual/powercap"}
    assert set(RUNC_MASKED) <= set(d["linux"]["maskedPaths"])
    assert d["linux"]["readonlyPaths"] == RUNC_READONLY
    devpts = d["mounts"][2]
    assert devpts["options"][-1] == "gid=5"
    # our deliberate differences
    assert d["ociVersion"] == OCI_VERSION and d["process"]["terminal"] is False


def test_same_shape_as_runc_spec_rootless():
    d = default_spec(rootless=True)
    assert set(d) == RUNC_TOP_KEYS
    assert set(d["linux"]) == RUNC_ROOTLESS_LINUX_KEYS
    assert [n["type"] for n in d["linux"]["namespaces"]] == RUNC_ROOTLESS_NAMESPACES
    assert d["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert d["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    sys_mount = d["mounts"][5]
    assert sys_mount == {"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    assert "gid=5" not in d["mounts"][2]["options"]


def test_default_spec_returns_fresh_data():
    a = default_spec()
    a["linux"]["maskedPaths"].clear()
    assert default_spec()["linux"]["maskedPaths"]


# -- nk-runtime spec ---------------------------------------------------------------------------------


def test_spec_verb_writes_then_refuses(tmp_path, capsys):
    assert main(["spec", "--bundle", str(tmp_path)]) == 0
    path = tmp_path / "config.json"
    first = path.read_bytes()
    assert json.loads(first) == default_spec()
    assert first.startswith(b'{\n    "ociVersion"')  # 4-space indentation
    assert main(["spec", "--bundle", str(tmp_path)]) != 0
    assert path.read_bytes() == first
    assert f"File {path} exists. Remove it first" in capsys.readouterr().err


def test_spec_verb_rootless_in_cwd(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["spec", "--rootless"]) == 0
    assert json.loads((tmp_path / "config.json").read_bytes()) == default_spec(rootless=True)
    assert main(["spec"]) == 1
    assert "File config.json exists. Remove it first" in capsys.readouterr().err


def test_spec_verb_missing_bundle_dir(tmp_path, capsys):
    assert main(["spec", "-b", str(tmp_path / "nope")]) == 1
    assert f"--bundle {tmp_path}/nope: no such directory" in capsys.readouterr().err
